// Analysis of a phase: pure functions from what the receiver got (per-socket
// sequence numbers and arrival times) and what the bench recorded (segments,
// faults, failover and handover events) to counts (lost, duplicated, …), the
// per-fault measures (a) switch, (b) lateness, (c) gap, and their summaries.

import { FailureFaultKinds, type FailureFaultKind } from '../../src/shared/commands.js';
import { TICKS_PER_MS } from '../../src/mpegts/packet.js';
import { TS_PACKETS_PER_DATAGRAM } from '../../src/rtp/packetizer.js';
import { sequenceStats } from '../../test/helpers/rtsp-client.js';
import { nearest16 } from '../lib.js';
import { summarize, type Summary } from '../stats.js';
import {
  GAP_AFTER_MS, GAP_BEFORE_MS, segmentLength, TARGET_LATE_P50_MS, TARGET_LATE_P99_MS, YOUNG_VICTIM_MS,
  type AssetTiming, type EventRecord, type FaultRecord, type HandoverRecord, type PhaseRun, type SocketData, type StreamRec,
} from './model.js';

export interface StreamIndex {
  readonly sock: number;
  readonly gen: number;
  readonly at: Float64Array;
  /** Cursor of each arrival (arrival order). */
  readonly cursor: Float64Array;
  /** First arrival of each cursor, NaN if never received. */
  readonly firstArrival: Float64Array;
  readonly schedule: Float64Array;
  /** Segment of each cursor (-1 outside every segment). */
  readonly segOf: Int32Array;
  readonly finalSent: number;
  readonly stats: { received: number; lost: number; duplicated: number; reordered: number; beyondCursor: number; mismatched: number; unplaced: number; malformed: number; firstMismatch: string | undefined; seqLost: number; inferredRebases: number };
  readonly lostCursors: number[];
  /** Cursors received more than once, with the arrival times of the copies. */
  readonly dupCursors: Array<{ cursor: number; arrivals: number[] }>;
}

export function indexStream(d: SocketData, stream: StreamRec, a: AssetTiming): StreamIndex {
  const { info, finalSent } = stream;
  // The receiver's list: the play() results plus the segments the engine started by itself (inferred).
  const segs = [...(d.segments.length ? d.segments : stream.segments)].sort((x, y) => x.startCursor - y.startCursor);
  const n = d.count;
  const cursor = new Float64Array(n);
  let max: number | undefined;
  for (let k = 0; k < n; k++) {
    const c16 = (d.seq[k] - info.initialSeq) & 0xffff;
    const c = max === undefined ? c16 : nearest16(c16, max);
    cursor[k] = c;
    if (max === undefined || c > max) max = c;
  }
  const size = Math.max(finalSent, (max ?? -1) + 1);
  const firstArrival = new Float64Array(size).fill(Number.NaN);
  const schedule = new Float64Array(size).fill(Number.NaN);
  const segOf = new Int32Array(size).fill(-1);
  for (let s = 0; s < segs.length; s++) {
    const seg = segs[s];
    const end = Math.min(size, s + 1 < segs.length ? segs[s + 1].startCursor : seg.startCursor + segmentLength(seg, a.packetCount));
    const t0 = a.times[seg.play.startPacket];
    for (let c = Math.max(0, seg.startCursor); c < end; c++) {
      const packet = seg.play.startPacket + TS_PACKETS_PER_DATAGRAM * (c - seg.startCursor);
      if (packet >= a.packetCount) break;
      segOf[c] = s;
      schedule[c] = seg.play.startTimeMs + (a.times[packet] - t0) / TICKS_PER_MS;
    }
  }
  let beyond = 0;
  for (let k = 0; k < n; k++) {
    const c = cursor[k];
    if (c < 0 || c >= finalSent) beyond++;
    if (c >= 0 && c < size && Number.isNaN(firstArrival[c])) firstArrival[c] = d.at[k]!;
  }
  const lostCursors: number[] = [];
  for (let c = 0; c < finalSent; c++) if (Number.isNaN(firstArrival[c])) lostCursors.push(c);
  const copies = new Uint16Array(size);
  const dupCursors: Array<{ cursor: number; arrivals: number[] }> = [];
  for (let k = 0; k < n; k++) {
    const c = cursor[k];
    if (c < 0 || c >= size) continue;
    if (++copies[c] === 2) dupCursors.push({ cursor: c, arrivals: [] });
  }
  if (dupCursors.length) {
    const wanted = new Map(dupCursors.map((dc) => [dc.cursor, dc]));
    for (let k = 0; k < n; k++) wanted.get(cursor[k])?.arrivals.push(d.at[k]);
  }
  const seqStats = sequenceStats(Array.from(d.seq), { firstSeq: info.initialSeq });
  return {
    sock: stream.sock, gen: stream.gen, at: d.at, cursor, firstArrival, schedule, segOf, finalSent,
    stats: {
      received: n, lost: lostCursors.length, duplicated: seqStats.duplicated, reordered: seqStats.reordered, beyondCursor: beyond,
      mismatched: d.mismatched, unplaced: d.unplaced, malformed: d.malformed, firstMismatch: d.firstMismatch, seqLost: seqStats.lost,
      inferredRebases: d.inferredRebases,
    },
    lostCursors,
    dupCursors,
  };
}

