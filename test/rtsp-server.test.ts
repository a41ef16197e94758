// The RTSP front end end to end: the real server (catalog + engine with both
// data paths + RTSP) answered by the test RtspClient, with every datagram
// received on 127.0.0.1 and held against the asset's bytes and times.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { parseConfig } from '../src/config/schema.js';
import type { FailoverEvent, PlayResult, SessionInfo } from '../src/engine/engine.js';
import { silentLogger } from '../src/log.js';
import { packetPcr } from '../src/mpegts/packet.js';
import { parseRange } from '../src/rtsp/headers/range.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { parseSession } from '../src/rtsp/headers/session.js';
import { parseTransport } from '../src/rtsp/headers/transport.js';
import type { RtspResponse } from './helpers/rtsp-message.js';
import { RTCP_BYE, RTCP_SR } from '../src/rtsp/rtcp.js';
import { parseCompound } from './helpers/rtcp.js';
import { RtspServer, type RtspServerOptions } from '../src/rtsp/server.js';
import { EngineRtspBackend } from '../src/rtsp-backend.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { checkRtpStream, loadSample, sleep, type SampleAsset } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver, type RtpPacket } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { minDatagrams } from './helpers/stream-pacing.js';
import { freeTcpPort } from './helpers/free-port.js';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ASSETS = path.join(ROOT, 'assets');
const SESSION_TIMEOUT_MS = 1500;

let sample: SampleAsset;
let server: TwinframeServer;
let port: number;
let tmp: string;

async function startRtsp(dir: string, rtsp: Partial<Omit<RtspServerOptions, 'backend' | 'logger'>>): Promise<TwinframeServer> {
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: ASSETS }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, `admin-${Math.random().toString(36).slice(2, 8)}.sock`) },
    log: { level: 'silent' },
  });
  return startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0, ...rtsp } });
}

test.before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-rtsp-'));
  sample = await loadSample();
  server = await startRtsp(tmp, { sessionTimeoutMs: SESSION_TIMEOUT_MS });
  port = server.rtsp.port;
  server.engine.on('failover', (e: FailoverEvent) => failovers.push(e));
});

