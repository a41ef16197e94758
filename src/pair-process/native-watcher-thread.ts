// The body of a ReadableWatcher (native-watcher.ts): wait in poll(2), in slices
// so that a stop request is seen, and report each time the descriptor is
// readable; between reports wait until the owner has drained it (ARMED).

import { parentPort, workerData } from 'node:worker_threads';
import type { WatcherToMain, WatcherWorkerData } from '../shared/messages.js';
import { requirePairNative } from './native-pair.js';
import { WATCH_ARMED, WATCH_SLICE_MS, WATCH_STOP } from './native-watcher.js';

const data = workerData as WatcherWorkerData;
const addon = requirePairNative();

function post(message: WatcherToMain): void {
  parentPort!.postMessage(message);
}

while (Atomics.load(data.control, WATCH_STOP) === 0) {
  if (Atomics.load(data.control, WATCH_ARMED) === 0) {
    Atomics.wait(data.control, WATCH_ARMED, 0, WATCH_SLICE_MS);
    continue;
  }
  const result = addon.waitReadable(data.fd, WATCH_SLICE_MS);
  if (result === 0) continue;
  if (result < 0) {
    post({ type: 'error', message: `waitReadable(${data.fd}): errno ${-result}` });
    break;
  }
  const at = process.hrtime.bigint();
  if (data.wake) {
    Atomics.store(data.wake.array, data.wake.index, 1);
    Atomics.notify(data.wake.array, data.wake.index);
  }
  Atomics.store(data.control, WATCH_ARMED, 0);
  post({ type: 'readable', at });
  if (data.once) break;
}