/** Lateness of the first datagram due at or after `t`: arrival - schedule (and how many due datagrams before it never arrived). */
function latenessAt(s: StreamIndex, t: number): { lateMs: number; skipped: number; dueMs: number } | undefined {
  const sched = s.schedule;
  // Schedules rise with the cursor (segments follow each other in time): binary search, then skip gaps.
  let lo = 0;
  let hi = s.finalSent;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const v = sched[mid];
    if (Number.isNaN(v) || v < t) lo = mid + 1;
    else hi = mid;
  }
  for (let c = lo, skipped = 0; c < s.finalSent; c++) {
    if (Number.isNaN(sched[c])) continue;
    const arr = s.firstArrival[c];
    if (!Number.isNaN(arr)) return { lateMs: arr - sched[c], skipped, dueMs: sched[c] };
    skipped++;
    if (skipped > 1000) break;
  }
  return undefined;
}

/** Lateness of the first `count` datagrams due at or after `t` (NaN for one never received). */
function latenessSeries(s: StreamIndex, t: number, count: number): number[] {
  const out: number[] = [];
  let lo = 0;
  let hi = s.finalSent;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const v = s.schedule[mid];
    if (Number.isNaN(v) || v < t) lo = mid + 1;
    else hi = mid;
  }
  for (let c = lo; c < s.finalSent && out.length < count; c++) {
    if (Number.isNaN(s.schedule[c])) continue;
    out.push(s.firstArrival[c] - s.schedule[c]);
  }
  return out;
}

/** Largest inter-arrival gap touching [from, to], not counting the gap between two segments (end of asset → re-play). */
function maxGapIn(s: StreamIndex, from: number, to: number): number {
  const at = s.at;
  const n = at.length;
  if (n < 2) return Number.NaN;
  // k0: last arrival at or before `from` (or 0); walk until the first arrival at or after `to`.
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (at[mid] <= from) lo = mid + 1;
    else hi = mid;
  }
  let k = Math.max(0, lo - 1);
  let max = Number.NaN;
  for (; k + 1 < n; k++) {
    if (at[k] >= to) break;
    const c0 = s.cursor[k];
    const c1 = s.cursor[k + 1];
    const s0 = c0 >= 0 && c0 < s.segOf.length ? s.segOf[c0] : -1;
    const s1 = c1 >= 0 && c1 < s.segOf.length ? s.segOf[c1] : -1;
    if (s0 !== s1 || s0 < 0) continue;
    const gap = at[k + 1] - at[k];
    if (!(gap <= max)) max = gap;
  }
  return max;
}

