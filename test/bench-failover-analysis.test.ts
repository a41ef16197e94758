// The failover benchmark's analysis (bench/failover/analysis.ts) on a synthetic
// phase: one session of 400 datagrams, one due every millisecond, each arriving
// 0.2 ms after its schedule, except around one hang of the sending path at
// 1350 ms: datagrams 350–354 held back until 1356.2 ms (a 7 ms gap), datagram
// 360 lost, datagram 370 received twice; a handover away from the victim at
// 1351 ms, its failover switch at 1353 ms. The counts, the switch, lateness and
// gap figures and the loss/duplicate placement must come out exactly so.

import test from 'ava';
import { analyse } from '../bench/failover/analysis.js';
import type { AssetTiming, EventRecord, FaultRecord, HandoverRecord, PhaseRun, Segment, SocketData, StreamRec } from '../bench/failover/model.js';
import { mulberry32 } from '../bench/lib.js';
import { TICKS_HZ } from '../src/mpegts/packet.js';
import { TS_PACKETS_PER_DATAGRAM } from '../src/rtp/packetizer.js';
import { leakCheck } from './helpers/leak-check.js';

const DATAGRAMS = 400;
const START_MS = 1000;
const INITIAL_SEQ = 65_500; // the sequence numbers wrap inside the stream
const FAULT_MS = 1350;

/** Datagram d is due at START_MS + d ms: its packets' PCR times step 90 ticks per datagram. */
const timing: AssetTiming = {
  packetCount: DATAGRAMS * TS_PACKETS_PER_DATAGRAM,
  times: Uint32Array.from({ length: DATAGRAMS * TS_PACKETS_PER_DATAGRAM }, (_, p) => Math.floor(p / TS_PACKETS_PER_DATAGRAM) * (TICKS_HZ / 1000)),
};

const segment: Segment = { startCursor: 0, play: { seq: INITIAL_SEQ, rtptime: 0, startPacket: 0, startTimeMs: START_MS }, reason: 'first' };

/** Arrivals in arrival order: [cursor, arrival ms]. */
function arrivals(): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let d = 0; d < DATAGRAMS; d++) {
    if (d === 360) continue; // lost
    const due = START_MS + d;
    out.push([d, d >= 350 && d <= 354 ? FAULT_MS + 6.2 : due + 0.2]);
    if (d === 370) out.push([d, due + 0.4]); // its copy
  }
  return out;
}

function socketData(): SocketData {
  const list = arrivals();
  return {
    sock: 0, port: 5000, count: list.length,
    seq: Uint16Array.from(list, ([c]) => (INITIAL_SEQ + c) & 0xffff),
    at: Float64Array.from(list, ([, at]) => at),
    mismatched: 0, firstMismatch: undefined, checked: list.length, unplaced: 0, malformed: 0, segments: [segment], inferredRebases: 0,
  };
}

function phase(): PhaseRun {
  const stream: StreamRec = { sock: 0, gen: 0, info: { id: 's1', ssrc: 1234, initialSeq: INITIAL_SEQ }, segments: [segment], finalSent: DATAGRAMS };
  const failover: EventRecord = {
    pathName: 'a', cause: 'heartbeat', wasActive: false, switchedToName: 'b', failedAtMs: FAULT_MS, detectedAtMs: FAULT_MS + 2,
    switchedAtMs: FAULT_MS + 3, switchLatencyMs: 3, receivedAtMs: FAULT_MS + 4, gen: 0,
  };
  const handover: HandoverRecord = { from: 'a', to: 'b', lateMs: 0.8, atMs: FAULT_MS + 1, receivedAtMs: FAULT_MS + 2, gen: 0 };
  const fault: FaultRecord = {
    i: 0, gen: 0, kind: 'hang', target: 'active', victim: 'a', expectedCause: 'heartbeat', injectedAtMs: FAULT_MS - 0.5,
    victimAgeMs: 5000, partnerAgeMs: 5000, events: [failover], handovers: [handover], matched: failover, protectedAtMs: FAULT_MS + 50, failure: undefined,
  };
  return {
    sessions: 1, streams: [stream], data: [socketData()], faults: [fault],
    baselineEvents: [], strayEvents: [], baselineHandovers: [], strayHandovers: [], engineHandovers: 1,
    baselineFromMs: START_MS, baselineToMs: START_MS + 300, stalls: [], replayErrors: [], problems: [], restarts: [],
    snmpBefore: { RcvbufErrors: 5 }, snmpAfter: { RcvbufErrors: 7 }, stealMs: 0, socketDrops: { drops: 0, found: 1 },
    receiver: { kind: 'thread', policy: 'normal', policyError: undefined, recvBuffer: [1 << 22] }, enginePolicies: [],
    engineSentByPaths: DATAGRAMS, heartbeat: { periodUs: 2000, maxMissed: 5 }, deadlineHit: false,
  };
}

