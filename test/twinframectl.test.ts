// Runs the compiled twinframectl as a child process against an AdminServer backed by
// a fake backend: JSON and table output, the exit codes scripts rely on (0 ok,
// 1 refused, 2 usage, 3 cannot connect), --help everywhere, and watch.

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TwinframeError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import type { FailoverRecord, StatusResult, WatchEvent } from '../src/admin/backend.js';
import { AdminServer } from '../src/admin/server.js';
import { FAKE_STATUS, FakeAdminBackend, type FakeAdminBackendOptions } from './helpers/fake-admin-backend.js';
import { leakCheck } from './helpers/leak-check.js';
import { TWINFRAMECTL } from './helpers/run.js';


const LAST_FAILOVER: FailoverRecord = {
  pair: 0, at: '2025-11-21T05:40:00.000Z', from: 'a', to: 'b', cause: 'exception: disk EIO', detectionLatencyUs: 310, switchLatencyUs: 25,
};

const FAILED_OVER: StatusResult['paths'] = {
  a: { path: 'a', namedState: 'Failed', failoverType: 'MASTER', failoverState: 'FAILED', sending: false, threadId: null, heartbeats: 4711, restarts: 0 },
  b: { path: 'b', namedState: 'Primary_No_Secondary', failoverType: 'MASTER', failoverState: 'NOPARTNER', sending: true, threadId: 3, heartbeats: 4800, restarts: 0 },
};

/** Path a has failed over to b; one session plays; fault injection is on. */
const STATUS: StatusResult = {
  ...FAKE_STATUS,
  paths: FAILED_OVER,
  active: 'b', epoch: 2, lastFailover: LAST_FAILOVER, sessions: 1, uptimeSec: 3723, faultInjection: true,
  pairs: [{ pair: 0, paths: FAILED_OVER, active: 'b', epoch: 2, handovers: 2, failovers: 1, lastFailover: LAST_FAILOVER, sessions: 1 }],
};

const BACKEND: FakeAdminBackendOptions = {
  status: STATUS,
  behaviour: {
    sessions: () => [{ id: 'f00d', kind: 'viewer', broadcast: null, pair: 0, asset: 'sample.ts', client: '127.0.0.1:5000', transport: 'RTP/AVP', state: 'playing', startedAt: '2025-11-21T05:39:00.000Z', positionSec: 12.5, datagramsSent: 9000, bitrateKbps: 3600 }],
    startStreaming: (args) => {
      throw new TwinframeError('TF_FAILOVER_ILLEGAL_COMMAND', `start_streaming refused on path ${args.path} in state Secondary_Offline`, { allowed: ['failover_sync'] });
    },
    failoverSync: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary', b: 'Secondary_Synchronized' } }),
    failoverUnsync: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary', b: 'Secondary_Offline' } }),
    failover: (args) => ({ ...LAST_FAILOVER, pair: args.pair ?? 0, cause: 'manual' }),
    injectFault: (args) => ({ ...args, pair: args.pair ?? 0, at: '2025-11-21T05:41:00.000Z' }),
  },
};

interface Fixture {
  readonly dir: string;
  readonly socketPath: string;
  readonly backend: FakeAdminBackend;
  readonly server: AdminServer;
}

async function withServer(fn: (f: Fixture) => Promise<void>, options: FakeAdminBackendOptions = BACKEND): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-ctl-'));
  const socketPath = path.join(dir, 'admin.sock');
  const backend = new FakeAdminBackend(options);
  const server = new AdminServer({ socketPath, backend, logger: silentLogger });
  await server.listen();
  try {
    await fn({ dir, socketPath, backend, server });
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Environment without any ambient socket or configuration, so only what a test passes counts. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TWINFRAME_CONFIG: path.join(os.tmpdir(), 'tf-ctl-no-such-config.json'), ...extra };
  if (extra.TWINFRAME_ADMIN_SOCKET === undefined) delete env.TWINFRAME_ADMIN_SOCKET;
  return env;
}

