// The capacity bench's analysis: pure functions from what one session's receiver
// recorded in the measured window (arrival time, RTP sequence number, the PCR a
// datagram carried) to its figures, from a level's sessions to the level's
// figures, from trials to their medians, and the memory fit. Tested on synthetic
// arrivals in test/bench-capacity-analysis.test.ts.

import { nearest16 } from '../lib.js';
import { quantile, sortedFinite } from '../stats.js';

export const TS_PACKET_BYTES = 188;
/** RTP header without CSRCs or extension. */
const RTP_HEADER_BYTES = 12;
/** 27 MHz PCR ticks per millisecond. */
const PCR_TICKS_PER_MS = 27_000;
/** The 33-bit PCR base wraps after 2^33 / 90 kHz: its span in ms. */
const PCR_WRAP_MS = (2 ** 33 / 90_000) * 1000;
/** A gap this long is a stall: a viewer's player would have shown it. */
export const STALL_MS = 100;
/** A session that received nothing in the window's last second had stopped (its stream ended, or the server dropped it). */
export const SILENT_MS = 1000;

/** The PCR of the TS packet at `off`, in 27 MHz ticks, or -1 when it carries none (or is not a TS packet). */
export function pcrAt(ts: Uint8Array, off: number): number {
  if (ts[off] !== 0x47 || (ts[off + 3] & 0x20) === 0 || ts[off + 4] < 7 || (ts[off + 5] & 0x10) === 0) return -1;
  const base = ts[off + 6] * 2 ** 25 + ts[off + 7] * 2 ** 17 + ts[off + 8] * 2 ** 9 + ts[off + 9] * 2 + (ts[off + 10] >> 7);
  return base * 300 + (((ts[off + 10] & 1) << 8) | ts[off + 11]);
}

/**
 * The first PCR a datagram's TS packets carry: writes its time (ms on the
 * stream's 27 MHz clock) to out[0] and the packet's index in the datagram to
 * out[1], and returns true; false when none carries one. No allocation: it runs
 * for every datagram the receivers read.
 */
export function readPcr(datagram: Uint8Array, out: Float64Array): boolean {
  if (datagram.length < RTP_HEADER_BYTES) return false;
  let off = RTP_HEADER_BYTES + 4 * (datagram[0] & 0x0f);
  if ((datagram[0] & 0x10) !== 0 && off + 4 <= datagram.length) off += 4 + 4 * ((datagram[off + 2] << 8) | datagram[off + 3]);
  for (let k = 0; off + TS_PACKET_BYTES <= datagram.length; k++, off += TS_PACKET_BYTES) {
    const pcr = pcrAt(datagram, off);
    if (pcr < 0) continue;
    out[0] = pcr / PCR_TICKS_PER_MS;
    out[1] = k;
    return true;
  }
  return false;
}

/** What one session's receiver recorded in the window, in arrival order; `count` entries are valid. */
export interface SessionRecord {
  readonly count: number;
  /** Arrival, ms on the monotonic clock. */
  readonly arrivalMs: Float64Array;
  /** RTP sequence number (16 bits). */
  readonly seq: Uint16Array;
  /** The datagram's first PCR, ms (NaN when it carried none). */
  readonly pcrMs: Float64Array;
  /** Index of the TS packet that carried that PCR in its datagram. */
  readonly pcrPacket: Uint8Array;
}

export interface GapFigures {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** One session's figures over the window. */
export interface SessionFigures {
  readonly received: number;
  /** Sequence numbers between the lowest and the highest received that never arrived. */
  readonly lost: number;
  /** Datagrams whose sequence number had arrived before. */
  readonly duplicated: number;
  /** Datagrams that arrived after one with a higher sequence number. */
  readonly reordered: number;
  /** Inter-arrival gaps, ms (in arrival order). */
  readonly gapMs: GapFigures;
  /** Gaps longer than STALL_MS. */
  readonly stalls: number;
  /** p99 − p1 of (arrival − PCR time) over the datagrams that carried a PCR, ms (NaN with fewer than 2). */
  readonly pcrSpreadMs: number;
  readonly pcrCount: number;
  /** Window end − the last datagram's arrival, ms (NaN when none arrived): a stream that ended early shows here. */
  readonly silentAtEndMs: number;
}

/**
 * A session's figures. `packetMs` is one TS packet's time at the stream's
 * nominal rate: the PCR time of a datagram is that of its first packet, i.e. the
 * PCR minus packetMs × the PCR packet's index, so that where the PCR sits in
 * the datagram does not add to the spread.
 */
export function analyseSession(r: SessionRecord, packetMs: number, windowEndMs: number): SessionFigures {
  const n = r.count;
  const gaps = new Float64Array(Math.max(0, n - 1));
  let stalls = 0;
  for (let i = 1; i < n; i++) {
    gaps[i - 1] = r.arrivalMs[i] - r.arrivalMs[i - 1];
    if (gaps[i - 1] > STALL_MS) stalls++;
  }
  const sortedGaps = sortedFinite(gaps);

  const ext = new Float64Array(n);
  let reordered = 0;
  let highest = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    ext[i] = i === 0 ? r.seq[0] : nearest16(r.seq[i], ext[i - 1]);
    if (ext[i] < highest) reordered++;
    else highest = ext[i];
  }
  ext.sort();
  let unique = 0;
  for (let i = 0; i < n; i++) if (i === 0 || ext[i] !== ext[i - 1]) unique++;
  const span = n === 0 ? 0 : ext[n - 1] - ext[0] + 1;