test('totals: one loss and one duplicate among 400 datagrams, across a sequence-number wrap', (t) => {
  const { summary } = analyse(phase(), timing, mulberry32(1));
  const totals = summary.totals;
  t.is(totals.expected, DATAGRAMS);
  t.is(totals.received, DATAGRAMS); // 399 distinct + 1 copy
  t.is(totals.lost, 1);
  t.is(totals.duplicated, 1);
  t.is(totals.reordered, 0);
  t.is(totals.mismatched, 0);
  t.is(totals.beyondCursor, 0);
  t.is(totals.extraSends, 0);
  t.is(totals.kernelRcvbufErrors, 2);
  t.is(totals.falseFailovers, 0);
  t.deepEqual(summary.lostDetail.map((l) => [l.cursor, l.scheduleMs, l.nearestFault, l.fromFaultMs]), [[360, START_MS + 360, 0, 10]]);
  t.is(summary.dupDetail.length, 1);
  t.is(summary.dupDetail[0].cursor, 370);
  t.deepEqual(summary.dupDetail[0].arrivals.map((a) => Math.round(a * 10) / 10), [1370.2, 1370.4]);
});

test('the fault: switched by the handover 1 ms after it, first datagram 6.2 ms late, a 7 ms gap', (t) => {
  const { faults, summary } = analyse(phase(), timing, mulberry32(1));
  t.is(faults.length, 1);
  const f = faults[0];
  t.is(f.switchedBy, 'handover');
  t.is(f.switchedTo, 'b');
  t.is(f.switchMs, 1);
  t.is(f.detectMs, 2);
  t.is(f.recoveryMs, 50);
  t.false(f.wrongCause);
  t.false(f.youngVictim);
  t.is(round(f.lateWorstMs), 6.2);
  t.is(f.lateWorstDueAfterFaultMs, 0);
  t.deepEqual(f.lateWorstSeriesMs.map(round), [6.2, 5.2, 4.2, 3.2, 2.2, 0.2]);
  t.is(f.lateSkipped, 0);
  t.is(round(f.gapWorstMs), 7);
  t.deepEqual(f.unexplainedHandovers, []);

  t.is(summary.kinds.length, 1);
  const k = summary.kinds[0];
  t.like(k, { kind: 'hang', target: 'active', n: 1, failures: 0, falseFailovers: 0, switchedByHandover: 1, unexplainedHandovers: 0, youngVictims: 0 });
  t.is(k.switchMs.p50, 1);
  t.false(k.targetLateP50, 'a 6.2 ms late first datagram misses the 1 ms median target');
  t.true(k.targetLateP99);
  t.like(summary.totals.handovers, { events: 1, engineCounted: 1, explained: 1, unexplained: 0 });
});

test('the baseline: every instant sees datagrams 0.2 ms late and 1 ms apart', (t) => {
  const { summary } = analyse(phase(), timing, mulberry32(1));
  const b = summary.baseline;
  t.is(b.instants, 100);
  t.is(round(b.lateMs.p50), 0.2);
  t.is(round(b.lateMs.max), 0.2);
  t.is(round(b.gapMs.max), 1);
  t.is(b.failovers, 0);
});

test('a failover with the wrong cause and one more failover after the fault are false failovers', (t) => {
  const run = phase();
  const fault = run.faults[0];
  const wrong: EventRecord = { ...fault.events[0], cause: 'exit' };
  const extra: EventRecord = { ...fault.events[0], pathName: 'b', wasActive: true, switchedToName: undefined, receivedAtMs: FAULT_MS + 20 };
  const faulty: PhaseRun = { ...run, faults: [{ ...fault, events: [wrong, extra], matched: wrong }] };
  const { summary } = analyse(faulty, timing, mulberry32(1));
  t.like(summary.totals.falseBreakdown, { wrongCause: 1, extraInFaultWindow: 1, extraWhilePartnerRespawning: 1, extraSwitchedToNobody: 1 });
  t.is(summary.totals.falseFailovers, 2);
});

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

leakCheck(test);
