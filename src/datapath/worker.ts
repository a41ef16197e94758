// Entry of a data-path worker thread. Imported by nothing: src/datapath/index.ts
// spawns it. It runs the DataPath loop and makes sure that however this thread
// dies (exception, process.exit, socket or disk loss), it first writes its
// critical-failure word so the supervisor switches within microseconds, instead
// of waiting for the parent's 'exit' event (milliseconds later).

import { parentPort, workerData } from 'node:worker_threads';
import { ControlBlock } from '../shared/control-block.js';
import { CommandReader } from '../shared/command-queue.js';
import type { DataPathWorkerData, MainToPath, PathToMain } from '../shared/messages.js';
import { FailureCause, PATH_NAMES } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import { DataPath, IDLE_WAKE_MS, PathFailure, type SliceEnd } from './data-path.js';
import { DiskError } from './asset-reader.js';
import { warmUpSendPath } from './warmup.js';
import { SocketError } from './path-session.js';
import { currentThreadId, nameThread, raiseThreadPriority, relaxThreadPriority } from '../shared/thread-priority.js';

const data = workerData as DataPathWorkerData;
const cb = ControlBlock.attach(data.controlBlock, data.maxSessions);
let stoppingCleanly = false;
let reported = false;

/** The first report wins: the 'exit' hook that follows a caught failure must not overwrite its cause. */
function reportCritical(cause: FailureCause): void {
  if (reported) return;
  reported = true;
  cb.reportCritical(data.path, data.incarnation, cause, monoNowMs());
}

function causeOf(err: unknown): FailureCause {
  if (err instanceof PathFailure) return err.failureCause;
  if (err instanceof DiskError) return FailureCause.DISK;
  if (err instanceof SocketError) return FailureCause.SOCKET;
  return FailureCause.EXCEPTION;
}

process.on('exit', () => {
  if (!stoppingCleanly) reportCritical(FailureCause.EXIT);
});

const dataPath = new DataPath({
  cb,
  pair: data.pair,
  path: data.path,
  incarnation: data.incarnation,
  commands: new CommandReader(data.commandQueue),
  faultInjection: data.faultInjection,
});

/** Given up while idle (relaxThreadPriority), taken back before the next slice. */
let relaxed = false;

function run(): void {
  if (relaxed) {
    raiseThreadPriority();
    relaxed = false;
  }
  let end: SliceEnd;
  try {
    end = dataPath.runSlice();
  } catch (err) {
    reportCritical(causeOf(err));
    throw err;
  }
  if (end === 'yield') setImmediate(run);
  else if (end === 'idle') {
    if (realtime) {
      relaxThreadPriority(threadId);
      relaxed = true;
    }
    sleepUntilWork();
  }
  else stoppingCleanly = true;
}

/** Nothing is due: sleep in the event loop until the doorbell rings (or IDLE_WAKE_MS, a bound). */
function sleepUntilWork(): void {
  let woken = false;
  const wake = (): void => {
    if (woken) return;
    woken = true;
    clearTimeout(timer);
    run();
  };
  // A pending waitAsync does not keep a worker's event loop alive; this timer does.
  const timer = setTimeout(wake, IDLE_WAKE_MS);
  void cb.waitPathDoorbell(dataPath.idleDoorbell(), IDLE_WAKE_MS).then(wake);
}

// Wires of interleaved sessions; the port must not keep the thread alive once its loop has stopped.
parentPort?.on('message', (message: MainToPath) => dataPath.wireArrived(message));
parentPort?.unref();

nameThread(`tf-path-${data.pair}${PATH_NAMES[data.path]}`);
const threadId = currentThreadId();
cb.setThreadId(data.path, threadId);
const priority = raiseThreadPriority();
const realtime = priority.policy === 'fifo';
const booted: PathToMain = { type: 'booted', path: data.path, incarnation: data.incarnation, policy: priority.policy, priorityError: priority.error };
parentPort?.postMessage(booted);
// Commands wait in the queue meanwhile: nothing is lost, the path just synchronizes a few ms later.
void Promise.all([warmUpSendPath(), dataPath.readerReady()]).then(run);