test.after.always(async () => {
  await server?.close();
  await sample?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Wait while keeping the session alive with GET_PARAMETER, as players do. */
async function keepAlive(client: RtspClient, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await sleep(Math.min(400, Math.max(0, until - Date.now())));
    const r = await client.getParameter('/sample.ts');
    if (r.status !== 200) throw new Error(`keep-alive answered ${r.status}`);
  }
}

function rtpInfo(r: RtspResponse): { seq: number; rtptime: number; url: string } {
  const [entry] = parseRtpInfo(r.headers.get('rtp-info') ?? '');
  if (entry?.seq === undefined || entry.rtptime === undefined) throw new Error(`no RTP-Info seq/rtptime in ${r.headers.get('rtp-info')}`);
  return { seq: entry.seq, rtptime: entry.rtptime, url: entry.url };
}

function playOf(r: RtspResponse, startPacket: number): PlayResult {
  const info = rtpInfo(r);
  return { seq: info.seq, rtptime: info.rtptime, startPacket, startTimeMs: 0 };
}

/** Failovers the engine reported during the current test (they are meant to be invisible as well). */
const failovers: FailoverEvent[] = [];
test.beforeEach(() => {
  failovers.length = 0;
});

/**
 * checkRtpStream, with one allowance: after a time with no sending path at all
 * (the active path failed while its partner was still being respawned, which
 * false heartbeat failovers on this busy 2-core box occasionally cause), the
 * engine restarts the stream clock at the cursor rather than burst the backlog,
 * so later RTP timestamps follow the new clock. Only then are timestamps
 * excused; sequence numbers, payloads and SSRC are always held exactly.
 */
function verify(t: ExecutionContext, packets: readonly RtpPacket[], info: SessionInfo, play: PlayResult) {
  const check = checkRtpStream(packets, info, play, sample);
  const unprotected = failovers.filter((f) => f.wasActive && f.switchedToName === undefined);
  if (check.mismatched === 0 || unprotected.length === 0) return check;
  let mismatched = 0;
  let firstMismatch: string | undefined;
  const firstCursor = (play.seq - info.initialSeq) & 0xffff;
  for (const p of packets) {
    const packet = play.startPacket + 7 * (((p.sequence - info.initialSeq) & 0xffff) - firstCursor);
    const expected = sample.bytes.subarray(packet * 188, Math.min(sample.bytes.length, (packet + 7) * 188));
    if (p.payloadType !== 33 || p.ssrc !== info.ssrc || !p.payload.equals(expected)) {
      mismatched++;
      firstMismatch ??= `seq ${p.sequence} (packet ${packet})`;
    }
  }
  t.log(`RTP timestamps not held: the engine had no sending path for a while (${unprotected.map((f) => `${f.pathName}:${f.cause}`).join(', ')}) and restarted the clock`);
  return { ...check, mismatched, firstMismatch };
}

/** The failovers of this test, for assertion messages. */
function during(): string {
  return `failovers meanwhile: [${failovers.map((f) => `${f.pathName}:${f.cause}${f.wasActive ? `→${f.switchedToName ?? 'nobody'}` : ''}`).join(', ')}]`;
}

function clean(check: ReturnType<typeof checkRtpStream>) {
  return { lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched };
}

const NONE = { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 };

/** OPTIONS, DESCRIBE, SETUP (RTP); returns the engine's view of the new session. */
async function setUp(client: RtspClient, receiver: UdpReceiver): Promise<SessionInfo> {
  const setup = await client.setup('/sample.ts/track1', receiver.transportHeader());
  if (setup.status !== 200) throw new Error(`SETUP answered ${setup.status}`);
  const info = server.engine.getSession(client.session!);
  if (!info) throw new Error('the engine has no session for the RTSP session id');
  return info;
}

test.serial('OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE and TEARDOWN stream every datagram of the asset, with sender reports and a BYE', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    const options = await client.options();
    t.is(options.status, 200);
    t.deepEqual(options.headers.get('public')!.split(/,\s*/), ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER']);

    const describe = await client.describe('/sample.ts');
    t.is(describe.status, 200);
    t.is(describe.headers.get('content-type'), 'application/sdp');
    t.is(describe.headers.get('content-base'), `rtsp://127.0.0.1:${port}/sample.ts/`);
    const sdp = describe.body.toString('utf8');
    t.regex(sdp, /^m=video 0 RTP\/AVP 33\r$/m);
    t.regex(sdp, /^a=rtpmap:33 MP2T\/90000\r$/m);
    t.regex(sdp, /^a=control:track1\r$/m);
    t.regex(sdp, new RegExp(`^a=range:npt=0-${(sample.presentationEndMs / 1000).toFixed(3)}\\r$`, 'm'));

    const setup = await client.setup(`rtsp://127.0.0.1:${port}/sample.ts/track1`, receiver.transportHeader());
    t.is(setup.status, 200);
    const session = parseSession(setup.headers.get('session')!);
    t.is(session.timeout, Math.floor(SESSION_TIMEOUT_MS / 1000));
    const [transport] = parseTransport(setup.headers.get('transport')!);
    const info = server.engine.getSession(session.id)!;
    t.truthy(info, 'the RTSP session id is the engine session id');
    t.like(transport, { protocol: 'RTP', profile: 'AVP', delivery: 'unicast', ssrc: info.ssrc });
    t.deepEqual(transport.clientPort, { first: receiver.rtpPort, last: receiver.rtcpPort });
    t.deepEqual(transport.serverPort, { first: info.source.rtpPort, last: info.source.rtcpPort });
    t.is(info.destination.address, '127.0.0.1', 'the destination defaults to the peer address');

    const play = await client.play(`rtsp://127.0.0.1:${port}/sample.ts/`, 'npt=0.000-');
    const playedAt = Date.now();
    t.is(play.status, 200);
    const range = parseRange(play.headers.get('range')!);
    t.is(range.start, 0);
    const { url } = rtpInfo(play);
    t.is(url, `rtsp://127.0.0.1:${port}/sample.ts/track1`, 'RTP-Info names the URL the client set up');
    await keepAlive(client, 1500);
    t.is((await client.pause('/sample.ts')).status, 200);
    const playedMs = Date.now() - playedAt;
    await receiver.waitForQuiet(150, 5000);

    const sent = server.engine.getSession(session.id)!.sent;
    const check = verify(t, receiver.packets, info, playOf(play, 0));
    t.true(receiver.datagrams.length > 300, `received ${receiver.datagrams.length}`);
    t.true(receiver.datagrams.length >= minDatagrams(sample, playedMs), `received ${receiver.datagrams.length} in ${playedMs} ms`);
    t.is(receiver.datagrams.length, sent, `every datagram the engine counted arrived; ${during()}`);
    t.deepEqual(clean(check), NONE, `${check.firstMismatch ?? ''}; ${during()}`);
    t.is(receiver.packets[0].sequence, rtpInfo(play).seq, 'RTP-Info seq is the first datagram');
    t.is(receiver.packets[0].timestamp, rtpInfo(play).rtptime, 'RTP-Info rtptime is the first datagram');

    const reports = receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data));
    const sr = reports.find((p) => p.type === RTCP_SR);
    t.truthy(sr, 'a sender report arrived on the RTCP port');
    t.is(sr!.ssrc, info.ssrc);

    const teardown = await client.teardown('/sample.ts');
    t.is(teardown.status, 200);
    t.deepEqual(server.engine.listSessions(), [], 'the engine freed the session');
    t.deepEqual(server.rtsp.sessions(), []);
    await sleep(100);
    t.true(receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data)).some((p) => p.type === RTCP_BYE && p.ssrc === info.ssrc), 'TEARDOWN says BYE');
    t.is((await client.play('/sample.ts')).status, 454, 'the session is gone');
  } finally {
    await client.release();
    await receiver.close();
  }
});

