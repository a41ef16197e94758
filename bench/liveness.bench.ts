// Liveness benchmark: does failure detection fail healthy paths, and what does
// it cost, in the conditions a deployed server meets? A no-fault soak of the real
// `twinframe` process, phases side by side in one run.
//
//   node dist/bench/liveness.bench.js [--phases idle,1,20,50,20load] [--phase-s 300] [--quick]
//                                     [--compare <other checkout>] [--out DIR] …   (--help)
//
// Per phase and per server, a fresh server: `node <checkout>/dist/src/cli/twinframe.js`
// with a temp config file and cache dir, a free RTSP port, a temp admin socket,
// default failover settings and log level info (its JSON log, on stderr, goes
// to a file). Once both paths are up (Primary and Secondary in `twinframectl
// status`) and --settle-s has passed:
//   - `load` phases start --load-procs busy processes (`node -e` loops) at normal
//     priority, killed at the end of the phase;
//   - phases with sessions start bench/liveness-receiver.ts, a child process at
//     normal priority that plays N RTSP sessions in a loop and counts every
//     datagram (bench/liveness-count.ts);
//   - then the measurement window (--phase-s): server and receiver CPU from
//     every thread's /proc schedstat over the window (% of one core, everything
//     the process's threads ran), RSS sampled every second, steal time.
// At the end the load is killed, the receiver tears its sessions down and
// reports, and the server is stopped with SIGTERM.
//
// Failures (every one is false: nothing is injected): the log lines
// 'data path failed' over the server's whole life, start included (a deployed
// server meets its start too; the JSON splits off those inside the window), and
// the paths' restarts in `twinframectl status --json` at the end of the window.
// Handovers: the status's `handovers` number where the server has one, else n/a.
//
// --compare runs every phase also against another checkout's build, right after
// this one's (phase X on A, then on B), so that both appear in one table.
//
// Bounded: every wait has a timeout, every child a deadline of its own (and,
// through setpriv --pdeathsig where it exists, dies with this process); children
// and temp dirs are cleaned up at the end, on error and on SIGINT/SIGTERM.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Flags } from './flags.js';
import { cpuSeconds, freePort, readStealMs, readUdpSnmp, sleep, threadPolicies } from './lib.js';
import type { SessionTotals } from './liveness-count.js';
import { readLog, type LogFailure } from './server-log.js';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, from dist/bench/ (compiled) or bench/. */
const ROOT = path.basename(path.dirname(HERE)) === 'dist' ? path.resolve(HERE, '../..') : path.resolve(HERE, '..');
const RECEIVER = path.join(HERE, 'liveness-receiver.js');
const ASSET = '/sample.ts';
const SERVER_READY_MS = 30_000;
const SERVER_STOP_MS = 15_000;
const CTL_TIMEOUT_MS = 30_000;
const execFileP = promisify(execFile);

const USAGE = `usage: node dist/bench/liveness.bench.js [options]
  --phases LIST       comma-separated, run in this order (default idle,1,20,50,20load):
                      idle = no session; N = N sessions; Nload = N sessions while
                      --load-procs busy processes compete for the CPUs
  --phase-s S         measurement window per phase (default 300; --quick 20)
  --quick             --phase-s 20
  --compare DIR       also run every phase against DIR/dist/src/cli/twinframe.js (another
                      checkout, built), right after this checkout's
  --compare-node-flags LIST  node flags of the --compare server (default: this checkout's,
                      ${SERVER_NODE_FLAGS.join(' ')}; '' for none; may name this checkout)
  --settle-s S        after both paths are up, before sessions and window (default 3)
  --load-procs N      busy processes of the load phases (default: one per CPU, ${cpus().length})
  --seed N            where the sessions start in the asset (default: time)
  --logs DIR          keep each server's log there (default: not kept; the JSON has the failures)
  --out DIR           where the JSON goes (default bench/results)
  --strict            exit 1 when a target is missed`;

interface PhaseSpec {
  readonly name: string;
  readonly sessions: number;
  readonly load: boolean;
}

