// Issue 17, primitive 3: a thread learns at once that a process died. A pidfd
// (pidfd_open) is readable once its process has exited; a watcher thread
// blocks on it in poll(2). Measured over 200 SIGKILLs (logged, not asserted: a
// loaded 2-core machine decides the figures).

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { openPidfd, waitProcessExit } from '../src/pair-process/native-pair.js';
import { ReadableWatcher } from '../src/pair-process/native-watcher.js';
import { leakCheck } from './helpers/leak-check.js';
import { blockingWaiter, childExited, nextMessage, type WaitFor, type WaitResult } from './helpers/native-pair-waiter.js';

const KILLS = 200;

function sleeper(): ChildProcess {
  return spawn('sleep', ['60'], { stdio: 'ignore' });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

test.serial(`a watcher thread returns 'exited' after each of ${KILLS} SIGKILLs (kill-to-return time logged)`, async (t) => {
  const worker = blockingWaiter();
  t.teardown(() => worker.terminate());
  t.is(await nextMessage<string>(worker), 'loaded');
  const latenciesUs: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const child = sleeper();
    const pidfd = openPidfd(child.pid!);
    try {
      const waiting = nextMessage<string>(worker);
      worker.postMessage({ pidfd } satisfies WaitFor);
      t.is(await waiting, 'waiting');
      // Let the worker reach poll(2) (a pidfd stays readable, so a kill before it does is still seen).
      await new Promise((resolve) => setTimeout(resolve, 1));
      const result = nextMessage<WaitResult>(worker);
      const killedAt = process.hrtime.bigint();
      child.kill('SIGKILL');
      const { outcome, at } = await result;
      if (outcome !== 'exited') t.fail(`kill ${i}: ${outcome}`);
      latenciesUs.push(Number(at - killedAt) / 1000);
    } finally {
      fs.closeSync(pidfd);
      child.kill('SIGKILL');
      await childExited(child);
    }
  }
  t.is(latenciesUs.length, KILLS);
  const sorted = [...latenciesUs].sort((a, b) => a - b);
  t.log(`kill → watcher returned, ${KILLS} SIGKILLs: median ${percentile(sorted, 50).toFixed(0)} µs, p99 ${percentile(sorted, 99).toFixed(0)} µs, max ${sorted[sorted.length - 1].toFixed(0)} µs`);
});

test.serial('a ReadableWatcher on a pidfd wakes an Atomics.wait of another thread itself, then calls back once', async (t) => {
  const child = sleeper();
  t.teardown(async () => {
    child.kill('SIGKILL');
    await childExited(child);
  });
  const pidfd = openPidfd(child.pid!);
  t.teardown(() => fs.closeSync(pidfd));
  const words = new Int32Array(new SharedArrayBuffer(8));
  const sleeperThread = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    Atomics.store(workerData, 1, 1);
    parentPort.postMessage(Atomics.wait(workerData, 0, 0, 30000));
  `, { eval: true, workerData: words });
  t.teardown(() => sleeperThread.terminate());
  while (Atomics.load(words, 1) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const woken = nextMessage<string>(sleeperThread);
  let calls = 0;
  const called = new Promise<bigint>((resolve, reject) => {
    const watcher = new ReadableWatcher(pidfd, {
      once: true,
      wake: { array: words, index: 0 },
      onReadable: (at) => { calls++; resolve(at); },
      onError: reject,
    });
    t.teardown(() => watcher.stop());
  });
  t.is(waitProcessExit(pidfd, 0), 'timeout', 'alive: not readable');
  child.kill('SIGKILL');
  t.is(await woken, 'ok');
  t.is(Atomics.load(words, 0), 1);
  t.is(typeof await called, 'bigint');
  t.is(waitProcessExit(pidfd, 0), 'exited', 'a dead process\'s pidfd stays readable');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(calls, 1);
});

test.serial('a pidfd of no process is refused (ESRCH)', (t) => {
  const child = spawn('true');
  const pid = child.pid!;
  return childExited(child).then(() => {
    t.throws(() => openPidfd(pid), { code: 'ESRCH' });
  });
});

leakCheck(test);
