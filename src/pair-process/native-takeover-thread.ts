// The body of the takeover thread (native-takeover.ts): at a real-time
// priority, wait on the primary's life lock in slices (to see a stop request);
// when it changes hands, run the takeover step at once, then report.

import { parentPort, workerData } from 'node:worker_threads';
import { ControlBlock } from '../shared/control-block.js';
import type { TakeoverStep, TakeoverToMain, TakeoverWorkerData } from '../shared/messages.js';
import { nameThread, raiseThreadPriority, SUPERVISOR_PRIORITY } from '../shared/thread-priority.js';
import { acquireLifeLock, releaseLifeLock } from './native-pair.js';
import { TakeoverTable } from './native-takeover.js';
import { WATCH_SLICE_MS } from './native-watcher.js';

const data = workerData as TakeoverWorkerData;
const post = (message: TakeoverToMain): void => parentPort!.postMessage(message);

try {
  nameThread('tf-takeover');
  // The supervisor's priority: above the data paths, so a busy path never delays the switch.
  const priority = raiseThreadPriority(SUPERVISOR_PRIORITY);
  const table = new TakeoverTable(data.table, data.pairs, data.maxSessions);
  const own = data.own.map((sab) => ControlBlock.attach(sab, data.maxSessions));
  const primary = data.primary.map((sab) => ControlBlock.attach(sab, data.primaryMaxSessions));
  post({ type: 'ready', priority });
  while (Atomics.load(data.control, 0) === 0) {
    const outcome = acquireLifeLock(data.lock, WATCH_SLICE_MS);
    if (outcome === 'timeout') continue;
    const at = process.hrtime.bigint();
    const step: TakeoverStep = { moved: 0, leftToMain: 0, pairsSwitched: 0 };
    const ran = table.locked(() => table.switchSending(own, primary, step));
    const switchedAt = process.hrtime.bigint();
    // Held by this thread, it would read as a death when the thread ends.
    releaseLifeLock(data.lock);
    post({ type: 'took-over', at, switchedAt, died: outcome === 'holder-died', ran, step });
    break;
  }
} catch (err) {
  post({ type: 'error', message: (err as Error).message });
}
