// The process's malloc, tuned for data paths that are restarted. A restarted
// path is a new thread, and glibc gives a new thread another malloc arena; its
// per-session buffers (a 86 KB chunk ring each, and more) were allocated in that
// arena and, once the path died, kept there as free memory the kernel never got
// back: RSS rose at every restart with sessions open, for as many restarts as
// were measured (README, section soak). Allocations of MMAP_THRESHOLD_BYTES and
// more are made their own mappings instead and unmapped when freed. Sessions
// open such buffers once, never per datagram, so the extra mmap calls cost nothing
// on the hot loop.

import { nativeAddon } from '../shared/native.js';

export const MMAP_THRESHOLD_BYTES = 64 * 1024;

/** Sets the threshold (process-wide); false without the addon, an addon built before it, or a libc other than glibc. */
export function tuneMallocForPathRestarts(): boolean {
  return nativeAddon?.setMmapThreshold?.(MMAP_THRESHOLD_BYTES) === 1;
}
