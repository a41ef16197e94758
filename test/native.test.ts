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
import { leakCheck } from './helpers/leak-check.js';
import { PACING_BOUND_MS } from './helpers/stream-pacing.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** A worker that reports its thread id, then spins until stop(). */
async function spinningThread(): Promise<{ tid: number; stop: () => Promise<void> }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    parentPort.postMessage(tid);
    while (Atomics.load(workerData, 0) === 0) {}
  `, { eval: true, workerData: flag });
  const stop = async (): Promise<void> => {
    Atomics.store(flag, 0, 1);
    await worker.terminate();
  };
  try {
    return { tid: await new Promise<number>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); }), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** /proc's figure is current to the last scheduler tick: 10 ms at HZ=100, the coarsest a kernel is built with. */
const TICK_MS = 10;

/** The addon's reading bracketed by two /proc readings taken just before and after it, in ms. */
function bracketed(tid: number): { procBefore: number; best: number; procAfter: number } {
  const procBefore = readSchedstatCpuNs(tid)! / 1e6;
  const best = readThreadCpuNs(tid)! / 1e6;
  const procAfter = readSchedstatCpuNs(tid)! / 1e6;
  return { procBefore, best, procAfter };
}

test('the addon is built by npm install on this machine', (t) => {
  // CI installs with a compiler present; a missing build would silently weaken hang detection.
  t.truthy(nativeAddon, 'native/build/Release/twinframe_native.node did not load');
});

test('a busy thread\'s CPU time reads the same from the addon and from /proc, within a scheduler tick', async (t) => {
  const { tid, stop } = await spinningThread();
  try {
    // However long a loaded machine keeps the spinner off a CPU: wait until it has run 50 ms.
    const first = bracketed(tid);
    const deadline = Date.now() + 20_000;
    while (readThreadCpuNs(tid)! / 1e6 - first.best < 50 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = bracketed(tid);
    const bestMs = second.best - first.best;
    t.true(bestMs >= 50, `the spinning thread ran ${bestMs.toFixed(1)} ms in 20 s`);
    // Each addon reading lies between the /proc readings around it, the later one up to a tick behind;
    // a preempted reader widens the bracket, never breaks it.
    const low = second.procBefore - first.procAfter - TICK_MS - 1;
    const high = second.procAfter - first.procBefore + TICK_MS + 1;
    t.true(bestMs >= low && bestMs <= high, `addon ${bestMs.toFixed(2)} ms within /proc's [${low.toFixed(2)}, ${high.toFixed(2)}] ms: ${JSON.stringify({ first, second })}`);
    t.is(readThreadCpuNs(0), undefined);
  } finally {
    await stop();
  }
});

for (const [label, env] of [
  ['native addon, SCHED_FIFO', {}],
  ['plain-Node fallback (no addon)', { TWINFRAME_NATIVE: 'off' }],
] as const) {
  test.serial(`with the ${label}, a hang and a crash of the active path lose and duplicate nothing`, async (t) => {
    const { stdout } = await run(process.execPath, [path.join(here, 'helpers/fallback-scenario.js')], {
      env: { ...process.env, ...env }, timeout: 60_000,
    });
    const r = JSON.parse(stdout) as {
      addonLoaded: boolean; received: number; minDatagrams: number; sent: number; lost: number; duplicated: number; mismatched: number;
      gapsMs: number[]; failovers: Array<{ cause: string; movedSending: boolean; injected: boolean }>;
    };
    t.is(r.addonLoaded, !('TWINFRAME_NATIVE' in env));
    t.true(r.received >= r.minDatagrams, `received ${r.received}, at least ${r.minDatagrams} expected for the time played`);
    t.is(r.received, r.sent);
    t.true(r.gapsMs.every((g) => g < PACING_BOUND_MS), `largest gap after each fault under ${PACING_BOUND_MS} ms: ${r.gapsMs.join(', ')} ms`);
    t.deepEqual({ lost: r.lost, duplicated: r.duplicated, mismatched: r.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 });
    t.true(r.failovers.some((f) => f.cause === 'heartbeat' && f.movedSending), JSON.stringify(r.failovers));
    t.true(r.failovers.some((f) => f.cause === 'exit' && f.movedSending), JSON.stringify(r.failovers));
    // A path the loaded machine kept late can be failed without a fault (lossless, legal): only ever as 'heartbeat'.
    t.is(r.failovers.filter((f) => f.injected).length, 2, JSON.stringify(r.failovers));
    t.deepEqual(r.failovers.filter((f) => !f.injected && f.cause !== 'heartbeat'), [], `no failover with a cause no fault had: ${JSON.stringify(r.failovers)}`);
  });
}

test.serial('without the addon, RTP over TCP is refused with 461 and a player that also offers UDP gets UDP', async (t) => {
  const { stdout } = await run(process.execPath, [path.join(here, 'helpers/interleaved-fallback.js')], {
    env: { ...process.env, TWINFRAME_NATIVE: 'off' }, timeout: 60_000,
  });
  const r = JSON.parse(stdout) as { addonLoaded: boolean; tcpOnly: number; either: number; eitherTransport: string };
  t.false(r.addonLoaded);
  t.is(r.tcpOnly, 461);
  t.is(r.either, 200);
  t.regex(r.eitherTransport, /^RTP\/AVP;unicast;client_port=/);
});

leakCheck(test);
