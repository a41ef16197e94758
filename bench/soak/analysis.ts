// The soak bench's judgements, as pure functions (tested in
// test/bench-soak-analysis.test.ts): whether the server's RSS stayed flat, and
// which failovers the injected faults caused.

import type { LogFailure, LogHandover } from '../server-log.js';
import { quantile, sortedFinite } from '../stats.js';

/** One VmRSS sample of the server: seconds since the soak began, MiB. */
export interface RssSample {
  readonly tS: number;
  readonly mib: number;
}

/** The window at each end of the run whose medians are compared: 10 min, or a third of a shorter run (so they never overlap). */
export const RSS_WINDOW_S = 600;
/** RSS is flat when the last window's median exceeds the first's by at most this share of it… */
export const FLAT_SHARE = 0.05;
/** …or by at most this much (a small server's few MiB of noise). */
export const FLAT_MIN_MIB = 4;

export interface RssTrend {
  readonly samples: number;
  readonly spanS: number;
  readonly windowS: number;
  readonly firstMedianMiB: number;
  readonly lastMedianMiB: number;
  /** lastMedianMiB − firstMedianMiB. */
  readonly growthMiB: number;
  /** The growth allowed for 'flat': max(FLAT_MIN_MIB, FLAT_SHARE × first median). */
  readonly toleranceMiB: number;
  /** Least-squares slope over every sample, MiB per hour. */
  readonly slopeMiBPerHour: number;
  readonly minMiB: number;
  readonly maxMiB: number;
  /** undefined with fewer than two samples. */
  readonly flat: boolean | undefined;
}

function median(values: readonly number[]): number {
  return quantile(sortedFinite(values), 0.5);
}

export function rssTrend(samples: readonly RssSample[]): RssTrend {
  const ok = samples.filter((s) => Number.isFinite(s.mib) && Number.isFinite(s.tS));
  const n = ok.length;
  const spanS = n > 0 ? ok[n - 1].tS - ok[0].tS : 0;
  const windowS = Math.min(RSS_WINDOW_S, spanS / 3);
  const firstMedianMiB = n > 0 ? median(ok.filter((s) => s.tS <= ok[0].tS + windowS).map((s) => s.mib)) : Number.NaN;
  const lastMedianMiB = n > 0 ? median(ok.filter((s) => s.tS >= ok[n - 1].tS - windowS).map((s) => s.mib)) : Number.NaN;
  const growthMiB = lastMedianMiB - firstMedianMiB;
  const toleranceMiB = Math.max(FLAT_MIN_MIB, FLAT_SHARE * firstMedianMiB);
  let slopeMiBPerHour = Number.NaN;
  if (n >= 2 && spanS > 0) {
    const meanT = ok.reduce((a, s) => a + s.tS, 0) / n;
    const meanM = ok.reduce((a, s) => a + s.mib, 0) / n;
    let num = 0;
    let den = 0;
    for (const s of ok) {
      num += (s.tS - meanT) * (s.mib - meanM);
      den += (s.tS - meanT) ** 2;
    }
    slopeMiBPerHour = (num / den) * 3600;
  }
  return {
    samples: n, spanS, windowS, firstMedianMiB, lastMedianMiB, growthMiB, toleranceMiB, slopeMiBPerHour,
    minMiB: n > 0 ? Math.min(...ok.map((s) => s.mib)) : Number.NaN,
    maxMiB: n > 0 ? Math.max(...ok.map((s) => s.mib)) : Number.NaN,
    flat: n >= 2 ? growthMiB <= toleranceMiB : undefined,
  };
}

/** At most `maxPoints` values: consecutive runs of samples, each shown by its median. Also the seconds each point covers. */
export function compactSeries(samples: readonly RssSample[], maxPoints: number): { everyS: number; points: number[] } {
  if (samples.length === 0) return { everyS: 0, points: [] };
  const per = Math.ceil(samples.length / maxPoints);
  const points: number[] = [];
  for (let i = 0; i < samples.length; i += per) points.push(median(samples.slice(i, i + per).map((s) => s.mib)));
  const stepS = samples.length > 1 ? (samples[samples.length - 1].tS - samples[0].tS) / (samples.length - 1) : 0;
  return { everyS: per * stepS, points };
}

/** One injected fault: what, into which path, and when the request went out (wall clock ms, as the server log's times). */
export interface InjectedFault {
  readonly i: number;
  readonly kind: string;
  readonly path: string;
  readonly requestedAtMs: number;
  /** The cause a failover of this fault should carry (bench/failover/model.ts EXPECTED_CAUSE). */
  readonly expectedCause: string;
  /** false: the server refused it or the request failed (then it cannot cause anything). */
  readonly ok: boolean;
}

export type FalseReason = 'outside any fault window' | 'not the faulted path' | 'a second failover after one fault';

export interface Attribution {
  /** Per failover in time order: the fault it answers (its i), or why it is false. */
  readonly failovers: Array<LogFailure & { fault: number | undefined; falseReason: FalseReason | undefined; causeMatches: boolean | undefined }>;
  readonly injected: number;
  /** Injected failovers whose cause is not the fault's expected one (still the fault's). */
  readonly wrongCause: number;
  readonly false: number;
  /** Faults accepted by the server that no failover answered within the window. */
  readonly unanswered: number[];
  /** Handovers (a late sender handed over, nobody failed) by cause, and how many fell in a fault's window. */
  readonly handovers: { total: number; byCause: Record<string, number>; inFaultWindow: number };
}

/**
 * A failover answers a fault when it fails the faulted path within `windowMs`
 * after the request went out, and the fault has not been answered yet. Every
 * other failover is false.
 */
export function attributeFailovers(faults: readonly InjectedFault[], failures: readonly LogFailure[], handovers: readonly LogHandover[], windowMs: number): Attribution {
  const accepted = faults.filter((f) => f.ok).sort((x, y) => x.requestedAtMs - y.requestedAtMs);
  const answered = new Set<number>();
  const within = (f: InjectedFault, t: number): boolean => t >= f.requestedAtMs && t <= f.requestedAtMs + windowMs;
  const failovers = [...failures].sort((x, y) => x.time - y.time).map((failure) => {
    const open = accepted.filter((f) => within(f, failure.time));
    const match = open.find((f) => f.path === failure.path && !answered.has(f.i));
    if (match !== undefined) {
      answered.add(match.i);
      return { ...failure, fault: match.i, falseReason: undefined, causeMatches: failure.cause === match.expectedCause };
    }
    const falseReason: FalseReason = open.length === 0 ? 'outside any fault window'
      : open.some((f) => f.path === failure.path) ? 'a second failover after one fault' : 'not the faulted path';
    return { ...failure, fault: undefined, falseReason, causeMatches: undefined };
  });
  const byCause: Record<string, number> = {};
  for (const h of handovers) byCause[h.cause ?? '?'] = (byCause[h.cause ?? '?'] ?? 0) + 1;
  return {
    failovers,
    injected: failovers.filter((f) => f.fault !== undefined).length,
    wrongCause: failovers.filter((f) => f.causeMatches === false).length,
    false: failovers.filter((f) => f.fault === undefined).length,
    unanswered: accepted.filter((f) => !answered.has(f.i)).map((f) => f.i),
    handovers: { total: handovers.length, byCause, inFaultWindow: handovers.filter((h) => accepted.some((f) => within(f, h.time))).length },
  };
}
