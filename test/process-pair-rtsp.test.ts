// Viewers keep their RTSP sessions across a process takeover (issue 17 item 3),
// with two real twinframe processes: sessions set up by an RTSP client on the
// primary, the primary SIGKILLed, then on the standby, on a NEW connection with
// the old Session id: keep-alives (200, the timeout refreshed), PAUSE, PLAY
// (resume, and with a Range), TEARDOWN (the datagrams stop, BYE, a second
// TEARDOWN is 454); an unknown id is still 454; a viewer that vanished is reaped
// by the survivor's session timeout; and a new standby that joins the survivor
// mid-stream answers for the same sessions after a second SIGKILL. Then the
// connection itself: the primary passed it to the standby, and the same
// requests work on it after the kill, from this test's client, from ffmpeg
// (its keep-alives and TEARDOWN on the connection it opened to the primary) and
// from GStreamer (its capture byte-exact across the kill, its TEARDOWN answered).

import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { leakCheck } from './helpers/leak-check.js';
import { RtspClient, UdpReceiver, sequenceStats } from './helpers/rtsp-client.js';
import { checkGstreamerCapture, pairSetup, startGstreamer, untilStatus, type PairMember, type PairSetup } from './helpers/process-pair.js';
import { parseCompound } from './helpers/rtcp.js';
import { RTCP_BYE, RTCP_SR } from '../src/rtsp/rtcp.js';
import { runToString, start } from './helpers/run.js';
import { loadSample } from './helpers/engine-fixture.js';

leakCheck(test);

const URL_PATH = '/sample.ts';
/** The shortest session timeout the configuration takes. */
const SESSION_TIMEOUT_SEC = 5;

