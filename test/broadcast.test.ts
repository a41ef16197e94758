// Broadcasts end to end on 127.0.0.1 (unicast push; runs anywhere): a whole
// server carries a scheduled broadcast of the sample asset to a UDP receiver,
// byte for byte, through every fault kind (a restarted path picks the
// broadcast up and sends it after the next fault); a looped one plays through
// its loop point with RTP sequence numbers and timestamps continuous, the
// discontinuity flagged, ffmpeg's demuxer finding no continuity error and
// GStreamer playing it without a warning.

import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailureFaultKinds } from '../src/shared/commands.js';
import type { TwinframeConfigInput } from '../src/config/schema.js';
import { checkBroadcastStream, ffmpegDebugLog, gstreamerLog, packetOfPayload } from './helpers/broadcast-check.js';
import { SAMPLE_ASSET, loadSample, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { PACING_BOUND_MS, largestGap } from './helpers/stream-pacing.js';
import { startFileServer } from './helpers/media-server.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { parseCompound } from './helpers/rtcp.js';
import { RTCP_BYE, RTCP_SR } from '../src/rtsp/rtcp.js';
import { loopPlanOf } from '../src/broadcast/loop-source.js';
import { packetAdaptationFieldControl, packetDiscontinuity, packetPcr, packetPid } from '../src/mpegts/packet.js';
import type { TwinframeServer } from '../src/server.js';

leakCheck(test);

let sample: SampleAsset;
let tmp: string;
test.before(async () => {
  sample = await loadSample();
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-broadcast-'));
});
test.after.always(async () => {
  await sample?.cleanup();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

const MEDIA = path.dirname(SAMPLE_ASSET);
type BroadcastInput = NonNullable<TwinframeConfigInput['broadcasts']>[number];

async function withBroadcast(
  name: string,
  def: Omit<BroadcastInput, 'name' | 'to'>,
  fn: (ctx: { server: TwinframeServer; receiver: UdpReceiver; sessionId: string }) => Promise<void>,
): Promise<void> {
  const receiver = await UdpReceiver.open();
  const dir = await mkdtemp(path.join(tmp, `${name}-`));
  let server: TwinframeServer | undefined;
  try {
    server = await startFileServer(MEDIA, dir, { admin: { faultInjection: true }, broadcasts: [{ name, to: `127.0.0.1:${receiver.rtpPort}`, ...def }] });
    const manager = server.broadcasts;
    await until(() => manager.find(name)?.sessionId !== undefined || manager.list()[0]?.status === 'failed', `broadcast ${name} playing`, 10_000);
    const view = manager.list()[0];
    if (view.status === 'failed') throw new Error(`broadcast failed: ${view.error}`);
    await fn({ server, receiver, sessionId: manager.find(name)!.sessionId! });
  } finally {
    await server?.close();
    await receiver.close();
  }
}

test.serial('a scheduled broadcast reaches its receiver byte-exact through every fault kind; a restarted path carries it after the next fault', async (t) => {
  await withBroadcast('faults', { asset: '/sample.ts', loop: true, at: new Date(Date.now() - 500).toISOString() }, async ({ server, receiver, sessionId }) => {
    const { engine } = server;
    const session = engine.getSession(sessionId)!;
    t.is(session.broadcast, 'faults');
    await receiver.waitForCount(20);
    for (const kind of FailureFaultKinds) {
      // Each fault hits the sender; the next waits until the failed path was replaced and is online again.
      const target = engine.status().active!;
      const incarnation = (): number => engine.status().paths.find((p) => p.path === target)!.incarnation;
      const before = incarnation();
      engine.injectFault(target, kind);
      await until(() => incarnation() > before && engine.isProtected(), `recovery from ${kind}`, 15_000);
      const count = receiver.datagrams.length;
      await receiver.waitForCount(count + 20);
    }
    await server.broadcasts.apply([]); // removed: its session closes
    await receiver.waitForQuiet(150, 5000);
    const plan = await loopPlanOf(await server.catalog.resolve('/sample.ts'));
    const check = checkBroadcastStream(receiver.packets, session, sample, plan);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.duplicated, 0);
    t.is(check.mismatched, 0, check.firstMismatch);
    t.true(check.startPacket > 0, 'started where its schedule said (500 ms in), not at the beginning');
    t.is(engine.listSessions().length, 0);
  });
});

test.serial('a looped broadcast plays through its loop point: RTP continuous, discontinuity flagged with the new PCR, no continuity error for ffmpeg, no warning from GStreamer', async (t) => {
  // Scheduled so that the asset's end comes 1.5 s after it starts.
  const at = new Date(Date.now() - (sample.durationMs - 1500)).toISOString();
  await withBroadcast('loop', { asset: '/sample.ts', loop: true, at }, async ({ server, receiver, sessionId }) => {
    const session = server.engine.getSession(sessionId)!;
    const plan = await loopPlanOf(await server.catalog.resolve('/sample.ts'));
    // The sending path crashes just before the loop point: its twin goes on across it, losslessly.
    const loopAtMs = Date.parse(at) + sample.durationMs;
    await sleep(Math.max(0, loopAtMs - 30 - Date.now()));
    const before = server.engine.status().switches;
    server.engine.injectFault(server.engine.status().active!, 'crash');
    await until(() => server.engine.status().switches > before, 'the failover');
    const isHeader = (p: { payload: Buffer }): boolean => packetAdaptationFieldControl(p.payload, 0) === 2 && packetDiscontinuity(p.payload, 0);
    await until(() => receiver.packets.some(isHeader), 'the loop point', 15_000);
    const count = receiver.datagrams.length;
    await receiver.waitForCount(count + 200);
    await server.broadcasts.apply([]);
    await receiver.waitForQuiet(150, 5000);
    const packets = receiver.packets;
    const check = checkBroadcastStream(packets, session, sample, plan);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.mismatched, 0, check.firstMismatch);
    t.is(check.headers, 1, 'one loop header datagram (the sample has two PIDs besides PAT and PMT: four in all)');
    // Paced through the loop point (the reads of the asset's start are not waited for long).
    const gap = largestGap(receiver.arrivalsMs(), Number(receiver.datagrams[0].arrivalNs) / 1e6, Number(receiver.datagrams.at(-1)!.arrivalNs) / 1e6).maxMs;
    t.true(gap < PACING_BOUND_MS, `largest gap ${gap.toFixed(1)} ms`);
    // RTP timestamps never go back across the loop point.
    for (let i = 1; i < packets.length; i++) t.true(((packets[i].timestamp - packets[i - 1].timestamp) | 0) >= 0, `timestamp of seq ${packets[i].sequence} goes back`);
    // The header datagram: every PID of the asset, discontinuity flagged, the new PCR on the PCR PID.
    const header = packets.find(isHeader)!;
    const pids: number[] = [];
    for (let o = 0; o < header.payload.length; o += 188) {
      const pid = packetPid(header.payload, o);
      if (pid === 0x1fff) continue;
      pids.push(pid);
      t.true(packetDiscontinuity(header.payload, o), `discontinuity_indicator on PID ${pid}`);
      if (pid === plan.pcrPid) t.is(packetPcr(header.payload, o), plan.pcr27);
    }
    t.deepEqual(pids, [...plan.pids]);
    t.true(plan.pids.includes(plan.pcrPid));

    // ffmpeg's demuxer checks every PID's continuity counter (logged at debug level).
    const ts = Buffer.concat(packets.map((p) => p.payload));
    const capture = path.join(tmp, 'loop.ts');
    await writeFile(capture, ts);
    const log = await ffmpegDebugLog(capture);
    t.false(/Continuity check failed/.test(log), log.split('\n').filter((l) => /Continuity/.test(l)).slice(0, 5).join('\n'));
    // GStreamer's tsdemux and decoder play it through, without a warning.
    const gst = await gstreamerLog(capture);
    t.regex(gst, /Got EOS/);
    t.false(/WARNING|ERROR/.test(gst), gst.slice(0, 2000));
    // The same capture without the loop header: ffmpeg does see the counters jump (the check has teeth).
    const bare = Buffer.concat(packets.filter((p) => p !== header).map((p) => p.payload));
    await writeFile(capture, bare);
    t.true(/Continuity check failed/.test(await ffmpegDebugLog(capture)), 'without the header the loop point is a continuity error');
  });
});

test.serial('a broadcast scheduled ahead waits for its time, then plays the asset from its start', async (t) => {
  // Far enough ahead that a server start on a loaded machine (seconds) ends before it: else it starts mid-schedule.
  const atMs = Date.now() + 4000;
  await withBroadcast('later', { asset: '/sample.ts', at: new Date(atMs).toISOString() }, async ({ server, receiver, sessionId }) => {
    const session = server.engine.getSession(sessionId)!;
    await receiver.waitForCount(50);
    const first = receiver.datagrams[0];
    const arrivedMs = Date.now() - Number(process.hrtime.bigint() - first.arrivalNs) / 1e6;
    t.true(arrivedMs >= atMs - 50, `the first datagram came ${(atMs - arrivedMs).toFixed(0)} ms before its time`);
    await server.broadcasts.apply([]);
    await receiver.waitForQuiet(150, 5000);
    const check = checkBroadcastStream(receiver.packets, session, sample, undefined);
    t.is(check.startPacket, 0);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.mismatched, 0, check.firstMismatch);
  });
});

