// Run inside a test's network namespace (ip netns exec <ns> node netns-multicast-rtsp.js),
// whose loopback is up with 224.0.0.0/4 routed to it: a twinframe server whose
// broadcast table names a looping broadcast to a multicast group starts it, and
// the player named on the command line joins rtsp://…/broadcast/news by RTSP
// multicast SETUP: 'ffmpeg' (-rtsp_transport udp_multicast, 3 s of packets
// demuxed) or 'gstreamer' (rtspsrc protocols=udp-mcast, the MPEG-TS it
// depayloads for 3 s, then an interrupt: EOS and TEARDOWN). Prints the outcome as JSON.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { runToString, start } from './run.js';

export interface MulticastRtspOutcome {
  readonly player: string;
  readonly exitCode: number | null;
  /** ffmpeg's requests and the statuses they got, in order. */
  readonly replies: string[];
  readonly damage: string[];
  /** ffmpeg: video packets demuxed. gstreamer: TS packets depayloaded. */
  readonly video: number;
  /**
   * ffmpeg: packets demuxed that do not continue a run of the asset's own (by size and MD5).
   * gstreamer: 1 unless the MPEG-TS bytes are one contiguous piece of the asset, byte for byte.
   */
  readonly notInAsset: number;
  readonly viewersAfter: ReadonlyArray<{ id: string; broadcast: string }>;
  readonly sessionsAfter: number;
  readonly broadcastSent: number;
  readonly log: string;
}

interface PlayerResult {
  readonly exitCode: number | null;
  readonly log: string;
  readonly video: number;
  readonly notInAsset: number;
}

/** ffmpeg: 3 s of the broadcast, as framemd5 against the asset's own. */
async function playWithFfmpeg(url: string, dir: string): Promise<PlayerResult> {
  const reference = parseFramemd5(await runToString(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', path.join(ASSETS, 'sample.ts'), '-map', '0', '-c', 'copy', '-f', 'framemd5', '-']));
  const out = path.join(dir, 'out.md5');
  const result = await start(['ffmpeg', '-hide_banner', '-nostdin', '-y', '-loglevel', 'debug', '-rtsp_transport', 'udp_multicast',
    '-i', url, '-t', '3', '-map', '0', '-c', 'copy', '-f', 'framemd5', out], 40_000).done;
  const received = await readFile(out, 'utf8').then(parseFramemd5, () => []);
  return { exitCode: result.code, log: result.stderr, video: received.filter((e) => e.stream === 0).length, notInAsset: countNotInAsset(received, reference) };
}

/** GStreamer: the MPEG-TS rtspsrc and rtpmp2tdepay give for 3 s, then SIGINT (-e: EOS, TEARDOWN, exit). */
async function playWithGstreamer(url: string, dir: string): Promise<PlayerResult> {
  const out = path.join(dir, 'out.ts');
  const child = spawn('gst-launch-1.0', ['-e', 'rtspsrc', `location=${url}`, 'protocols=udp-mcast', '!', 'rtpmp2tdepay', '!', 'filesink', `location=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  setTimeout(() => child.kill('SIGINT'), 3000);
  const exitCode = await exited;
  clearTimeout(kill);
  const ts = await readFile(out).catch(() => Buffer.alloc(0));
  const asset = await readFile(path.join(ASSETS, 'sample.ts'));
  // The sample repeats some stretches byte for byte: the capture may begin at any place its first packets occur.
  const head = ts.subarray(0, 188 * 7);
  let exact = false;
  for (let at = ts.length >= 188 && ts.length % 188 === 0 ? asset.indexOf(head) : -1; at >= 0 && !exact; at = asset.indexOf(head, at + 1)) {
    exact = at % 188 === 0 && asset.subarray(at, at + ts.length).equals(ts);
  }
  return { exitCode, log, video: ts.length / 188, notInAsset: exact ? 0 : 1 };
}

const GROUP = '239.255.16.7';
const PORT = 5004;
const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets');
/** What ffmpeg's log must never say about a stream it received (as test/rtsp-ffmpeg.test.ts). */
const DAMAGE = [/Continuity check failed/i, /corrupt (input )?packet/i, /Packet corrupt/i, /PES packet size mismatch/i, /RTP: missed \d+ packets/i, /Invalid data found/i];

interface Md5Entry { readonly stream: number; readonly key: string }

function parseFramemd5(text: string): Md5Entry[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((line) => {
    const f = line.split(',').map((s) => s.trim());
    return { stream: Number(f[0]), key: `${f[4]}/${f[5]}` };
  });
}

/** Per received stream: its packets must be consecutive packets of one reference stream, from wherever the first one is. */
function countNotInAsset(received: readonly Md5Entry[], reference: readonly Md5Entry[]): number {
  let bad = 0;
  for (const stream of new Set(received.map((e) => e.stream))) {
    const got = received.filter((e) => e.stream === stream);
    const at = reference.findIndex((e) => e.key === got[0].key);
    if (at < 0) {
      bad += got.length;
      continue;
    }
    const want = reference.filter((e) => e.stream === reference[at].stream);
    const from = want.findIndex((e) => e.key === got[0].key);
    got.forEach((e, i) => { if (want[from + i]?.key !== e.key) bad++; });
  }
  return bad;
}

const player = process.argv[2] ?? 'ffmpeg';
const tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-mcast-'));
const replies: string[] = [];
// The whole server, its broadcast table naming one looping multicast broadcast: the
// manager starts it and is the RTSP server's BroadcastLookup.
const server = await startServer({
  config: parseConfig({
    media: { mounts: [{ prefix: '', dir: ASSETS }], cacheDir: path.join(tmp, 'cache') },
    admin: { socketPath: path.join(tmp, 'admin.sock') },
    metrics: { listen: '' },
    multicast: { ttl: 1 },
    broadcasts: [{ name: 'news', asset: '/sample.ts', to: `${GROUP}:${PORT}`, loop: true }],
  }),
  configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0, onReply: (method, status) => replies.push(`${method} ${status}`) },
});
const rtsp = server.rtsp;
try {
  const deadline = Date.now() + 20_000;
  while (server.broadcasts.find('news')?.sessionId === undefined) {
    if (Date.now() > deadline) throw new Error('the table\'s broadcast did not start within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const sessionId = server.broadcasts.find('news')!.sessionId!;
  const url = `rtsp://127.0.0.1:${rtsp.port}/broadcast/news`;
  const result = player === 'gstreamer' ? await playWithGstreamer(url, tmp) : await playWithFfmpeg(url, tmp);
  const outcome: MulticastRtspOutcome = {
    player,
    exitCode: result.exitCode,
    replies,
    damage: result.log.split('\n').filter((line) => DAMAGE.some((re) => re.test(line))),
    video: result.video,
    notInAsset: result.notInAsset,
    viewersAfter: rtsp.broadcastViewers(),
    sessionsAfter: server.engine.listSessions().length,
    broadcastSent: server.engine.getSession(sessionId)?.sent ?? 0,
    log: result.log.slice(-6000),
  };
  process.stdout.write(JSON.stringify(outcome));
} finally {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
}
