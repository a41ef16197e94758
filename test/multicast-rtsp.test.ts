// RTSP viewers of broadcasts (issue 16, item 3): rtsp://host/broadcast/<name>
// through the BroadcastLookup the RTSP server is given. What the protocol
// answers runs anywhere (no datagram is sent: the multicast broadcast here is
// scheduled, not running); ffmpeg and GStreamer playing a running broadcast
// through RTSP multicast SETUP run in a network namespace the test makes and removes.

import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BroadcastStream } from '../src/broadcast/lookup.js';
import { EngineRtspBackend } from '../src/rtsp-backend.js';
import { RtspServer } from '../src/rtsp/server.js';
import type { TwinframeServer } from '../src/server.js';
import { startFileServer } from './helpers/media-server.js';
import type { MulticastRtspOutcome } from './helpers/netns-multicast-rtsp.js';
import { netnsUnavailable } from './helpers/netns.js';
import { multicastNamespace } from './helpers/netns-multicast.js';
import { RtspClient } from './helpers/rtsp-client.js';
import { isGstreamerLateWrite } from './helpers/run.js';
import { leakCheck } from './helpers/leak-check.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const ASSETS = path.resolve(here, '../../assets');

const broadcasts = new Map<string, BroadcastStream>([
  ['evening', { name: 'evening', assetName: '/sample.ts', destination: { address: '239.255.16.9', port: 5004 }, ttl: 3, transport: 'rtp', sessionId: undefined, status: 'scheduled' }],
  ['push', { name: 'push', assetName: '/sample.ts', destination: { address: '127.0.0.1', port: 5006 }, ttl: 1, transport: 'rtp', sessionId: undefined, status: 'scheduled' }],
]);

let server: TwinframeServer;
let rtsp: RtspServer;
let tmp: string;

test.before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-mcast-rtsp-'));
  server = await startFileServer(ASSETS, tmp);
  rtsp = new RtspServer({ backend: new EngineRtspBackend(server.engine, server.catalog), port: 0, broadcasts: { find: (name) => broadcasts.get(name) } });
  await rtsp.listen();
});

