// K = 2 pairs of data paths in one engine: sessions spread over the pairs, both
// pairs stream, a failover of every fault kind on one pair is lossless (a real
// UDP receiver gets every datagram, once, byte for byte) while the other pair's
// sessions do not notice (no gap beyond the pacing bound, nothing lost, its
// failover state untouched), and the stream limits hold for the whole server.

import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { FailureFaultKind } from '../src/shared/commands.js';
import type { FailureCause } from '../src/shared/layout.js';
import type { Engine, FailoverEvent, HandoverEvent, PlayResult, SessionInfo } from '../src/engine/engine.js';
import { SessionTable } from '../src/engine/session-table.js';
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

interface Stream {
  readonly receiver: UdpReceiver;
  readonly session: SessionInfo;
  play?: PlayResult;
}

async function openStreams(engine: Engine, count: number): Promise<Stream[]> {
  const streams: Stream[] = [];
  for (let i = 0; i < count; i++) {
    const receiver = await UdpReceiver.open();
    try {
      const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
      streams.push({ receiver, session });
    } catch (err) {
      await receiver.close();
      throw err;
    }
  }
  return streams;
}

async function closeStreams(engine: Engine, streams: readonly Stream[]): Promise<void> {
  for (const s of streams) {
    engine.closeSession(s.session.id);
    await s.receiver.close();
  }
}

/** Pause every stream and hold what each receiver got against the asset: every datagram, once, in order, paced. */
async function assertLossless(t: ExecutionContext, engine: Engine, streams: readonly Stream[], playedAt: number, gapFrom: number): Promise<void> {
  for (const s of streams) engine.pause(s.session.id);
  const pausedAt = nowMs();
  for (const s of streams) {
    await s.receiver.waitForQuiet(150, 5000);
    const check = checkRtpStream(s.receiver.packets, s.session, s.play!, sample);
    const sent = engine.getSession(s.session.id)!.sent;
    const min = minDatagrams(sample, pausedAt - playedAt);
    const gap = largestGap(s.receiver.arrivalsMs(), gapFrom, pausedAt).maxMs;
    const what = `session on pair ${s.session.pair}`;
    t.true(s.receiver.datagrams.length >= min, `${what}: received ${s.receiver.datagrams.length}, at least ${min} expected`);
    t.is(s.receiver.datagrams.length, sent, `${what}: every datagram the cursor counts arrived`);
    t.true(gap < PACING_BOUND_MS, `${what}: largest gap ${gap.toFixed(1)} ms under ${PACING_BOUND_MS} ms`);
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched },
      { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, `${what}: ${check.firstMismatch ?? ''}`);
  }
}

test.serial('two pairs: sessions spread over both, both stream losslessly, status shows each pair', async (t) => {
  const engine = await startEngine({ pairs: 2 });
  const streams: Stream[] = [];
  try {
    t.is(engine.pairCount, 2);
    streams.push(...await openStreams(engine, 4));
    t.deepEqual(streams.map((s) => s.session.pair), [0, 1, 0, 1], 'each new session went to the least-loaded pair');
    const before = engine.status().pairs.map((p) => p.paths.reduce((sum, x) => sum + x.sent, 0));
    for (const s of streams) s.play = await engine.play(s.session.id);
    const playedAt = nowMs();
    await sleep(1000);
    await assertLossless(t, engine, streams, playedAt, playedAt);
    const status = engine.status();
    t.is(status.pairs.length, 2);
    t.is(status.sessions, 4);
    for (const p of status.pairs) {
      t.deepEqual(p.paths.map((x) => x.named).sort(), ['Primary', 'Secondary'], `pair ${p.pair} protected`);
      t.is(p.sessions, 2, `pair ${p.pair} carries two sessions`);
      const sent = p.paths.reduce((sum, x) => sum + x.sent, 0) - before[p.pair];
      const ofPair = streams.filter((s) => s.session.pair === p.pair).reduce((sum, s) => sum + engine.getSession(s.session.id)!.sent, 0);
      t.is(sent, ofPair, `pair ${p.pair}'s paths sent exactly its sessions' datagrams, nothing twice`);
    }
    // The top level is pair 0's view, as with one pair.
    t.is(status.active, status.pairs[0].active);
    t.deepEqual(status.paths, status.pairs[0].paths);
    t.deepEqual(engine.listSessions().map((s) => s.pair).sort(), [0, 0, 1, 1]);
  } finally {
    await closeStreams(engine, streams);
    await engine.close();
  }
});

