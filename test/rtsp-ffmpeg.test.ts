// ffmpeg as a real third-party client of the RTSP front end, healthy and
// across a failover of every fault kind that fails a path (the server runs with fault injection),
// over UDP and over TCP (RTP interleaved on the RTSP connection).
//
// How "the TS packets ffmpeg received are the asset's" is checked. ffmpeg has
// no way to hand out the raw TS bytes an RTSP session delivered: for MP2T it
// always feeds them to its own TS demuxer (rtpdec_mpegts / ff_mpegts_parse_packet,
// also for RAW/RAW/UDP), and anything it writes (`-c copy -f mpegts`, or
// `-f rtp_mpegts`) is a remux with new PAT/PMT, PCR, PES headers and continuity
// counters. So two runs per case, side by side on the same server:
//
// 1. ffmpeg is the whole RTSP client (OPTIONS, DESCRIBE, SETUP with RTP/AVP over
//    UDP, PLAY, keep-alive, TEARDOWN), run as the issue says,
//      ffmpeg -rtsp_transport udp -i rtsp://…/sample.ts -t 3 -map 0 -c copy -f mpegts out.ts
//    plus a second output of the same input, `-f framemd5`: one line per
//    elementary-stream packet its TS demuxer reassembled from the received TS
//    packets (stream, dts, pts, duration, size, MD5 of the bytes). The same ffmpeg
//    run on the asset file gives the reference; the received list must be exactly
//    its prefix. Every payload byte of every PES-carrying TS packet is inside
//    one of those hashes, and a lost, duplicated or damaged TS packet also makes
//    the TS demuxer log "Continuity check failed" (at -loglevel debug) and flag
//    the packet corrupt, which its stderr is checked for, with RTP loss and
//    reordering warnings. out.ts (the remux) must hold the same packets.
// 2. ffmpeg is the receiver of a raw MPEG-TS session (MP2T/H2221/UDP, set up by
//    the test's RTSP client): `-f mpegtsraw -i udp://… -c copy -f data raw.ts`
//    writes every received 188-byte TS packet as it arrived (checked: run on
//    the asset file it reproduces the file byte for byte), so raw.ts must be the
//    asset's bytes from the first packet on, byte for byte; PSI, PCR, null
//    packets and continuity counters included.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { FailureFaultKinds, type FailureFaultKind } from '../src/shared/commands.js';
import type { TwinframeServer } from '../src/server.js';
import { sleep, waitForRecovery } from './helpers/engine-fixture.js';
import { RtspClient } from './helpers/rtsp-client.js';
import { runToString, start, type Run } from './helpers/run.js';
import type { FailoverEvent, HandoverEvent } from '../src/engine/engine.js';
import { leakCheck } from './helpers/leak-check.js';
import { startFileServer } from './helpers/media-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ASSET = path.join(ROOT, 'assets/sample.ts');
const FFMPEG = 'ffmpeg';
/** Seconds of media each ffmpeg RTSP client records. */
const SECONDS = 3;
/** The raw receiver ends this long after the last datagram. */
const RAW_QUIET_US = 1_000_000;

/** What ffmpeg's log must never say about a stream it received. */
const DAMAGE = [
  /Continuity check failed/i, // TS demuxer: a TS packet lost, duplicated or out of order
  /corrupt (input )?packet/i, // a PES packet flagged corrupt (ffmpeg CLI)
  /Packet corrupt/i, // the same, from the TS demuxer
  /PES packet size mismatch/i,
  /RTP: missed \d+ packets/i, // RTP demuxer: sequence gap
  /bad cseq/i,
  /dropping old packet/i, // reordered beyond the jitter buffer
  /jitter buffer full/i,
  /max delay reached/i,
  /Invalid data found/i,
];

interface Md5Entry {
  readonly stream: number;
  readonly dts: number;
  readonly pts: number;
  readonly duration: number;
  readonly size: number;
  readonly hash: string;
}

let server: TwinframeServer;
let port: number;
let tmp: string;
let asset: Buffer;
let reference: Md5Entry[];

