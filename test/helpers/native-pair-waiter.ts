// For the native-pair tests: a thread that blocks in the kernel the way a
// standby's watcher will, and says when it returned; and a child's exit.

import type { ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';

/** What a blockingWaiter is posted: wait for a pidfd to be readable, or to take a life lock. */
export type WaitFor = { pidfd: number } | { lock: Int32Array };

/** What it posts back after the wait: the outcome and process.hrtime.bigint() when the wait returned. */
export interface WaitResult {
  outcome: string;
  at: bigint;
}

/**
 * A worker that posts 'loaded', then for each WaitFor posted to it posts
 * 'waiting', blocks (waitProcessExit, or acquireLifeLock and release at once;
 * 30 s at most) and posts a WaitResult.
 */
export function blockingWaiter(): Worker {
  return new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData).then((pair) => {
      parentPort.on('message', (m) => {
        parentPort.postMessage('waiting');
        let outcome;
        if (m.lock) {
          outcome = pair.acquireLifeLock(m.lock, 30000);
          if (outcome !== 'timeout') pair.releaseLifeLock(m.lock);
        } else {
          outcome = pair.waitProcessExit(m.pidfd, 30000);
        }
        parentPort.postMessage({ outcome, at: process.hrtime.bigint() });
      });
      parentPort.postMessage('loaded');
    });
  `, { eval: true, workerData: new URL('../../src/pair-process/native-pair.js', import.meta.url).href });
}

/** The worker's next message (its listeners removed after). */
export function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      worker.off('message', onMessage);
      reject(err);
    };
    const onMessage = (message: T): void => {
      worker.off('error', onError);
      resolve(message);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

/** The child's exit code (null when a signal ended it), whether or not it has already exited. */
export function childExited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}
