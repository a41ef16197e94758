// One monotonic clock for every thread, in milliseconds as a float.
//
// process.hrtime.bigint() is the shared clock (CLOCK_MONOTONIC via uv_hrtime), but
// it allocates a BigInt on every call. performance.now() reads the same uv_hrtime
// source without allocating, but each worker has its own time origin. So each
// thread measures its origin offset once against hrtime.bigint() and adds it:
// monoNowMs() values are comparable across threads and cost no allocation.

function calibrateOffsetMs(): number {
  // Take the tightest of a few samples: the pair of reads that were closest in time.
  let best = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let i = 0; i < 16; i++) {
    const before = performance.now();
    const hr = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < best) {
      best = after - before;
      offset = hr - (before + after) / 2;
    }
  }
  return offset;
}

const offsetMs = calibrateOffsetMs();

/** Milliseconds on the shared monotonic clock (process.hrtime.bigint() / 1e6). */
export function monoNowMs(): number {
  return performance.now() + offsetMs;
}
