// Platform wake-up benchmark: the measurement behind native/ (the SCHED_FIFO
// addon). N threads (1 and 3 by default) each loop on
// Atomics.wait(…, timeout = 0.12 ms) for a few seconds, once at normal
// scheduling and once after raiseThreadPriority() (src/shared/thread-priority.ts:
// SCHED_FIFO through the addon, else nice −10, else nothing). For every wake it
// records the lateness: how much longer than the requested 0.12 ms the wait took.
// A wake later than 0.75 ms (the default heartbeat detection window, 250 µs × 3)
// is what a heartbeat monitor would take for a hung data path.
//
//   node dist/bench/platform-wake.bench.js [--duration-s 4] [--threads 1,3] [--modes normal,fifo] [--rounds 2] [--quick]
//
// Modes run in alternating order round after round (normal, fifo, fifo, normal…)
// so that the machine's background noise hits both alike; figures are pooled per
// (threads, mode). TWINFRAME_REALTIME=off makes raiseThreadPriority() a no-op (the
// 'fifo' rows then say policy normal); TWINFRAME_NATIVE=off hides the addon (nice
// fallback). Table on stdout, JSON in bench/results/platform-wake-<timestamp>.json.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { raiseThreadPriority } from '../src/shared/thread-priority.js';
import { nativeAddon } from '../src/shared/native.js';
import { Flags } from './flags.js';
import { withTimeout } from './lib.js';
import { quantile } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.basename(path.dirname(HERE)) === 'dist' ? path.resolve(HERE, '../..') : path.resolve(HERE, '..');

type Mode = 'normal' | 'fifo';

interface Options {
  durationS: number;
  threads: number[];
  modes: Mode[];
  rounds: number;
  timeoutMs: number;
  thresholdMs: number;
  out: string;
}

const USAGE = `usage: node dist/bench/platform-wake.bench.js [options]
  --duration-s S     seconds per (threads, mode, round) run (default 4; --quick 2)
  --threads 1,3      thread counts (default 1,3)
  --modes normal,fifo  scheduling modes (default both)
  --rounds R         rounds, mode order alternating (default 2; --quick 1)
  --timeout-ms T     Atomics.wait timeout (default 0.12)
  --threshold-ms L   count wakes later than this (default 0.75: 250 µs × 3)
  --out DIR          where the JSON goes (default bench/results)
  --quick            --duration-s 2 --rounds 1`;

function parseOptions(argv: string[]): Options {
  const flags = Flags.parse(argv, {
    'duration-s': 'string', threads: 'string', modes: 'string', rounds: 'string', 'timeout-ms': 'string', 'threshold-ms': 'string', out: 'string', quick: 'boolean',
  }, USAGE);
  const quick = flags.has('quick');
  const modes = flags.list('modes') ?? ['normal', 'fifo'];
  for (const m of modes) if (m !== 'normal' && m !== 'fifo') throw new Error(`unknown mode ${m}\n${USAGE}`);
  const threads = (flags.list('threads') ?? []).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const positive = { positive: true };
  return {
    durationS: flags.number('duration-s', positive) ?? (quick ? 2 : 4),
    threads: threads.length ? threads : [1, 3],
    modes: modes as Mode[],
    rounds: Math.floor(flags.number('rounds', positive) ?? (quick ? 1 : 2)),
    timeoutMs: flags.number('timeout-ms', positive) ?? 0.12,
    thresholdMs: flags.number('threshold-ms', positive) ?? 0.75,
    out: path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results')),
  };
}

// ─────────────────────────────────────────────────────────────────────────────
// The measuring thread

interface ThreadInit {
  readonly role: 'waker';
  readonly mode: Mode;
  readonly durationMs: number;
  readonly timeoutMs: number;
  /** Start flag shared by every thread of a run: all begin together. */
  readonly go: SharedArrayBuffer;
}

interface ThreadResult {
  readonly policy: string;
  readonly policyError: string | undefined;
  readonly lateness: Float64Array;
}