test.serial('a restarted path picks up a running broadcast and sends it after a switch, losslessly', async (t) => {
  await withBroadcast('pickup', { asset: '/sample.ts', loop: true }, async ({ server, receiver, sessionId }) => {
    const { engine } = server;
    const session = engine.getSession(sessionId)!;
    await receiver.waitForCount(20);
    const sender = engine.status().active!;
    const standby = sender === 'a' ? 'b' : 'a';
    const incarnation = (): number => engine.status().paths.find((p) => p.path === standby)!.incarnation;
    const before = incarnation();
    engine.injectFault(standby, 'crash');
    await until(() => incarnation() > before && engine.isProtected(), 'the standby restarted and synchronized', 15_000);
    t.is(engine.status().active, sender, 'the sender was not touched');
    await engine.switchover();
    t.is(engine.status().active, standby, 'the restarted path sends the broadcast now');
    const count = receiver.datagrams.length;
    await receiver.waitForCount(count + 50);
    await server.broadcasts.apply([]);
    await receiver.waitForQuiet(150, 5000);
    const plan = await loopPlanOf(await server.catalog.resolve('/sample.ts'));
    const check = checkBroadcastStream(receiver.packets, session, sample, plan);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.mismatched, 0, check.firstMismatch);
  });
});

test.serial('a broadcast without loop ends at the asset\'s end: its session closes, its status is ended', async (t) => {
  // Its end 3 s away: the server's start and the broadcast's own (~0.6 s, more on a loaded machine) must not eat it.
  const at = new Date(Date.now() - (sample.durationMs - 3000)).toISOString();
  await withBroadcast('once', { asset: '/sample.ts', at }, async ({ server, receiver, sessionId }) => {
    const session = server.engine.getSession(sessionId)!;
    await until(() => server.broadcasts.list()[0].status === 'ended', 'the end', 10_000);
    t.is(server.engine.listSessions().length, 0);
    t.is(server.broadcasts.find('once')!.sessionId, undefined);
    await receiver.waitForQuiet(150, 5000);
    const check = checkBroadcastStream(receiver.packets, session, sample, undefined);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.mismatched, 0, check.firstMismatch);
    const last = receiver.packets.at(-1)!;
    t.true(sample.bytes.subarray(sample.bytes.length - last.payload.length).equals(last.payload), 'the last datagram ends with the asset');
    // RTCP on the receiver's port + 1: sender reports, the last with a BYE counting every datagram and octet sent (the last datagram short).
    const reports = receiver.rtcpDatagrams.map((d) => parseCompound(d.data)).filter((parts) => parts[0]?.ssrc === session.ssrc);
    const bye = reports.at(-1);
    t.true(bye?.some((p) => p.type === RTCP_BYE), 'a BYE at the end');
    t.is(bye?.[0].type, RTCP_SR);
    t.is(bye?.[0].body.readUInt32BE(20), receiver.packets.length, 'its packet count');
    t.is(bye?.[0].body.readUInt32BE(24), receiver.packets.reduce((sum, p) => sum + p.payload.length, 0), 'its octet count');
  });
});