export interface FaultMeasure {
  readonly i: number;
  readonly gen: number;
  readonly victimAgeMs: number | undefined;
  readonly partnerAgeMs: number | undefined;
  /** The victim had been synchronized for less than YOUNG_VICTIM_MS (reported apart; the same rule judges it). */
  readonly youngVictim: boolean;
  readonly kind: FailureFaultKind;
  readonly target: 'active' | 'standby';
  readonly victim: string;
  readonly cause: string | undefined;
  readonly expectedCause: string;
  readonly switchedTo: string | undefined;
  /** What moved sending away from the victim first: its failover, or a standby's handover. */
  readonly switchedBy: 'failover' | 'handover' | undefined;
  readonly wasActive: boolean | undefined;
  readonly faultAtMs: number;
  readonly switchMs: number | undefined;
  readonly detectMs: number | undefined;
  readonly recoveryMs: number | undefined;
  readonly lateWorstMs: number;
  /** When the worst session's first datagram was due, after the fault instant (ms). */
  readonly lateWorstDueAfterFaultMs: number;
  /** The worst session's first six datagrams due after the fault: their lateness (ms). */
  readonly lateWorstSeriesMs: number[];
  readonly lateBySession: number[];
  readonly lateSkipped: number;
  readonly gapWorstMs: number;
  readonly failure: string | undefined;
  readonly falseEvents: EventRecord[];
  readonly wrongCause: boolean;
  /** The handover away from the victim that this fault explains, if any. */
  readonly handover: HandoverRecord | undefined;
  /** Every other handover between this fault and the next. */
  readonly unexplainedHandovers: HandoverRecord[];
}

/**
 * The handover a fault explains: the first one away from the victim at or after
 * the injection, before the pair was protected again (a restarted victim is a
 * new path; a handover away from it later is not this fault's).
 */
function handoverAway(f: FaultRecord): HandoverRecord | undefined {
  const untilMs = f.protectedAtMs ?? Number.POSITIVE_INFINITY;
  let first: HandoverRecord | undefined;
  for (const h of f.handovers) {
    if (h.from === f.victim && h.atMs >= f.injectedAtMs && h.atMs <= untilMs && (!first || h.atMs < first.atMs)) first = h;
  }
  return first;
}

function measureInstant(streams: readonly StreamIndex[], t: number): { lateWorst: number; lateBy: number[]; skipped: number; gapWorst: number; worstDueAfterMs: number; worstSeries: number[] } {
  const lateBy: number[] = [];
  let worstDueAfterMs = Number.NaN;
  let worstLate = Number.NEGATIVE_INFINITY;
  let worstSeries: number[] = [];
  let skipped = 0;
  let gapWorst = Number.NaN;
  for (const s of streams) {
    // Only sessions that were streaming at t (another engine generation's sessions were not).
    if (s.at.length < 2 || t < s.at[0] || t > s.at[s.at.length - 1]) continue;
    const l = latenessAt(s, t);
    lateBy.push(l ? l.lateMs : Number.NaN);
    if (l && l.lateMs > worstLate) {
      worstLate = l.lateMs;
      worstDueAfterMs = l.dueMs - t;
      worstSeries = latenessSeries(s, t, 6);
    }
    if (l) skipped += l.skipped;
    const g = maxGapIn(s, t - GAP_BEFORE_MS, t + GAP_AFTER_MS);
    if (Number.isFinite(g) && !(g <= gapWorst)) gapWorst = g;
  }
  const finite = lateBy.filter(Number.isFinite);
  return { lateWorst: finite.length ? Math.max(...finite) : Number.NaN, lateBy, skipped, gapWorst, worstDueAfterMs, worstSeries };
}

export interface KindSummary {
  readonly kind: FailureFaultKind;
  readonly target: 'active' | 'standby';
  readonly n: number;
  readonly youngVictims: number;
  readonly failures: number;
  readonly falseFailovers: number;
  /** Faults switched away from by a handover before (or without) the victim's failover. */
  readonly switchedByHandover: number;
  readonly unexplainedHandovers: number;
  readonly switchMs: Summary;
  /** (a) split by whether the victim was young (YOUNG_VICTIM_MS). */
  readonly switchYoungMs: Summary;
  readonly switchOlderMs: Summary;
  readonly detectMs: Summary;
  readonly recoveryMs: Summary;
  readonly lateMs: Summary;
  readonly latePooledMs: Summary;
  readonly gapMs: Summary;
  readonly targetLateP50: boolean;
  readonly targetLateP99: boolean;
}

