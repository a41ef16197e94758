// Issue 17, primitive 3 (faster): the life lock, a robust process-shared mutex
// in a shared region that the primary's main thread holds. The kernel hands it
// on as "owner died" as the holder starts to exit, before the dead process's
// memory is freed, where a pidfd waits for that teardown. Figures for both over
// SIGKILLs of a 256 MiB process are logged, not asserted. The holder child
// drops its own reference to the region: the lock is kept mapped by
// acquireLifeLock itself (a collected region once left the waiter asleep).

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  acquireLifeLock, createSharedRegion, initLifeLock, lifeLockWords, openPidfd, releaseLifeLock,
} from '../src/pair-process/native-pair.js';
import { LifeLockWatcher } from '../src/pair-process/native-watcher.js';
import { leakCheck } from './helpers/leak-check.js';
import { blockingWaiter, childExited, nextMessage, type WaitFor, type WaitResult } from './helpers/native-pair-waiter.js';

const CHILD = fileURLToPath(new URL('./helpers/native-pair-child.js', import.meta.url));
const REGION_BYTES = 4096;
const KILLS = 10;
const HOLDER_MIB = 256;

/** A region with an initialized life lock at offset 0, in a fresh 0700 dir on /dev/shm removed after the test. */
function lockRegion(t: { teardown: (fn: () => void) => void }): { file: string; lock: Int32Array } {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'twinframe-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'region');
  const lock = lifeLockWords(createSharedRegion(file, REGION_BYTES), 0);
  initLifeLock(lock);
  return { file, lock };
}

/** A child that holds the lock with `mib` MiB of memory, once it said ready. */
async function holder(file: string, mib: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD, 'hold', file, String(REGION_BYTES), String(mib)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the holder exited ${code} before it was ready`)));
  });
  return child;
}

test.serial('a release reads as taken, a SIGKILL of the holder as holder-died; the watcher wakes an Atomics.wait-er and the lock works after', async (t) => {
  const { file, lock } = lockRegion(t);
  t.is(acquireLifeLock(lock, 0), 'taken');
  t.throws(() => acquireLifeLock(lock, 0), { code: 'EDEADLK' });

  const released = new Promise<boolean>((resolve, reject) => {
    const watcher = new LifeLockWatcher(lock, { onHolderGone: (_at, died) => resolve(died), onError: reject });
    t.teardown(() => watcher.stop());
  });
  await new Promise((resolve) => setTimeout(resolve, 200)); // the watcher is waiting (or will find the lock free: the same answer)
  releaseLifeLock(lock);
  t.false(await released, 'a release is a handover, not a death');

  const child = await holder(file, 1);
  t.teardown(async () => {
    child.kill('SIGKILL');
    await childExited(child);
  });
  t.is(acquireLifeLock(lock, 0), 'timeout', 'the child holds it');
  const words = new Int32Array(new SharedArrayBuffer(4));
  const died = new Promise<boolean>((resolve, reject) => {
    const watcher = new LifeLockWatcher(lock, { wake: { array: words, index: 0 }, onHolderGone: (_at, d) => resolve(d), onError: reject });
    t.teardown(() => watcher.stop());
  });
  child.kill('SIGKILL');
  t.true(await died);
  t.is(Atomics.load(words, 0), 1);
  t.is(acquireLifeLock(lock, 0), 'taken', 'consistent again: the new primary takes it');
  releaseLifeLock(lock);
});

function summary(us: readonly number[]): string {
  const sorted = [...us].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} µs, max ${sorted[sorted.length - 1].toFixed(0)} µs`;
}

test.serial(`${KILLS} SIGKILLs of a ${HOLDER_MIB} MiB holder: the life lock and the pidfd both tell a waiting thread (times logged)`, async (t) => {
  const { file, lock } = lockRegion(t);
  const lockWaiter = blockingWaiter();
  const pidfdWaiter = blockingWaiter();
  t.teardown(() => lockWaiter.terminate());
  t.teardown(() => pidfdWaiter.terminate());
  t.deepEqual(await Promise.all([nextMessage(lockWaiter), nextMessage(pidfdWaiter)]), ['loaded', 'loaded']);
  const lockUs: number[] = [];
  const pidfdUs: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const child = await holder(file, HOLDER_MIB);
    const pidfd = openPidfd(child.pid!);
    try {
      const waiting = [nextMessage<string>(lockWaiter), nextMessage<string>(pidfdWaiter)];
      lockWaiter.postMessage({ lock } satisfies WaitFor);
      pidfdWaiter.postMessage({ pidfd } satisfies WaitFor);
      t.deepEqual(await Promise.all(waiting), ['waiting', 'waiting']);
      await new Promise((resolve) => setTimeout(resolve, 5)); // both in the kernel (a later start sees the same state)
      const results = [nextMessage<WaitResult>(lockWaiter), nextMessage<WaitResult>(pidfdWaiter)];
      const killedAt = process.hrtime.bigint();
      child.kill('SIGKILL');
      const [byLock, byPidfd] = await Promise.all(results);
      t.is(byLock.outcome, 'holder-died');
      t.is(byPidfd.outcome, 'exited');
      lockUs.push(Number(byLock.at - killedAt) / 1000);
      pidfdUs.push(Number(byPidfd.at - killedAt) / 1000);
    } finally {
      fs.closeSync(pidfd);
      child.kill('SIGKILL');
      await childExited(child);
    }
  }
  t.log(`kill → waiting thread returned, ${KILLS} SIGKILLs of a ${HOLDER_MIB} MiB process: life lock ${summary(lockUs)}; pidfd ${summary(pidfdUs)}`);
});

leakCheck(test);
