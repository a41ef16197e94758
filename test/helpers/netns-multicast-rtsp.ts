// Run inside a test's network namespace (ip netns exec <ns> node netns-multicast-rtsp.js),
// whose loopback is up with 224.0.0.0/4 routed to it: a twinframe server sends
// an engine session to a multicast group (a running broadcast, as the broadcast
// table would start it), an RTSP server is given a BroadcastLookup over it, and
// ffmpeg plays rtsp://…/broadcast/news with -rtsp_transport udp_multicast.
// Prints the outcome as JSON.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BroadcastStream } from '../../src/broadcast/lookup.js';
import { toEngineAsset } from '../../src/engine/asset.js';
import { EngineRtspBackend } from '../../src/rtsp-backend.js';
import { RtspServer } from '../../src/rtsp/server.js';
import { startFileServer } from './media-server.js';
import { runToString, start } from './run.js';

export interface MulticastRtspOutcome {
  readonly exitCode: number | null;
  /** ffmpeg's requests and the statuses they got, in order. */
  readonly replies: string[];
  readonly damage: string[];
  readonly video: number;
  /** Packets ffmpeg demuxed that do not continue a run of the asset's own packets (by size and MD5). */
  readonly notInAsset: number;
  readonly viewersAfter: ReadonlyArray<{ id: string; broadcast: string }>;
  readonly sessionsAfter: number;
  readonly broadcastSent: number;
  readonly ffmpegLog: string;
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

const tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-mcast-'));
const server = await startFileServer(ASSETS, tmp);
let rtsp: RtspServer | undefined;
try {
  const asset = await server.catalog.resolve('/sample.ts');
  const session = await server.engine.openSession({
    asset: toEngineAsset({ ...asset, assetPath: asset.path }), assetName: asset.name,
    destination: { address: GROUP, port: PORT }, transport: 'rtp', source: '127.0.0.1', multicast: { ttl: 1 },
  });
  await server.engine.play(session.id);
  const news: BroadcastStream = { name: 'news', assetName: '/sample.ts', destination: { address: GROUP, port: PORT }, ttl: 1, transport: 'rtp', sessionId: session.id };
  const replies: string[] = [];
  rtsp = new RtspServer({
    backend: new EngineRtspBackend(server.engine, server.catalog), port: 0,
    broadcasts: { find: (name) => (name === 'news' ? news : undefined) },
    onReply: (method, status) => replies.push(`${method} ${status}`),
  });
  await rtsp.listen();
  const reference = parseFramemd5(await runToString(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', path.join(ASSETS, 'sample.ts'), '-map', '0', '-c', 'copy', '-f', 'framemd5', '-']));
  const out = path.join(tmp, 'out.md5');
  const ffmpeg = start(['ffmpeg', '-hide_banner', '-nostdin', '-y', '-loglevel', 'debug', '-rtsp_transport', 'udp_multicast',
    '-i', `rtsp://127.0.0.1:${rtsp.port}/broadcast/news`, '-t', '3', '-map', '0', '-c', 'copy', '-f', 'framemd5', out], 40_000);
  const result = await ffmpeg.done;
  const received = await readFile(out, 'utf8').then(parseFramemd5, () => []);
  const outcome: MulticastRtspOutcome = {
    exitCode: result.code,
    replies,
    damage: result.stderr.split('\n').filter((line) => DAMAGE.some((re) => re.test(line))),
    video: received.filter((e) => e.stream === 0).length,
    notInAsset: countNotInAsset(received, reference),
    viewersAfter: rtsp.broadcastViewers(),
    sessionsAfter: server.engine.listSessions().length,
    broadcastSent: server.engine.getSession(session.id)?.sent ?? 0,
    ffmpegLog: result.stderr.slice(-6000),
  };
  process.stdout.write(JSON.stringify(outcome));
} finally {
  await rtsp?.close();
  await server.close();
  await rm(tmp, { recursive: true, force: true });
}
