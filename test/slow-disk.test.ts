// The 'slow-disk' fault end to end, on the real engine and a real UDP receiver:
// each path reads ahead on its own reader thread, so a slow disk under one path
// reaches neither its loop nor its twin. A delay the read-ahead absorbs changes
// nothing; a longer one on the sender makes its standby, which holds the due
// datagram ready, take sending over (a handover: nobody fails); a slow disk under
// both paths is nobody's fault: the stream waits, nothing is lost.

import test, { type ExecutionContext } from 'ava';
import type { Engine, FailoverEvent, HandoverEvent } from '../src/engine/engine.js';
import { CHUNK_DATAGRAMS, RING_CHUNKS } from '../src/datapath/chunk-ring.js';
import { TS_PAYLOAD_BYTES } from '../src/rtp/packetizer.js';
import type { PathName } from '../src/shared/layout.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { checkRtpStream, loadSample, nowMs, sleep, startEngine, until, type SampleAsset } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { PACING_BOUND_MS, largestGap, minDatagrams } from './helpers/stream-pacing.js';

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

/** How long one chunk of the sample lasts when played, ms. */
function chunkMs(): number {
  return (CHUNK_DATAGRAMS * TS_PAYLOAD_BYTES * 8 * 1000) / sample.asset.bitrate;
}

interface Played {
  /** The sender when the fault was injected. */
  active: PathName;
  lost: number;
  duplicated: number;
  reordered: number;
  mismatched: number;
  received: number;
  sent: number;
  playedMs: number;
  /** Largest arrival gap from the fault to the pause. */
  gapAfterFaultMs: number;
  failovers: Array<{ path: string; cause: string }>;
  /** Handovers from the fault on (one before it, a late sender at start-up, says nothing of the disk). */
  handovers: HandoverEvent[];
  sentBy: { a: number; b: number };
}

/** Play one RTP session on a protected engine, run `fault` a while after the start, play on for `afterMs`. */
async function playWithFault(engine: Engine, fault: (active: PathName) => void, afterMs: number): Promise<Played> {
  const failovers: Array<{ path: string; cause: string }> = [];
  engine.on('failover', (e: FailoverEvent) => failovers.push({ path: e.pathName, cause: e.cause }));
  const handovers: HandoverEvent[] = [];
  engine.on('handover', (h: HandoverEvent) => handovers.push(h));
  await engine.waitUntilProtected(10_000);
  const receiver = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    try {
      const play = await engine.play(session.id);
      const playedAt = nowMs();
      await sleep(400);
      const sentBefore = sentByPath(engine);
      const faultAt = nowMs();
      const active = engine.status().active!;
      fault(active);
      await sleep(afterMs);
      engine.pause(session.id);
      const pausedAt = nowMs();
      await receiver.waitForQuiet(150, 5000);
      const sentAfter = sentByPath(engine);
      const check = checkRtpStream(receiver.packets, session, play, sample);
      return {
        active,
        lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched,
        received: receiver.datagrams.length,
        sent: engine.getSession(session.id)!.sent,
        playedMs: pausedAt - playedAt,
        gapAfterFaultMs: largestGap(receiver.arrivalsMs(), faultAt, pausedAt).maxMs,
        failovers, handovers: handovers.filter((h) => h.atMs >= faultAt),
        sentBy: { a: sentAfter.a - sentBefore.a, b: sentAfter.b - sentBefore.b },
      };
    } finally {
      engine.closeSession(session.id);
    }
  } finally {
    await receiver.close();
  }
}

function sentByPath(engine: Engine): { a: number; b: number } {
  const paths = engine.status().paths;
  return { a: paths.find((p) => p.path === 'a')!.sent, b: paths.find((p) => p.path === 'b')!.sent };
}

function twinOf(path: PathName): PathName {
  return path === 'a' ? 'b' : 'a';
}

/** Every datagram once, in order, byte for byte; no path failed (but for a loaded machine's late path, which can only be 'heartbeat'). */
function assertLossless(t: ExecutionContext, r: Played): void {
  t.deepEqual({ lost: r.lost, duplicated: r.duplicated, reordered: r.reordered, mismatched: r.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 });
  t.is(r.received, r.sent, 'every datagram the cursor counts arrived');
  t.deepEqual(r.failovers.filter((f) => f.cause !== 'heartbeat'), [], 'a slow disk fails nobody');
  if (r.failovers.length > 0) t.log(`failed without a fault (a late path on a loaded machine): ${JSON.stringify(r.failovers)}`);
}

