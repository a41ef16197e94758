// The body of a watcher (native-watcher.ts): wait in the kernel, in slices so
// that a stop request is seen, and report; for a descriptor watched more than
// once, wait between reports until the owner has drained it (ARMED).

import { parentPort, workerData } from 'node:worker_threads';
import type { WatcherToMain, WatcherWorkerData } from '../shared/messages.js';
import { acquireLifeLock, releaseLifeLock, waitReadable } from './native-pair.js';
import { WATCH_ARMED, WATCH_SLICE_MS, WATCH_STOP } from './native-watcher.js';

const { target, control, wake } = workerData as WatcherWorkerData;

/** Wait one slice: the event to report, or undefined when nothing happened. */
function waitOnce(): WatcherToMain | undefined {
  if (target.kind === 'fd') {
    return waitReadable(target.fd, WATCH_SLICE_MS) ? { type: 'readable', at: process.hrtime.bigint() } : undefined;
  }
  const outcome = acquireLifeLock(target.lock, WATCH_SLICE_MS);
  if (outcome === 'timeout') return undefined;
  const at = process.hrtime.bigint();
  // Held by this thread, it would read as a death when the thread ends.
  releaseLifeLock(target.lock);
  return { type: 'holder-gone', at, died: outcome === 'holder-died' };
}

const once = target.kind === 'life-lock' || target.once;
try {
  while (Atomics.load(control, WATCH_STOP) === 0) {
    if (Atomics.load(control, WATCH_ARMED) === 0) {
      Atomics.wait(control, WATCH_ARMED, 0, WATCH_SLICE_MS);
      continue;
    }
    const event = waitOnce();
    if (!event) continue;
    if (wake) {
      Atomics.store(wake.array, wake.index, 1);
      Atomics.notify(wake.array, wake.index);
    }
    Atomics.store(control, WATCH_ARMED, 0);
    parentPort!.postMessage(event);
    if (once) break;
  }
} catch (err) {
  parentPort!.postMessage({ type: 'error', message: (err as Error).message } satisfies WatcherToMain);
}
