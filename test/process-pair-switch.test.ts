// The operator's lossless role switch of a process pair (issue 17 item 4):
// two real twinframe processes, RTSP viewers streaming; `twinframectl pair
// switch` asked of the primary makes the standby send and the primary follow
// it, then asked of the new standby switches back. A receiver (this test
// process) gets every datagram once, in order, byte-exact, from one source
// port; both status lines show the roles after each switch, and new viewers
// are served by whichever process sends. The viewers' own RTSP connections and
// sessions move with sending: a request half-sent before a switch is answered
// whole after it, and PAUSE, PLAY and TEARDOWN act on the stream.

import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { leakCheck } from './helpers/leak-check.js';
import { RtspClient, UdpReceiver, sequenceStats, type ReceivedDatagram } from './helpers/rtsp-client.js';
import { loadSample, type SampleAsset } from './helpers/engine-fixture.js';
import { checkGstreamerCapture, pairSetup, startGstreamer, startViewer, untilStatus, type PairMember, type PairViewer } from './helpers/process-pair.js';
import { runToString, TWINFRAMECTL } from './helpers/run.js';
import { AdminClient } from '../src/admin/client.js';
import type { StatusResult } from '../src/admin/backend.js';

leakCheck(test);

let sample: SampleAsset;
test.before(async () => { sample = await loadSample(); });
test.after.always(async () => { await sample?.cleanup(); });

const URL_PATH = '/sample.ts';
const SESSIONS = 3;

async function pairSwitch(member: PairMember): Promise<string> {
  return runToString([process.execPath, TWINFRAMECTL, '--socket', member.adminSocket, 'pair', 'switch']);
}

