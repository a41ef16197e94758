// Claims of the README that only a running engine can show, each with real
// receivers on 127.0.0.1: one source address and port whichever path sends,
// twenty sessions through a failover, the data paths' scheduling policy as
// /proc shows it, and what the stream does after a time with no sending path.

import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import type { Engine, FailoverEvent, PlayResult, SessionInfo } from '../src/engine/engine.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { checkRtpStream, loadSample, sleep, startEngine, until, waitForRecovery, type SampleAsset } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { expectedDatagrams, largestGapMs, minDatagrams } from './helpers/stream-pacing.js';
import { type ThreadSched, parseTaskStat } from './helpers/thread-sched.js';

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

interface Viewer {
  readonly receiver: UdpReceiver;
  readonly session: SessionInfo;
  readonly play: PlayResult;
  readonly playedAtMs: number;
}

async function openViewers(engine: Engine, count: number, receivers: UdpReceiver[]): Promise<Viewer[]> {
  const viewers: Viewer[] = [];
  for (let i = 0; i < count; i++) {
    const receiver = await UdpReceiver.open();
    receivers.push(receiver);
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    viewers.push({ receiver, session, play: await engine.play(session.id), playedAtMs: Date.now() });
  }
  return viewers;
}

/** Pause, let the last datagrams land, and hold the stream against the asset and its pace. */
async function finish(t: { true: (v: boolean, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, engine: Engine, v: Viewer, label: string): Promise<void> {
  engine.pause(v.session.id);
  const playedMs = Date.now() - v.playedAtMs;
  await v.receiver.waitForQuiet(150, 5000);
  const sent = engine.getSession(v.session.id)!.sent;
  const check = checkRtpStream(v.receiver.packets, v.session, v.play, sample);
  const minimum = minDatagrams(sample, playedMs);
  t.true(v.receiver.datagrams.length >= minimum, `${label}: received ${v.receiver.datagrams.length}, at least ${minimum} for ${playedMs} ms at ${sample.asset.bitrate} bit/s`);
  t.deepEqual(
    { received: v.receiver.datagrams.length, lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched },
    { received: sent, lost: 0, duplicated: 0, mismatched: 0 },
    `${label}: ${check.firstMismatch ?? ''}`,
  );
}

test.serial('every datagram comes from the session\'s source address and port, whichever path sends, across a crash and manual switches', async (t) => {
  const engine = await startEngine();
  const receivers: UdpReceiver[] = [];
  try {
    const [viewer] = await openViewers(engine, 1, receivers);
    const source = `${viewer.session.source.address}:${viewer.session.source.rtpPort}`;
    const sentBefore = engine.status().paths.map((p) => p.sent);
    await sleep(300);
    const switches = engine.status().switches;
    engine.injectFault(engine.status().active!, 'crash');
    await waitForRecovery(engine, switches);
    await sleep(200);
    await engine.switchover();
    await sleep(200);
    await engine.switchover();
    await sleep(200);
    await finish(t, engine, viewer, 'stream');
    const sentBy = engine.status().paths.map((p, i) => p.sent - sentBefore[i]);
    t.true(sentBy.every((n) => n > 20), `both paths sent this stream: ${sentBy.join(' / ')}`);
    const sources = new Map<string, number>();
    for (const d of viewer.receiver.datagrams) sources.set(d.from, (sources.get(d.from) ?? 0) + 1);
    t.deepEqual([...sources], [[source, viewer.receiver.datagrams.length]], 'one source for the whole stream: the one SETUP announced');
  } finally {
    for (const r of receivers) await r.close();
    await engine.close();
  }
});

test.serial('twenty sessions through a failover of the sending path: each lossless, without duplicates, at its pace', async (t) => {
  const engine = await startEngine();
  const failovers: FailoverEvent[] = [];
  engine.on('failover', (e: FailoverEvent) => failovers.push(e));
  const receivers: UdpReceiver[] = [];
  try {
    const viewers = await openViewers(engine, 20, receivers);
    await sleep(600);
    const switches = engine.status().switches;
    const victim = engine.status().active!;
    engine.injectFault(victim, 'crash');
    await waitForRecovery(engine, switches);
    await sleep(800);
    t.true(failovers.some((f) => f.pathName === victim && f.cause === 'exit'), JSON.stringify(failovers.map((f) => `${f.pathName}:${f.cause}`)));
    for (const [i, v] of viewers.entries()) await finish(t, engine, v, `session ${i}`);
    // Pacing: a failover switches within a millisecond; a stall of a quarter second is not a failover a viewer misses.
    const gaps = viewers.map((v) => largestGapMs(v.receiver.datagrams));
    t.log(`largest gap per session (ms): ${gaps.map((g) => g.toFixed(1)).join(' ')}`);
    t.true(Math.max(...gaps) < 250, `largest gap ${Math.max(...gaps).toFixed(1)} ms`);
  } finally {
    for (const r of receivers) await r.close();
    await engine.close();
  }
});

/** Every thread of this process, with its scheduling. */
function threads(): Map<number, ThreadSched> {
  const out = new Map<number, ThreadSched>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.set(Number(tid), parseTaskStat(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function withRealtime<T>(mode: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.TWINFRAME_REALTIME;
  if (mode === undefined) delete process.env.TWINFRAME_REALTIME;
  else process.env.TWINFRAME_REALTIME = mode;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TWINFRAME_REALTIME;
    else process.env.TWINFRAME_REALTIME = before;
  }
}

const root = process.getuid?.() === 0;
(root ? test.serial : test.skip)('as root with realtime on, while a session streams /proc shows both data paths at SCHED_FIFO 10 and the supervisor above them, a restarted path too; idle, all three are ordinary threads', async (t) => {
  const fifoBefore = [...threads().values()].filter((s) => s.policy === 1).length;
  const engine = await withRealtime(undefined, () => startEngine());
  const receivers: UdpReceiver[] = [];
  try {
    const fifoThreads = (): ThreadSched[] => [...threads().values()].filter((s) => s.policy === 1);
    // Idle: nothing is due, so no thread keeps real-time priority (relaxThreadPriority).
    await until(() => fifoThreads().length === fifoBefore, 'the idle threads to give real-time priority up', 5000);
    const [viewer] = await openViewers(engine, 1, receivers);
    await until(() => fifoThreads().length - fifoBefore === 3, 'two paths and the supervisor at SCHED_FIFO while a session streams', 5000);
    const tids = engine.status().paths.map((p) => p.threadId!);
    for (const tid of tids) t.like(threads().get(tid), { policy: 1, rtPriority: 10 }, `path thread ${tid}`);
    const fifo = fifoThreads();
    t.is(fifo.length - fifoBefore, 3, 'two paths and the supervisor');
    t.is(fifo.filter((s) => s.rtPriority === 11).length, 1, 'the supervisor one priority above the paths');
    const switches = engine.status().switches;
    engine.injectFault('a', 'crash');
    await waitForRecovery(engine, switches);
    const fresh = engine.status().paths[0];
    t.is(fresh.incarnation, 2);
    await until(() => threads().get(fresh.threadId!)?.policy === 1, 'the restarted path at SCHED_FIFO', 5000);
    t.like(threads().get(fresh.threadId!), { policy: 1, rtPriority: 10 });
    engine.pause(viewer.session.id);
    await until(() => fifoThreads().length === fifoBefore, 'the threads to give real-time priority up once nothing is due', 5000);
  } finally {
    await engine.close();
    for (const r of receivers) await r.close();
  }
});

test.serial('with TWINFRAME_REALTIME=off, /proc shows the data paths and the supervisor at SCHED_OTHER', async (t) => {
  const fifoBefore = [...threads().values()].filter((s) => s.policy !== 0).length;
  const engine = await withRealtime('off', () => startEngine());
  try {
    for (const p of engine.status().paths) t.like(threads().get(p.threadId!), { policy: 0, rtPriority: 0 }, `path ${p.path}`);
    t.is([...threads().values()].filter((s) => s.policy !== 0).length, fifoBefore, 'no real-time thread was added');
  } finally {
    await engine.close();
  }
});

test.serial('the kernel knows each thread by its role: /proc names the data paths, their readers and the supervisor', async (t) => {
  const comm = (tid: number | string): string => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
  const named = (): string[] => readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [comm(tid)];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
  const engine = await startEngine();
  try {
    for (const p of engine.status().paths) t.is(comm(p.threadId!), `tf-path-0${p.path}`);
    // Readers name themselves as they start; the paths start their loops only once their reader runs.
    const names = named();
    for (const name of ['tf-read-0a', 'tf-read-0b', 'tf-supervisor']) t.true(names.includes(name), `${name} in ${names.join(' ')}`);
  } finally {
    await engine.close();
  }
});

test.serial('after both paths were down, the stream resumes at the next sequence number and payload, its RTP clock moved on by the outage, paced, not in a burst', async (t) => {
  const engine = await startEngine();
  const failovers: FailoverEvent[] = [];
  engine.on('failover', (e: FailoverEvent) => failovers.push(e));
  const receivers: UdpReceiver[] = [];
  try {
    const [v] = await openViewers(engine, 1, receivers);
    await sleep(400);
    const switches = engine.status().switches;
    // Both at once: neither can take over from the other, nobody sends until a restarted path is started.
    engine.injectFault('a', 'crash');
    engine.injectFault('b', 'crash');
    await until(() => failovers.some((f) => f.pathName === 'a') && failovers.some((f) => f.pathName === 'b'), 'both paths to fail', 5000);
    t.true(failovers.some((f) => f.wasActive && f.switchedTo === undefined), `the sender failed with no ready twin: ${JSON.stringify(failovers.map((f) => [f.pathName, f.cause, f.switchedToName]))}`);
    await waitForRecovery(engine, switches);
    await sleep(600);
    engine.pause(v.session.id);
    await v.receiver.waitForQuiet(150, 5000);

    const packets = v.receiver.packets;
    const arrivals = v.receiver.datagrams.map((d) => Number(d.arrivalNs) / 1e6);
    // The outage: the largest gap between arrivals.
    let at = 1;
    for (let i = 1; i < arrivals.length; i++) if (arrivals[i] - arrivals[i - 1] > arrivals[at] - arrivals[at - 1]) at = i;
    const outageMs = arrivals[at] - arrivals[at - 1];
    t.log(`outage ${outageMs.toFixed(1)} ms at datagram ${at}`);
    t.true(outageMs > 50, `nobody sent for a while: ${outageMs.toFixed(1)} ms`);

    // Sequence numbers and payloads: continuous across the outage, every datagram once.
    const seqCheck = checkRtpStream(packets, v.session, v.play, sample);
    t.deepEqual({ received: packets.length, lost: seqCheck.lost, duplicated: seqCheck.duplicated, reordered: seqCheck.reordered }, { received: engine.getSession(v.session.id)!.sent, lost: 0, duplicated: 0, reordered: 0 });
    const before = checkRtpStream(packets.slice(0, at), v.session, v.play, sample);
    t.is(before.mismatched, 0, `before the outage the play's clock holds: ${before.firstMismatch}`);
    // After: a new clock from the first datagram after the outage, exact from there on.
    const first = packets[at];
    const firstPacket = v.play.startPacket + 7 * (((first.sequence - v.play.seq) & 0xffff));
    const restarted: PlayResult = { seq: first.sequence, rtptime: first.timestamp, startPacket: firstPacket, startTimeMs: 0 };
    const after = checkRtpStream(packets.slice(at), v.session, restarted, sample);
    t.is(after.mismatched, 0, `after the outage payloads follow on and timestamps follow the new clock: ${after.firstMismatch}`);
    // The clock jumped by the time nobody sent (it follows the wall clock), not by the asset's time.
    const unchangedTs = (v.play.rtptime + sample.times[firstPacket] - sample.times[v.play.startPacket]) >>> 0;
    const jumpMs = (((first.timestamp - unchangedTs) | 0)) / 90;
    t.log(`RTP clock moved on ${jumpMs.toFixed(1)} ms over an arrival gap of ${outageMs.toFixed(1)} ms`);
    t.true(Math.abs(jumpMs - outageMs) < 60, `timestamp jump ${jumpMs.toFixed(1)} ms vs outage ${outageMs.toFixed(1)} ms`);
    // Paced from the restart: no burst of the backlog the outage left.
    const burst = arrivals.slice(at).filter((ms) => ms - arrivals[at] < 100).length;
    const paced = expectedDatagrams(sample.asset.bitrate, 100);
    t.true(burst <= 3 * paced + 5, `${burst} datagrams in the first 100 ms after the restart (paced: ~${paced.toFixed(0)}; the backlog was ~${expectedDatagrams(sample.asset.bitrate, outageMs).toFixed(0)})`);
  } finally {
    for (const r of receivers) await r.close();
    await engine.close();
  }
});

leakCheck(test);