function start(args: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()): ChildProcess {
  return spawn(process.execPath, [TWINFRAMECTL, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

// Asynchronous on purpose: the server under test runs in this process's event loop.
function run(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = start(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// --- output -----------------------------------------------------------------------------------

test('status --json prints exactly what the server returned', async (t) => {
  await withServer(async ({ socketPath }) => {
    const r = await run(['--socket', socketPath, 'status', '--json']);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout), STATUS);
  });
});

test('status as a table shows both named states, the failover variables, heartbeat and the last failover', async (t) => {
  await withServer(async ({ socketPath }) => {
    const r = await run(['status', '--socket', socketPath]);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const header = lines[0];
    t.regex(header, /^PATH\s+STATE\s+TYPE\s+FO_STATE\s+SENDING\s+HEARTBEATS\s+RESTARTS\s+THREAD$/);
    const rowA = lines.find((l) => l.startsWith('a '))!;
    const rowB = lines.find((l) => l.startsWith('b '))!;
    t.regex(rowA, /Failed\s+MASTER\s+FAILED\s+no/);
    t.regex(rowB, /Primary_No_Secondary\s+MASTER\s+NOPARTNER\s+yes/);
    // Aligned: every column starts at the same offset in header and rows.
    for (const col of ['TYPE', 'FO_STATE', 'SENDING']) {
      const at = header.indexOf(col);
      t.not(rowA[at - 1], undefined);
      t.is(rowA[at - 1], ' ', `${col} column aligned in row a`);
      t.not(rowA[at], ' ', `${col} column aligned in row a`);
      t.not(rowB[at], ' ', `${col} column aligned in row b`);
    }
    t.regex(r.stdout, /heartbeat\s+250 µs × 3 missed \(worst-case detection 1\.40 ms\)/);
    t.regex(r.stdout, /active\s+b \(epoch 2\)/);
    t.regex(r.stdout, /handovers\s+2 \(a late sender handed over from, nobody failed\)/);
    t.regex(r.stdout, /last failover\s+2025-11-21T05:40:00\.000Z\s+a → b, cause: exception: disk EIO, detected in 0\.31 ms/);
    t.regex(r.stdout, /uptime\s+1h 02m 03s/);
  });
});

test('sessions, assets, heartbeat, limits, failover and inject-fault print readable results and pass their options', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const sessions = await run(['--socket', socketPath, 'sessions']);
    t.is(sessions.code, 0);
    t.regex(sessions.stdout, /^ID\s+ASSET\s+CLIENT/m);
    t.regex(sessions.stdout, /f00d\s+sample\.ts\s+127\.0\.0\.1:5000\s+RTP\/AVP\s+playing/);

    const assets = await run(['--socket', socketPath, 'assets']);
    t.regex(assets.stdout, /sample\.ts\s+4\.3 MiB\s+10s\s+3600\s+yes/);

    const hb = await run(['--socket', socketPath, 'heartbeat', '--period-us', '500', '--max-missed', '4']);
    t.is(hb.code, 0);
    t.regex(hb.stdout, /period\s+500 µs/);
    t.deepEqual(backend.calls.find(([c]) => c === 'heartbeat'), ['heartbeat', { periodUs: 500, maxMissed: 4 }]);

    const limits = await run(['--socket', socketPath, 'limits', '--max-streams', '7', '--server-bandwidth-kbps', '900']);
    t.is(limits.code, 0);
    t.deepEqual(backend.calls.find(([c]) => c === 'limits'), ['limits', { maxStreams: 7, serverBandwidthKbps: 900 }]);
    const readLimits = await run(['--socket', socketPath, 'limits']);
    t.regex(readLimits.stdout, /max streams\s+100/);
    t.deepEqual(backend.calls.filter(([c]) => c === 'limits').at(-1), ['limits', {}]);

    const failover = await run(['--socket', socketPath, 'failover']);
    t.is(failover.code, 0);
    t.regex(failover.stdout, /a → b, cause: manual/);

    const fault = await run(['--socket', socketPath, 'inject-fault', 'b', 'hang']);
    t.is(fault.code, 0);
    t.regex(fault.stdout, /injected hang into path b/);
    t.deepEqual(backend.calls.find(([c]) => c === 'inject_fault'), ['inject_fault', { path: 'b', kind: 'hang' }]);
    const slow = await run(['--socket', socketPath, 'inject-fault', 'a', 'slow-disk', '--delay-ms', '50']);
    t.is(slow.code, 0, slow.stderr);
    t.regex(slow.stdout, /injected slow-disk \(50 ms per read\) into path a/);
    t.deepEqual(backend.calls.filter(([c]) => c === 'inject_fault').at(-1), ['inject_fault', { path: 'a', kind: 'slow-disk', delayMs: 50 }]);

    for (const [name, wire] of [['stop-streaming', 'stop_streaming'], ['failover-sync', 'failover_sync'], ['failover-unsync', 'failover_unsync'], ['set-config-type', 'set_config_type']] as const) {
      const args = name === 'set-config-type' ? [name, 'a', 'primary'] : [name, 'b'];
      const r = await run(['--socket', socketPath, ...args]);
      t.is(r.code, 0, `${name}: ${r.stderr}`);
      t.regex(r.stdout, /^PATH\s+STATE$/m);
      t.regex(r.stdout, /^a\s+(Primary|Primary_Offline)$/m);
      t.deepEqual(backend.calls.find(([c]) => c === wire)![1], name === 'set-config-type' ? { path: 'a', type: 'primary' } : { path: 'b' });
    }
  });
});

