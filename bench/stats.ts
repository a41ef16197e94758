// The one statistics helper of the benchmarks. Quantiles are nearest-rank: the
// q-quantile of n ascending values is the value of rank ⌈q·n⌉ (1-based, at least
// 1), always a measured value, never an interpolation. So p99 of fewer than 100
// values is the maximum, and p50 of an even count is the lower middle value.

/** 1-based nearest rank of the q-quantile among n values (n ≥ 1, 0 ≤ q ≤ 1). */
export function quantileRank(n: number, q: number): number {
  return Math.min(n, Math.max(1, Math.ceil(q * n)));
}

/** Nearest-rank q-quantile of an ascending array (NaN when empty). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[quantileRank(sorted.length, q) - 1];
}

/** Count, median, p99, maximum and mean of a sample; NaN and ±Infinity are left out (NaN figures when nothing is left). */
export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** The finite values of `values`, ascending, as a Float64Array (numeric sort). */
export function sortedFinite(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).filter(Number.isFinite).sort();
}

export function summarize(values: ArrayLike<number>): Summary {
  const v = sortedFinite(values);
  let total = 0;
  for (const x of v) total += x;
  return {
    n: v.length,
    p50: quantile(v, 0.5),
    p99: quantile(v, 0.99),
    max: v.length ? v[v.length - 1] : Number.NaN,
    mean: v.length ? total / v.length : Number.NaN,
  };
}
