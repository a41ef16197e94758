// Bounded waits on a worker thread's end. Worker.terminate() cannot stop a
// thread blocked in a system call (an open(2) of a FIFO with no writer may never
// return): its promise settles only when the call does. The control plane must
// not wait on that, or failure handling and shutdown stop with it.

import type { Worker } from 'node:worker_threads';

/** How long a worker told to stop may take to leave its loop by itself before it is terminated. */
export const STOP_TIMEOUT_MS = 2000;
/** How long a terminated worker may take to end; one blocked in a system call may never end. */
export const TERMINATE_TIMEOUT_MS = 1500;

/** Terminate `worker` and wait at most `ms` for it to end; true if it ended. */
export async function terminateWithin(worker: Worker, ms: number): Promise<boolean> {
  return raceTimeout(worker.terminate().then(() => true, () => true), ms);
}

/**
 * Give a worker `graceMs` to leave its loop by itself (the caller has raised its
 * shutdown flag), then terminate it and wait at most `terminateMs` more. True if it ended.
 */
export async function stopWorker(worker: Worker, exited: Promise<void>, graceMs: number, terminateMs: number): Promise<boolean> {
  if (await raceTimeout(exited.then(() => true), graceMs)) return true;
  return terminateWithin(worker, terminateMs);
}

/** `done`, or false after `ms`. */
async function raceTimeout(done: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