/** Two pairs: pair 0 as in STATUS (a failed over to b), pair 1 healthy with b sending. */
const TWO_PAIRS: StatusResult = {
  ...STATUS,
  sessions: 3,
  pairs: [
    STATUS.pairs[0],
    { pair: 1, paths: { a: { ...FAKE_STATUS.paths.a, sending: false, namedState: 'Secondary', failoverType: 'SLAVE' }, b: { ...FAKE_STATUS.paths.b, sending: true, namedState: 'Primary', failoverType: 'MASTER' } },
      active: 'b', epoch: 5, handovers: 7, failovers: 0, lastFailover: null, sessions: 2 },
  ],
};

test('status with two pairs shows each pair\'s paths, who sends, handovers, failovers and sessions', async (t) => {
  await withServer(async ({ socketPath }) => {
    const r = await run(['--socket', socketPath, 'status']);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.regex(lines[0], /^PAIR\s+PATH\s+STATE\s+TYPE\s+FO_STATE\s+SENDING\s+HEARTBEATS\s+RESTARTS\s+THREAD$/);
    t.regex(lines[1], /^0\s+a\s+Failed\s+MASTER\s+FAILED\s+no/);
    t.regex(lines[2], /^0\s+b\s+Primary_No_Secondary\s+MASTER\s+NOPARTNER\s+yes/);
    t.regex(lines[3], /^1\s+a\s+Secondary\s+SLAVE\s+LIVE\s+no/);
    t.regex(lines[4], /^1\s+b\s+Primary\s+MASTER\s+LIVE\s+yes/);
    t.regex(r.stdout, /active\s+pair 0: b \(epoch 2\), pair 1: b \(epoch 5\)/);
    t.regex(r.stdout, /handovers\s+pair 0: 2, pair 1: 7 /);
    t.regex(r.stdout, /failovers\s+pair 0: 1, pair 1: 0 /);
    t.regex(r.stdout, /sessions\s+3 \(pair 0: 1, pair 1: 2\)/);
    t.regex(r.stdout, /last failover\s+2025-11-21T05:40:00\.000Z\s+a → b, cause: exception: disk EIO.*\[pair 0\]/);
    const json = await run(['--socket', socketPath, '--json', 'status']);
    t.deepEqual(JSON.parse(json.stdout), TWO_PAIRS);
  }, { ...BACKEND, status: TWO_PAIRS });
});