test.serial('a slow disk the read-ahead absorbs loses nothing, fails nobody, and the stream keeps its pace', async (t) => {
  const engine = await startEngine();
  try {
    // Each read waits a third of the time its chunk plays: the reader keeps up, and the lead (3 to 4 chunks) absorbs the wait.
    const delayMs = Math.round(chunkMs() / 3);
    const r = await playWithFault(engine, (active) => engine.injectFault(active, 'slow-disk', 0, delayMs), 1500);
    const slow = r.active;
    assertLossless(t, r);
    t.true(r.received >= minDatagrams(sample, r.playedMs), `received ${r.received} in ${r.playedMs.toFixed(0)} ms`);
    t.true(r.gapAfterFaultMs < PACING_BOUND_MS, `largest gap after the fault ${r.gapAfterFaultMs.toFixed(1)} ms`);
    const fromSlow = r.handovers.filter((h) => h.from === slow);
    // A handover on a loaded machine is legal (lossless); the slow path still sent its share unless one happened.
    if (fromSlow.length === 0) t.true(r.sentBy[slow] > 0, `the slow path (${delayMs} ms per read) kept sending: ${JSON.stringify(r.sentBy)}`);
    else t.log(`handovers from the slow path (a loaded machine): ${JSON.stringify(fromSlow)}`);
  } finally {
    await engine.close();
  }
});

test.serial('a sender whose disk is slower than its read-ahead covers hands sending to its twin: nothing lost or repeated, the stream keeps its pace', async (t) => {
  const engine = await startEngine();
  try {
    // Each read waits longer than the whole read-ahead lasts.
    const delayMs = Math.round(3 * RING_CHUNKS * chunkMs());
    const r = await playWithFault(engine, (active) => engine.injectFault(active, 'slow-disk', 0, delayMs), 1500);
    const slow = r.active;
    t.log(JSON.stringify({ handovers: r.handovers, gap: r.gapAfterFaultMs, delayMs }));
    assertLossless(t, r);
    t.true(r.gapAfterFaultMs < PACING_BOUND_MS, `largest gap after the fault ${r.gapAfterFaultMs.toFixed(1)} ms (bound ${PACING_BOUND_MS})`);
    t.true(r.handovers.some((h) => h.from === slow && h.to === twinOf(slow)), `the slow sender ${slow} handed over to its twin: ${JSON.stringify(r.handovers)}`);
    t.is(engine.status().active, twinOf(slow), 'the twin sends now');
    // The twin, whose reads are not slowed, keeps sending: it is not handed back from.
    t.deepEqual(r.handovers.filter((h) => h.from === twinOf(slow)), [], 'no handover back to the slow path');
    t.true(r.sentBy[twinOf(slow)] >= minDatagrams(sample, 1000), `the twin sent ${r.sentBy[twinOf(slow)]} datagrams after the fault`);
    t.true(engine.status().paths.find((p) => p.path === slow)!.online, 'the slow path stays in service, as the standby');
  } finally {
    await engine.close();
  }
});

test.serial('a read that hangs under the standby leaves its twin, the sender, untouched, and the standby alive', async (t) => {
  const engine = await startEngine();
  try {
    // Longer than the test: a read that never returns.
    const delayMs = 60_000;
    let beatAtFault = 0;
    const r = await playWithFault(engine, (active) => {
      beatAtFault = engine.status().paths.find((p) => p.path === twinOf(active))!.heartbeat;
      engine.injectFault(twinOf(active), 'slow-disk', 0, delayMs);
    }, 1500);
    const sender = r.active;
    assertLossless(t, r);
    t.true(r.gapAfterFaultMs < PACING_BOUND_MS, `largest gap after the fault ${r.gapAfterFaultMs.toFixed(1)} ms`);
    t.deepEqual(r.handovers.filter((h) => h.from === sender), [], 'the sender was not handed over from: it had every datagram ready');
    t.is(r.sentBy[twinOf(sender)], 0, 'the slow standby sent nothing');
    const standby = engine.status().paths.find((p) => p.path === twinOf(sender))!;
    t.true(standby.online && standby.heartbeat !== beatAtFault, `the standby's loop runs on, online, while its reader waits: ${JSON.stringify(standby)}`);
  } finally {
    await engine.close();
  }
});

test.serial('a slow disk under both paths is nobody\'s fault: the stream waits, nobody fails, nothing is lost', async (t) => {
  const engine = await startEngine();
  try {
    const delayMs = Math.round(2 * RING_CHUNKS * chunkMs());
    const r = await playWithFault(engine, (active) => {
      engine.injectFault(active, 'slow-disk', 0, delayMs);
      engine.injectFault(twinOf(active), 'slow-disk', 0, delayMs);
    }, 2500);
    assertLossless(t, r);
    t.true(r.gapAfterFaultMs > chunkMs(), `the stream waited for the disk: largest gap ${r.gapAfterFaultMs.toFixed(1)} ms`);
    await until(() => engine.status().paths.every((p) => p.named === 'Primary' || p.named === 'Secondary'), 'both paths in service', 3000);
  } finally {
    await engine.close();
  }
});

leakCheck(test);
