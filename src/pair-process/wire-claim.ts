// After the primary's death, its wires of RTP on RTSP connections become this
// process's (src/shared/wire.ts, Wire.claim) once none of the primary's threads
// that wrote them can write again: its main thread and its data paths (their
// thread ids are in its control blocks, which the standby maps) are past their
// last system call. The takeover thread does it at once after its step; the
// main thread again after its own bookkeeping, for a wire the thread missed.

import type { ControlBlock } from '../shared/control-block.js';
import { Wire, type LockSpace } from '../shared/wire.js';
import type { ProcessWatch } from './process-exit.js';

/** How long the dead primary's writers may take to be past their last system call before its wires are claimed anyway. */
export const CLAIM_WAIT_MS = 1000;
/** How long a claim waits for a thread of this process that holds a wire's lock for one failed try. */
const CLAIM_SPIN_MS = 5;
const SPIN = new Int32Array(new SharedArrayBuffer(4));

/** The dead primary's threads that wrote wires: its main thread and its data paths; undefined without its blocks. */
export function writerThreads(pid: number, blocks: readonly ControlBlock[]): number[] | undefined {
  if (blocks.length === 0) return undefined;
  return [pid, ...blocks.flatMap((cb) => [cb.threadId(0), cb.threadId(1)]).filter((tid) => tid > 0)];
}

/** None of the primary's writers can write again (without their ids: the whole process is gone). */
export function writersGone(primary: ProcessWatch, tids: readonly number[] | undefined): boolean {
  return tids ? primary.threadsDying(tids) : primary.gone();
}

/** Claim each wire for this process (space); returns how many could not be (a lock held here past CLAIM_SPIN_MS). */
export function claimAll(wires: Iterable<SharedArrayBuffer>, space: LockSpace): number {
  let unclaimed = 0;
  for (const sab of wires) {
    const wire = new Wire(sab);
    const deadline = performance.now() + CLAIM_SPIN_MS;
    while (!wire.claim(space)) {
      if (performance.now() > deadline) {
        unclaimed++;
        break;
      }
      Atomics.wait(SPIN, 0, 0, 0.01);
    }
  }
  return unclaimed;
}
