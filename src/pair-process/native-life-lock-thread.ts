// The body of the life-lock holder (native-life-lock.ts): at a real-time
// priority, so that it runs its exit (and the kernel hands the lock on) as soon
// as the process is killed, take the lock and sleep for the process's life, or
// until a role switch asks it to let go.

import { parentPort, workerData } from 'node:worker_threads';
import type { LifeHolderToMain, LifeHolderWorkerData } from '../shared/messages.js';
import { nameThread, raiseThreadPriority, SUPERVISOR_PRIORITY } from '../shared/thread-priority.js';
import { acquireLifeLock, releaseLifeLock } from './native-pair.js';

const { lock, control } = workerData as LifeHolderWorkerData;
const post = (message: LifeHolderToMain): void => parentPort!.postMessage(message);

try {
  nameThread('tf-life');
  const priority = raiseThreadPriority(SUPERVISOR_PRIORITY);
  const outcome = acquireLifeLock(lock, 0);
  if (outcome !== 'taken') throw new Error(`the new life lock was ${outcome}`);
  post({ type: 'held', priority });
  // Sleep in slices Node can interrupt at the process's exit (the lock goes with the thread), until asked to let go.
  while (Atomics.load(control, 0) === 0) Atomics.wait(control, 0, 0, 60_000);
  releaseLifeLock(lock);
  post({ type: 'released' });
} catch (err) {
  post({ type: 'error', message: (err as Error).message });
}