interface Options {
  phases: PhaseSpec[];
  phaseS: number;
  compare: string | undefined;
  compareNodeFlags: readonly string[];
  settleS: number;
  loadProcs: number;
  seed: number;
  logs: string | undefined;
  out: string;
  strict: boolean;
}

function parsePhase(name: string): PhaseSpec {
  if (name === 'idle') return { name, sessions: 0, load: false };
  const m = /^(\d+)(load)?$/.exec(name);
  if (m === null || Number(m[1]) < 1) throw new Error(`unknown phase '${name}'\n${USAGE}`);
  return { name, sessions: Number(m[1]), load: m[2] !== undefined };
}

function parseOptions(argv: string[]): Options {
  const flags = Flags.parse(argv, {
    phases: 'string', 'phase-s': 'string', quick: 'boolean', compare: 'string', 'compare-node-flags': 'string', 'settle-s': 'string', 'load-procs': 'string',
    seed: 'string', logs: 'string', out: 'string', strict: 'boolean',
  }, USAGE);
  const phases = (flags.list('phases') ?? ['idle', '1', '20', '50', '20load']).map(parsePhase);
  if (phases.length === 0) throw new Error(`--phases is empty\n${USAGE}`);
  const compare = flags.string('compare');
  const logs = flags.string('logs');
  return {
    phases,
    phaseS: flags.number('phase-s', { positive: true }) ?? (flags.has('quick') ? 20 : 300),
    compare: compare === undefined ? undefined : path.resolve(compare),
    compareNodeFlags: flags.list('compare-node-flags') ?? SERVER_NODE_FLAGS,
    settleS: Math.max(0, flags.number('settle-s') ?? 3),
    loadProcs: Math.max(1, Math.floor(flags.number('load-procs', { positive: true }) ?? cpus().length)),
    seed: Math.floor(flags.number('seed') ?? Date.now() % 2 ** 31),
    logs: logs === undefined ? undefined : path.resolve(logs),
    out: path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results')),
    strict: flags.has('strict'),
  };
}

// ─────────────────────────────────────────────────────────────────────────────
// Servers under test

interface ServerSpec {
  /** Short name in the table. */
  readonly label: string;
  readonly root: string;
  readonly cli: string;
  readonly ctl: string;
  /** Node flags the server process starts with. */
  readonly nodeFlags: readonly string[];
  /** git commit (short), '+dirty' when src/ has uncommitted changes. */
  readonly code: string;
}

function codeVersion(root: string): string {
  const git = (args: string[]): string => {
    const r = spawnSync('git', ['-C', root, ...args], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? r.stdout.trim() : '';
  };
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  return git(['status', '--porcelain', '--', 'src']) !== '' ? `${commit}+dirty` : commit;
}

function serverSpec(root: string, label: string, nodeFlags: readonly string[]): ServerSpec {
  const cli = path.join(root, 'dist/src/cli/twinframe.js');
  const ctl = path.join(root, 'dist/src/cli/twinframectl.js');
  for (const f of [cli, ctl]) if (!existsSync(f)) throw new Error(`${f} does not exist: build that checkout first (npm run build in ${root})`);
  return { label, root, cli, ctl, nodeFlags, code: codeVersion(root) };
}

// ─────────────────────────────────────────────────────────────────────────────
// Child processes: every one registered, so that any exit path can end them.

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** SIGTERM for the server (it closes its sockets), SIGKILL for the others. */
  readonly stopSignal: NodeJS.Signals;
  readonly exited: Promise<void>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

const children = new Set<Child>();
const HAVE_SETPRIV = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;

/** Spawns `node args…`; with setpriv, the child gets `deathSignal` if this process dies first. */
function startChild(name: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; stdio: Array<'ignore' | 'pipe' | 'inherit' | number> }, stopSignal: NodeJS.Signals): Child {
  const deathSignal = stopSignal === 'SIGTERM' ? 'TERM' : 'KILL';
  const proc = HAVE_SETPRIV
    ? spawn('setpriv', ['--pdeathsig', deathSignal, process.execPath, ...args], options)
    : spawn(process.execPath, args, options);
  let resolveExit!: () => void;
  const child: Child = { name, proc, stopSignal, exit: undefined, exited: new Promise((resolve) => { resolveExit = resolve; }) };
  proc.on('exit', (code, signal) => {
    child.exit = { code, signal };
    children.delete(child);
    resolveExit();
  });
  proc.on('error', (err) => {
    process.stderr.write(`liveness: ${name}: ${err.message}\n`);
    child.exit ??= { code: -1, signal: null };
    children.delete(child);
    resolveExit();
  });
  children.add(child);
  return child;
}