export interface PhaseSummary {
  readonly sessions: number;
  readonly kinds: KindSummary[];
  readonly baseline: { instants: number; lateMs: Summary; latePooledMs: Summary; gapMs: Summary; failovers: number; handovers: number; fromMs: number; toMs: number };
  readonly totals: {
    expected: number; received: number; inferredRebases: number; lost: number; duplicated: number; reordered: number; mismatched: number; unplaced: number; malformed: number;
    beyondCursor: number; firstMismatch: string | undefined; falseFailovers: number; falseBreakdown: { wrongCause: number; extraInFaultWindow: number; extraWhilePartnerRespawning: number; extraSwitchedToNobody: number; strayBetweenFaults: number; baseline: number };
    handovers: { events: number; engineCounted: number | undefined; explained: number; unexplained: number; unexplainedBreakdown: { afterFault: number; strayBetweenFaults: number; beforeBaseline: number; baseline: number } };
    failures: number; faults: number; restarts: number; stalls: number; replayErrors: number; engineSentByPaths: number; extraSends: number;
    kernelRcvbufErrors: number; kernelInErrors: number; kernelSndbufErrors: number; receiverSocketDrops: number; receiverSocketsFound: number;
  };
  readonly dupDetail: Array<{ sock: number; gen: number; cursor: number; arrivals: number[]; scheduleMs: number; nearestFault: number | undefined; faultKind: string | undefined; faultTarget: string | undefined; fromFaultMs: number | undefined }>;
  readonly lostDetail: Array<{ sock: number; gen: number; cursor: number; scheduleMs: number; nearestFault: number | undefined; fromFaultMs: number | undefined }>;
}

/** Everything a phase's report and JSON say, from what the phase recorded. `rand` picks the baseline instants. */
export function analyse(run: PhaseRun, a: AssetTiming, rand: () => number): { summary: PhaseSummary; faults: FaultMeasure[] } {
  const streams = run.streams.flatMap((st) => {
    const d = run.data[st.sock];
    return d ? [indexStream(d, st, a)] : [];
  });
  const faults = run.faults.map((f) => measureFault(f, streams));
  const summary: PhaseSummary = {
    sessions: run.sessions,
    kinds: summarizeKinds(faults),
    baseline: summarizeBaseline(run, streams, rand),
    totals: phaseTotals(run, streams, faults),
    lostDetail: lostDetail(streams, faults),
    dupDetail: dupDetail(streams, faults),
  };
  return { summary, faults };
}

function measureFault(f: FaultRecord, streams: readonly StreamIndex[]): FaultMeasure {
  const m = f.matched;
  const t = m?.failedAtMs ?? f.injectedAtMs;
  const inst = measureInstant(streams, t);
  const handover = handoverAway(f);
  // Sending left the victim at the earlier of its failover's switch and a handover away from it.
  const byHandover = handover !== undefined && !(m?.switchedAtMs !== undefined && m.switchedAtMs <= handover.atMs);
  const switchedAtMs = byHandover ? handover.atMs : m?.switchedAtMs;
  return {
    i: f.i, gen: f.gen, victimAgeMs: f.victimAgeMs, partnerAgeMs: f.partnerAgeMs, youngVictim: f.victimAgeMs !== undefined && f.victimAgeMs < YOUNG_VICTIM_MS,
    kind: f.kind, target: f.target, victim: f.victim, cause: m?.cause, expectedCause: f.expectedCause,
    switchedTo: byHandover ? handover.to : m?.switchedToName, switchedBy: byHandover ? 'handover' : switchedAtMs !== undefined ? 'failover' : undefined,
    wasActive: m?.wasActive, faultAtMs: t, switchMs: switchedAtMs === undefined ? undefined : switchedAtMs - t, detectMs: m ? m.detectedAtMs - m.failedAtMs : undefined,
    recoveryMs: m && f.protectedAtMs !== undefined ? f.protectedAtMs - m.failedAtMs : undefined,
    lateWorstMs: inst.lateWorst, lateWorstDueAfterFaultMs: inst.worstDueAfterMs, lateWorstSeriesMs: inst.worstSeries, lateBySession: inst.lateBy, lateSkipped: inst.skipped, gapWorstMs: inst.gapWorst,
    failure: f.failure, falseEvents: f.events.filter((e) => e !== m), wrongCause: m !== undefined && m.cause !== f.expectedCause,
    handover, unexplainedHandovers: f.handovers.filter((h) => h !== handover),
  };
}