for (const spec of ['MP2T/H2221/UDP', 'RAW/RAW/UDP']) {
  test.serial(`raw MPEG-TS over UDP (${spec}) delivers the asset's bytes exactly`, async (t) => {
    const client = await RtspClient.connect({ port });
    const receiver = await UdpReceiver.open({ mode: 'udp' });
    try {
      const setup = await client.setup('/sample.ts/track1', `${spec};unicast;client_port=${receiver.rtpPort}`);
      t.is(setup.status, 200);
      const [transport] = parseTransport(setup.headers.get('transport')!);
      t.is(`${transport.protocol}/${transport.profile}/${transport.lowerTransport}`, spec);
      const info = server.engine.getSession(client.session!)!;
      t.deepEqual(transport.serverPort, { first: info.source.rtpPort }, 'one server port: no RTCP for raw TS');
      const play = await client.play('/sample.ts');
      const playedAt = Date.now();
      t.is(play.status, 200);
      t.false(play.headers.has('rtp-info'), 'no RTP, no RTP-Info');
      await keepAlive(client, 800);
      await client.pause('/sample.ts');
      const playedMs = Date.now() - playedAt;
      await receiver.waitForQuiet(150, 5000);
      const got = receiver.tsPayload();
      t.true(receiver.datagrams.length > 150, `received ${receiver.datagrams.length}`);
      t.true(receiver.datagrams.length >= minDatagrams(sample, playedMs), `received ${receiver.datagrams.length} in ${playedMs} ms`);
      t.true(receiver.datagrams.every((d) => d.data.length === 1316), 'seven TS packets per datagram');
      t.is(receiver.datagrams.length, server.engine.getSession(client.session!)!.sent, during());
      t.true(got.equals(sample.bytes.subarray(0, got.length)), `received bytes are the asset from its first packet; ${during()}`);
      t.is((await client.teardown('/sample.ts')).status, 200);
    } finally {
      await client.release();
      await receiver.close();
    }
  });
}