test.before(async () => {
  const probe = spawnSync(FFMPEG, ['-hide_banner', '-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`ffmpeg is required by these tests and was not found (${probe.error?.message ?? `exit ${probe.status}`}): apt-get install ffmpeg`);
  }
  tmp = await fs.mkdtemp(path.join(tmpdir(), 'twinframe-ffmpeg-'));
  asset = await fs.readFile(ASSET);
  reference = parseFramemd5(await runToString([FFMPEG, '-hide_banner', '-loglevel', 'error', '-i', ASSET, '-map', '0', '-c', 'copy', '-f', 'framemd5', '-']));
  server = await startFileServer(path.join(ROOT, 'assets'), tmp, { admin: { faultInjection: true } });
  port = server.rtsp.port;
});

test.after.always(async () => {
  await server?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

test.serial('the mpegtsraw + data dump used below reproduces a TS file byte for byte', async (t) => {
  const out = path.join(tmp, 'self-check.ts');
  await runToString([FFMPEG, '-hide_banner', '-loglevel', 'error', '-y', '-f', 'mpegtsraw', '-i', ASSET, '-map', '0', '-c', 'copy', '-f', 'data', out]);
  t.is(sha256(await fs.readFile(out)), sha256(asset));
});

for (const kind of [undefined, ...FailureFaultKinds] as Array<FailureFaultKind | undefined>) {
  const title = kind === undefined
    ? 'ffmpeg receives the asset exactly, as RTSP client over RTP and as raw MPEG-TS receiver, and logs no damage'
    : `ffmpeg still receives the asset exactly when a ${kind} fault fails the active data path over mid-stream`;
  test.serial(title, async (t) => {
    const dir = await fs.mkdtemp(path.join(tmp, `${kind ?? 'healthy'}-`));
    const failovers: FailoverEvent[] = [];
    // A hung sender is handed over from by its standby first, then failed: it was the active path all the same.
    // (The two events come from different threads: judged once both have arrived, at the end.)
    const handedOver = new Set<string>();
    const onHandover = (h: HandoverEvent): void => { handedOver.add(h.from); };
    const onFailover = (e: FailoverEvent): void => { failovers.push(e); };
    const described = (): string => failovers.map((f) => `${f.pathName}:${f.cause}${f.wasActive || handedOver.has(f.pathName) ? ':active' : ''}`).join(', ');
    server.engine.on('handover', onHandover);
    server.engine.on('failover', onFailover);
    const rawPort = await freeUdpPort();
    const control = await RtspClient.connect({ port });
    let raw: Run | undefined;
    let client: Run | undefined;
    try {
      t.is((await control.setup('/sample.ts', `MP2T/H2221/UDP;unicast;client_port=${rawPort}`)).status, 200);
      raw = ffmpeg([
        '-f', 'mpegtsraw',
        '-i', `udp://127.0.0.1:${rawPort}?timeout=${RAW_QUIET_US}&buffer_size=4194304&fifo_size=100000&overrun_nonfatal=0`,
        '-map', '0', '-c', 'copy', '-f', 'data', path.join(dir, 'raw.ts'),
      ], 25_000);
      // PLAY only once ffmpeg listens: a datagram sent before would be lost to it. (ffmpeg can take
      // seconds to start on a busy machine.)
      await waitUntilBound(rawPort, 15_000);
      t.is((await control.play('/sample.ts')).status, 200);
      client = ffmpeg([
        '-rtsp_transport', 'udp', '-i', `rtsp://127.0.0.1:${port}/sample.ts`,
        '-t', String(SECONDS), '-map', '0', '-c', 'copy', '-f', 'mpegts', path.join(dir, 'out.ts'),
        '-t', String(SECONDS), '-map', '0', '-c', 'copy', '-f', 'framemd5', path.join(dir, 'out.md5'),
      ], 30_000);
      await waitFor(() => server.rtsp.sessions().filter((s) => s.state === 'playing').length === 2, 10_000, 'ffmpeg to PLAY');

      if (kind !== undefined) {
        await sleep(1200);
        const before = server.engine.status();
        server.engine.injectFault(before.active!, kind);
        await waitForRecovery(server.engine, before.switches);
        t.not(server.engine.status().active, before.active, 'sending moved to the other data path');
      }

      const result = await client.done;
      t.is(result.code, 0, result.stderr.slice(-2000));
      await waitFor(() => server.rtsp.sessions().length === 1, 5000, 'ffmpeg to TEARDOWN');
      t.is((await control.teardown('/sample.ts')).status, 200);
      const rawResult = await raw.done;

      // 1. ffmpeg as the RTSP client: the elementary-stream packets it demuxed are the asset's.
      const damage = result.stderr.split('\n').filter((line) => DAMAGE.some((re) => re.test(line)));
      t.deepEqual(damage, [], 'no continuity, corruption or RTP loss warnings');
      const received = parseFramemd5(await fs.readFile(path.join(dir, 'out.md5'), 'utf8'));
      assertPrefixOfReference(t, received, `failovers: [${described()}]`);
      const remuxed = parseFramemd5(await runToString([FFMPEG, '-hide_banner', '-loglevel', 'error', '-i', path.join(dir, 'out.ts'), '-map', '0', '-c', 'copy', '-f', 'framemd5', '-']));
      t.deepEqual(remuxed.map(contentKey), received.map(contentKey), 'out.ts holds exactly the packets ffmpeg received');

      // 2. ffmpeg as the raw receiver: the TS packets it got are the asset's, byte for byte.
      const rawBytes = await fs.readFile(path.join(dir, 'raw.ts'));
      t.true(rawBytes.length >= 188 * 7 * 200, `raw dump holds ${rawBytes.length} bytes (${rawResult.stderr.slice(-500)})`);
      t.is(rawBytes.length % 188, 0);
      t.is(sha256(rawBytes), sha256(asset.subarray(0, rawBytes.length)), `raw TS bytes are the asset's; failovers: [${described()}]`);
      if (kind !== undefined) t.true(described().includes(':active'), `a failover of the active path happened: [${described()}]`);
    } finally {
      server.engine.off('failover', onFailover);
      server.engine.off('handover', onHandover);
      client?.kill();
      raw?.kill();
      // Both children gone before the next test (and the file's leak check) starts.
      await Promise.all([client?.done, raw?.done]);
      await control.release();
      for (const s of server.rtsp.sessions()) server.engine.closeSession(s.id);
    }
  });
}

// ffmpeg over TCP (RTP interleaved on the RTSP connection, RFC 2326 §10.12), as a viewer
// behind NAT plays: the same checks as case 1 above, healthy and across every fault kind.
for (const kind of [undefined, ...FailureFaultKinds] as Array<FailureFaultKind | undefined>) {
  const title = kind === undefined
    ? 'ffmpeg over TCP (-rtsp_transport tcp) receives the asset exactly and logs no damage'
    : `ffmpeg over TCP still receives the asset exactly when a ${kind} fault fails the active data path over mid-stream`;
  test.serial(title, async (t) => {
    const dir = await fs.mkdtemp(path.join(tmp, `tcp-${kind ?? 'healthy'}-`));
    let client: Run | undefined;
    try {
      const before = server.engine.status();
      client = ffmpeg([
        '-rtsp_transport', 'tcp', '-i', `rtsp://127.0.0.1:${port}/sample.ts`,
        '-t', String(SECONDS), '-map', '0', '-c', 'copy', '-f', 'framemd5', path.join(dir, 'out.md5'),
      ], 30_000);
      await waitFor(() => server.rtsp.sessions().some((s) => s.state === 'playing'), 10_000, 'ffmpeg to PLAY');
      if (kind !== undefined) {
        await sleep(1200);
        server.engine.injectFault(server.engine.status().active!, kind);
        await waitForRecovery(server.engine, before.switches);
        t.true(server.engine.status().switches > before.switches, 'sending moved to the other data path');
      }
      const result = await client.done;
      t.is(result.code, 0, result.stderr.slice(-2000));
      const damage = result.stderr.split('\n').filter((line) => DAMAGE.some((re) => re.test(line)));
      t.deepEqual(damage, [], 'no continuity, corruption or RTP loss warnings');
      assertPrefixOfReference(t, parseFramemd5(await fs.readFile(path.join(dir, 'out.md5'), 'utf8')), `over TCP, fault ${kind ?? 'none'}`);
    } finally {
      client?.kill();
      await client?.done;
      for (const s of server.rtsp.sessions()) server.engine.closeSession(s.id);
    }
  });
}

// ── helpers ──────────────────────────────────────────────────────────────────

/** Per stream, the received packets must be the reference's first ones, in order, complete. */
function assertPrefixOfReference(t: ExecutionContext, received: readonly Md5Entry[], context: string): void {
  for (const stream of [0, 1]) {
    const got = received.filter((e) => e.stream === stream);
    const want = reference.filter((e) => e.stream === stream).slice(0, got.length);
    t.true(got.length >= (stream === 0 ? 25 * (SECONDS - 1) : 40), `stream ${stream}: ${got.length} packets`);
    const firstDiff = got.findIndex((e, i) => contentKey(e) !== contentKey(want[i]) || e.dts !== want[i].dts || e.pts !== want[i].pts);
    t.is(firstDiff, -1, `stream ${stream}: packet ${firstDiff} differs: ${JSON.stringify(got[firstDiff])} vs ${JSON.stringify(want[firstDiff])}; ${context}`);
  }
}

function contentKey(e: Md5Entry): string {
  return `${e.stream}/${e.size}/${e.hash}`;
}

/** framemd5 lines: stream, dts, pts, duration, size, hash[, side data…]. */
function parseFramemd5(text: string): Md5Entry[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((line) => {
    const f = line.split(',').map((s) => s.trim());
    return { stream: Number(f[0]), dts: Number(f[1]), pts: Number(f[2]), duration: Number(f[3]), size: Number(f[4]), hash: f[5] };
  });
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Start ffmpeg at debug log level, SIGKILLed after `limitMs` whatever happens. */
function ffmpeg(args: string[], limitMs: number): Run {
  return start([FFMPEG, '-hide_banner', '-nostdin', '-y', '-loglevel', 'debug', ...args], limitMs);
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const p = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return p;
}

/** ffmpeg binds its UDP input without SO_REUSEADDR: once an exclusive bind fails, it listens. */
async function waitUntilBound(udpPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const taken = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      s.once('error', () => { s.close(); resolve(true); });
      s.bind(udpPort, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (taken) return;
    if (Date.now() > deadline) throw new Error(`ffmpeg did not bind udp port ${udpPort} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

leakCheck(test);
