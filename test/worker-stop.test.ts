// Waits on a worker's end are bounded: a worker blocked in a system call (here a
// synchronous open(2) of a FIFO that has no writer, as a data path opening an
// asset swapped for a FIFO would be) cannot be terminated until the call
// returns. terminateWithin and stopWorker give up on it in time; once the FIFO
// is opened from the other end, the pending termination completes.

import { execFileSync } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { stopWorker, terminateWithin } from '../src/engine/worker-stop.js';
import { sleep } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';

const BLOCKED_IN_OPEN = `
const { openSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
parentPort.postMessage(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()));
openSync(workerData, 'r'); // no writer: blocks in the kernel
`;

interface Blocked {
  readonly worker: Worker;
  readonly exited: Promise<void>;
  /** Open the FIFO's other end so the blocked open returns; then wait for the worker's end. */
  release(): Promise<void>;
}

/** A worker blocked in open(2) on a FIFO in `dir`; released (and the FIFO removed) at the test's end whatever happens. */
async function blockedWorker(t: { teardown(fn: () => Promise<void>): void }, dir: string): Promise<Blocked> {
  const fifo = path.join(dir, `fifo-${Math.random().toString(36).slice(2, 8)}`);
  execFileSync('mkfifo', [fifo]);
  const worker = new Worker(BLOCKED_IN_OPEN, { eval: true, workerData: fifo });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
  // The kernel says when the open waits for the FIFO's writer.
  const deadline = Date.now() + 10_000;
  while (readFileSync(`/proc/self/task/${tid}/wchan`, 'utf8') !== 'wait_for_partner') {
    if (Date.now() > deadline) throw new Error(`worker thread ${tid} never blocked in open(2) of the FIFO`);
    await sleep(5);
  }
  let released: Promise<void> | undefined;
  const release = (): Promise<void> => (released ??= (async () => {
    // A reader waits in open, so a non-blocking open for writing succeeds and wakes it.
    const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
    await writer?.close();
    await exited;
    await rm(fifo, { force: true });
  })());
  t.teardown(release);
  return { worker, exited, release };
}

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'twinframe-worker-stop-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('terminateWithin gives up on a worker blocked in open(2) of a FIFO after its bound, and the termination completes once the open returns', async (t) => {
  t.timeout(15_000);
  const blocked = await blockedWorker(t, dir);
  const started = Date.now();
  t.false(await terminateWithin(blocked.worker, 500), 'the blocked worker did not end');
  const waited = Date.now() - started;
  t.true(waited >= 450 && waited < 2000, `waited ${waited} ms for a 500 ms bound`);
  let ended = false;
  void blocked.exited.then(() => { ended = true; });
  await sleep(300);
  t.false(ended, 'still blocked: only the open returning lets it end');
  await blocked.release();
  t.true(ended, 'the worker ended once its open returned');
});

test('stopWorker gives a worker its grace, then terminates it, and gives up on one that still does not end', async (t) => {
  t.timeout(15_000);
  const blocked = await blockedWorker(t, dir);
  const started = Date.now();
  t.false(await stopWorker(blocked.worker, blocked.exited, 300, 400));
  const waited = Date.now() - started;
  t.true(waited >= 650 && waited < 2500, `waited ${waited} ms for 300 + 400 ms bounds`);
  await blocked.release();

  // A worker that does end is waited for, and reported as ended.
  const quick = new Worker('setTimeout(() => {}, 100)', { eval: true });
  const quickExited = new Promise<void>((resolve) => quick.once('exit', () => resolve()));
  t.true(await stopWorker(quick, quickExited, 2000, 1000), 'a worker that leaves by itself ends within its grace');
  const spinning = new Worker('for (;;) {}', { eval: true });
  const spinningExited = new Promise<void>((resolve) => spinning.once('exit', () => resolve()));
  t.true(await stopWorker(spinning, spinningExited, 100, 2000), 'a worker stuck in JavaScript is terminated');
});

leakCheck(test);