async function stopChild(c: Child, graceMs: number): Promise<void> {
  if (c.exit !== undefined) return;
  c.proc.kill(c.stopSignal);
  const exited = await Promise.race([c.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!exited) {
    c.proc.kill('SIGKILL');
    await Promise.race([c.exited, sleep(5000)]);
  }
}

function stopAllChildren(): Promise<void> {
  return Promise.all([...children].map((c) => stopChild(c, c.stopSignal === 'SIGTERM' ? SERVER_STOP_MS : 1000))).then(() => undefined);
}

/** Set by SIGINT/SIGTERM: the current phase ends, what was measured is written, everything is cleaned up. */
let interrupted = false;

/** Polls `done` until it holds; false after `boundMs`, or at once on interruption when `interruptible`. */
async function waitUntil(done: () => boolean, boundMs: number, interruptible = true): Promise<boolean> {
  const end = Date.now() + boundMs;
  while (!done()) {
    if ((interruptible && interrupted) || Date.now() >= end) return false;
    await sleep(100);
  }
  return true;
}

// ─────────────────────────────────────────────────────────────────────────────
// /proc

/** VmRSS and VmHWM of `pid`, MiB. */
function memoryMiB(pid: number | undefined): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

function rtspAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

// ─────────────────────────────────────────────────────────────────────────────
// One server, one phase

interface Status {
  readonly paths?: Record<string, { namedState?: string; restarts?: number }>;
  readonly handovers?: unknown;
  readonly [key: string]: unknown;
}

async function ctlStatus(server: ServerSpec, socket: string): Promise<Status> {
  const { stdout } = await execFileP(process.execPath, [server.ctl, '--socket', socket, '--timeout', String(CTL_TIMEOUT_MS), '--json', 'status'], { timeout: CTL_TIMEOUT_MS + 5000 });
  return JSON.parse(stdout) as Status;
}

/** Sum of the paths' restarts, undefined when the status has none. */
function restartsOf(s: Status | undefined): number | undefined {
  const counts = Object.values(s?.paths ?? {}).map((p) => p.restarts);
  return counts.length > 0 && counts.every((n) => typeof n === 'number') ? counts.reduce((a, b) => a + b, 0) : undefined;
}

function bothPathsUp(s: Status): boolean {
  const states = Object.values(s.paths ?? {}).map((p) => p.namedState).sort();
  return states.length === 2 && states[0] === 'Primary' && states[1] === 'Secondary';
}

interface ReceiverResult {
  readonly sessions: number;
  readonly perSession: Array<SessionTotals & { stalls: number; gapP99Ms: number | null; gapMaxMs: number }>;
  readonly recvBufferBytes: number;
  readonly socketDrops: { drops: number; found: number };
  readonly errors: string[];
  readonly errorCount: number;
}

interface Wire {
  received: number; lost: number; duplicated: number; reordered: number; ccErrors: number; syncErrors: number;
  outside: number; seqJumps: number; ccUnchecked: number; plays: number; stalls: number;
  /** Sessions whose end came from the server's last sender report (the others end at their highest seq received). */
  endFromReport: number;
}

interface Row {
  readonly server: string;
  readonly phase: string;
  readonly sessions: number;
  readonly load: boolean;
  windowS: number;
  /** 'data path failed' log lines, server start to stop. */
  failed: number;
  failedInWindow: number;
  failures: LogFailure[];
  restarts: number | undefined;
  handovers: number | undefined;
  wire: Wire | undefined;
  gapP99WorstMs: number | undefined;
  gapMaxMs: number | undefined;
  serverCpuPct: number;
  serverRssMiB: number;
  serverPeakRssMiB: number;
  receiverCpuPct: number | undefined;
  receiverRssMiB: number | undefined;
  /** CPU the load processes got, % of one core (summed). */
  loadCpuPct: number | undefined;
  stealMs: number;
  udpRcvbufErrors: number;
  receiverSocketDrops: number | undefined;
  recvBufferBytes: number | undefined;
  /** The server's threads by scheduling policy and priority at the window's start, e.g. { 'fifo 10': 2, normal: 12 }. */
  serverThreads: Record<string, number>;
  warnings: Record<string, number>;
  loadavg: { start: number[]; end: number[] };
  statusEnd: Status | undefined;
  problems: string[];
  receiverErrors: string[];
}

function sumWire(r: ReceiverResult): Wire {
  const w: Wire = { received: 0, lost: 0, duplicated: 0, reordered: 0, ccErrors: 0, syncErrors: 0, outside: 0, seqJumps: 0, ccUnchecked: 0, plays: 0, stalls: 0, endFromReport: 0 };
  for (const s of r.perSession) for (const k of Object.keys(w) as Array<keyof Wire>) w[k] += s[k];
  return w;
}

/** The receiver's stdout, one JSON object per line. */
function receiverMessages(child: Child): Array<{ type: string }> {
  const messages: Array<{ type: string }> = [];
  createInterface({ input: child.proc.stdout! }).on('line', (line) => {
    try {
      messages.push(JSON.parse(line) as { type: string });
    } catch {
      process.stderr.write(`liveness: receiver: ${line}\n`);
    }
  });
  return messages;
}

async function runPhase(server: ServerSpec, phase: PhaseSpec, o: Options, startedAt: string): Promise<Row> {
  const row: Row = {
    server: server.label, phase: phase.name, sessions: phase.sessions, load: phase.load, windowS: 0,
    failed: 0, failedInWindow: 0, failures: [], restarts: undefined, handovers: undefined, wire: undefined, gapP99WorstMs: undefined, gapMaxMs: undefined,
    serverCpuPct: Number.NaN, serverRssMiB: Number.NaN, serverPeakRssMiB: Number.NaN, receiverCpuPct: undefined, receiverRssMiB: undefined, loadCpuPct: undefined,
    stealMs: Number.NaN, udpRcvbufErrors: 0, receiverSocketDrops: undefined, recvBufferBytes: undefined, serverThreads: {}, warnings: {},
    loadavg: { start: loadavg(), end: [] }, statusEnd: undefined, problems: [], receiverErrors: [],
  };
  const tmp = await mkdtemp(path.join(tmpdir(), 'tf-liveness-'));
  const logFile = path.join(tmp, 'server.log');
  const adminSocket = path.join(tmp, 'admin.sock');
  let srv: Child | undefined;
  let receiver: Child | undefined;
  const load: Child[] = [];
  /** The measurement window, wall clock (the log's time). */
  const window = { fromMs: Number.NaN, toMs: Number.NaN };
  try {
    writeFileSync(path.join(tmp, 'config.json'), JSON.stringify({ media: { mounts: [{ prefix: '', dir: path.join(ROOT, 'assets') }], cacheDir: path.join(tmp, 'cache') } }));
    const port = await freePort();
    // The server's own environment, without TWINFRAME_* overrides: its defaults are what is measured.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TWINFRAME_')));
    const logFd = openSync(logFile, 'w');
    try {
      srv = startChild(`server ${server.label}`, [...server.nodeFlags, server.cli, '--config', path.join(tmp, 'config.json'), '--port', String(port), '--admin-socket', adminSocket, '--log-level', 'info'],
        { cwd: server.root, env, stdio: ['ignore', 'ignore', logFd] }, 'SIGTERM');
    } finally {
      closeSync(logFd);
    }
    const s = srv;
    let up = false;
    const readyBy = Date.now() + SERVER_READY_MS;
    while (!up && s.exit === undefined && !interrupted && Date.now() < readyBy) {
      await sleep(250);
      if (!(await rtspAnswers(port))) continue;
      up = await ctlStatus(server, adminSocket).then(bothPathsUp, () => false);
    }
    if (!up) throw new Error(s.exit !== undefined ? `server exited (${JSON.stringify(s.exit)}) before it was up` : `server not up within ${SERVER_READY_MS} ms`);
    await waitUntil(() => false, o.settleS * 1000);

    if (phase.load) {
      const boundMs = (o.phaseS + 300) * 1000; // the busy loop's own end, in case nobody kills it
      for (let i = 0; i < o.loadProcs; i++) {
        load.push(startChild(`load ${i}`, ['-e', `const end = Date.now() + ${boundMs}; while (Date.now() < end) {}`], { stdio: ['ignore', 'ignore', 'inherit'] }, 'SIGKILL'));
      }
    }
    let messages: Array<{ type: string }> = [];
    if (phase.sessions > 0) {
      receiver = startChild('receiver', [RECEIVER, '--port', String(port), '--sessions', String(phase.sessions), '--asset', ASSET, '--seed', String(o.seed), '--deadline-s', String(o.phaseS + 240)],
        { stdio: ['pipe', 'pipe', 'inherit'] }, 'SIGKILL');
      messages = receiverMessages(receiver);
      const r = receiver;
      await waitUntil(() => messages.some((m) => m.type === 'ready') || r.exit !== undefined, 30_000 + 500 * phase.sessions);
      if (!messages.some((m) => m.type === 'ready')) {
        throw new Error(r.exit !== undefined ? `receiver exited (${JSON.stringify(r.exit)}) before its sessions played` : 'receiver not ready in time');
      }
    }
    if (interrupted) throw new Error('interrupted');

    // The window.
    const statusStart = await ctlStatus(server, adminSocket).catch(() => undefined);
    for (const t of threadPolicies(s.proc.pid)) {
      const key = t.policy === 'normal' ? 'normal' : `${t.policy} ${t.rtPriority}`;
      row.serverThreads[key] = (row.serverThreads[key] ?? 0) + 1;
    }
    const cpu0 = { server: cpuSeconds(s.proc.pid), receiver: cpuSeconds(receiver?.proc.pid), load: load.map((l) => cpuSeconds(l.proc.pid)) };
    const steal0 = readStealMs();
    const snmp0 = readUdpSnmp();
    window.fromMs = Date.now();
    const t0 = performance.now();
    let serverRss = 0;
    let receiverRss = 0;
    while (performance.now() - t0 < o.phaseS * 1000 && !interrupted && s.exit === undefined && (receiver === undefined || receiver.exit === undefined)) {
      await sleep(Math.min(1000, o.phaseS * 1000 - (performance.now() - t0)));
      serverRss = Math.max(serverRss, memoryMiB(s.proc.pid).rss || 0);
      if (receiver) receiverRss = Math.max(receiverRss, memoryMiB(receiver.proc.pid).rss || 0);
    }
    const windowS = (performance.now() - t0) / 1000;
    const cpu1 = { server: cpuSeconds(s.proc.pid), receiver: cpuSeconds(receiver?.proc.pid), load: load.map((l) => cpuSeconds(l.proc.pid)) };
    window.toMs = Date.now();
    row.windowS = windowS;
    row.stealMs = readStealMs() - steal0;
    row.serverCpuPct = ((cpu1.server - cpu0.server) / windowS) * 100;
    row.serverRssMiB = serverRss;
    row.serverPeakRssMiB = memoryMiB(s.proc.pid).peak;
    if (receiver) {
      row.receiverCpuPct = ((cpu1.receiver - cpu0.receiver) / windowS) * 100;
      row.receiverRssMiB = receiverRss;
    }
    if (load.length > 0) row.loadCpuPct = cpu1.load.reduce((sum, c, i) => sum + (c - cpu0.load[i]), 0) / windowS * 100;
    for (const l of load) await stopChild(l, 1000);
    row.statusEnd = await ctlStatus(server, adminSocket).catch((err: Error) => { row.problems.push(`status at the end: ${err.message.split('\n').join(' ').trim()}`); return undefined; });
    row.restarts = restartsOf(row.statusEnd);
    row.handovers = typeof row.statusEnd?.handovers === 'number' ? row.statusEnd.handovers : undefined;
    if (statusStart !== undefined && (restartsOf(statusStart) ?? 0) > 0) row.problems.push(`paths restarted ${restartsOf(statusStart)} time(s) before the window`);
    if (s.exit !== undefined) row.problems.push(`server exited during the window (${JSON.stringify(s.exit)})`);
    if (receiver?.exit !== undefined) row.problems.push(`receiver exited during the window (${JSON.stringify(receiver.exit)})`);
    if (interrupted) row.problems.push('interrupted: window cut short');

    if (receiver) {
      const r = receiver;
      if (r.exit === undefined) r.proc.stdin!.end('stop\n');
      await waitUntil(() => r.exit !== undefined, 40_000, false); // its result, also after an interruption
      const result = messages.find((m) => m.type === 'result') as (ReceiverResult & { type: string }) | undefined;
      if (result === undefined) row.problems.push(`receiver gave no result (${JSON.stringify(r.exit ?? 'still running')})`);
      else {
        row.wire = sumWire(result);
        const gaps = result.perSession.map((p) => p.gapP99Ms ?? Number.NaN).filter(Number.isFinite);
        row.gapP99WorstMs = gaps.length > 0 ? Math.max(...gaps) : undefined;
        row.gapMaxMs = Math.max(...result.perSession.map((p) => p.gapMaxMs));
        row.receiverSocketDrops = result.socketDrops.drops;
        row.recvBufferBytes = result.recvBufferBytes;
        row.receiverErrors = result.errorCount > 0 ? [`${result.errorCount} request error(s)`, ...result.errors] : [];
      }
    }
    row.udpRcvbufErrors = (readUdpSnmp().RcvbufErrors ?? 0) - (snmp0.RcvbufErrors ?? 0);
    row.loadavg.end = loadavg();
  } catch (err) {
    row.problems.push((err as Error).message);
  } finally {
    for (const c of [...load, receiver, srv]) if (c) await stopChild(c, c === srv ? SERVER_STOP_MS : 1000);
    // Read once the server has stopped and flushed it.
    const log = readLog(logFile);
    row.failures = log.failures;
    row.failed = log.failures.length;
    row.failedInWindow = log.failures.filter((x) => x.time >= window.fromMs && x.time <= window.toMs).length;
    row.warnings = log.warnings;
    if (log.other.length > 0) row.problems.push(`server stderr: ${log.other.slice(0, 3).join(' | ')}`);
    if (o.logs !== undefined) {
      mkdirSync(o.logs, { recursive: true });
      try {
        cpSync(logFile, path.join(o.logs, `liveness-${startedAt}-${server.label}-${phase.name}.log`));
      } catch {
        // no log to keep
      }
    }
    await rm(tmp, { recursive: true, force: true });
  }
  return row;
}

// ─────────────────────────────────────────────────────────────────────────────
// Report

interface Targets {
  readonly server: string;
  readonly falseFailovers: { ok: boolean; rows: string[] };
  readonly duplicates: { ok: boolean; rows: string[] };
  readonly idleCpu: { ok: boolean | undefined; pct: number | undefined };
  readonly oneSessionCpu: { ok: boolean | undefined; pct: number | undefined };
}

const IDLE_CPU_TARGET = 1;
const ONE_SESSION_CPU_TARGET = 3;

function targetsOf(server: string, rows: readonly Row[]): Targets {
  const mine = rows.filter((r) => r.server === server);
  const falseRows = mine.filter((r) => r.failed > 0 || (r.restarts ?? 0) > 0).map((r) => `${r.phase}: ${r.failed} failed, ${r.restarts ?? '?'} restarts`);
  const dupRows = mine.filter((r) => (r.wire?.duplicated ?? 0) > 0).map((r) => `${r.phase}: ${r.wire!.duplicated}`);
  const cpu = (phase: string): number | undefined => {
    const r = mine.find((x) => x.phase === phase);
    return r === undefined || !Number.isFinite(r.serverCpuPct) ? undefined : r.serverCpuPct;
  };
  const idle = cpu('idle');
  const one = cpu('1');
  return {
    server,
    falseFailovers: { ok: falseRows.length === 0, rows: falseRows },
    duplicates: { ok: dupRows.length === 0, rows: dupRows },
    idleCpu: { ok: idle === undefined ? undefined : idle < IDLE_CPU_TARGET, pct: idle },
    oneSessionCpu: { ok: one === undefined ? undefined : one < ONE_SESSION_CPU_TARGET, pct: one },
  };
}

function f(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function table(rows: readonly Row[]): string {
  const head = ['server', 'phase', 'failed', 'restarts', 'handovers', 'received', 'lost', 'dup', 'reord', 'cc err', 'stalls', 'gap p99', 'gap max',
    'srv cpu%', 'srv MiB', 'rcv cpu%', 'rcv MiB', 'load cpu%', 'steal ms'];
  const cells = rows.map((r) => [
    r.server, r.phase, String(r.failed), r.restarts === undefined ? '?' : String(r.restarts), r.handovers === undefined ? 'n/a' : String(r.handovers),
    r.wire ? String(r.wire.received) : '-', r.wire ? String(r.wire.lost) : '-', r.wire ? String(r.wire.duplicated) : '-', r.wire ? String(r.wire.reordered) : '-',
    r.wire ? String(r.wire.ccErrors) : '-', r.wire ? String(r.wire.stalls) : '-', f(r.gapP99WorstMs), f(r.gapMaxMs),
    f(r.serverCpuPct, 2), f(r.serverRssMiB, 0), f(r.receiverCpuPct, 2), f(r.receiverRssMiB, 0), f(r.loadCpuPct, 0), f(r.stealMs, 0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: readonly string[]): string => c.map((x, i) => (i < 2 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(head), '─'.repeat(widths.reduce((a, b) => a + b + 2, -2)), ...rows.map((_, i) => line(cells[i]))].join('\n');
}

function targetLines(t: Targets): string[] {
  const mark = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? 'ok' : 'MISS');
  return [
    `${t.server}: 0 false failovers in every phase: ${mark(t.falseFailovers.ok)}${t.falseFailovers.rows.length ? ` (${t.falseFailovers.rows.join('; ')})` : ''}`,
    `${t.server}: 0 duplicates in every phase: ${mark(t.duplicates.ok)}${t.duplicates.rows.length ? ` (${t.duplicates.rows.join('; ')})` : ''}`,
    `${t.server}: idle server under ${IDLE_CPU_TARGET} % of a core: ${mark(t.idleCpu.ok)} (${f(t.idleCpu.pct, 2)} %)`,
    `${t.server}: 1 session under ${ONE_SESSION_CPU_TARGET} % of a core: ${mark(t.oneSessionCpu.ok)} (${f(t.oneSessionCpu.pct, 2)} %)`,
  ];
}

// ─────────────────────────────────────────────────────────────────────────────
// Main

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const servers = [serverSpec(ROOT, 'A', SERVER_NODE_FLAGS)];
  if (o.compare !== undefined) servers.push(serverSpec(o.compare, 'B', o.compareNodeFlags));
  // Every child has its own deadline; this one ends the run if something else hangs.
  const boundMs = o.phases.length * servers.length * (o.phaseS + 240) * 1000 + 60_000;
  const guard = setTimeout(() => {
    process.stderr.write(`liveness: no end after ${boundMs / 1000} s; stopping everything\n`);
    void stopAllChildren().finally(() => process.exit(2));
  }, boundMs);
  guard.unref();
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('liveness: interrupted; ending the phase and cleaning up\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const load0 = loadavg();
  console.log(`twinframe liveness bench — ${started.toISOString()}, node ${process.version}, ${cpus().length} CPUs, seed ${o.seed}`);
  for (const s of servers) console.log(`  ${s.label} = ${s.root} (${s.code}), node ${s.nodeFlags.join(' ') || 'without flags'}`);
  console.log(`  phases ${o.phases.map((p) => p.name).join(', ')}; ${o.phaseS} s window each after ${o.settleS} s settle; load: ${o.loadProcs} busy process(es)${HAVE_SETPRIV ? '' : '; no setpriv: children do not die with this process'}`);
  console.log(`  load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  const rows: Row[] = [];
  try {
    for (const phase of o.phases) {
      for (const server of servers) {
        if (interrupted) break;
        process.stderr.write(`liveness: ${server.label} ${phase.name}: ${phase.sessions} session(s)${phase.load ? ` + ${o.loadProcs} busy process(es)` : ''}, ${o.phaseS} s…\n`);
        const row = await runPhase(server, phase, o, stamp);
        rows.push(row);
        process.stderr.write(`liveness: ${server.label} ${phase.name}: ${row.failed} failed, server ${f(row.serverCpuPct, 2)} % CPU${row.wire ? `, ${row.wire.received} received, ${row.wire.lost} lost, ${row.wire.duplicated} dup` : ''}${row.problems.length ? `; ${row.problems.join('; ')}` : ''}\n`);
      }
    }
  } finally {
    await stopAllChildren();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const load1 = loadavg();
  const targets = servers.map((s) => targetsOf(s.label, rows));
  console.log('');
  console.log(table(rows));
  console.log('');
  console.log('failed: log lines \'data path failed\', server start to stop (no fault is injected: each is a false failover); restarts: the paths\'');
  console.log('restarts in twinframectl status at the end; wire figures over the whole time the sessions played; gap p99: worst session\'s');
  console.log('inter-arrival gap p99 (ms); cpu% of one core over the window; load cpu%: what the busy processes got.');
  for (const r of rows) {
    const notes = [...r.problems, ...r.receiverErrors];
    if (r.wire && (r.wire.outside > 0 || r.wire.seqJumps > 0 || r.wire.syncErrors > 0 || r.wire.ccUnchecked > 0)) {
      notes.push(`datagrams outside the sequence space ${r.wire.outside}, PLAYs whose seq did not go on ${r.wire.seqJumps} (then dup/lost are suspect), `
        + `TS sync errors ${r.wire.syncErrors}, datagrams not checked for continuity ${r.wire.ccUnchecked}`);
    }
    if (r.wire && r.wire.endFromReport < r.sessions) notes.push(`${r.sessions - r.wire.endFromReport} session(s) without the server's final sender report: a loss at their very end is not counted`);
    if ((r.receiverSocketDrops ?? 0) > 0) notes.push(`the receiver's sockets dropped ${r.receiverSocketDrops} datagram(s) (buffer full): counted in 'lost', but the receiver's loss, not the server's`);
    else if ((r.wire?.lost ?? 0) > 0 && r.udpRcvbufErrors > 0) notes.push(`host-wide Udp RcvbufErrors +${r.udpRcvbufErrors} during the phase (other processes' sockets count too)`);
    if (r.failed > 0) notes.push(`failures: ${r.failures.map((x) => `${x.path ?? '?'} ${x.cause ?? '?'}${x.wasActive ? ' (sending)' : ''}`).join(', ')}; ${r.failedInWindow} inside the window`);
    for (const n of notes) console.log(`  ! ${r.server} ${r.phase}: ${n}`);
  }
  console.log('');
  for (const t of targets) for (const l of targetLines(t)) console.log(l);
  console.log(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')} (CPU figures need a quiet machine)`);

  mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, `liveness-${stamp}.json`);
  const json = {
    bench: 'liveness', startedAt: started.toISOString(), finishedAt: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuClock: 'schedstat',
    interrupted, options: { ...o, phases: o.phases.map((p) => p.name) }, servers, asset: ASSET, setpriv: HAVE_SETPRIV,
    loadavg: { start: load0, end: load1 },
    targets: { falseFailovers: 0, duplicates: 0, idleCpuPct: IDLE_CPU_TARGET, oneSessionCpuPct: ONE_SESSION_CPU_TARGET, met: targets },
    rows,
  };
  writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  console.log(`JSON: ${path.relative(process.cwd(), file)}`);
  const missed = targets.some((t) => !t.falseFailovers.ok || !t.duplicates.ok || t.idleCpu.ok === false || t.oneSessionCpu.ok === false);
  return interrupted ? 130 : o.strict && missed ? 1 : 0;
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`liveness: ${err.stack ?? err.message}\n`);
  void stopAllChildren().finally(() => process.exit(1));
});
