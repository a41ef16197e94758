// Issue 17, primitive 1: a region of shared memory that two real processes map,
// as a SharedArrayBuffer: Atomics hold across the processes, the buffer can be
// posted to a worker thread, and the name is removed without leftovers.

import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  createSharedRegion, openSharedRegion, pairRuntimeDir, removeSharedRegion,
} from '../src/pair-process/native-pair.js';
import { COUNT_ADD, COUNT_CAS, COUNT_GO, COUNT_READY } from './helpers/native-pair-child.js';
import { leakCheck } from './helpers/leak-check.js';
import { childExited } from './helpers/native-pair-waiter.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./helpers/native-pair-child.js', import.meta.url));
const BYTES = 4096;
const N = 1_000_000;

/** A fresh private directory on /dev/shm (mkdtemp makes it 0700), removed after the test. */
function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'twinframe-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('two processes increment one counter 1e6 times each, by add and by compareExchange: the result is exact', async (t) => {
  const file = path.join(tempDir(t), 'counter');
  const words = new Int32Array(createSharedRegion(file, BYTES));
  const children = [0, 1].map(() => spawn(process.execPath, [CHILD, 'count', file, String(BYTES), String(N)], { stdio: ['ignore', 'ignore', 'inherit'] }));
  t.teardown(() => children.forEach((c) => c.kill('SIGKILL')));
  // Both mapped and waiting: start them together so that they contend.
  const deadline = Date.now() + 30_000;
  while (Atomics.load(words, COUNT_READY) < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  t.is(Atomics.load(words, COUNT_READY), 2, 'both children mapped the region');
  Atomics.store(words, COUNT_GO, 1);
  t.deepEqual(await Promise.all(children.map(childExited)), [0, 0]);
  t.is(Atomics.load(words, COUNT_ADD), 2 * N);
  t.is(Atomics.load(words, COUNT_CAS), 2 * N);
  removeSharedRegion(file);
  t.false(fs.existsSync(file));
  t.is(words[COUNT_ADD], 2 * N, 'the mapping outlives its name');
});

test('the buffer is a SharedArrayBuffer a worker thread shares: its Atomics.wait is woken by this thread', async (t) => {
  const file = path.join(tempDir(t), 'wake');
  const buffer = createSharedRegion(file, BYTES);
  t.true(buffer instanceof SharedArrayBuffer);
  t.is(buffer.byteLength, BYTES);
  const words = new Int32Array(buffer);
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const words = new Int32Array(workerData);
    Atomics.store(words, 1, 1);
    parentPort.postMessage(Atomics.wait(words, 0, 0, 30000));
  `, { eval: true, workerData: buffer });
  t.teardown(() => worker.terminate());
  while (Atomics.load(words, 1) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const outcome = new Promise((resolve) => worker.once('message', resolve));
  // Until the worker sleeps, notify finds no waiter: notify until it woke one.
  while (Atomics.notify(words, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  t.is(await outcome, 'ok');
  // A second mapping of the same file in this process sees the same memory.
  const again = new Int32Array(openSharedRegion(file, BYTES));
  Atomics.store(words, 2, 42);
  t.is(Atomics.load(again, 2), 42);
});

test('a region a worker thread made outlives the worker: its teardown frees the buffer it kept, the one it posted out still works', async (t) => {
  const dir = tempDir(t);
  // The unmap deleter runs as the worker's heap is torn down, after Node closed the addon the worker
  // loaded: unless the addon keeps itself loaded, that jumps into unmapped code (SIGSEGV). Only a
  // process whose main thread never loaded the addon shows it: a child that leaves it to its worker.
  const { stdout } = await run(process.execPath, ['-e', `
    const { Worker } = require('node:worker_threads');
    const worker = new Worker(\`
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.module).then((pair) => {
        const kept = pair.createSharedRegion(workerData.dir + '/kept', 4096);
        const posted = pair.createSharedRegion(workerData.dir + '/posted', 4096);
        new Int32Array(kept)[0] = 1;
        new Int32Array(posted)[0] = 2;
        parentPort.postMessage(posted);
        setInterval(() => new Int32Array(kept)[0]++, 1000);
      });
    \`, { eval: true, workerData: JSON.parse(process.argv[1]) });
    worker.once('message', async (posted) => {
      await worker.terminate();
      const words = new Int32Array(posted);
      Atomics.add(words, 0, 40);
      setTimeout(() => console.log(Atomics.load(words, 0)), 100);
    });
  `, JSON.stringify({ module: new URL('../src/pair-process/native-pair.js', import.meta.url).href, dir })], { timeout: 30_000 });
  t.is(stdout.trim(), '42');
  t.is(Atomics.load(new Int32Array(openSharedRegion(path.join(dir, 'posted'), 4096)), 0), 42);
});

test('create refuses an existing name, open a region of another size; the runtime directory is private', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'r');
  createSharedRegion(file, BYTES);
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  t.throws(() => createSharedRegion(file, BYTES), { code: 'EEXIST' });
  t.throws(() => openSharedRegion(file, 2 * BYTES), { code: 'EINVAL' });
  t.throws(() => openSharedRegion(path.join(dir, 'missing'), BYTES), { code: 'ENOENT' });
  const runtime = pairRuntimeDir(dir);
  t.is(fs.statSync(runtime).mode & 0o777, 0o700);
  t.is(pairRuntimeDir(dir), runtime);
  fs.chmodSync(runtime, 0o755);
  t.throws(() => pairRuntimeDir(dir), { message: /not a private directory/ });
});

test('without the addon the pair\'s primitives refuse with one clear error', async (t) => {
  const module = new URL('../src/pair-process/native-pair.js', import.meta.url).href;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `
    const { nativeAddon } = await import(${JSON.stringify(new URL('../src/shared/native.js', import.meta.url).href)});
    const pair = await import(${JSON.stringify(module)});
    const refusals = [];
    for (const call of [() => pair.requirePairNative(), () => pair.createSharedRegion('/dev/shm/x', 8), () => pair.openPidfd(process.pid), () => pair.FdChannel.connect('/x')]) {
      try { call(); refusals.push('none'); } catch (err) { refusals.push(err.name + ': ' + err.message); }
    }
    console.log(JSON.stringify({ addon: nativeAddon !== undefined, refusals }));
  `], { env: { ...process.env, TWINFRAME_NATIVE: 'off' }, timeout: 30_000 });
  const r = JSON.parse(stdout) as { addon: boolean; refusals: string[] };
  t.false(r.addon);
  t.is(r.refusals.length, 4);
  const refusal = 'PairNativeUnavailableError: the process pair needs twinframe\'s native addon (shared memory, descriptor passing, pidfd): TWINFRAME_NATIVE=off disables it';
  t.deepEqual(r.refusals, [refusal, refusal, refusal, refusal]);
});

leakCheck(test);
