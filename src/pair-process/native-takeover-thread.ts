// The body of the takeover thread (native-takeover.ts): at a real-time
// priority, wait on the primary's life lock in slices (to see a stop request,
// and the wires to claim); when it changes hands, run the takeover step at once,
// then report; after a death, claim the followed wires of RTP on RTSP
// connections as soon as the primary's writers are gone (wire-claim.ts), then end.

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ControlBlock } from '../shared/control-block.js';
import type { MainToTakeover, TakeoverStep, TakeoverToMain, TakeoverWorkerData } from '../shared/messages.js';
import { nameThread, raiseThreadPriority, SUPERVISOR_PRIORITY } from '../shared/thread-priority.js';
import { acquireLifeLock, releaseLifeLock } from './native-pair.js';
import { TakeoverTable } from './native-takeover.js';
import { WATCH_SLICE_MS } from './native-watcher.js';
import { ProcessWatch } from './process-exit.js';
import { CLAIM_WAIT_MS, claimAll, writerThreads, writersGone } from './wire-claim.js';

const data = workerData as TakeoverWorkerData;
const PAUSE = new Int32Array(new SharedArrayBuffer(4));
const post = (message: TakeoverToMain): void => parentPort!.postMessage(message);

try {
  nameThread('tf-takeover');
  // The supervisor's priority: above the data paths, so a busy path never delays the switch.
  const priority = raiseThreadPriority(SUPERVISOR_PRIORITY);
  const table = new TakeoverTable(data.table, data.pairs, data.maxSessions);
  const own = data.own.map((sab) => ControlBlock.attach(sab, data.maxSessions));
  const primary = data.primary.map((sab) => ControlBlock.attach(sab, data.primaryMaxSessions));
  const watch = new ProcessWatch(data.primaryPid);
  const wires = new Map<string, SharedArrayBuffer>();
  const takeWires = (): void => {
    for (let m = receiveMessageOnPort(data.wires); m; m = receiveMessageOnPort(data.wires)) {
      const message = m.message as MainToTakeover;
      if (message.type === 'wire') wires.set(message.id, message.wire);
      else wires.delete(message.id);
    }
  };
  post({ type: 'ready', priority });
  while (Atomics.load(data.control, 0) === 0) {
    const outcome = acquireLifeLock(data.lock, WATCH_SLICE_MS);
    takeWires();
    if (outcome === 'timeout') continue;
    if (Atomics.load(data.control, 0) !== 0) {
      // Stopped meanwhile: the main thread took over itself (or closes); it claims the wires too.
      releaseLifeLock(data.lock);
      break;
    }
    const at = process.hrtime.bigint();
    const step: TakeoverStep = { moved: 0, leftToMain: 0, pairsSwitched: 0 };
    const ran = table.locked(() => table.switchSending(own, primary, step));
    const switchedAt = process.hrtime.bigint();
    // Held by this thread, it would read as a death when the thread ends.
    releaseLifeLock(data.lock);
    const died = outcome === 'holder-died';
    post({ type: 'took-over', at, switchedAt, died, ran, step });
    if (died && wires.size > 0) {
      const tids = writerThreads(data.primaryPid, primary);
      const since = performance.now();
      // Not on the control word: a stop request (the main thread's, right after this report) would end the wait, and this loop would spin.
      while (!writersGone(watch, tids) && performance.now() - since < CLAIM_WAIT_MS) Atomics.wait(PAUSE, 0, 0, 0.1);
      const waitedMs = performance.now() - since;
      post({ type: 'wires-claimed', wires: wires.size, unclaimed: claimAll(wires.values(), data.lockSpace), waitedMs });
    }
    break;
  }
  watch.close();
} catch (err) {
  post({ type: 'error', message: (err as Error).message });
}
