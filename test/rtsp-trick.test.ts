// Trick play (RTSP Scale) end to end: a PLAY with Scale N is answered Scale: N,
// the RTP payloads the client receives decode in ffmpeg with no warning, hold
// exactly the asset's key frames in forward (or reverse) order, and their PCR
// advances at 1/|N| of media time; a crash or disk fault of the sending data
// path during trick play changes no byte of the capture; raw UDP and
// interleaved sessions get the same bytes; Scale: 1 returns to normal play; an
// unsupported Scale is 456.
//
// The asset is made as scripts/make-sample-asset.sh makes the sample, 4 s long
// with a key frame every second (4 key frames), so that the slowest trick play
// (Scale ±2) lasts about 2 s.

import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { TS_PACKET_BYTES, packetPcr, packetPid } from '../src/mpegts/packet.js';
import { TRICK_SCALES } from '../src/mpegts/trick.js';
import type { AssetIndexMeta } from '../src/index-format/index-format.js';
import { parseRange } from '../src/rtsp/headers/range.js';
import { RTCP_BYE } from '../src/rtsp/rtcp.js';
import type { TwinframeServer } from '../src/server.js';
import { buildAssetIndex } from './helpers/asset-index.js';
import { sleep, waitForRecovery } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { startFileServer } from './helpers/media-server.js';
import { parseCompound } from './helpers/rtcp.js';
import { RtspClient, UdpReceiver, parseRtpPacket } from './helpers/rtsp-client.js';
import { runToString } from './helpers/run.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAKE_ASSET = path.join(ROOT, 'scripts/make-sample-asset.sh');
const FPS = 25;

let tmp: string;
let assetFile: string;
let server: TwinframeServer;
let port: number;
let meta: AssetIndexMeta;
let videoPid: number;
/** ffmpeg's hashes of the asset's key frames, in stream order. */
let keyHashes: string[];

/** ffmpeg's framemd5 hashes of a TS file's video packets (the ES bytes), in stream order. */
async function videoHashes(file: string): Promise<string[]> {
  const out = await runToString(['ffmpeg', '-hide_banner', '-v', 'error', '-i', file, '-map', '0:v', '-c', 'copy', '-f', 'framemd5', '-']);
  return out.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(',')[5].trim());
}

test.before(async () => {
  tmp = await fs.mkdtemp(path.join(tmpdir(), 'twinframe-trick-rtsp-'));
  await fs.mkdir(path.join(tmp, 'media'));
  assetFile = path.join(tmp, 'media', 'four.ts');
  await runToString(['env', 'DURATION=4', `GOP=${FPS}`, MAKE_ASSET, assetFile], 60_000);
  meta = buildAssetIndex(assetFile).meta;
  videoPid = meta.streams.find((s) => s.kind === 'video')!.pid;
  // Which video packets (stream order) are the key frames: one PES each.
  const bytes = await fs.readFile(assetFile);
  const starts: number[] = [];
  for (let p = 0; p < meta.packetCount; p++) {
    const o = p * TS_PACKET_BYTES;
    if (packetPid(bytes, o) === videoPid && (bytes[o + 1] & 0x40) !== 0) starts.push(p);
  }
  const hashes = await videoHashes(assetFile);
  keyHashes = meta.randomAccess.map((k) => hashes[starts.indexOf(k.packet)]);
  server = await startFileServer(path.join(tmp, 'media'), tmp, { admin: { faultInjection: true } });
  port = server.rtsp.port;
});

test.after.always(async () => {
  await server?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

function hasBye(receiver: UdpReceiver): boolean {
  return receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data)).some((p) => p.type === RTCP_BYE);
}

async function waitForBye(receiver: UdpReceiver): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!hasBye(receiver) && Date.now() < deadline) await sleep(50);
  if (!hasBye(receiver)) throw new Error('no BYE at the end of the trick play');
  await receiver.waitForQuiet(150, 5000);
}