/** The admin socket, straight (a twinframectl process per poll costs a second on a loaded machine, and the sample lasts 10 s). */
async function admin<T>(member: PairMember, use: (client: AdminClient) => Promise<T>): Promise<T> {
  const client = await AdminClient.connect(member.adminSocket, { timeoutMs: 10_000 });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

async function until(member: PairMember, done: (s: StatusResult) => boolean, what: string): Promise<StatusResult> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await admin(member, (c) => c.request('status', {}));
    if (done(status)) return status;
    if (Date.now() > deadline) throw new Error(`${member.role}: ${what} not reached: ${JSON.stringify(status.processPair)}\n${member.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function statusLine(member: PairMember): Promise<string> {
  const text = await runToString([process.execPath, TWINFRAMECTL, '--socket', member.adminSocket, 'status']);
  return /process pair\s+(.*)/.exec(text)?.[1] ?? '';
}

/** Largest gap between two arrivals, ms (the sample's spacing is ~3.5 ms). */
function largestGap(datagrams: readonly ReceivedDatagram[]): number {
  let gap = 0;
  for (let i = 1; i < datagrams.length; i++) gap = Math.max(gap, Number(datagrams[i].arrivalNs - datagrams[i - 1].arrivalNs) / 1e6);
  return gap;
}

/** Every datagram once, in order, byte-exact, from one source; and some of them after `lastSwitchNs` (the stream ran through both switches). */
function check(t: ExecutionContext, v: PairViewer, lastSwitchNs: bigint): void {
  const datagrams = [...v.receiver.datagrams];
  const seqs = datagrams.map((d) => d.rtp!.sequence);
  const stats = sequenceStats(seqs, { firstSeq: v.firstSeq });
  let mismatched = 0;
  let outOfOrder = 0;
  for (let i = 0; i < datagrams.length; i++) {
    const cursor = (seqs[i] - v.firstSeq) & 0xffff;
    if (i > 0 && cursor !== ((seqs[i - 1] - v.firstSeq) & 0xffff) + 1) outOfOrder++;
    const expected = sample.bytes.subarray(cursor * 7 * 188, Math.min(sample.bytes.length, (cursor + 1) * 7 * 188));
    if (!datagrams[i].rtp!.payload.equals(expected)) mismatched++;
  }
  const after = datagrams.filter((d) => d.arrivalNs > lastSwitchNs).length;
  const gap = largestGap(datagrams);
  const at = datagrams.findIndex((d, i) => i > 0 && Number(d.arrivalNs - datagrams[i - 1].arrivalNs) / 1e6 === gap);
  t.log(`largest gap ends ${at >= 0 ? (Number(datagrams[at].arrivalNs - lastSwitchNs) / 1e6).toFixed(1) : '?'} ms after the second switch was answered`);
  t.log(`received ${stats.received}, lost ${stats.lost}, duplicated ${stats.duplicated}, out of order ${outOfOrder}, ${after} after the second switch; largest gap ${gap.toFixed(2)} ms`);
  t.is(stats.lost, 0, 'nothing lost');
  t.is(stats.duplicated, 0, 'nothing repeated');
  t.is(outOfOrder, 0, 'in order');
  t.is(mismatched, 0, 'byte-exact');
  t.is(new Set(datagrams.map((d) => d.from)).size, 1, 'one source address and port, whichever process sends');
  t.true(after > 0, 'the stream went on after the second switch (not ended before it)');
  t.true(gap < 1000, `no pause beyond a generous bound on a loaded machine (${gap.toFixed(1)} ms)`);
}

test.serial('pair switch, asked of the primary and then of the new standby: every datagram once, in order, byte-exact, from one source port; roles and the RTSP listener move', async (t) => {
  const pair = await pairSetup(t);
  const p = await pair.start('primary', 'p');
  const s = await pair.start('standby', 's');
  await untilStatus(s, (x) => x.processPair?.state === 'Secondary', 'Secondary');
  const viewers: PairViewer[] = [];
  try {
    for (let i = 0; i < SESSIONS; i++) viewers.push(await startViewer(pair.rtspPort, URL_PATH));
    await untilStatus(s, (x) => x.sessions === SESSIONS, 'every session followed');
    // The sample lasts 10 s: both switches happen while it streams; the roles are looked at in between only as far as the second switch needs.
    t.regex(await pairSwitch(p), /this process is the standby now/);
    const pFollows = await until(p, (x) => x.processPair?.state === 'Secondary', 'p follows s');
    t.like(pFollows.processPair, { sending: false, peer: { pid: s.child.pid } });
    t.is(pFollows.sessions, SESSIONS, 'p kept every session');
    const sLeads = await admin(s, (c) => c.request('status', {}));
    t.like(sLeads.processPair, { state: 'Primary', sending: true, peer: { state: 'linked', pid: p.child.pid }, takeover: { cause: 'switch', sessions: SESSIONS, switchedBy: 'takeover-thread' } });
    t.log(`first switch: ${JSON.stringify(sLeads.processPair?.takeover)}`);
    const second = await admin(p, (c) => c.request('pair_switch', {}));
    t.like(second, { role: 'primary', peerPid: s.child.pid, sessions: SESSIONS }, 'asked of the standby, which takes sending');
    const lastSwitchNs = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 500));
    for (const v of viewers) check(t, v, lastSwitchNs);

    const pLeads = await untilStatus(p, (x) => x.processPair?.state === 'Primary', 'p primary again');
    t.like(pLeads.processPair?.takeover, { cause: 'switch', sessions: SESSIONS });
    t.log(`second switch: ${JSON.stringify(pLeads.processPair?.takeover)}`);
    await untilStatus(s, (x) => x.processPair?.state === 'Secondary', 's follows p');
    t.regex(await statusLine(s), /^standby, Secondary, not sending/);
    t.regex(await statusLine(p), /Primary, sending/);
    // The RTSP listener moved with sending (to s, then back to p): a new viewer is served.
    const newcomer = await RtspClient.connect({ port: pair.rtspPort });
    try {
      t.is((await newcomer.describe(URL_PATH)).status, 200);
    } finally {
      await newcomer.release();
    }
  } finally {
    for (const v of viewers) {
      await v.client.release();
      await v.receiver.close();
    }
  }
});

/** Datagrams received within `ms` from now. */
async function arrivingWithin(v: PairViewer, ms: number): Promise<number> {
  const before = v.receiver.datagrams.length;
  await new Promise((r) => setTimeout(r, ms));
  return v.receiver.datagrams.length - before;
}

test.serial('pair switch moves the viewers\' RTSP connections and sessions: a request half-sent before the switch is answered after it; keep-alive, PAUSE, PLAY and TEARDOWN on the viewer\'s own connection act on the stream, after each switch', async (t) => {
  const pair = await pairSetup(t);
  const p = await pair.start('primary', 'p');
  const s = await pair.start('standby', 's');
  await untilStatus(s, (x) => x.processPair?.state === 'Secondary', 'Secondary');
  const v = await startViewer(pair.rtspPort, URL_PATH);
  try {
    await untilStatus(s, (x) => x.sessions === 1, 'the session followed');
    const session = v.client.session!;
    // A session set up right before the switch and played right after it: its record reaches the new primary first.
    const late = await RtspClient.connect({ port: pair.rtspPort });
    t.teardown(() => late.close());
    const lateReceiver = await UdpReceiver.open();
    t.teardown(() => lateReceiver.close());
    t.is((await late.setup(`${URL_PATH}/track1`, lateReceiver.transportHeader())).status, 200);
    // A request whose head is not finished when the switch begins: the primary holds its start, the standby gets it.
    v.client.sendRaw(`GET_PARAMETER ${v.client.url(URL_PATH)} RTSP/1.0\r\nCSeq: 1000\r\nSession: ${session}\r\n`);
    await new Promise((r) => setTimeout(r, 100));
    t.regex(await pairSwitch(p), /this process is the standby now/);
    v.client.sendRaw('\r\n');
    const finished = await v.client.nextResponse(5000);
    t.like(finished, { status: 200, cseq: 1000 }, 'the request begun before the switch is answered after it');
    t.is((await late.play(URL_PATH)).status, 200, 'a session set up just before the switch plays after it');
    await lateReceiver.waitForCount(20, 5000);
    t.is((await late.teardown(URL_PATH)).status, 200);

    t.is((await v.client.getParameter(URL_PATH)).status, 200, 'keep-alive on the viewer\'s own connection, after the first switch');
    t.is((await v.client.pause(URL_PATH)).status, 200);
    await new Promise((r) => setTimeout(r, 200)); // datagrams sent before the PAUSE was answered
    t.is(await arrivingWithin(v, 400), 0, 'PAUSE stopped the stream: answered by the process that sends');
    t.is((await v.client.play(URL_PATH)).status, 200);
    t.true(await arrivingWithin(v, 400) > 0, 'PLAY resumed it');
    await untilStatus(p, (x) => x.processPair?.state === 'Secondary', 'p follows s');

    const second = await admin(p, (c) => c.request('pair_switch', {}));
    t.like(second, { role: 'primary', peerPid: s.child.pid, sessions: 1 }, 'switched back, asked of the standby');
    t.is((await v.client.getParameter(URL_PATH)).status, 200, 'keep-alive on the viewer\'s own connection, after the second switch');
    t.true(await arrivingWithin(v, 300) > 0, 'still streaming after the second switch');
    t.is((await v.client.teardown(URL_PATH)).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    t.is(await arrivingWithin(v, 400), 0, 'TEARDOWN ended the stream');
    await untilStatus(p, (x) => x.sessions === 0, 'no session on p');
    await untilStatus(s, (x) => x.sessions === 0, 'no session on s');
    t.false(v.client.closed, 'the viewer\'s connection stayed open through both switches');
  } finally {
    await v.client.release();
    await v.receiver.close();
  }
});

for (const then of ['switch back', 'SIGKILL'] as const) {
  const title = then === 'switch back'
    ? 'pair switch with RTP on the viewer\'s RTSP connection (GStreamer over TCP): the other process writes on in the same wire, there and back; the capture is the asset byte for byte, and its TEARDOWN is answered'
    : 'pair switch with RTP on the viewer\'s RTSP connection, then a SIGKILL of the new primary: the old one, its standby, claims the wire it made and writes on; the capture is the asset byte for byte';
  test.serial(title, async (t) => {
    const pair = await pairSetup(t, { logLevel: 'debug' });
    const p = await pair.start('primary', 'p');
    const s = await pair.start('standby', 's');
    await untilStatus(s, (x) => x.processPair?.state === 'Secondary', 'Secondary');
    const out = path.join(pair.dir, 'gst-tcp.ts');
    const gst = startGstreamer(pair.rtspPort, URL_PATH, 'tcp', out);
    await untilStatus(s, (x) => x.sessions === 1, 'GStreamer\'s session followed');
    await new Promise((r) => setTimeout(r, 1000));
    t.regex(await pairSwitch(p), /this process is the standby now/);
    await until(p, (x) => x.processPair?.state === 'Secondary', 'p follows s');
    await new Promise((r) => setTimeout(r, 1000));
    if (then === 'switch back') {
      t.like(await admin(p, (c) => c.request('pair_switch', {})), { role: 'primary', sessions: 1 }, 'and back, asked of the standby');
    } else {
      s.child.kill('SIGKILL');
      await until(p, (x) => x.processPair?.state === 'Secondary_No_Primary', 'p took over');
    }
    // p answers its TEARDOWN, primary again.
    await checkGstreamerCapture(t, await gst, out, sample.bytes, p, then === 'switch back' ? 'across both switches' : 'across the switch and the kill');
    t.regex(p.output(), /sending and the RTSP connections handed over/, 'p handed over at the switch');
    if (then === 'SIGKILL') t.regex(p.output(), /"wires":1,"unclaimed":0[^\n]*\(takeover thread\)/, 'p\'s takeover thread claimed the wire it had made');
    await untilStatus(p, (x) => x.sessions === 0, 'the session closed by the TEARDOWN');
  });
}