test.serial('placement: sessions closed on one pair make it the least loaded, so new ones go there; each session stays on its pair', async (t) => {
  const engine = await startEngine({ pairs: 2 });
  const streams: Stream[] = [];
  try {
    streams.push(...await openStreams(engine, 4));
    t.deepEqual(streams.map((s) => s.session.pair), [0, 1, 0, 1]);
    const onPair0 = streams.filter((s) => s.session.pair === 0);
    await closeStreams(engine, onPair0);
    streams.splice(0, streams.length, ...streams.filter((s) => !onPair0.includes(s)));
    streams.push(...await openStreams(engine, 3));
    t.deepEqual(streams.map((s) => s.session.pair), [1, 1, 0, 0, 0], 'the emptied pair took new sessions until it carried as much, then the lower index wins the tie');
    for (const s of streams) t.is(engine.getSession(s.session.id)!.pair, s.session.pair);
  } finally {
    await closeStreams(engine, streams);
    await engine.close();
  }
});

test('placement weighs bit rate first, then the number of sessions, then the lower pair; a refused admission frees its place', (t) => {
  const table = new SessionTable(4, 2, { maxStreams: 100, mpegBandwidthKbps: 500_000, serverBandwidthKbps: 1_000_000 });
  const pairOf = (bitrate: number): number => table.admit(bitrate).admission.pair;
  t.is(pairOf(3_000_000), 0, 'empty pairs: the lower one');
  t.is(pairOf(1_000_000), 1);
  t.is(pairOf(1_000_000), 1, 'pair 1 carries 1 Mbit/s against 3: it gets the next one too');
  const { admission, slot } = table.admit(1_000_000);
  t.is(admission.pair, 1);
  table.refuse(admission, slot);
  t.is(pairOf(1_000_000), 1, 'the refused admission no longer loads pair 1');
  t.is(pairOf(1_000_000), 0, '3 Mbit/s each: pair 0 has fewer sessions');
  t.is(pairOf(5_000_000), 1, 'pair 1 carries 3 Mbit/s against 4: its fourth and last slot');
  t.is(pairOf(1_000_000), 0, 'pair 1 is full: pair 0 takes the rest, though it carries more');
  t.is(pairOf(1_000_000), 0);
  t.like(t.throws(() => table.admit(1_000_000)), { code: 'TF_SESSION_LIMIT' }, 'every slot of both pairs taken');
});

test.serial('the stream limits are for the whole server, over every pair', async (t) => {
  const engine = await startEngine({ pairs: 2, limits: { maxStreams: 3, mpegBandwidthKbps: 500_000, serverBandwidthKbps: 1_000_000 } });
  const streams: Stream[] = [];
  try {
    streams.push(...await openStreams(engine, 3));
    const err = await t.throwsAsync(openStreams(engine, 1));
    t.like(err, { code: 'TF_SESSION_LIMIT' });
    t.is(engine.listSessions().length, 3);
    engine.setLimits({ maxStreams: 100, mpegBandwidthKbps: Math.floor((3 * sample.asset.bitrate) / 1000) + 1, serverBandwidthKbps: 1_000_000 });
    const bandwidth = await t.throwsAsync(openStreams(engine, 1));
    t.like(bandwidth, { code: 'TF_BANDWIDTH_LIMIT' }, 'the bandwidth of both pairs\' sessions counts');
  } finally {
    await closeStreams(engine, streams);
    await engine.close();
  }
});