test.after.always(async () => {
  await rtsp?.close();
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test.serial('a multicast broadcast: DESCRIBE names its group, a unicast SETUP gets 461 with the group offered, a multicast SETUP joins with no data-path work, TEARDOWN leaves', async (t) => {
  const client = await RtspClient.connect({ port: rtsp.port });
  try {
    const described = await client.describe('/broadcast/evening');
    t.is(described.status, 200);
    const sdp = described.body.toString();
    t.regex(sdp, /^c=IN IP4 239\.255\.16\.9\/3\r$/m);
    t.regex(sdp, /^m=video 5004 RTP\/AVP 33\r$/m);
    t.regex(sdp, /^a=range:npt=now-\r$/m);
    t.regex(sdp, /^a=rtpmap:33 MP2T\/90000\r$/m);
    t.regex(sdp, /^b=AS:[0-9]+\r$/m);
    t.is(described.headers.get('content-base'), `rtsp://127.0.0.1:${rtsp.port}/broadcast/evening/`);

    const unicast = await client.setup('/broadcast/evening/track1', 'RTP/AVP;unicast;client_port=5000-5001');
    t.is(unicast.status, 461);
    t.is(unicast.headers.get('transport'), 'RTP/AVP;multicast;destination=239.255.16.9;ttl=3;port=5004-5005', 'the group is offered');
    t.is(client.session, undefined);

    const joined = await client.setup('/broadcast/evening/track1', 'RTP/AVP/UDP;unicast;client_port=5000-5001,RTP/AVP/UDP;multicast');
    t.is(joined.status, 200);
    t.is(joined.headers.get('transport'), 'RTP/AVP/UDP;multicast;destination=239.255.16.9;ttl=3;port=5004-5005');
    t.regex(joined.headers.get('session') ?? '', /^[0-9a-f]{16};timeout=60$/);
    t.deepEqual(rtsp.broadcastViewers().map((v) => v.broadcast), ['evening']);
    t.deepEqual(server.engine.listSessions(), [], 'a viewer costs the data paths nothing');
    t.deepEqual(rtsp.sessions(), []);

    t.is((await client.request('GET_PARAMETER', '/broadcast/evening')).status, 200, 'keep-alive');
    t.is((await client.options('*')).status, 200, 'keep-alive by OPTIONS');
    const play = await client.play('/broadcast/evening');
    t.is(play.status, 503, 'a scheduled broadcast is not running yet');
    t.is((await client.teardown('/broadcast/evening')).status, 200);
    t.deepEqual(rtsp.broadcastViewers(), []);
    t.is((await client.request('GET_PARAMETER', '/broadcast/evening')).status, 454, 'the handle is gone');
  } finally {
    await client.close();
  }
});

test.serial('a unicast broadcast has nothing to join (405), an unknown one is 404, a VOD SETUP with multicast stays 461, a server without broadcasts answers 404', async (t) => {
  const client = await RtspClient.connect({ port: rtsp.port });
  const plain = await RtspClient.connect({ port: server.rtsp.port });
  try {
    const push = await client.describe('/broadcast/push');
    t.is(push.status, 405);
    t.is(push.headers.get('allow'), 'OPTIONS');
    t.is(push.body.toString(), 'broadcast push is a unicast push to 127.0.0.1:5006: there is no group to join\r\n', 'the reason, for the player to show');
    t.is((await client.setup('/broadcast/push/track1', 'RTP/AVP;multicast')).status, 405);
    t.is((await client.describe('/broadcast/nope')).status, 404);
    t.is((await client.setup('/broadcast/nope/track1', 'RTP/AVP;multicast')).status, 404);
    t.is((await client.setup('/sample.ts/track1', 'RTP/AVP;multicast')).status, 461, 'viewer-chosen multicast is refused');
    t.is((await plain.describe('/broadcast/evening')).status, 404);
    t.deepEqual(rtsp.broadcastViewers(), []);
    t.deepEqual(server.engine.listSessions(), []);
  } finally {
    await client.close();
    await plain.close();
  }
});

test.serial('broadcast handles time out without keep-alives, and one client address holds at most rtsp.maxSessionsPerAddress of them (453)', async (t) => {
  const limited = new RtspServer({
    backend: new EngineRtspBackend(server.engine, server.catalog), port: 0, sessionTimeoutMs: 1000, maxSessionsPerAddress: 2,
    broadcasts: { find: (name) => broadcasts.get(name) },
  });
  await limited.listen();
  const clients = await Promise.all([0, 1, 2].map(() => RtspClient.connect({ port: limited.port })));
  try {
    t.is((await clients[0].setup('/broadcast/evening/track1', 'RTP/AVP;multicast')).status, 200);
    t.is((await clients[1].setup('/broadcast/evening/track1', 'RTP/AVP;multicast')).status, 200);
    t.is((await clients[2].setup('/broadcast/evening/track1', 'RTP/AVP;multicast')).status, 453);
    t.is(limited.broadcastViewers().length, 2);
    // No keep-alive: both handles go after their 1 s timeout (polled, not timed).
    const deadline = Date.now() + 15_000;
    while (limited.broadcastViewers().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(limited.broadcastViewers(), []);
    t.is((await clients[0].play('/broadcast/evening')).status, 454);
    t.is((await clients[2].setup('/broadcast/evening/track1', 'RTP/AVP;multicast')).status, 200, 'room again');
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await limited.close();
  }
});

const unavailable = netnsUnavailable();
const players = [
  { player: 'ffmpeg', title: 'ffmpeg (-rtsp_transport udp_multicast) plays a running multicast broadcast through RTSP multicast SETUP: the packets it demuxes are a run of the asset\'s, with no damage', least: 40 },
  { player: 'gstreamer', title: 'GStreamer (rtspsrc protocols=udp-mcast) plays a running multicast broadcast through RTSP multicast SETUP: the MPEG-TS it depayloads is one piece of the asset, byte for byte', least: 1000 },
];
for (const { player, title, least } of players) {
  (unavailable === undefined ? test.serial : test.serial.skip)(unavailable === undefined ? title : `${title} — SKIPPED, not passed: ${unavailable}`, async (t) => {
    t.timeout(90_000);
    const inNs = await multicastNamespace(t);
    const { stdout } = await run('ip', [...inNs, process.execPath, path.join(here, 'helpers/netns-multicast-rtsp.js'), player], { timeout: 80_000 });
    const r = JSON.parse(stdout) as MulticastRtspOutcome;
    t.log(JSON.stringify({ ...r, log: r.log.slice(-1500) }));
    // GStreamer's own race on its way out (see isGstreamerLateWrite): every other check still holds.
    if (player === 'gstreamer' && isGstreamerLateWrite(r.exitCode, r.log)) t.log('GStreamer ended with its teardown race');
    else t.is(r.exitCode, 0, r.log.slice(-2000));
    t.true(r.replies.every((reply) => reply.endsWith(' 200')), r.replies.join(', '));
    // Keep-alives aside, and the PAUSE GStreamer sends on its way out.
    t.deepEqual(r.replies.filter((reply) => !/^(OPTIONS|GET_PARAMETER|PAUSE) /.test(reply)), ['DESCRIBE 200', 'SETUP 200', 'PLAY 200', 'TEARDOWN 200']);
    t.deepEqual(r.damage, [], 'no continuity, corruption or RTP loss warnings');
    t.true(r.video >= least, `packets received: ${r.video}`);
    t.is(r.notInAsset, 0, 'what the player got is the asset\'s, in the asset\'s order');
    t.deepEqual(r.viewersAfter, [], 'the player\'s TEARDOWN dropped its handle');
    t.true(r.broadcastSent > 0 && r.sessionsAfter === 1, 'the broadcast session went on, alone on the data paths');
  });
}

leakCheck(test);