/** One row per fault kind and target, active rows first. */
function summarizeKinds(faults: readonly FaultMeasure[]): KindSummary[] {
  const kinds: KindSummary[] = [];
  for (const target of ['active', 'standby'] as const) {
    for (const kind of FailureFaultKinds) {
      const fs = faults.filter((f) => f.kind === kind && f.target === target);
      if (fs.length === 0) continue;
      const late = summarize(fs.map((f) => f.lateWorstMs));
      kinds.push({
        kind, target, n: fs.length, youngVictims: fs.filter((f) => f.youngVictim).length,
        failures: fs.filter((f) => f.failure !== undefined).length,
        falseFailovers: fs.reduce((s, f) => s + f.falseEvents.length + (f.wrongCause ? 1 : 0), 0),
        switchedByHandover: fs.filter((f) => f.switchedBy === 'handover').length,
        unexplainedHandovers: fs.reduce((s, f) => s + f.unexplainedHandovers.length, 0),
        switchMs: summarize(fs.map((f) => f.switchMs ?? Number.NaN)),
        switchYoungMs: summarize(fs.filter((f) => f.youngVictim).map((f) => f.switchMs ?? Number.NaN)),
        switchOlderMs: summarize(fs.filter((f) => !f.youngVictim && f.victimAgeMs !== undefined).map((f) => f.switchMs ?? Number.NaN)),
        detectMs: summarize(fs.map((f) => f.detectMs ?? Number.NaN)),
        recoveryMs: summarize(fs.map((f) => f.recoveryMs ?? Number.NaN)),
        lateMs: late,
        latePooledMs: summarize(fs.flatMap((f) => f.lateBySession)),
        gapMs: summarize(fs.map((f) => f.gapWorstMs)),
        targetLateP50: late.p50 < TARGET_LATE_P50_MS,
        targetLateP99: late.p99 < TARGET_LATE_P99_MS,
      });
    }
  }
  return kinds;
}

/** The fault measures (b) and (c) at random instants of the no-fault stretch. */
function summarizeBaseline(run: PhaseRun, streams: readonly StreamIndex[], rand: () => number): PhaseSummary['baseline'] {
  const instants: number[] = [];
  const span = run.baselineToMs - run.baselineFromMs - GAP_BEFORE_MS - GAP_AFTER_MS;
  const nInstants = Math.max(100, Math.min(1000, run.faults.length));
  if (span > 0) for (let k = 0; k < nInstants; k++) instants.push(run.baselineFromMs + GAP_BEFORE_MS + rand() * span);
  const measures = instants.map((t) => measureInstant(streams, t));
  return {
    instants: measures.length,
    lateMs: summarize(measures.map((m) => m.lateWorst)),
    latePooledMs: summarize(measures.flatMap((m) => m.lateBy)),
    gapMs: summarize(measures.map((m) => m.gapWorst)),
    failovers: run.baselineEvents.length,
    handovers: run.baselineHandovers.length,
    fromMs: run.baselineFromMs,
    toMs: run.baselineToMs,
  };
}

/** False failovers: a wrong cause, every other failover after a fault, failovers outside any fault and in the baseline. */
function falseFailovers(run: PhaseRun, faults: readonly FaultMeasure[]): PhaseSummary['totals']['falseBreakdown'] {
  // The usual shape of an extra failover: the path that has just taken over fails too while its partner is being
  // respawned (before the pair is protected again), and as nobody is left to take over, every stream stops.
  const extra = (f: FaultRecord): EventRecord[] => f.events.filter((e) => e !== f.matched);
  return {
    wrongCause: faults.filter((f) => f.wrongCause).length,
    extraInFaultWindow: faults.reduce((s, f) => s + f.falseEvents.length, 0),
    extraWhilePartnerRespawning: run.faults.reduce((sum, f) => sum + extra(f).filter((e) => f.protectedAtMs === undefined || e.receivedAtMs <= f.protectedAtMs).length, 0),
    extraSwitchedToNobody: run.faults.reduce((sum, f) => sum + extra(f).filter((e) => e.wasActive && e.switchedToName === undefined).length, 0),
    strayBetweenFaults: run.strayEvents.length,
    baseline: run.baselineEvents.length,
  };
}

/** Handovers: the ones a fault explains (its switch), and every other one, by where it came. */
function handoverCounts(run: PhaseRun, faults: readonly FaultMeasure[]): PhaseSummary['totals']['handovers'] {
  const explained = faults.filter((f) => f.handover !== undefined).length;
  const afterFault = faults.reduce((s, f) => s + f.unexplainedHandovers.length, 0);
  const unexplained = afterFault + run.strayHandovers.length + run.baselineHandovers.length;
  return {
    events: explained + unexplained,
    engineCounted: run.engineHandovers,
    explained,
    unexplained,
    unexplainedBreakdown: {
      afterFault, strayBetweenFaults: run.strayHandovers.length,
      beforeBaseline: run.strayHandovers.filter((h) => h.atMs < run.baselineFromMs).length, baseline: run.baselineHandovers.length,
    },
  };
}