function runWaker(init: ThreadInit): void {
  const port = parentPort!;
  const priority = init.mode === 'fifo' ? raiseThreadPriority() : { policy: 'normal', error: undefined };
  const go = new Int32Array(init.go);
  port.postMessage({ type: 'ready' });
  while (Atomics.load(go, 0) === 0) Atomics.wait(go, 0, 0, 50);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  // A generous upper bound of wakes: one per timeout.
  let samples = new Float64Array(Math.ceil(init.durationMs / init.timeoutMs) + 16);
  let n = 0;
  const end = performance.now() + init.durationMs;
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) break;
    Atomics.wait(cell, 0, 0, init.timeoutMs);
    const t1 = performance.now();
    if (n === samples.length) {
      const bigger = new Float64Array(samples.length * 2);
      bigger.set(samples);
      samples = bigger;
    }
    samples[n++] = t1 - t0 - init.timeoutMs;
  }
  const lateness = samples.slice(0, n);
  const result: ThreadResult = { policy: priority.policy, policyError: priority.error, lateness };
  port.postMessage({ type: 'done', result }, [lateness.buffer]);
}

// ─────────────────────────────────────────────────────────────────────────────
// Main

/** CPU time stolen from this (virtual) machine by its host so far, ms (/proc/stat 'steal', in USER_HZ = 100/s). */
function stealMs(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    return Number(cpu[8] ?? 0) * 10;
  } catch {
    return Number.NaN;
  }
}


async function runOnce(mode: Mode, threads: number, o: Options): Promise<ThreadResult[]> {
  const go = new SharedArrayBuffer(4);
  const durationMs = o.durationS * 1000;
  const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), {
    workerData: { role: 'waker', mode, durationMs, timeoutMs: o.timeoutMs, go } satisfies ThreadInit,
  }));
  try {
    const done = workers.map((w) => new Promise<ThreadResult>((resolve, reject) => {
      w.on('message', (m: { type: string; result?: ThreadResult }) => { if (m.type === 'done') resolve(m.result!); });
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`waker thread exited with code ${code}`)));
    }));
    const ready = workers.map((w) => new Promise<void>((resolve) => w.on('message', (m: { type: string }) => { if (m.type === 'ready') resolve(); })));
    await withTimeout(Promise.all(ready), 10_000, 'threads to start');
    const g = new Int32Array(go);
    Atomics.store(g, 0, 1);
    Atomics.notify(g, 0);
    return await withTimeout(Promise.all(done), durationMs + 15_000, 'threads to finish');
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

