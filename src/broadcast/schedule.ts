// A broadcast's schedule, like a TV channel's: where it stands at any moment is
// a function of its start time alone, so a server that restarts (or a broadcast
// started again) resumes at the position the schedule says now. Pure.

/** Where a broadcast's schedule stands at a moment. */
export type ScheduleNow =
  | { readonly kind: 'pending'; readonly inMs: number }
  /** `offsetMs` into the asset (into the current pass, when looping). */
  | { readonly kind: 'playing'; readonly offsetMs: number }
  | { readonly kind: 'ended' };

/**
 * At `nowMs` (wall clock), a broadcast that starts at `atMs` and lasts
 * `durationMs` per pass: not yet started, at an offset, or (not looping) over.
 */
export function scheduleNow(atMs: number, nowMs: number, durationMs: number, loop: boolean): ScheduleNow {
  if (nowMs < atMs) return { kind: 'pending', inMs: atMs - nowMs };
  const since = nowMs - atMs;
  if (loop) return { kind: 'playing', offsetMs: durationMs > 0 ? since % durationMs : 0 };
  return since < durationMs ? { kind: 'playing', offsetMs: since } : { kind: 'ended' };
}

/**
 * The first packet sent at or after `ticks` (90 kHz, from packet 0), found by
 * bisection over `ticksOf` (send times never decrease); the last packet when
 * every packet is sent before it.
 */
export async function packetAtTicks(ticks: number, packetCount: number, ticksOf: (packet: number) => Promise<number>): Promise<number> {
  let lo = 0;
  let hi = packetCount - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((await ticksOf(mid)) < ticks) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A broadcast whose start comes this late (a timer, the time to open its
 * session) still begins at the asset's start, with its PAT and PMT, rather
 * than a few packets in: it then runs that much behind its schedule, until a
 * restart puts it back on it.
 */
export const START_SLACK_MS = 250;

/** Where to begin: the schedule's offset, or the asset's start within START_SLACK_MS of it. */
export function startOffsetMs(offsetMs: number): number {
  return offsetMs < START_SLACK_MS ? 0 : offsetMs;
}

/** setTimeout's longest delay: a later start is waited for in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A running broadcast that failed (its start refused, or a fault ended its
 * session) is tried again after RETRY_FIRST_MS, the wait doubling with each
 * failure in a row up to RETRY_MAX_MS: a cause that lasts (an asset gone, a
 * limit full) costs one try and one log line a minute, and one that passes (a
 * disk back, room under a limit) is over within seconds.
 */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 60_000;

/** The wait before the next try after `failures` (≥ 1) failures in a row. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(Math.max(0, failures - 1), 16));
}
