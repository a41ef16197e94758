// Runs every benchmark in dist/bench (each *.bench.js) one after the other, in
// its own process, and says which ones failed. What `npm run bench` calls.
//
//   node dist/bench/run.js [--only name[,name]] [--quick] [--args-<name> "<options>"]…
//
//   --only failover,platform      run only the benchmarks whose file name starts so
//   --quick                       each benchmark's short form (QUICK below)
//   --args-failover "--faults 200 --sessions 20"
//                                 options for one benchmark (split on spaces);
//                                 given, they replace its QUICK or FULL options
//
// Options are never sent to every benchmark alike: they parse their own flags,
// and some (admin-status) refuse flags they do not know.

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The short form of each benchmark, for --quick. */
const QUICK: Record<string, string[]> = {
  'failover.bench.js': ['--quick'],
  'platform-wake.bench.js': ['--quick'],
  'admin-status.bench.js': ['--requests', '50', '--cli', '5'],
  'liveness.bench.js': ['--quick'],
};

/** A full run's options for benchmarks whose own default is a soak too long to run with the others. */
const FULL: Record<string, string[]> = {
  'liveness.bench.js': ['--phase-s', '60'], // 5 phases × 1 min; its own 5 min a phase: npm run bench:liveness
};

interface RunOptions {
  only: string[] | undefined;
  quick: boolean;
  args: Map<string, string[]>;
}

function parse(argv: string[]): RunOptions {
  const o: RunOptions = { only: undefined, quick: false, args: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--only') o.only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (flag === '--quick') o.quick = true;
    else if (flag.startsWith('--args-')) o.args.set(flag.slice('--args-'.length), (argv[++i] ?? '').split(/\s+/).filter(Boolean));
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node dist/bench/run.js [--only name[,name]] [--quick] [--args-<name> "<options>"]');
      process.exit(0);
    } else console.error(`bench runner: ignoring unknown option ${flag}`);
  }
  return o;
}

function argsFor(bench: string, o: RunOptions): string[] {
  for (const [prefix, args] of o.args) if (bench.startsWith(prefix)) return args;
  return (o.quick ? QUICK : FULL)[bench] ?? [];
}

function runBench(file: string, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals): void => { child.kill(signal); };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ code, signal, seconds: (Date.now() - started) / 1000 });
    });
    child.on('error', (err) => {
      console.error(`bench runner: cannot start ${file}: ${err.message}`);
      resolve({ code: 1, signal: null, seconds: 0 });
    });
  });
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const only = o.only;
  const benches = readdirSync(HERE)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => !only || only.some((o) => f.startsWith(o)))
    .sort();
  if (benches.length === 0) {
    console.error(`bench runner: no *.bench.js in ${HERE}${only ? ` matching ${only.join(',')}` : ''} (did the build run?)`);
    process.exitCode = 1;
    return;
  }
  const results: Array<{ bench: string; code: number | null; signal: NodeJS.Signals | null; seconds: number }> = [];
  for (const bench of benches) {
    const args = argsFor(bench, o);
    console.log(`\n═══ ${bench} ${args.join(' ')}`.trimEnd());
    results.push({ bench, ...(await runBench(path.join(HERE, bench), args)) });
  }
  console.log('\n═══ benchmarks');
  for (const r of results) {
    console.log(`  ${r.bench.padEnd(28)} ${r.code === 0 ? 'ok' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}  (${r.seconds.toFixed(0)} s)`);
  }
  if (results.some((r) => r.code !== 0)) process.exitCode = 1;
}

await main();
