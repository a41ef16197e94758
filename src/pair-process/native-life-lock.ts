// The primary's side of the life lock (native-pair.ts): a region of its own
// holding the lock, which a thread of its own takes and holds for the process's
// life. The standby's takeover thread (native-takeover.ts) waits on it.
//
// The kernel hands the lock on as "owner died" when its holder thread runs its
// exit, and a SIGKILLed thread runs its exit only when it gets a CPU: the main
// thread, an ordinary one, waited up to 30 ms for one on a loaded machine
// (bench/process-failover --hog 1). So the holder is a SCHED_FIFO thread that
// sleeps and never ends before the process does (it is unref'd; Node ends it
// at the process's exit, which is a death too: a primary that exits hands over).
// It is never released on a close: a release means "take sending now" (a role
// switch), and a closing primary still sends.

import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { LifeHolderToMain, LifeHolderWorkerData } from '../shared/messages.js';
import type { PriorityResult } from '../shared/thread-priority.js';
import { createSharedRegion, initLifeLock, LIFE_LOCK_BYTES, lifeLockWords, openSharedRegion, removeSharedRegion } from './native-pair.js';
import { pairRegionPath } from './shared-blocks.js';

/** The region's size: the lock alone. */
export const LIFE_REGION_BYTES = LIFE_LOCK_BYTES;

export interface HeldLifeLock {
  /** The region's name, for the standby to map. */
  readonly file: string;
  /** The holder thread's scheduling policy. */
  readonly priority: PriorityResult;
  /** Remove the name (the lock stays held: the process's exit lets it go). */
  readonly removeName: () => void;
  /** Let go of the lock while alive: the standby's takeover thread takes sending at once (a role switch). */
  readonly release: () => Promise<void>;
}

/** Make this process's life lock on the pair's `link` and have the holder thread take it; resolves once it holds it. */
export async function holdLifeLock(link: string): Promise<HeldLifeLock> {
  const file = `${pairRegionPath(link, 'life')}lock`;
  removeSharedRegion(file); // a dead process of the same pid left it
  const lock = lifeLockWords(createSharedRegion(file, LIFE_REGION_BYTES), 0);
  initLifeLock(lock);
  const control = new Int32Array(new SharedArrayBuffer(4));
  const workerData: LifeHolderWorkerData = { lock, control };
  const holder = new Worker(new URL('./native-life-lock-thread.js', import.meta.url), { workerData, name: 'twinframe-life' });
  const [message] = await Promise.race([once(holder, 'message'), once(holder, 'error').then(([err]) => { throw err; })]) as [LifeHolderToMain];
  if (message.type !== 'held') {
    await holder.terminate();
    throw new Error(`cannot hold the life lock ${file}: ${message.type === 'error' ? message.message : message.type}`);
  }
  holder.unref();
  const release = async (): Promise<void> => {
    const released = once(holder, 'message') as Promise<[LifeHolderToMain]>;
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
    const [answer] = await released;
    if (answer.type !== 'released') throw new Error(`the life lock ${file} was not let go: ${answer.type === 'error' ? answer.message : answer.type}`);
  };
  return { file, priority: message.priority, removeName: () => removeSharedRegion(file), release };
}

/** The primary's life lock, mapped by its standby. */
export function mapLifeLock(file: string): Int32Array {
  return lifeLockWords(openSharedRegion(file, LIFE_REGION_BYTES), 0);
}
