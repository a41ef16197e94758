// Linear time, measured: how much longer a parser takes on an input `factor`
// times as long, built from one repeated piece (the fastest of several runs
// each: noise on a shared machine only ever adds time).

import { performance } from 'node:perf_hooks';

type Build = (piece: string, size: number) => () => void;

function fastestMs(run: () => void, repeats: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/**
 * time(size × factor) / time(size): about `factor` for a linear parser (up to
 * a few times more from caches and the collector on the larger input), factor²
 * for a quadratic one. Over LINEAR_BOUND(factor), measured again, twice at most:
 * a collection during one run is not the parser's.
 */
export function linearityRatio(build: Build, piece: string, size: number, factor: number): number {
  const small = build(piece, size);
  const large = build(piece, size * factor);
  small(); // warm the parser up
  let ratio = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3 && ratio >= linearBound(factor); attempt++) {
    // A floor of 0.05 ms: tiny inputs time at timer resolution.
    ratio = Math.min(ratio, fastestMs(large, 5) / Math.max(0.05, fastestMs(small, 9)));
  }
  return ratio;
}

/** The most time `factor` × the input may take and still count as linear: half the quadratic factor². */
export function linearBound(factor: number): number {
  return (factor * factor) / 2;
}
