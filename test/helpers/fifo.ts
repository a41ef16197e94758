// FIFOs for tests of code that must never block on one. A FIFO opened for
// reading without O_NONBLOCK waits for a writer forever; the rescue thread
// opens the write end after a while, so code that does block is released and
// its test fails on its assertions instead of hanging the test run.

import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';

export function mkfifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

const rescueSource = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
// Non-blocking: with no reader waiting this fails (ENXIO) and does nothing.
const release = () => {
  try { fs.closeSync(fs.openSync(workerData.fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); } catch {}
};
// Again and again: each blocked open needs its own writer.
setTimeout(() => setInterval(release, 100), workerData.ms);
`;

/**
 * After `ms`, from its own thread (it runs while the caller's thread is stuck),
 * opens and closes the write end of `fifo` every 100 ms. Resolves once the thread runs, to
 * the function that stops it.
 */
export async function rescueFifoAfter(fifo: string, ms: number): Promise<() => Promise<void>> {
  const worker = new Worker(rescueSource, { eval: true, workerData: { fifo, ms } });
  // Running before the caller may block its own thread.
  await new Promise<void>((resolve, reject) => {
    worker.once('online', resolve);
    worker.once('error', reject);
  });
  return async () => {
    await worker.terminate();
  };
}