test.serial('PLAY with Range npt=5- starts at the key frame at 5 s (to the millisecond npt carries), with its PCR', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    const info = await setUp(client, receiver);
    // The sample's key frame "at 5 s" is sent 0.3 ms after it: a seek to 5 s must not land a GOP early.
    const rap = [...sample.randomAccess].reverse().find((r) => r.ticks <= 5 * 90_000 + 90)!;
    t.true(Math.abs(rap.ticks - 5 * 90_000) < 90, `the key frame at 5 s (${rap.ticks / 90_000} s)`);
    t.truthy(rap);
    t.true(rap.packet > 0);
    const play = await client.play('/sample.ts', 'npt=5-');
    t.is(play.status, 200);
    const range = parseRange(play.headers.get('range')!);
    t.is(range.start, Number((rap.ticks / 90_000).toFixed(3)), 'Range names the key frame time');
    t.is(range.end, Number((sample.presentationEndMs / 1000).toFixed(3)));
    await keepAlive(client, 600);
    await client.pause('/sample.ts');
    await receiver.waitForQuiet(150, 5000);

    const packets = receiver.packets;
    const first = packets[0];
    t.is(first.sequence, rtpInfo(play).seq);
    t.is(first.timestamp, rtpInfo(play).rtptime);
    t.true(first.payload.equals(sample.bytes.subarray(rap.packet * 188, (rap.packet + 7) * 188)), 'the first datagram is the asset at the key frame');
    // The first PCR the player sees is the asset's own at that place: nothing is restamped.
    const { pcr, packet } = firstPcr(packets.map((p) => p.payload));
    const expected = firstPcrFrom(sample.bytes, rap.packet);
    t.is(pcr, expected.pcr);
    t.is(rap.packet + packet, expected.packet);
    const assetStart = firstPcrFrom(sample.bytes, 0).pcr;
    const seconds = (pcr - assetStart) / 27e6;
    t.true(seconds <= 5.01 && seconds > 5 - 2.5, `first PCR is ${seconds.toFixed(3)} s into the asset`);
    const check = verify(t, packets, info, playOf(play, rap.packet));
    t.deepEqual(clean(check), NONE, `${check.firstMismatch ?? ''}; ${during()}`);
    await client.teardown('/sample.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

test.serial('PAUSE then PLAY resumes at the next datagram with continuous sequence numbers', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    const info = await setUp(client, receiver);
    const play1 = await client.play('/sample.ts');
    await keepAlive(client, 600);
    await client.pause('/sample.ts');
    await receiver.waitForQuiet(150, 5000);
    const before = receiver.packets.length;
    const last = receiver.packets.at(-1)!;
    await sleep(300); // paused: nothing flows
    t.is(receiver.packets.length, before);

    const play2 = await client.play('/sample.ts');
    t.is(play2.status, 200);
    t.is(rtpInfo(play2).seq, (last.sequence + 1) & 0xffff, 'RTP-Info seq continues the sequence');
    await keepAlive(client, 600);
    await client.pause('/sample.ts');
    await receiver.waitForQuiet(150, 5000);

    const packets = receiver.packets;
    t.deepEqual(receiver.stats({ firstSeq: rtpInfo(play1).seq }), { received: packets.length, unique: packets.length, expected: packets.length, lost: 0, duplicated: 0, reordered: 0 });
    // Each play segment carries its own RTP time base; the payloads run on without a gap.
    const firstOfSecond = packets.findIndex((p) => p.sequence === rtpInfo(play2).seq);
    t.is(firstOfSecond, before);
    const check1 = verify(t, packets.slice(0, before), info, playOf(play1, 0));
    const check2 = verify(t, packets.slice(before), info, playOf(play2, 7 * before));
    t.deepEqual(clean(check1), NONE, `${check1.firstMismatch ?? ''}; ${during()}`);
    t.deepEqual(clean(check2), NONE, `${check2.firstMismatch ?? ''}; ${during()}`);
    t.is(parseRange(play2.headers.get('range')!).start, Number((sample.times[7 * before] / 90_000).toFixed(3)), 'Range names where it resumed');
    await client.teardown('/sample.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

test.serial('at the end of the asset the server sends an RTCP BYE, and PLAY starts over', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    const info = await setUp(client, receiver);
    const play = await client.play('/sample.ts', `npt=${(sample.durationMs / 1000 - 0.6).toFixed(3)}-`);
    t.is(play.status, 200);
    const deadline = Date.now() + 4000;
    const hasBye = () => receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data)).some((p) => p.type === RTCP_BYE);
    // This file's session timeout is 1.5 s, shorter than a loaded machine may take to get here:
    // keep the session alive as a player does, or the PLAY below finds it timed out (454).
    let keptAlive = Date.now();
    while (!hasBye() && Date.now() < deadline) {
      await sleep(50);
      if (Date.now() - keptAlive > 400) {
        t.is((await client.getParameter('/sample.ts')).status, 200);
        keptAlive = Date.now();
      }
    }
    t.true(hasBye(), 'BYE at the end of the asset');
    await receiver.waitForQuiet(150, 5000);
    t.is((await client.getParameter('/sample.ts')).status, 200, 'the session outlives the end of its asset');
    const startPacket = [...sample.randomAccess].reverse().find((r) => r.ticks <= (sample.durationMs / 1000 - 0.6) * 90_000)!.packet;
    const check = verify(t, receiver.packets, info, playOf(play, startPacket));
    t.deepEqual(clean(check), NONE, `${check.firstMismatch ?? ''}; ${during()}`);
    t.is(receiver.tsPayload().length, sample.bytes.length - startPacket * 188, 'every packet to the last');
    const again = await client.play('/sample.ts');
    t.is(again.status, 200);
    t.is(parseRange(again.headers.get('range')!).start, 0);
    await client.teardown('/sample.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

test.serial('a session whose client stops sending keep-alives times out and its data-path state is freed', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  const alive = await RtspClient.connect({ port });
  const aliveReceiver = await UdpReceiver.open();
  try {
    await setUp(client, receiver);
    t.is((await client.play('/sample.ts')).status, 200);
    await setUp(alive, aliveReceiver);
    t.is((await alive.play('/sample.ts')).status, 200);
    const doomed = client.session!;
    t.is(server.engine.listSessions().length, 2);
    // One client keeps its session alive, the other goes silent (its connection stays open).
    // Kept alive until the silent one is reaped, however late a loaded machine runs the reaper.
    const silentFrom = Date.now();
    const deadline = silentFrom + 10 * SESSION_TIMEOUT_MS;
    while (server.engine.getSession(doomed) !== undefined && Date.now() < deadline) await keepAlive(alive, 200);
    const reapedAfter = Date.now() - silentFrom;
    t.true(reapedAfter >= SESSION_TIMEOUT_MS - 50, `not reaped before its timeout: after ${reapedAfter} ms`);
    t.deepEqual(server.engine.listSessions().map((s) => s.id), [alive.session], 'only the silent session was torn down');
    t.false(server.rtsp.sessions().some((s) => s.id === doomed));
    await receiver.waitForQuiet(200, 3000);
    t.is((await client.play('/sample.ts')).status, 454, 'the timed-out session is gone');
    await alive.teardown('/sample.ts');
    t.deepEqual(server.engine.listSessions(), []);
  } finally {
    await client.release();
    await receiver.close();
    await alive.release();
    await aliveReceiver.close();
  }
});

test.serial('stream limits: SETUP and PLAY over a limit get 453 while a running session keeps every datagram', async (t) => {
  const original = server.engine.getLimits();
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  const other = await RtspClient.connect({ port });
  const otherReceiver = await UdpReceiver.open();
  try {
    const info = await setUp(client, receiver);
    const play = await client.play('/sample.ts');
    const playedAt = Date.now();
    t.is(play.status, 200);

    server.engine.setLimits({ ...original, maxStreams: 1 });
    t.is((await other.setup('/sample.ts/track1', otherReceiver.transportHeader())).status, 453, 'stream count');
    server.engine.setLimits({ ...original, mpegBandwidthKbps: 4000 });
    t.is((await other.setup('/sample.ts/track1', otherReceiver.transportHeader())).status, 453, 'MPEG bandwidth');
    server.engine.setLimits({ ...original, mpegBandwidthKbps: 6100, serverBandwidthKbps: 6100 });
    t.is((await other.setup('/sample.ts/track1', otherReceiver.transportHeader())).status, 453, 'server bandwidth (headers count)');
    t.is(other.session, undefined, 'no session was created');
    t.is(server.engine.listSessions().length, 1);

    // Admitted under the old limits, then the operator lowers them: its PLAY is refused.
    server.engine.setLimits(original);
    t.is((await other.setup('/sample.ts/track1', otherReceiver.transportHeader())).status, 200);
    server.engine.setLimits({ ...original, maxStreams: 1 });
    t.is((await other.play('/sample.ts')).status, 453, 'PLAY over the limit');
    await keepAlive(client, 600);
    t.is(otherReceiver.datagrams.length, 0, 'the refused session sent nothing');

    await client.pause('/sample.ts');
    const playedMs = Date.now() - playedAt;
    await receiver.waitForQuiet(150, 5000);
    const check = verify(t, receiver.packets, info, playOf(play, 0));
    t.true(receiver.packets.length > 100, `received ${receiver.packets.length}`);
    t.true(receiver.packets.length >= minDatagrams(sample, playedMs), `received ${receiver.packets.length} in ${playedMs} ms`);
    t.is(receiver.packets.length, server.engine.getSession(info.id)!.sent, during());
    t.deepEqual(clean(check), NONE, `${check.firstMismatch ?? ''}; ${during()}`);
    await other.teardown('/sample.ts');
    await client.teardown('/sample.ts');
  } finally {
    server.engine.setLimits(original);
    await client.release();
    await receiver.close();
    await other.release();
    await otherReceiver.close();
  }
});

test.serial('a process pair\'s role switch: quiesce holds what arrives unparsed; resume() answers it, commit() hands it on whole with what the parser held', async (t) => {
  // A front end of its own: commit() lets go of every connection and stops listening.
  const front = new RtspServer({ backend: new EngineRtspBackend(server.engine, server.catalog), port: 0, sessionTimeoutMs: 10_000 });
  t.teardown(() => front.close());
  await front.listen();
  const client = await RtspClient.connect({ port: front.port });
  t.teardown(() => client.close());
  t.is((await client.options('*')).status, 200);

  let handover = await front.quiesce(1000);
  let answered = false;
  const reply = client.options('*', { timeoutMs: 5000 }).then((r) => {
    answered = true;
    return r;
  });
  await sleep(200);
  t.false(answered, 'a request that arrives during the quiesce is held, not answered');
  handover.resume();
  t.is((await reply).status, 200, 'and answered once the switch is given up');

  const other = await RtspClient.connect({ port: front.port });
  t.teardown(() => other.close());
  t.is((await other.options('*')).status, 200);
  other.sendRaw('OPTIONS * RTSP/1.0\r\nCSeq: 77\r\n'); // a head begun before the quiesce: the parser holds it
  await sleep(100);
  handover = await front.quiesce(1000);
  other.sendRaw('User-Agent: late\r\n\r\n'); // its end, during the quiesce: held unparsed
  await sleep(100);
  const handed = handover.commit();
  t.deepEqual(handed.map((c) => c.pending.toString('latin1')).sort(), ['', 'OPTIONS * RTSP/1.0\r\nCSeq: 77\r\nUser-Agent: late\r\n\r\n'],
    'each connection handed on, the half-sent request whole and unanswered');
});

test.serial('with allowForeignDestination, SETUP may aim the stream at another address (a name is resolved first)', async (t) => {
  // A second front end on the same engine and catalog, configured the other way.
  const foreign = new RtspServer({ backend: new EngineRtspBackend(server.engine, server.catalog), port: 0, allowForeignDestination: true, sessionTimeoutMs: 10_000 });
  await foreign.listen();
  const client = await RtspClient.connect({ port: foreign.port });
  const receiver = await UdpReceiver.open({ host: '127.0.0.2' });
  try {
    const setup = await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=127.0.0.2;client_port=${receiver.rtpPort}-${receiver.rtcpPort}`);
    t.is(setup.status, 200);
    t.is(parseTransport(setup.headers.get('transport')!)[0].destination, '127.0.0.2');
    t.is(server.engine.getSession(client.session!)!.destination.address, '127.0.0.2');
    t.is((await client.play('/sample.ts')).status, 200);
    await receiver.waitForCount(50, 5000);
    t.is((await client.teardown('/sample.ts')).status, 200);
    client.session = undefined;
    const byName = await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=localhost;client_port=${receiver.rtpPort}-${receiver.rtcpPort}`);
    t.is(byName.status, 200);
    t.is(server.engine.getSession(client.session!)!.destination.address, '127.0.0.1');
    t.is((await client.teardown('/sample.ts')).status, 200);
    client.session = undefined;
    t.is((await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=255.255.255.255;client_port=${receiver.rtpPort}`)).status, 461, 'broadcast is never a destination');
    t.is((await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=::1;client_port=${receiver.rtpPort}`)).status, 461, 'IPv6: the data paths are IPv4');
    t.is((await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=no-such-host.invalid;client_port=${receiver.rtpPort}`)).status, 462);
  } finally {
    await client.release();
    await receiver.close();
    await foreign.close();
  }
  t.deepEqual(server.engine.listSessions(), []);
});

test.serial('`npm start` prints an rtsp:// URL of the sample that a client can DESCRIBE and SETUP', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-cli-'));
  const rtspPort = await freeTcpPort();
  const configPath = path.join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({
    rtsp: { port: rtspPort, serverPortRange: { first: 31000, last: 31999 } },
    media: { cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
    log: { level: 'warn' },
  }));
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, path.join(ROOT, 'dist/src/cli/twinframe.js'), '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 20_000;
    while (!/rtsp:\/\/\S+\/sample\.ts/.test(out) && Date.now() < deadline) await sleep(50);
    const url = /(rtsp:\/\/\S+\/sample\.ts)/.exec(out)?.[1];
    t.is(url, `rtsp://127.0.0.1:${rtspPort}/sample.ts`, out);
    const client = await RtspClient.connect({ port: rtspPort });
    const receiver = await UdpReceiver.open();
    try {
      t.is((await client.describe(url!)).status, 200);
      t.is((await client.setup(`${url}/track1`, receiver.transportHeader())).status, 200);
      t.is((await client.play(`${url}/`)).status, 200);
      await receiver.waitForCount(20, 5000);
      t.is((await client.teardown(url!)).status, 200);
    } finally {
      await client.release();
      await receiver.close();
    }
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    t.is(await exited, 0, 'stops cleanly on SIGTERM');
    clearTimeout(timer);
    await rm(dir, { recursive: true, force: true });
  }
});

// ── helpers ──────────────────────────────────────────────────────────────────

function firstPcr(payloads: readonly Buffer[]): { pcr: number; packet: number } {
  let packet = 0;
  for (const payload of payloads) {
    for (let off = 0; off + 188 <= payload.length; off += 188, packet++) {
      const pcr = packetPcr(payload, off);
      if (pcr >= 0) return { pcr, packet };
    }
  }
  throw new Error('no PCR received');
}

function firstPcrFrom(bytes: Buffer, fromPacket: number): { pcr: number; packet: number } {
  for (let p = fromPacket; (p + 1) * 188 <= bytes.length; p++) {
    const pcr = packetPcr(bytes, p * 188);
    if (pcr >= 0) return { pcr, packet: p };
  }
  throw new Error('no PCR in the asset');
}



test.serial('PLAY npt=a-b streams from the key frame for a to the last picture presented by b, then BYE; a PLAY during PLAY re-seeks', async (t) => {
  const client = await RtspClient.connect({ port });
  const receiver = await UdpReceiver.open();
  try {
    await setUp(client, receiver);
    const startPacket = sample.randomAccess.find((r) => Math.abs(r.ticks - 3 * 90_000) < 90)!.packet;
    // The picture after the last one presented by 4 s: the range stops before it.
    const lastShown = Math.max(...Array.from({ length: sample.pictures.length / 2 }, (_, i) => i).filter((i) => sample.pictures[2 * i + 1] <= 4 * 90_000 + 90));
    const endPacket = sample.pictures[2 * (lastShown + 1)];
    const endNpt = sample.pictures[2 * (lastShown + 1) + 1];
    t.true(endPacket > startPacket);

    // First a PLAY to the end, replaced at once by the range: the second PLAY re-seeks.
    t.is((await client.play('/sample.ts', 'npt=8-')).status, 200);
    const play = await client.play('/sample.ts', 'npt=3-4');
    t.is(play.status, 200);
    const range = parseRange(play.headers.get('range')!);
    t.is(range.start, Number((sample.times[startPacket] / 90_000).toFixed(3)), 'Range starts at the first datagram sent');
    t.is(range.end, Number((endNpt / 90_000).toFixed(3)), 'and ends where the first picture not sent would be presented');
    const deadline = Date.now() + 5000;
    const hasBye = () => receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data)).some((p) => p.type === RTCP_BYE);
    while (!hasBye() && Date.now() < deadline) await sleep(50);
    t.true(hasBye(), 'BYE at the end of the range');
    await receiver.waitForQuiet(150, 5000);
    const seq = rtpInfo(play).seq;
    const ranged = receiver.packets.filter((p) => ((p.sequence - seq) & 0xffff) < 0x8000);
    const payload = Buffer.concat(ranged.sort((a, b) => ((a.sequence - seq) & 0xffff) - ((b.sequence - seq) & 0xffff)).map((p) => p.payload));
    t.true(payload.equals(sample.bytes.subarray(startPacket * 188, endPacket * 188)), `the range's packets ${startPacket}..${endPacket} exactly (got ${payload.length / 188} packets); ${during()}`);
    const again = await client.play('/sample.ts');
    t.is(again.status, 200);
    t.is(parseRange(again.headers.get('range')!).start, 0, 'after the range, PLAY starts over');
    t.is(parseRange(again.headers.get('range')!).end, Number((sample.presentationEndMs / 1000).toFixed(3)), 'to the asset\'s end');
    await client.teardown('/sample.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

leakCheck(test);
