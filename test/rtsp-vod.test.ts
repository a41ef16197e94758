// VOD control as players see it, with real clients: ffmpeg's -ss seek, a
// range npt=a-b captured and decoded by ffmpeg, the SDP's duration against the
// asset's last frame, and GStreamer (rtspsrc) decoding every frame of an asset.
//
// The asset is made here as scripts/make-sample-asset.sh makes the sample (same
// encoder settings: 25 frames/s, B pictures), 6 s long so that whole-asset
// captures take seconds, with a key frame every 2 s so that a start one GOP
// early or late shows. ffmpeg's muxer presents each
// picture ~0.78 s after it sends it, which is what made GStreamer drop the
// last frames while the announced range ended at the last packet's send time.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { TS_PACKET_BYTES, packetPcr } from '../src/mpegts/packet.js';
import { parseRange } from '../src/rtsp/headers/range.js';
import { RTCP_BYE } from '../src/rtsp/rtcp.js';
import type { TwinframeServer } from '../src/server.js';
import { sleep } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { startFileServer } from './helpers/media-server.js';
import { parseCompound } from './helpers/rtcp.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { runToString } from './helpers/run.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAKE_ASSET = path.join(ROOT, 'scripts/make-sample-asset.sh');
const SECONDS = 6;
const FPS = 25;
const FRAME = 1 / FPS;

let tmp: string;
let assetFile: string;
let server: TwinframeServer;
let port: number;
/** The asset's video packets in stream order, as ffprobe reads the file. */
let video: Array<{ pts: number; key: boolean }>;
/** PTS of the first key frame: media time 0. */
let origin: number;