test.serial('a server restart resumes a broadcast at its scheduled position', async (t) => {
  const receiver = await UdpReceiver.open();
  const atMs = Date.now() - 4000;
  const def: BroadcastInput = { name: 'resume', asset: '/sample.ts', to: `127.0.0.1:${receiver.rtpPort}`, loop: true, at: new Date(atMs).toISOString() };
  try {
    for (let run = 0; run < 2; run++) {
      const dir = await mkdtemp(path.join(tmp, `resume-${run}-`));
      const server = await startFileServer(MEDIA, dir, { broadcasts: [def] });
      try {
        const from = receiver.datagrams.length;
        await receiver.waitForCount(from + 1, 15_000);
        const first = receiver.datagrams[from];
        const arrivedMs = Date.now() - (Number(process.hrtime.bigint() - first.arrivalNs) / 1e6);
        const scheduledMs = (arrivedMs - atMs) % sample.durationMs;
        const packet = packetOfPayload(sample, first.rtp!.payload, scheduledMs * 90);
        const playedMs = sample.times[packet] / 90;
        t.true(Math.abs(playedMs - scheduledMs) < 1000, `run ${run}: at ${playedMs.toFixed(0)} ms of the asset, the schedule says ${scheduledMs.toFixed(0)} ms`);
      } finally {
        await server.close();
      }
      await receiver.waitForQuiet(100, 5000);
      await sleep(1000); // the schedule moves on while no server runs
    }
  } finally {
    await receiver.close();
  }
});