interface Row {
  threads: number;
  mode: Mode;
  policies: string[];
  policyErrors: string[];
  wakes: number;
  seconds: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  overThreshold: number;
  overThresholdPerMinute: number;
  /** CPU time the host stole from this VM during these runs (all CPUs), ms. */
  stealMs: number;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const load0 = loadavg();
  console.log(`twinframe platform wake bench — ${startedAt.toISOString()}, node ${process.version}`);
  console.log(`Atomics.wait(…, ${o.timeoutMs} ms) in a loop, ${o.durationS} s per run, ${o.rounds} round(s), threads ${o.threads.join(',')}; lateness = actual wait − ${o.timeoutMs} ms`);
  console.log(`native addon: ${nativeAddon ? 'loaded' : 'not loaded'}; TWINFRAME_REALTIME=${process.env.TWINFRAME_REALTIME ?? '(unset: fifo)'}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  const pooled = new Map<string, { samples: Float64Array[]; policies: Set<string>; errors: Set<string>; seconds: number; stealMs: number }>();
  const runs: Array<{ round: number; threads: number; mode: Mode; wakes: number; p99: number; max: number; overThreshold: number; loadavg: number[]; stealMs: number }> = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const threads of o.threads) {
      const modes = round % 2 === 0 ? o.modes : [...o.modes].reverse();
      for (const mode of modes) {
        process.stderr.write(`  round ${round + 1}: ${threads} thread(s), ${mode}\n`);
        const steal0 = stealMs();
        const results = await runOnce(mode, threads, o);
        const stolen = stealMs() - steal0;
        const key = `${threads}:${mode}`;
        const entry = pooled.get(key) ?? { samples: [], policies: new Set<string>(), errors: new Set<string>(), seconds: 0, stealMs: 0 };
        entry.stealMs += stolen;
        for (const r of results) {
          entry.samples.push(r.lateness);
          entry.policies.add(r.policy);
          if (r.policyError) entry.errors.add(r.policyError);
        }
        entry.seconds += o.durationS * threads;
        pooled.set(key, entry);
        const all = Float64Array.from(results.flatMap((r) => Array.from(r.lateness))).sort();
        runs.push({
          round, threads, mode, wakes: all.length, p99: quantile(all, 0.99), max: all.length ? all[all.length - 1] : Number.NaN,
          overThreshold: all.filter((x) => x > o.thresholdMs).length, loadavg: loadavg(), stealMs: stolen,
        });
      }
    }
  }

  const rows: Row[] = [];
  for (const threads of o.threads) {
    for (const mode of o.modes) {
      const entry = pooled.get(`${threads}:${mode}`);
      if (!entry) continue;
      const total = entry.samples.reduce((s, a) => s + a.length, 0);
      const all = new Float64Array(total);
      let off = 0;
      for (const a of entry.samples) { all.set(a, off); off += a.length; }
      all.sort();
      const over = all.filter((x) => x > o.thresholdMs).length;
      rows.push({
        threads, mode, policies: [...entry.policies], policyErrors: [...entry.errors], wakes: total, seconds: entry.seconds,
        p50: quantile(all, 0.5), p99: quantile(all, 0.99), p999: quantile(all, 0.999), max: total ? all[total - 1] : Number.NaN,
        overThreshold: over, overThresholdPerMinute: (over / entry.seconds) * 60, stealMs: entry.stealMs,
      });
    }
  }

  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-').padStart(8);
  console.log('');
  console.log(`  lateness of each wake, ms (pooled over threads and rounds; >${o.thresholdMs} = would look like a missed heartbeat window)`);
  const head = `  ${'threads'.padStart(7)}  ${'mode'.padEnd(7)}${'policy'.padEnd(14)}${'wakes'.padStart(9)}${'p50'.padStart(9)}${'p99'.padStart(9)}${'p99.9'.padStart(9)}${'max'.padStart(9)}${`>${o.thresholdMs}`.padStart(8)}${'per thread-min'.padStart(16)}${'steal ms'.padStart(10)}`;
  console.log(head);
  console.log('  ' + '─'.repeat(head.length - 2));
  for (const r of rows) {
    console.log(`  ${String(r.threads).padStart(7)}  ${r.mode.padEnd(7)}${r.policies.join('/').padEnd(14)}${String(r.wakes).padStart(9)} ${f(r.p50)} ${f(r.p99)} ${f(r.p999)} ${f(r.max)}${String(r.overThreshold).padStart(8)}${r.overThresholdPerMinute.toFixed(1).padStart(16)}${(Number.isFinite(r.stealMs) ? r.stealMs.toFixed(0) : '-').padStart(10)}`);
  }
  for (const r of rows) for (const e of r.policyErrors) console.log(`  note (${r.threads} thread(s), ${r.mode}): ${e}`);
  for (const threads of o.threads) {
    const n = rows.find((r) => r.threads === threads && r.mode === 'normal');
    const fi = rows.find((r) => r.threads === threads && r.mode === 'fifo');
    if (n && fi && fi.p99 > 0) {
      console.log(`  ${threads} thread(s): normal/fifo ratio — p99 ${(n.p99 / fi.p99).toFixed(1)}×, max ${(n.max / fi.max).toFixed(1)}×, late wakes ${n.overThreshold} vs ${fi.overThreshold}`);
    }
  }
  console.log('  steal ms: CPU time the hypervisor took from this VM during those runs (/proc/stat); no guest priority helps against it');
  const load1 = loadavg();
  console.log(`  load average at the end ${load1.map((x) => x.toFixed(2)).join(' ')}`);

  mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, `platform-wake-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({
    bench: 'platform-wake', startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), node: process.version,
    nativeAddon: Boolean(nativeAddon), env: { TWINFRAME_REALTIME: process.env.TWINFRAME_REALTIME ?? null, TWINFRAME_NATIVE: process.env.TWINFRAME_NATIVE ?? null },
    options: o, loadavg: { start: load0, end: load1 }, rows, runs,
  }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  console.log(`JSON: ${path.relative(process.cwd(), file) || file}`);
}

if (isMainThread) {
  try {
    await main();
  } catch (err) {
    console.error(`platform-wake.bench: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
} else if ((workerData as { role?: string } | null)?.role === 'waker') {
  runWaker(workerData as ThreadInit);
}
