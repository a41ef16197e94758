// Loads twinframe's optional Node-API addon (native/). Everything it offers has
// a slower or coarser fallback in plain Node, so a missing build is not an
// error: callers get undefined and use their fallback. TWINFRAME_NATIVE=off
// forces the fallback (the test suite runs both ways).

import { createRequire } from 'node:module';

export interface NativeAddon {
  /** SCHED_FIFO for the calling thread; 0 or an errno. */
  setRealtimePriority(priority: number): number;
  /** CPU time of a thread of this process, exact to now; -1 on error. */
  threadCpuNs(tid: number): number;
  /** Put a thread of this process back under SCHED_OTHER at nice 19; 0 or an errno. */
  demoteThread(tid: number): number;
}

function load(): NativeAddon | undefined {
  if (process.env.TWINFRAME_NATIVE === 'off') return undefined;
  try {
    return createRequire(import.meta.url)('../../../native/build/Release/twinframe_native.node') as NativeAddon;
  } catch {
    return undefined;
  }
}

export const nativeAddon: NativeAddon | undefined = load();