function phaseTotals(run: PhaseRun, streams: readonly StreamIndex[], faults: readonly FaultMeasure[]): PhaseSummary['totals'] {
  const sum = (pick: (s: StreamIndex) => number): number => streams.reduce((acc, s) => acc + pick(s), 0);
  const delta = (k: string): number => (run.snmpAfter[k] ?? 0) - (run.snmpBefore[k] ?? 0);
  const expected = run.streams.reduce((acc, st) => acc + st.finalSent, 0);
  const falseBreakdown = falseFailovers(run, faults);
  return {
    expected,
    received: sum((s) => s.stats.received),
    lost: sum((s) => s.stats.lost),
    duplicated: sum((s) => s.stats.duplicated),
    reordered: sum((s) => s.stats.reordered),
    mismatched: sum((s) => s.stats.mismatched),
    inferredRebases: sum((s) => s.stats.inferredRebases),
    unplaced: sum((s) => s.stats.unplaced),
    malformed: sum((s) => s.stats.malformed),
    beyondCursor: sum((s) => s.stats.beyondCursor),
    firstMismatch: streams.find((s) => s.stats.firstMismatch)?.stats.firstMismatch,
    falseFailovers: falseBreakdown.wrongCause + falseBreakdown.extraInFaultWindow + falseBreakdown.strayBetweenFaults + falseBreakdown.baseline,
    falseBreakdown,
    handovers: handoverCounts(run, faults),
    failures: faults.filter((f) => f.failure !== undefined).length,
    faults: faults.length,
    restarts: run.restarts.length,
    stalls: run.stalls.length,
    replayErrors: run.replayErrors.length,
    engineSentByPaths: run.engineSentByPaths,
    extraSends: run.engineSentByPaths - expected,
    kernelRcvbufErrors: delta('RcvbufErrors'),
    kernelInErrors: delta('InErrors'),
    kernelSndbufErrors: delta('SndbufErrors'),
    receiverSocketDrops: run.socketDrops.drops,
    receiverSocketsFound: run.socketDrops.found,
  };
}

/** Where were losses? Next to which fault? (The first 500.) */
function lostDetail(streams: readonly StreamIndex[], faults: readonly FaultMeasure[]): PhaseSummary['lostDetail'] {
  const out: PhaseSummary['lostDetail'] = [];
  for (const s of streams) {
    for (const c of s.lostCursors) {
      if (out.length >= 500) return out;
      const sched = s.schedule[c];
      let nearestFault: number | undefined;
      let fromFaultMs: number | undefined;
      for (const f of faults) {
        const d = sched - f.faultAtMs;
        if (fromFaultMs === undefined || Math.abs(d) < Math.abs(fromFaultMs)) { fromFaultMs = d; nearestFault = f.i; }
      }
      out.push({ sock: s.sock, gen: s.gen, cursor: c, scheduleMs: sched, nearestFault, fromFaultMs });
    }
  }
  return out;
}

/** Which datagrams came twice, and next to which fault (the first 500). */
function dupDetail(streams: readonly StreamIndex[], faults: readonly FaultMeasure[]): PhaseSummary['dupDetail'] {
  const out: PhaseSummary['dupDetail'] = [];
  for (const s of streams) {
    for (const dc of s.dupCursors) {
      if (out.length >= 500) return out;
      const first = dc.arrivals[0];
      let best: FaultMeasure | undefined;
      for (const f of faults) if (!best || Math.abs(first - f.faultAtMs) < Math.abs(first - best.faultAtMs)) best = f;
      out.push({
        sock: s.sock, gen: s.gen, cursor: dc.cursor, arrivals: dc.arrivals, scheduleMs: s.schedule[dc.cursor],
        nearestFault: best?.i, faultKind: best?.kind, faultTarget: best?.target, fromFaultMs: best ? first - best.faultAtMs : undefined,
      });
    }
  }
  return out;
}
