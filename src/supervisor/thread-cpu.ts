// CPU time of one thread of this process. The supervisor reads it only when a
// path's heartbeat is already late, to tell a hung path (burning CPU without
// beating) from one the machine did not run (waiting for a core, or a stalled
// virtual CPU): only the first is the path's failure.
//
// Exact figures come from the addon (clock_gettime on the thread's CPU clock);
// the fallback, /proc/self/task/<tid>/schedstat, lags a running thread by up to
// one scheduler tick, which only makes hang detection a few ms slower.

import { openSync, readSync, closeSync } from 'node:fs';
import { nativeAddon } from '../shared/native.js';

const buf = Buffer.alloc(128);

/** Nanoseconds the thread has spent on a CPU, or undefined if unknown. */
export function readThreadCpuNs(tid: number): number | undefined {
  if (tid <= 0) return undefined;
  if (nativeAddon) {
    const ns = nativeAddon.threadCpuNs(tid);
    return ns >= 0 ? ns : undefined;
  }
  return readSchedstatCpuNs(tid);
}

/** The fallback: /proc/self/task/<tid>/schedstat, current to the last scheduler tick. */
export function readSchedstatCpuNs(tid: number): number | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/self/task/${tid}/schedstat`, 'r');
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    return Number(buf.toString('latin1', 0, n).split(' ')[0]);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