test('--pair N reaches every command that acts on a path or a pair, and results name the pair', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const commands: ReadonlyArray<readonly [string[], string, Record<string, unknown>]> = [
      [['set-config-type', 'a', 'primary'], 'set_config_type', { path: 'a', type: 'primary', pair: 1 }],
      [['stop-streaming', 'b'], 'stop_streaming', { path: 'b', pair: 1 }],
      [['failover-sync', 'b'], 'failover_sync', { path: 'b', pair: 1 }],
      [['failover-unsync', 'b'], 'failover_unsync', { path: 'b', pair: 1 }],
      [['inject-fault', 'a', 'crash'], 'inject_fault', { path: 'a', kind: 'crash', pair: 1 }],
    ];
    for (const [args, wire, expected] of commands) {
      const r = await run(['--socket', socketPath, ...args, '--pair', '1']);
      t.is(r.code, 0, `${args[0]}: ${r.stderr}`);
      t.regex(r.stdout, /pair 1/, `${args[0]} names the pair`);
      t.deepEqual(backend.calls.find(([c]) => c === wire)![1], expected);
    }
    const failover = await run(['--socket', socketPath, '--json', 'failover', '--pair', '1']);
    t.like(JSON.parse(failover.stdout), { pair: 1, cause: 'manual' });
    const states = await run(['--socket', socketPath, '--json', 'failover-sync', 'a', '--pair', '1']);
    t.like(JSON.parse(states.stdout), { pair: 1 });
    for (const bad of ['x', '-1', '1.5']) {
      const r = await run(['--socket', socketPath, 'failover', '--pair', bad]);
      t.is(r.code, 2, `--pair ${bad}: ${r.stderr}`);
    }
    t.is(backend.calls.filter(([c]) => c === 'failover').length, 1, 'a bad --pair never reached the server');
  });
});

// --- exit codes -------------------------------------------------------------------------------

test('a command the server refuses exits 1 and prints the error code and message', async (t) => {
  await withServer(async ({ socketPath }) => {
    const r = await run(['--socket', socketPath, 'start-streaming', 'b']);
    t.is(r.code, 1);
    t.regex(r.stderr, /TF_FAILOVER_ILLEGAL_COMMAND: start_streaming refused on path b in state Secondary_Offline/);
    t.is(r.stdout, '');

    const j = await run(['--socket', socketPath, '--json', 'start-streaming', 'b']);
    t.is(j.code, 1);
    t.like(JSON.parse(j.stdout), { ok: false, error: { code: 'TF_FAILOVER_ILLEGAL_COMMAND', details: { allowed: ['failover_sync'] } } });
  });
});

test('usage errors exit 2 and never reach the server', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const cases: string[][] = [
      [],
      ['bogus'],
      ['set-config-type', 'a', 'master'],
      ['set-config-type', 'c', 'primary'],
      ['start-streaming'],
      ['status', 'extra'],
      ['heartbeat', '--period-us', 'abc'],
      ['heartbeat', '--max-missed', '0'],
      ['limits', '--max-streams', '-3'],
      ['inject-fault', 'a', 'meteor'],
      ['status', '--no-such-option'],
      ['--timeout', 'soon', 'status'],
    ];
    for (const args of cases) {
      const r = await run(['--socket', socketPath, ...args]);
      t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      t.not(r.stderr, '', `${args.join(' ')} explains itself`);
    }
    t.deepEqual(backend.calls, []);
  });
});

test('no server at the socket path exits 3, whether nothing is there or a stale socket', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-ctl-'));
  try {
    const missing = await run(['--socket', path.join(dir, 'none.sock'), 'status']);
    t.is(missing.code, 3);
    t.regex(missing.stderr, /cannot connect/);

    const stale = path.join(dir, 'stale.sock');
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(path.join(dir, 'tmp.sock'), r));
    await rename(path.join(dir, 'tmp.sock'), stale);
    await new Promise<void>((r) => s.close(() => r()));
    const refused = await run(['--socket', stale, 'status', '--json']);
    t.is(refused.code, 3);
    t.like(JSON.parse(refused.stdout), { ok: false, error: { code: 'ECONNREFUSED' } });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the socket comes from TWINFRAME_ADMIN_SOCKET when --socket is not given', async (t) => {
  await withServer(async ({ socketPath }) => {
    const r = await run(['status', '--json'], cleanEnv({ TWINFRAME_ADMIN_SOCKET: socketPath }));
    t.is(r.code, 0, r.stderr);
    t.is((JSON.parse(r.stdout) as StatusResult).active, 'b');
  });
});