  const offsets: number[] = [];
  let pcrBase = Number.NaN;
  let pcrPrev = Number.NaN;
  let wraps = 0;
  for (let i = 0; i < n; i++) {
    const pcr = r.pcrMs[i];
    if (!Number.isFinite(pcr)) continue;
    if (pcr < pcrPrev - PCR_WRAP_MS / 2) wraps++;
    pcrPrev = pcr;
    const t = pcr + wraps * PCR_WRAP_MS - r.pcrPacket[i] * packetMs;
    if (Number.isNaN(pcrBase)) pcrBase = t;
    offsets.push(r.arrivalMs[i] - (t - pcrBase));
  }
  const sortedOffsets = sortedFinite(offsets);

  return {
    received: n,
    lost: span - unique,
    duplicated: n - unique,
    reordered,
    gapMs: { p50: quantile(sortedGaps, 0.5), p99: quantile(sortedGaps, 0.99), max: sortedGaps.length ? sortedGaps[sortedGaps.length - 1] : Number.NaN },
    stalls,
    pcrSpreadMs: sortedOffsets.length >= 2 ? quantile(sortedOffsets, 0.99) - quantile(sortedOffsets, 0.01) : Number.NaN,
    pcrCount: sortedOffsets.length,
    silentAtEndMs: n > 0 ? windowEndMs - r.arrivalMs[n - 1] : Number.NaN,
  };
}

/** The worst session's and the median session's value of one figure (each taken on its own). */
export interface Spread {
  readonly median: number;
  readonly worst: number;
}

function spreadOf(values: readonly number[]): Spread {
  const v = sortedFinite(values);
  return { median: quantile(v, 0.5), worst: v.length ? v[v.length - 1] : Number.NaN };
}

/** A level's figures from its sessions (one trial). */
export interface LevelFigures {
  readonly sessions: number;
  readonly received: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly reordered: number;
  readonly stalls: number;
  readonly gapP50Ms: Spread;
  readonly gapP99Ms: Spread;
  readonly gapMaxMs: Spread;
  readonly pcrSpreadMs: Spread;
  /** Sessions that received nothing, or nothing in the window's last SILENT_MS. */
  readonly silentSessions: number;
}

export function summarizeLevel(sessions: readonly SessionFigures[]): LevelFigures {
  const sum = (f: (s: SessionFigures) => number): number => sessions.reduce((a, s) => a + f(s), 0);
  return {
    sessions: sessions.length,
    received: sum((s) => s.received),
    lost: sum((s) => s.lost),
    duplicated: sum((s) => s.duplicated),
    reordered: sum((s) => s.reordered),
    stalls: sum((s) => s.stalls),
    gapP50Ms: spreadOf(sessions.map((s) => s.gapMs.p50)),
    gapP99Ms: spreadOf(sessions.map((s) => s.gapMs.p99)),
    gapMaxMs: spreadOf(sessions.map((s) => s.gapMs.max)),
    pcrSpreadMs: spreadOf(sessions.map((s) => s.pcrSpreadMs)),
    silentSessions: sessions.filter((s) => s.received === 0 || !(s.silentAtEndMs <= SILENT_MS)).length,
  };
}

/** The median over trials of every figure (each on its own: the median trial of each column). */
export function medianOfTrials(trials: readonly LevelFigures[]): LevelFigures {
  const med = (f: (t: LevelFigures) => number): number => quantile(sortedFinite(trials.map(f)), 0.5);
  const medSpread = (f: (t: LevelFigures) => Spread): Spread => ({ median: med((t) => f(t).median), worst: med((t) => f(t).worst) });
  return {
    sessions: med((t) => t.sessions),
    received: med((t) => t.received),
    lost: med((t) => t.lost),
    duplicated: med((t) => t.duplicated),
    reordered: med((t) => t.reordered),
    stalls: med((t) => t.stalls),
    gapP50Ms: medSpread((t) => t.gapP50Ms),
    gapP99Ms: medSpread((t) => t.gapP99Ms),
    gapMaxMs: medSpread((t) => t.gapMaxMs),
    pcrSpreadMs: medSpread((t) => t.pcrSpreadMs),
    silentSessions: med((t) => t.silentSessions),
  };
}

/**
 * Whether a server held a level: the worst session's gap p99 (median over the
 * trials) at most nominal + 1 ms, and no datagram lost in any trial.
 */
export function levelHeld(median: LevelFigures, trials: readonly LevelFigures[], nominalGapMs: number): { held: boolean; why: string } {
  const lost = Math.max(0, ...trials.map((t) => t.lost));
  if (lost > 0) return { held: false, why: `lost ${lost}` };
  if (trials.some((t) => t.silentSessions > 0)) return { held: false, why: 'silent sessions' };
  if (!(median.gapP99Ms.worst <= nominalGapMs + 1)) return { held: false, why: `gap p99 ${median.gapP99Ms.worst.toFixed(2)} > ${(nominalGapMs + 1).toFixed(2)}` };
  return { held: true, why: '' };
}

/** Least-squares line y ≈ base + perUnit × x (NaN figures with fewer than two distinct x). */
export function fitLine(points: ReadonlyArray<{ x: number; y: number }>): { base: number; perUnit: number } {
  const p = points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y));
  const n = p.length;
  const mx = p.reduce((a, q) => a + q.x, 0) / n;
  const my = p.reduce((a, q) => a + q.y, 0) / n;
  const sxx = p.reduce((a, q) => a + (q.x - mx) ** 2, 0);
  if (n < 2 || sxx === 0) return { base: Number.NaN, perUnit: Number.NaN };
  const perUnit = p.reduce((a, q) => a + (q.x - mx) * (q.y - my), 0) / sxx;
  return { base: my - perUnit * mx, perUnit };
}
