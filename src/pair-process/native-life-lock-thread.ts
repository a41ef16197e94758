// The body of the life-lock holder (native-life-lock.ts): at a real-time
// priority, so that it runs its exit (and the kernel hands the lock on) as soon
// as the process is killed, take the lock and sleep for the process's life.

import { parentPort, workerData } from 'node:worker_threads';
import type { LifeHolderToMain, LifeHolderWorkerData } from '../shared/messages.js';
import { nameThread, raiseThreadPriority, SUPERVISOR_PRIORITY } from '../shared/thread-priority.js';
import { acquireLifeLock } from './native-pair.js';

const { lock } = workerData as LifeHolderWorkerData;
const post = (message: LifeHolderToMain): void => parentPort!.postMessage(message);

try {
  nameThread('tf-life');
  const priority = raiseThreadPriority(SUPERVISOR_PRIORITY);
  const outcome = acquireLifeLock(lock, 0);
  if (outcome !== 'taken') throw new Error(`the new life lock was ${outcome}`);
  post({ type: 'held', priority });
  // Sleep in slices Node can interrupt at the process's exit (the lock goes with the thread).
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(sleep, 0, 0, 60_000);
} catch (err) {
  post({ type: 'error', message: (err as Error).message });
}