test('--help works on the program and on every command, and exits 0', async (t) => {
  const commands = ['status', 'sessions', 'assets', 'set-config-type', 'start-streaming', 'stop-streaming', 'failover-sync', 'failover-unsync', 'heartbeat', 'limits', 'failover', 'watch', 'inject-fault', 'broadcast'];
  const top = await run(['--help']);
  t.is(top.code, 0);
  for (const c of commands) t.true(top.stdout.includes(c), `${c} listed`);
  t.regex(top.stdout, /Exit codes: 0 ok, 1 refused by the server, 2 usage error, 3 cannot connect/);
  const results = await Promise.all(commands.map((c) => run([c, '--help'])));
  results.forEach((r, i) => {
    t.is(r.code, 0, commands[i]);
    t.regex(r.stdout, new RegExp(`^Usage: twinframectl ${commands[i]}`), commands[i]);
    t.regex(r.stdout, /--socket/, `${commands[i]} shows the global options`);
  });
  const helpCmd = await run(['help', 'heartbeat']);
  t.is(helpCmd.code, 0);
  t.regex(helpCmd.stdout, /--period-us/);
});

// --- watch ------------------------------------------------------------------------------------

function collect(child: ChildProcess): { out: () => string; err: () => string; exit: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { out: () => out, err: () => err, exit };
}

test('watch prints events until SIGINT, then exits 0', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const child = start(['--socket', socketPath, 'watch']);
    const io = collect(child);
    await until(() => backend.listeners.size === 1, 'the watch subscription');
    backend.emit({ type: 'failover', ...LAST_FAILOVER });
    backend.emit({ type: 'state', at: '2025-11-21T05:40:00.001Z', pair: 0, states: { a: 'Failed', b: 'Primary_No_Secondary' }, cause: 'critical_failure' });
    backend.emit({ type: 'session', at: '2025-11-21T05:40:00.002Z', id: 'f00d', change: 'failed', asset: '/cut.ts', scope: 'asset', reason: 'unexpected end of file at byte 1316' });
    backend.emit({ type: 'asset', at: '2025-11-21T05:40:00.003Z', asset: '/cut.ts', change: 'unavailable', reason: 'unexpected end of file at byte 1316' });
    await until(() => io.out().split('\n').length >= 5, 'four event lines');
    child.kill('SIGINT');
    t.is(await io.exit, 0, io.err());
    const lines = io.out().trim().split('\n');
    t.regex(lines[0], /^2025-11-21T05:40:00\.000Z\s+failover\s+a → b, cause: exception: disk EIO, detected in 0\.31 ms/);
    t.regex(lines[1], /state\s+a: Failed\s+b: Primary_No_Secondary/);
    t.regex(lines[2], /session\s+f00d failed \/cut\.ts \(asset fault\): unexpected end of file at byte 1316$/);
    t.regex(lines[3], /asset\s+\/cut\.ts unavailable: unexpected end of file at byte 1316$/);
    await until(() => backend.listeners.size === 0, 'the watcher to unsubscribe');
  });
});

test('watch --json prints one JSON event per line, and exits 3 when the server goes away', async (t) => {
  await withServer(async ({ socketPath, backend, server }) => {
    const child = start(['--socket', socketPath, '--json', 'watch']);
    const io = collect(child);
    await until(() => backend.listeners.size === 1, 'the watch subscription');
    const event: WatchEvent = { type: 'session', at: '2025-11-21T05:42:00.000Z', id: 'f00d', change: 'closed', asset: 'sample.ts' };
    backend.emit(event);
    await until(() => io.out().includes('\n'), 'an event line');
    await server.close();
    t.is(await io.exit, 3);
    t.deepEqual(JSON.parse(io.out().trim().split('\n')[0]), event);
    t.regex(io.err(), /server closed the connection/);
  });
});

leakCheck(test);
