// Runs every benchmark in dist/bench (each <name>.bench.js and <name>/run.js) one
// after the other, in its own process, and says which ones failed. What `npm run bench` calls.
//
//   node dist/bench/run.js [--only name[,name]] [--quick] [--args-<name> "<options>"]…
//
//   --only failover,platform      run only the benchmarks whose name starts so
//   --quick                       each benchmark's short form (QUICK below)
//   --args-failover "--faults 200 --sessions 20"
//                                 options for one benchmark (split on spaces);
//                                 given, they replace its QUICK or FULL options
//
// Options are never sent to every benchmark alike: each parses its own flags
// (bench/flags.ts) and refuses flags it does not know.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Flags } from './flags.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The short form of each benchmark, for --quick. */
const QUICK: Record<string, string[]> = {
  capacity: ['--quick'],
  failover: ['--quick'],
  'platform-wake': ['--quick'],
  'admin-status': ['--requests', '50', '--cli', '5'],
  liveness: ['--quick'],
  'rtsp-sessions': ['--quick'],
  soak: ['--minutes', '2', '--sessions', '10', '--fault-every-s', '30'],
  'process-failover': ['--quick'],
};

/** A full run's options for benchmarks whose own default is a soak too long to run with the others. */
const FULL: Record<string, string[]> = {
  capacity: ['--trials', '1'], // its own 3 trials a level: node dist/bench/capacity/run.js
  liveness: ['--phase-s', '60'], // 5 phases × 1 min; its own 5 min a phase: npm run bench:liveness
  soak: ['--minutes', '10', '--fault-every-s', '60'], // its own 1 h: npm run bench:soak
  'process-failover': ['--kills', '20'], // its own 100 kills a level: node dist/bench/process-failover/run.js
};

const USAGE = 'usage: node dist/bench/run.js [--only name[,name]] [--quick] [--args-<name> "<options>"]';

interface RunOptions {
  only: string[] | undefined;
  quick: boolean;
  args: Map<string, string[]>;
}

function parse(argv: readonly string[]): RunOptions {
  // --args-<name> has a name of the user's choosing, which no flag table lists: take those pairs out first.
  const args = new Map<string, string[]>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--args-([^=]+)(?:=(.*))?$/s.exec(argv[i]);
    if (m === null) rest.push(argv[i]);
    else args.set(m[1], (m[2] ?? argv[++i] ?? '').split(/\s+/).filter(Boolean));
  }
  const flags = Flags.parse(rest, { only: 'string', quick: 'boolean' }, USAGE);
  return { only: flags.list('only'), quick: flags.has('quick'), args };
}

function argsFor(bench: string, o: RunOptions): string[] {
  for (const [prefix, args] of o.args) if (bench.startsWith(prefix)) return args;
  return (o.quick ? QUICK : FULL)[bench] ?? [];
}

/** The benchmarks in `dir`: each `<name>.bench.js`, and each `<name>/run.js` (a benchmark split into modules). */
function findBenches(dir: string): Array<{ name: string; file: string }> {
  const benches: Array<{ name: string; file: string }> = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.bench.js')) benches.push({ name: entry.name.slice(0, -'.bench.js'.length), file: path.join(dir, entry.name) });
    else if (entry.isDirectory() && existsSync(path.join(dir, entry.name, 'run.js'))) benches.push({ name: entry.name, file: path.join(dir, entry.name, 'run.js') });
  }
  return benches.sort((x, y) => x.name.localeCompare(y.name));
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
  const benches = findBenches(HERE).filter((b) => !only || only.some((prefix) => b.name.startsWith(prefix)));
  if (benches.length === 0) {
    console.error(`bench runner: no benchmark in ${HERE}${only ? ` matching ${only.join(',')}` : ''} (did the build run?)`);
    process.exitCode = 1;
    return;
  }
  const results: Array<{ bench: string; code: number | null; signal: NodeJS.Signals | null; seconds: number }> = [];
  for (const bench of benches) {
    const args = argsFor(bench.name, o);
    console.log(`\n═══ ${bench.name} ${args.join(' ')}`.trimEnd());
    results.push({ bench: bench.name, ...(await runBench(bench.file, args)) });
  }
  console.log('\n═══ benchmarks');
  for (const r of results) {
    console.log(`  ${r.bench.padEnd(28)} ${r.code === 0 ? 'ok' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}  (${r.seconds.toFixed(0)} s)`);
  }
  if (results.some((r) => r.code !== 0)) process.exitCode = 1;
}

await main();