interface Viewer {
  readonly receiver: UdpReceiver;
  readonly session: string;
  /** RTP-Info seq of the first PLAY. */
  readonly firstSeq: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A viewer set up and playing on `port`; its RTSP connection is closed at once (it dies with the primary anyway). */
async function startViewer(t: ExecutionContext, port: number): Promise<Viewer> {
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const client = await RtspClient.connect({ port });
  try {
    if ((await client.setup(`${URL_PATH}/track1`, receiver.transportHeader())).status !== 200) throw new Error('SETUP refused');
    const play = await client.play(URL_PATH);
    const seq = /seq=(\d+)/.exec(play.headers.get('rtp-info') ?? '')?.[1];
    if (play.status !== 200 || seq === undefined) throw new Error(`PLAY: ${play.status}`);
    return { receiver, session: client.session!, firstSeq: Number(seq) };
  } finally {
    await client.close();
  }
}

/** A new RTSP connection to `port`, once something listens there (a standby listens some ms after its takeover). */
async function connectWhenListening(t: ExecutionContext, port: number, session?: string): Promise<RtspClient> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const client = await RtspClient.connect({ port });
      t.teardown(() => client.close());
      client.session = session;
      return client;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

/** The standby's RTSP server holds the session (dormant until a takeover): its log says so. */
async function untilAdopted(member: PairMember, session: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  const adopted = new RegExp(`"session":"${session}"[^\\n]*session of the primary process adopted`);
  while (!adopted.test(member.output())) {
    if (Date.now() > deadline) throw new Error(`${member.role} did not adopt RTSP session ${session}:\n${member.output().slice(-3000)}`);
    await sleep(50);
  }
}

/** `member`'s log shows `pattern` (bounded: the assertion after it says what was missing). */
async function untilLogged(member: PairMember, pattern: RegExp): Promise<void> {
  for (const deadline = Date.now() + 5000; !pattern.test(member.output()) && Date.now() < deadline;) await sleep(50);
}

/** The standby holds `count` RTSP connections of its primary: its debug log says so. */
async function untilHeld(member: PairMember, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((member.output().match(/RTSP connection of the primary held/g) ?? []).length < count) {
    if (Date.now() > deadline) throw new Error(`${member.role} does not hold ${count} RTSP connections:\n${member.output().slice(-3000)}`);
    await sleep(50);
  }
}

/** Datagrams that arrive in `ms` from now. */
async function arrivingWithin(receiver: UdpReceiver, ms: number): Promise<number> {
  const before = receiver.datagrams.length;
  await sleep(ms);
  return receiver.datagrams.length - before;
}

/** Until an RTCP packet of `type` arrived after `sinceNs` (from the standby's RTCP sender). */
async function untilRtcp(receiver: UdpReceiver, type: number, sinceNs: bigint): Promise<void> {
  const deadline = Date.now() + 5000;
  const arrived = (): boolean => receiver.rtcpDatagrams.some((d) => d.arrivalNs > sinceNs && parseCompound(d.data).some((p) => p.type === type));
  while (!arrived()) {
    if (Date.now() > deadline) throw new Error(`no RTCP packet of type ${type} after the takeover`);
    await sleep(50);
  }
}

/** A primary and its standby, the standby following. */
async function linkedPair(t: ExecutionContext, options: Parameters<typeof pairSetup>[1] = {}): Promise<{ pair: PairSetup; primary: PairMember; standby: PairMember }> {
  const pair = await pairSetup(t, options);
  const primary = await pair.start('primary', 'p');
  const standby = await pair.start('standby', 's1');
  await untilStatus(standby, (x) => x.processPair?.state === 'Secondary', 'Secondary');
  return { pair, primary, standby };
}

test.serial('after a SIGKILL of the primary, a viewer\'s session answers on the standby on a new connection: keep-alive, PAUSE, PLAY, TEARDOWN', async (t) => {
  const { pair, primary, standby } = await linkedPair(t);
  const playing = await startViewer(t, pair.rtspPort);
  const paused = await startViewer(t, pair.rtspPort);
  // The second viewer pauses on the primary: the standby must know it is paused, and where.
  const control = await RtspClient.connect({ port: pair.rtspPort });
  t.teardown(() => control.close());
  control.session = paused.session;
  t.is((await control.pause(URL_PATH)).status, 200);
  await control.close();
  await untilStatus(standby, (x) => x.sessions === 2, 'both sessions followed');
  await untilAdopted(standby, playing.session);
  await untilAdopted(standby, paused.session);
  await playing.receiver.waitForCount(100, 5000);

  const killNs = process.hrtime.bigint();
  primary.child.kill('SIGKILL');
  await untilStatus(standby, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over');
  const client = await connectWhenListening(t, pair.rtspPort, playing.session);

  // Keep-alives on the new connection, with the old id.
  const keepAlive = await client.getParameter(URL_PATH);
  t.is(keepAlive.status, 200, 'GET_PARAMETER keep-alive');
  t.regex(keepAlive.headers.get('session') ?? '', new RegExp(`^${playing.session};timeout=60$`));
  t.is((await client.options('*')).status, 200, 'OPTIONS keep-alive');
  t.is((await client.getParameter(URL_PATH, undefined, { headers: { Session: 'feedfacefeedface' } })).status, 454, 'an unknown session is still 454');
  t.true(await arrivingWithin(playing.receiver, 300) > 20, 'the standby streams the session');
  await untilRtcp(playing.receiver, RTCP_SR, killNs);

  // PAUSE stops the stream; PLAY with a Range starts it again.
  t.is((await client.pause(URL_PATH)).status, 200, 'PAUSE');
  await sleep(200);
  t.is(await arrivingWithin(playing.receiver, 600), 0, 'paused: nothing arrives');
  const replay = await client.play(URL_PATH, 'npt=2-');
  t.is(replay.status, 200, 'PLAY with a Range');
  t.regex(replay.headers.get('range') ?? '', /^npt=\d/);
  t.regex(replay.headers.get('rtp-info') ?? '', /seq=\d+;rtptime=\d+/);
  await playing.receiver.waitForCount(playing.receiver.datagrams.length + 50, 5000);

  // The session paused on the primary resumes where it stood: no datagram lost or repeated.
  const resumer = await connectWhenListening(t, pair.rtspPort, paused.session);
  const resumed = await resumer.play(URL_PATH);
  t.is(resumed.status, 200, 'PLAY resumes the session paused on the primary');
  await paused.receiver.waitForCount(paused.receiver.datagrams.length + 100, 5000);
  t.like(sequenceStats(paused.receiver.packets.map((p) => p.sequence), { firstSeq: paused.firstSeq }), { lost: 0, duplicated: 0 });
  t.is(new Set(paused.receiver.datagrams.map((d) => d.from)).size, 1, 'from one source port, whichever process sends');

  // TEARDOWN on the standby ends it: no datagram after it, a BYE, and the id is gone.
  t.is((await client.teardown(URL_PATH)).status, 200, 'TEARDOWN');
  await sleep(200);
  t.is(await arrivingWithin(playing.receiver, 700), 0, 'no datagram after the TEARDOWN');
  await untilRtcp(playing.receiver, RTCP_BYE, killNs);
  t.is((await client.teardown(URL_PATH)).status, 454, 'a second TEARDOWN');
  t.is((await resumer.teardown(URL_PATH)).status, 200);
  await untilStatus(standby, (x) => x.sessions === 0, 'both sessions closed on the engine');
});

test.serial('on the survivor a keep-alive refreshes the session timeout, and a viewer that vanished is reaped by it', async (t) => {
  const { pair, primary, standby } = await linkedPair(t, { rtsp: { sessionTimeoutSec: SESSION_TIMEOUT_SEC } });
  const kept = await startViewer(t, pair.rtspPort);
  const vanished = await startViewer(t, pair.rtspPort);
  await untilAdopted(standby, kept.session);
  await untilAdopted(standby, vanished.session);
  primary.child.kill('SIGKILL');
  await untilStatus(standby, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over');
  const client = await connectWhenListening(t, pair.rtspPort, kept.session);
  // Keep-alives for one viewer over more than a session timeout; the other sends nothing.
  const until = Date.now() + (SESSION_TIMEOUT_SEC + 2) * 1000;
  while (Date.now() < until) {
    t.is((await client.getParameter(URL_PATH)).status, 200);
    await sleep(1000);
  }
  t.is((await client.options('*')).status, 200, 'the kept session lives');
  const s = await untilStatus(standby, (x) => x.sessions === 1, 'the vanished viewer reaped');
  t.is(s.sessions, 1);
  t.regex(standby.output(), new RegExp(`"session":"${vanished.session}"[^\\n]*session timed out`));
  t.is((await client.getParameter(URL_PATH, undefined, { headers: { Session: vanished.session } })).status, 454, 'the reaped session is gone');
  t.is((await client.teardown(URL_PATH)).status, 200);
});

test.serial('a new standby joins the survivor mid-stream and answers for the same sessions after a second SIGKILL', async (t) => {
  const { pair, primary: first, standby: second } = await linkedPair(t);
  const old = await startViewer(t, pair.rtspPort);
  await untilAdopted(second, old.session);
  first.child.kill('SIGKILL');
  await untilStatus(second, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over');
  // A viewer of the survivor itself, set up after the first takeover.
  const probe = await connectWhenListening(t, pair.rtspPort);
  await probe.close();
  const fresh = await startViewer(t, pair.rtspPort);
  const third = await pair.start('standby', 's2');
  await untilStatus(third, (x) => x.processPair?.state === 'Secondary' && x.sessions === 2, 'the new standby follows both sessions');
  await untilAdopted(third, old.session);
  await untilAdopted(third, fresh.session);
  await untilStatus(second, (x) => x.processPair?.state === 'Primary', 'protected again');

  second.child.kill('SIGKILL');
  await untilStatus(third, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over again');
  for (const viewer of [old, fresh]) {
    const client = await connectWhenListening(t, pair.rtspPort, viewer.session);
    t.is((await client.getParameter(URL_PATH)).status, 200, 'keep-alive after the second takeover');
    // From the start again: on a loaded machine the 12 s asset may have ended by now.
    t.is((await client.play(URL_PATH, 'npt=0-')).status, 200, 'PLAY after the second takeover');
    await viewer.receiver.waitForCount(viewer.receiver.datagrams.length + 50, 5000);
    t.is((await client.teardown(URL_PATH)).status, 200);
    await sleep(200);
    t.is(await arrivingWithin(viewer.receiver, 500), 0, 'no datagram after the TEARDOWN');
    t.is((await client.teardown(URL_PATH)).status, 454);
    await client.close();
  }
  await untilStatus(third, (x) => x.sessions === 0, 'every session closed');
});

test.serial('the viewer\'s RTSP connection itself survives the SIGKILL: keep-alive, PAUSE, PLAY and TEARDOWN on the same connection', async (t) => {
  const { pair, primary, standby } = await linkedPair(t, { logLevel: 'debug' });
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const client = await RtspClient.connect({ port: pair.rtspPort });
  t.teardown(() => client.close());
  t.is((await client.setup(`${URL_PATH}/track1`, receiver.transportHeader())).status, 200);
  t.is((await client.play(URL_PATH)).status, 200);
  // An idle connection opened before the kill, its first request sent after it.
  const idle = await RtspClient.connect({ port: pair.rtspPort });
  t.teardown(() => idle.close());
  await untilAdopted(standby, client.session!);
  await untilHeld(standby, 2);
  await receiver.waitForCount(100, 5000);

  primary.child.kill('SIGKILL');
  await untilStatus(standby, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over');
  t.false(client.closed, 'the connection is open');
  t.is((await client.getParameter(URL_PATH)).status, 200, 'keep-alive on the same connection');
  t.is((await idle.options('*')).status, 200, 'a connection that had sent nothing is served too');
  t.is((await client.pause(URL_PATH)).status, 200);
  await sleep(200);
  t.is(await arrivingWithin(receiver, 500), 0, 'paused: nothing arrives');
  t.is((await client.play(URL_PATH)).status, 200);
  await receiver.waitForCount(receiver.datagrams.length + 50, 5000);
  t.like(sequenceStats(receiver.packets.map((p) => p.sequence)), { duplicated: 0 });
  t.is((await client.teardown(URL_PATH)).status, 200);
  await sleep(200);
  t.is(await arrivingWithin(receiver, 500), 0, 'no datagram after the TEARDOWN');
  t.regex(standby.output(), /serving the primary's RTSP connections/);
  await untilStatus(standby, (x) => x.sessions === 0, 'the session closed');
});

test.serial('ffmpeg, a real player, keeps its RTSP control across the SIGKILL: its keep-alives and TEARDOWN reach the standby on its connection', async (t) => {
  // A 5 s session timeout: ffmpeg sends a keep-alive every 2.5 s, and without them the session would end before the 12 s asset.
  const { pair, primary, standby } = await linkedPair(t, { rtsp: { sessionTimeoutSec: SESSION_TIMEOUT_SEC }, logLevel: 'debug' });
  const out = path.join(pair.dir, 'ffmpeg.ts');
  const ffmpeg = start(['ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'warning', '-rtsp_transport', 'udp', '-i', `rtsp://127.0.0.1:${pair.rtspPort}${URL_PATH}`, '-map', '0', '-c', 'copy', '-f', 'mpegts', '-y', out], 60_000);
  t.teardown(() => ffmpeg.kill());
  await untilStatus(standby, (x) => x.sessions === 1, 'ffmpeg\'s session followed');
  await untilHeld(standby, 1);
  await sleep(1000);
  primary.child.kill('SIGKILL');
  await untilStatus(standby, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over');
  const { code, stderr } = await ffmpeg.done;
  t.is(code, 0, stderr.slice(-2000));
  // The request's log line follows its reply: ffmpeg may have exited before it reached our pipe.
  await untilLogged(standby, /"method":"TEARDOWN"[^\n]*"status":200/);
  const log = standby.output();
  t.regex(log, /"method":"GET_PARAMETER"[^\n]*"status":200/, 'ffmpeg\'s keep-alives answered by the standby');
  t.regex(log, /"method":"TEARDOWN"[^\n]*"status":200/, 'and its TEARDOWN');
  t.notRegex(log, /session timed out/);
  await untilStatus(standby, (x) => x.sessions === 0, 'the session closed by the TEARDOWN');
  const duration = Number(await runToString(['ffprobe', '-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', out]));
  t.true(duration > 11, `ffmpeg received the whole 12 s asset (${duration} s)`);
});

const GST_CASES = [
  { protocol: 'udp', kills: 1, title: 'GStreamer (rtspsrc), a second real player, through the SIGKILL: its capture is the asset byte for byte, and its TEARDOWN on its own connection is answered by the standby' },
  { protocol: 'tcp', kills: 1, title: 'GStreamer with RTP on its RTSP connection (interleaved) through the SIGKILL: the standby writes on where the primary stopped, the capture is the asset byte for byte, and its TEARDOWN is answered' },
  { protocol: 'tcp', kills: 2, title: 'GStreamer with RTP on its RTSP connection through two SIGKILLs: a new standby follows the survivor\'s stream on the same wire, and the capture is still the asset byte for byte' },
] as const;

for (const { protocol, kills, title } of GST_CASES) {
  test.serial(title, async (t) => {
    const { pair, primary, standby } = await linkedPair(t, { logLevel: 'debug' });
    const sample = await loadSample();
    t.teardown(() => sample.cleanup());
    const out = path.join(pair.dir, 'gst.ts');
    const gst = startGstreamer(pair.rtspPort, URL_PATH, protocol, out);
    await untilStatus(standby, (x) => x.sessions === 1, 'GStreamer\'s session followed');
    await untilHeld(standby, 1);
    await sleep(1000);
    primary.child.kill('SIGKILL');
    await untilStatus(standby, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over');
    let survivor = standby;
    if (kills === 2) {
      // Re-protected mid-stream: the new standby maps the wire the survivor took over, and follows on it.
      const third = await pair.start('standby', 's2');
      await untilStatus(third, (x) => x.processPair?.state === 'Secondary' && x.sessions === 1, 'the new standby follows the session');
      await untilHeld(third, 1);
      await untilStatus(standby, (x) => x.processPair?.state === 'Primary', 'protected again');
      standby.child.kill('SIGKILL');
      await untilStatus(third, (x) => x.processPair?.state === 'Secondary_No_Primary', 'took over again');
      survivor = third;
    }
    await checkGstreamerCapture(t, await gst, out, sample.bytes, survivor, `across ${kills} kill(s)`);
    if (protocol === 'tcp') {
      // The takeover thread claimed the wire right after its step (not the main thread, later).
      const claimed = /"wires":1,"unclaimed":0,"waitedMs":([\d.]+)[^\n]*\(takeover thread\)/.exec(survivor.output());
      t.truthy(claimed, 'the takeover thread claimed the wire');
      t.log(`the dead primary's writers were gone ${claimed?.[1]} ms after the step`);
    }
    await untilStatus(survivor, (x) => x.sessions === 0, 'the session closed by the TEARDOWN');
  });
}
