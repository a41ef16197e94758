// The native addon and its plain-Node fallbacks: both give the same answers,
// and the failover path works on either.

import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { nativeAddon } from '../src/shared/native.js';
import { readSchedstatCpuNs, readThreadCpuNs } from '../src/supervisor/thread-cpu.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** A worker that spins for `ms` and reports its thread id first. */
async function spinningThread(ms: number): Promise<{ tid: number; done: Promise<void> }> {
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    parentPort.postMessage(tid);
    const end = Date.now() + workerData;
    while (Date.now() < end) {}
  `, { eval: true, workerData: ms });
  const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
  return { tid, done: new Promise((resolve) => worker.once('exit', () => resolve())) };
}

test('the addon is built by npm install on this machine', (t) => {
  // CI installs with a compiler present; a missing build would silently weaken hang detection.
  t.truthy(nativeAddon, 'native/build/Release/twinframe_native.node did not load');
});

test('a busy thread\'s CPU time reads the same from the addon and from /proc, within a scheduler tick', async (t) => {
  const { tid, done } = await spinningThread(400);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const viaProc0 = readSchedstatCpuNs(tid)!;
  const viaBest0 = readThreadCpuNs(tid)!;
  await new Promise((resolve) => setTimeout(resolve, 100));
  const viaProc1 = readSchedstatCpuNs(tid)!;
  const viaBest1 = readThreadCpuNs(tid)!;
  await done;
  const procMs = (viaProc1 - viaProc0) / 1e6;
  const bestMs = (viaBest1 - viaBest0) / 1e6;
  t.true(bestMs > 30, `the spinning thread ran ${bestMs.toFixed(1)} ms of 100`);
  t.true(Math.abs(procMs - bestMs) < 12, `addon ${bestMs.toFixed(2)} ms vs /proc ${procMs.toFixed(2)} ms`);
  t.is(readThreadCpuNs(0), undefined);
});

for (const [label, env] of [
  ['native addon, SCHED_FIFO', {}],
  ['plain-Node fallback (no addon)', { TWINFRAME_NATIVE: 'off' }],
] as const) {
  test.serial(`with the ${label}, a hang and a crash of the active path lose and duplicate nothing`, async (t) => {
    const { stdout } = await run(process.execPath, [path.join(here, 'helpers/fallback-scenario.js')], {
      env: { ...process.env, ...env }, timeout: 60_000,
    });
    const r = JSON.parse(stdout) as { addonLoaded: boolean; received: number; sent: number; lost: number; duplicated: number; mismatched: number; failovers: Array<{ cause: string; movedSending: boolean }> };
    t.is(r.addonLoaded, !('TWINFRAME_NATIVE' in env));
    t.is(r.received, r.sent);
    t.deepEqual({ lost: r.lost, duplicated: r.duplicated, mismatched: r.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 });
    t.true(r.failovers.some((f) => f.cause === 'heartbeat' && f.movedSending), JSON.stringify(r.failovers));
    t.true(r.failovers.some((f) => f.cause === 'exit' && f.movedSending), JSON.stringify(r.failovers));
    t.is(r.failovers.length, 2, `no failover without a fault: ${JSON.stringify(r.failovers)}`);
  });
}
