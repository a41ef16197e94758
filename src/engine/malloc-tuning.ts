// The process's malloc, tuned for data paths that are restarted. A restarted
// path is a new thread, and glibc gives a new thread another malloc arena; what
// the dead path allocated there (a 86 KB chunk ring per session, and smaller
// pieces) stayed in that arena as free memory the kernel never got back: RSS
// rose at every restart with sessions open, for as many restarts as were
// measured (README, section soak). So allocations of MMAP_THRESHOLD_BYTES and
// more are their own mappings, unmapped when freed (sessions open such buffers
// once, never per datagram: no cost on the hot loop), and once a dead path's
// thread is gone the arenas' free pages go back to the kernel.

import { nativeAddon } from '../shared/native.js';

export const MMAP_THRESHOLD_BYTES = 64 * 1024;

/** Sets the threshold (process-wide, before workers start); false without the addon, or on a libc other than glibc. */
export function tuneMallocForPathRestarts(): boolean {
  return nativeAddon?.setMmapThreshold(MMAP_THRESHOLD_BYTES) === 1;
}

/** After a path's thread ended: the free pages of every arena back to the kernel (a few ms, on the control plane). */
export function releaseFreedMemory(): void {
  nativeAddon?.mallocTrim();
}