/**
 * PLAY the asset at `scale` (forward from its start, reverse from its end),
 * `during` run while it streams; the reply's Scale and the RTP payloads.
 */
async function capture(scale: number, during?: () => Promise<void>, mode: 'rtp' | 'udp' = 'rtp'): Promise<{ scale: string | undefined; ts: Buffer }> {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open({ mode });
  try {
    if ((await client.setup('/four.ts/track1', receiver.transportHeader())).status !== 200) throw new Error('SETUP failed');
    const play = await client.play('/four.ts', scale > 0 ? 'npt=0-' : undefined, { headers: { Scale: String(scale) } });
    if (play.status !== 200) throw new Error(`PLAY answered ${play.status}`);
    await during?.();
    if (mode === 'rtp') await waitForBye(receiver);
    else await receiver.waitForQuiet(1000, 15_000); // raw UDP has no BYE; groups come every 125 ms or sooner here
    await client.teardown('/four.ts');
    return { scale: play.headers.get('scale'), ts: receiver.tsPayload() };
  } finally {
    await client.release();
    await receiver.close();
  }
}

/** The PCRs of the trick stream's group-opening packets (adaptation only, on the video PID), in 90 kHz ticks. */
function groupPcrs(ts: Buffer): number[] {
  const pcrs: number[] = [];
  for (let o = 0; o + TS_PACKET_BYTES <= ts.length; o += TS_PACKET_BYTES) {
    if (packetPid(ts, o) !== videoPid || (ts[o + 3] & 0x30) !== 0x20) continue;
    const pcr = packetPcr(ts, o);
    if (pcr >= 0) pcrs.push(pcr / 300);
  }
  return pcrs;
}

const clean = new Map<number, Buffer>();

for (const scale of TRICK_SCALES) {
  test.serial(`PLAY with Scale: ${scale} is answered Scale: ${scale}, streams the key frames ${scale > 0 ? 'forward' : 'in reverse'}, decodes cleanly, PCR at 1/${Math.abs(scale)}`, async (t) => {
    const got = await capture(scale);
    clean.set(scale, got.ts);
    t.is(got.scale, String(scale));
    const file = path.join(tmp, `trick${scale}.ts`);
    await fs.writeFile(file, got.ts);
    const warnings = await runToString(['ffmpeg', '-hide_banner', '-v', 'warning', '-i', file, '-f', 'null', '-']).catch((err: Error) => err.message);
    t.is(warnings.trim(), '', 'ffmpeg decodes the capture with no warning');
    const probed = JSON.parse(await runToString(['ffprobe', '-v', 'error', '-show_entries', 'frame=pict_type', '-of', 'json', file])) as { frames: Array<{ pict_type: string }> };
    const order = scale > 0 ? keyHashes : [...keyHashes].reverse();
    t.deepEqual(await videoHashes(file), order, 'exactly the asset\'s key frames, in play order');
    t.deepEqual(probed.frames.map((f) => f.pict_type), order.map(() => 'I'), 'all I pictures');
    const keys = scale > 0 ? meta.randomAccess : [...meta.randomAccess].reverse();
    const pcrs = groupPcrs(got.ts);
    t.is(pcrs.length, keys.length, 'one group per key frame');
    for (let j = 1; j < keys.length; j++) {
      const media = Math.abs(keys[j].ticks - keys[0].ticks);
      t.true(Math.abs(pcrs[j] - pcrs[0] - media / Math.abs(scale)) <= 1, `group ${j}: PCR ${pcrs[j] - pcrs[0]} ticks after the first, media ${media} / ${Math.abs(scale)}`);
    }
  });
}

for (const kind of ['crash', 'disk'] as const) {
  test.serial(`a ${kind} fault of the sending data path during trick play (Scale -2) leaves the capture byte-identical`, async (t) => {
    const reference = clean.get(-2) ?? (await capture(-2)).ts;
    const before = server.engine.status();
    const got = await capture(-2, async () => {
      await sleep(700); // inside the ~2 s the trick play lasts
      server.engine.injectFault(before.active!, kind);
      await waitForRecovery(server.engine, before.switches);
    });
    t.not(server.engine.status().active, before.active, 'sending moved to the other data path');
    t.true(got.ts.equals(reference), `the capture (${got.ts.length} bytes) is the no-fault capture (${reference.length} bytes), byte for byte`);
  });
}

