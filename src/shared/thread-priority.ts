// Raises the calling thread's scheduling priority. On a two-core box the data
// paths and the supervisor share the CPUs with the control plane, the test or
// benchmark harness and freshly booting workers; at normal priority a runnable
// data path can wait milliseconds for a core, which a heartbeat monitor with a
// sub-millisecond window cannot tell from a hang.
//
// First choice: SCHED_FIFO through our addon (native/), which applies to this
// thread only. Fallback: a negative nice value for this thread, via its thread
// id from /proc/thread-self. Both need CAP_SYS_NICE; without it the thread runs
// at normal priority and the caller logs why. TWINFRAME_REALTIME=off|nice|fifo.

import { readlinkSync, writeFileSync } from 'node:fs';
import { constants, getPriority, setPriority } from 'node:os';
import { nativeAddon } from './native.js';

export interface PriorityResult {
  /** 'fifo', 'nice' or 'normal'. */
  readonly policy: 'fifo' | 'nice' | 'normal';
  /** Why a better policy was not had, if it was not. */
  readonly error: string | undefined;
}

/** Data paths run at this SCHED_FIFO priority; the supervisor one above, so it always preempts a spinning path. */
const REALTIME_PRIORITY = 10;
export const SUPERVISOR_PRIORITY = REALTIME_PRIORITY + 1;
const FALLBACK_NICE = -10;

/**
 * Name this thread for the kernel (/proc/<pid>/task/<tid>/comm, cut at 15
 * bytes), so top -H, ps -L and /proc tell the data paths, their readers and the
 * supervisor apart; every Node thread is "node" otherwise. Best effort: a
 * system without /proc keeps the old name.
 */
export function nameThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // no /proc, or not Linux: the name is cosmetic
  }
}

/** This thread's Linux thread id, or 0 where /proc does not say. */
export function currentThreadId(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || 0;
  } catch {
    return 0;
  }
}

export function raiseThreadPriority(priority = REALTIME_PRIORITY): PriorityResult {
  const mode = process.env.TWINFRAME_REALTIME ?? 'fifo';
  if (mode === 'off') return { policy: 'normal', error: 'disabled by TWINFRAME_REALTIME=off' };
  let fifoError: string | undefined;
  if (mode === 'fifo') {
    if (!nativeAddon) fifoError = 'native addon not built';
    else {
      const errno = nativeAddon.setRealtimePriority(priority);
      if (errno === 0) return { policy: 'fifo', error: undefined };
      fifoError = errno === constants.errno.EPERM ? 'SCHED_FIFO not permitted (no CAP_SYS_NICE)' : `sched_setscheduler errno ${errno}`;
    }
  }
  try {
    const tid = currentThreadId();
    setPriority(tid, FALLBACK_NICE);
    if (getPriority(tid) === FALLBACK_NICE) return { policy: 'nice', error: fifoError };
  } catch (err) {
    return { policy: 'normal', error: [fifoError, (err as Error).message].filter(Boolean).join('; ') };
  }
  return { policy: 'normal', error: fifoError };
}

/**
 * Take a hung thread's priority away (SCHED_OTHER, nice 19) so it cannot keep a
 * core from the path taking over while it waits to be terminated. Lowering a
 * priority needs no privilege. Returns an error message, or undefined.
 */
export function demoteThread(tid: number): string | undefined {
  if (tid <= 0) return 'unknown thread';
  try {
    if (nativeAddon) {
      const errno = nativeAddon.demoteThread(tid);
      return errno === 0 ? undefined : `demote failed, errno ${errno}`;
    }
    setPriority(tid, 19);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A real-time thread with nothing due gives its priority up until it has work
 * again (then raiseThreadPriority). Idle, it waits in its event loop, where V8
 * may keep it waiting on its GC helper threads, which run at normal priority: a
 * SCHED_FIFO waiter never yields its core to them, and with two such threads on
 * two cores nothing else ran until the kernel's real-time throttle (about 1 s of
 * two full cores, 5-15 s after an idle start). `tid`: this thread's id.
 */
export function relaxThreadPriority(tid: number): void {
  if (demoteThread(tid) !== undefined) return;
  try {
    setPriority(tid, 0); // demoteThread left it at nice 19: back to an ordinary thread's
  } catch {
    // stays at nice 19 until it raises itself again: idle, that costs nothing
  }
}