function need(command: string, args: string[], pkg: string): void {
  const probe = spawnSync(command, args, { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(`${command} is required by these tests and was not found: apt-get install ${pkg}`);
}

/** Video packets (stream order) of a TS file: pts in seconds and the key flag. */
async function videoPackets(file: string): Promise<Array<{ pts: number; key: boolean }>> {
  const json = await runToString(['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file]);
  const { packets } = JSON.parse(json) as { packets: Array<{ pts_time: string; flags: string }> };
  return packets.map((p) => ({ pts: Number(p.pts_time), key: p.flags.startsWith('K') }));
}

/** The decoded pictures' presentation times (seconds, sorted); rejects if ffmpeg reports any decoding error. */
async function decodedFrames(file: string): Promise<number[]> {
  const errors = await runToString(['ffmpeg', '-hide_banner', '-v', 'error', '-i', file, '-map', '0:v', '-f', 'null', '-']).catch((err: Error) => err.message);
  if (errors.trim() !== '') throw new Error(`ffmpeg reports decoding errors: ${errors.slice(0, 2000)}`);
  const json = await runToString(['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'json', file]);
  const { frames } = JSON.parse(json) as { frames: Array<{ pts_time: string }> };
  return frames.map((f) => Number(f.pts_time)).sort((a, b) => a - b);
}

test.before(async () => {
  need('ffmpeg', ['-version'], 'ffmpeg');
  need('ffprobe', ['-version'], 'ffmpeg');
  need('gst-launch-1.0', ['--version'], 'gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav');
  tmp = await fs.mkdtemp(path.join(tmpdir(), 'twinframe-vod-'));
  await fs.mkdir(path.join(tmp, 'media'));
  assetFile = path.join(tmp, 'media', 'six.ts');
  await runToString(['env', `DURATION=${SECONDS}`, `GOP=${2 * FPS}`, MAKE_ASSET, assetFile], 60_000);
  video = await videoPackets(assetFile);
  origin = video.find((p) => p.key)!.pts;
  server = await startFileServer(path.join(tmp, 'media'), tmp);
  port = server.rtsp.port;
});

test.after.always(async () => {
  await server?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

test.serial('the SDP range covers the presentation of the asset\'s last frame', async (t) => {
  const client = await RtspClient.connect({ port });
  try {
    const describe = await client.describe('/six.ts');
    t.is(describe.status, 200);
    const line = /^a=range:(.*)\r$/m.exec(describe.body.toString('utf8'))![1];
    const announced = parseRange(line).end as number;
    // npt 0 is the first packet's send time, its PCR (the first PCR, within a few packets of it).
    const bytes = await fs.readFile(assetFile);
    let firstPcr = -1;
    for (let o = 0; firstPcr < 0 && o < bytes.length; o += TS_PACKET_BYTES) firstPcr = packetPcr(bytes, o);
    const lastShown = Math.max(...video.map((p) => p.pts)) + FRAME;
    const needed = lastShown - firstPcr / 27e6;
    t.true(announced >= needed - 0.002, `a=range ends at ${announced} s; the last frame is shown until ${needed.toFixed(3)} s after the first packet`);
    t.true(announced <= needed + 0.1, `and not much later (${announced} s)`);
  } finally {
    await client.release();
  }
});

test.serial('GStreamer (rtspsrc) decodes every frame of the asset', async (t) => {
  const out = await runToString([
    'gst-launch-1.0', '-v', 'rtspsrc', `location=rtsp://127.0.0.1:${port}/six.ts`, 'protocols=udp',
    '!', 'rtpmp2tdepay', '!', 'tsdemux', '!', 'h264parse', '!', 'avdec_h264', '!', 'fakesink', 'silent=false',
  ], 30_000);
  t.true(out.includes('Got EOS'), 'the BYE at the end ends the pipeline');
  const frames = out.split('\n').filter((l) => l.includes('(fakesink0:sink) (')).length;
  t.is(frames, video.length, `GStreamer decoded ${frames} of the asset's ${video.length} pictures`);
});

test.serial('ffmpeg -ss 4 starts on the key frame at 4 s', async (t) => {
  // ffmpeg asks for npt = 4 + the stream's start time (the inner TS's first PTS, 1.48 s) − 0.13 s
  // (its margin for B pictures): npt=5.350-, whose key frame is the one at 4 s.
  // -copypriorss 1: ffmpeg keeps what arrives before the time it wants, so a start a GOP early would show.
  const hashes = async (input: string[]): Promise<string[]> => (await runToString([
    'ffmpeg', '-hide_banner', '-v', 'error', ...input, '-map', '0:v', '-c', 'copy', '-copypriorss', '1', '-f', 'framemd5', '-',
  ], 30_000)).split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(',')[5].trim()); // stream, dts, pts, duration, size, hash[, side data]
  const asset = await hashes(['-i', assetFile]);
  const key4 = video.findIndex((p) => p.key && Math.abs(p.pts - origin - 4) < 0.001);
  t.true(key4 > 0, 'the asset has a key frame at 4 s');
  const got = await hashes(['-rtsp_transport', 'udp', '-ss', '4', '-i', `rtsp://127.0.0.1:${port}/six.ts`, '-frames:v', '10']);
  t.true(got.length > 0, 'ffmpeg received pictures');
  t.is(asset.indexOf(got[0]), key4, 'the first picture ffmpeg gets is the key frame at 4 s, byte for byte');
  t.deepEqual(got, asset.slice(key4, key4 + got.length), 'and the pictures after it, in order');
});

test.serial('a capture of PLAY npt=2-4 decodes to the frames from the key frame at 2 s up to 4 s', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    t.is((await client.setup('/six.ts/track1', receiver.transportHeader())).status, 200);
    const play = await client.play('/six.ts', 'npt=2-4');
    t.is(play.status, 200);
    const deadline = Date.now() + 10_000;
    const hasBye = (): boolean => receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data)).some((p) => p.type === RTCP_BYE);
    while (!hasBye() && Date.now() < deadline) await sleep(50);
    t.true(hasBye(), 'BYE at the end of the range');
    await receiver.waitForQuiet(150, 5000);
    const capture = path.join(tmp, 'range.ts');
    await fs.writeFile(capture, receiver.tsPayload());
    const media = (await decodedFrames(capture)).map((pts) => Math.round((pts - origin) * FPS));
    const wanted = Array.from({ length: 2 * FPS + 1 }, (_, i) => 2 * FPS + i); // frames 50 (2 s) to 100 (4 s)
    t.deepEqual(media.filter((f) => f <= 4 * FPS), wanted, 'every frame from the key frame at 2 s to the one at 4 s, in order');
    // Pictures sent before the last ones shown by 4 s (their B pictures' references) are decoded too: at most one mini-GOP.
    t.true(media.every((f) => f <= 4 * FPS + 4), `nothing beyond the references of the last pictures (last frame ${media.at(-1)! / FPS} s)`);
    await client.teardown('/six.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

leakCheck(test);