test.serial('a raw UDP session (MP2T/H2221/UDP) gets the same trick stream as RTP\'s payloads', async (t) => {
  const rtp = clean.get(8) ?? (await capture(8)).ts;
  const raw = await capture(8, undefined, 'udp');
  t.is(raw.scale, '8');
  t.true(raw.ts.equals(rtp), `raw UDP ${raw.ts.length} bytes, RTP payloads ${rtp.length} bytes`);
});

test.serial('an interleaved session (RTP/AVP/TCP) gets the same trick stream as UDP RTP\'s payloads', async (t) => {
  const udp = clean.get(8) ?? (await capture(8)).ts;
  const client = await RtspClient.connect({ port });
  try {
    t.is((await client.setup('/four.ts/track1', 'RTP/AVP/TCP;unicast;interleaved=0-1')).status, 200);
    const play = await client.play('/four.ts', 'npt=0-', { headers: { Scale: '8' } });
    t.is(play.headers.get('scale'), '8');
    const bye = (): boolean => client.frames.filter((f) => f.channel === 1).flatMap((f) => parseCompound(f.payload)).some((p) => p.type === RTCP_BYE);
    const deadline = Date.now() + 15_000;
    while (!bye() && Date.now() < deadline) await sleep(50);
    t.true(bye(), 'BYE at the end');
    const ts = Buffer.concat(client.frames.filter((f) => f.channel === 0).map((f) => parseRtpPacket(f.payload).payload));
    t.true(ts.equals(udp), `interleaved ${ts.length} bytes, UDP RTP payloads ${udp.length} bytes`);
    await client.teardown('/four.ts');
  } finally {
    await client.release();
  }
});

test.serial('Scale: 1 during trick play returns to normal play from a key frame', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    t.is((await client.setup('/four.ts/track1', receiver.transportHeader())).status, 200);
    t.is((await client.play('/four.ts', 'npt=0-', { headers: { Scale: '4' } })).headers.get('scale'), '4');
    await sleep(300);
    const normal = await client.play('/four.ts', undefined, { headers: { Scale: '1' } });
    t.is(normal.status, 200);
    t.is(normal.headers.get('scale'), '1');
    const start = parseRange(normal.headers.get('range')!).start as number;
    t.true(meta.randomAccess.some((k) => Math.abs(k.ticks / 90_000 - start) < 0.001), `normal play resumes at a key frame (npt ${start})`);
    await waitForBye(receiver);
    const file = path.join(tmp, 'scale1.ts');
    await fs.writeFile(file, receiver.tsPayload());
    const probed = JSON.parse(await runToString(['ffprobe', '-v', 'error', '-show_entries', 'frame=pict_type', '-of', 'json', file])) as { frames: Array<{ pict_type: string }> };
    t.true(probed.frames.some((f) => f.pict_type !== 'I'), 'after Scale: 1 the P and B pictures come too');
    await client.teardown('/four.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

test.serial('an unsupported Scale is 456 Header Field Not Valid for Resource; a malformed one 400', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    t.is((await client.setup('/four.ts/track1', receiver.transportHeader())).status, 200);
    for (const scale of ['3', '0.5', '32', '-1']) {
      t.is((await client.play('/four.ts', 'npt=0-', { headers: { Scale: scale } })).status, 456, `Scale: ${scale}`);
    }
    t.is((await client.play('/four.ts', 'npt=0-', { headers: { Scale: 'fast' } })).status, 400);
    t.is((await client.play('/four.ts', 'npt=0-')).headers.get('scale'), undefined, 'no Scale asked, none answered');
    await client.teardown('/four.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

leakCheck(test);