test.serial('operator commands act on the pair they name and no other', async (t) => {
  const engine = await startEngine({ pairs: 2 });
  try {
    const pair0 = engine.failoverPair(0);
    const active0 = engine.status().pairs[0].active;
    const active1 = engine.status().pairs[1].active!;
    const result = await engine.switchover(1);
    t.deepEqual(result, { pair: 1, from: active1, to: result.to });
    t.not(result.to, active1);
    t.is(engine.status().pairs[1].active, result.to);
    t.is(engine.status().pairs[0].active, active0, 'pair 0 still sends from the same path');
    t.deepEqual(engine.failoverPair(0), pair0, 'pair 0\'s state machine untouched');
    t.like(await t.throwsAsync(engine.switchover(2)), { code: 'TF_ADMIN_BAD_REQUEST' });
    t.like(t.throws(() => engine.injectFault('a', 'crash', 5)), { code: 'TF_ADMIN_BAD_REQUEST' });
  } finally {
    await engine.close();
  }
});

const causeOfKind: Record<FailureFaultKind, FailureCause> = {
  crash: 'exit', exception: 'exception', hang: 'heartbeat', socket: 'socket', disk: 'disk', temperature: 'temperature',
};

(Object.keys(causeOfKind) as FailureFaultKind[]).forEach((kind, i) => {
  const faulted = i % 2; // both pairs take their turn
  const other = 1 - faulted;
  test.serial(`a ${kind} fault of pair ${faulted}'s sender is lossless and pair ${other}'s session does not notice`, async (t) => {
    const engine = await startEngine({ pairs: 2 });
    const failovers: FailoverEvent[] = [];
    const handovers: HandoverEvent[] = [];
    engine.on('failover', (e) => failovers.push(e));
    engine.on('handover', (h) => handovers.push(h));
    const streams: Stream[] = [];
    try {
      streams.push(...await openStreams(engine, 2));
      t.deepEqual(streams.map((s) => s.session.pair), [0, 1]);
      for (const s of streams) s.play = await engine.play(s.session.id);
      const playedAt = nowMs();
      await sleep(300);
      const otherBefore = { machine: engine.failoverPair(other), status: engine.status().pairs[other] };
      const active = engine.status().pairs[faulted].active!;
      const injectedAt = nowMs();
      engine.injectFault(active, kind, faulted);
      await until(() => failovers.some((f) => f.pair === faulted && f.pathName === active), `pair ${faulted}'s path ${active} to fail`, 3000);
      await engine.waitUntilProtected(10_000);
      await sleep(300);
      const mine = failovers.find((f) => f.pair === faulted && f.pathName === active);
      t.is(mine?.cause, causeOfKind[kind], JSON.stringify(failovers));
      const movedBySwitch = mine !== undefined && mine.wasActive && mine.switchedTo !== undefined;
      const movedByHandover = handovers.some((h) => h.pair === faulted && h.from === active);
      t.true(movedBySwitch || movedByHandover, `sending moved to the twin: ${JSON.stringify({ failovers, handovers })}`);
      await assertLossless(t, engine, streams, playedAt, injectedAt);

      // The other pair: no failure, and unless the loaded machine made its sender late
      // (a lossless handover, or a late path failed for 'heartbeat'), nothing changed.
      const otherFailovers = failovers.filter((f) => f.pair === other);
      t.deepEqual(otherFailovers.filter((f) => f.cause !== 'heartbeat'), [], `pair ${other} had no failure`);
      const otherHandovers = handovers.filter((h) => h.pair === other);
      if (otherFailovers.length + otherHandovers.length > 0) {
        t.log(`pair ${other} was late on the loaded machine: ${JSON.stringify({ otherFailovers, otherHandovers })}`);
      } else {
        const after = engine.status().pairs[other];
        t.deepEqual(engine.failoverPair(other), otherBefore.machine, `pair ${other}'s state machine untouched`);
        t.deepEqual(after.paths.map((p) => p.incarnation), otherBefore.status.paths.map((p) => p.incarnation), `no path of pair ${other} restarted`);
        t.is(after.switches, otherBefore.status.switches, `pair ${other}'s ACTIVE never moved`);
        t.is(after.active, otherBefore.status.active);
        t.is(after.lastFailover, undefined);
      }
      t.is(engine.status().pairs[faulted].lastFailover?.pathName, active, 'the faulted pair shows its own failover');
    } finally {
      await closeStreams(engine, streams);
      await engine.close();
    }
  });
});

leakCheck(test);
