// Checks the admin server against a fake backend: an owner-only socket, safe handling
// of whatever already sits at the socket path, TF_ADMIN_BAD_REQUEST for every kind of
// malformed input with the server still answering afterwards, many clients, clients
// that vanish, and watch events.

import test from 'ava';
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TwinframeError, isTwinframeError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import type { WatchEvent } from '../src/admin/backend.js';
import { AdminClient, AdminConnectionError, AdminReplyError } from '../src/admin/client.js';
import { MAX_REQUEST_LINE_BYTES } from '../src/admin/protocol.js';
import { AdminServer } from '../src/admin/server.js';
import { FakeAdminBackend, type FakeAdminBackendOptions } from './helpers/fake-admin-backend.js';
import { leakCheck } from './helpers/leak-check.js';

// --- a fake backend: the server is under test here, not the engine -------------------------

/** The fake's defaults, but with a refusal, an internal failure and fault injection disabled to report. */
const BACKEND: FakeAdminBackendOptions = {
  behaviour: {
    startStreaming: (args) => {
      throw new TwinframeError('TF_FAILOVER_ILLEGAL_COMMAND', 'start_streaming refused on path b in state Secondary_Offline', {
        path: args.path, state: 'Secondary_Offline', command: 'start_streaming', allowed: ['set_config_type', 'failover_sync'],
      });
    },
    stopStreaming: () => { throw new Error('engine exploded'); },
    injectFault: () => { throw new TwinframeError('TF_FAULT_INJECTION_DISABLED'); },
  },
};

// --- helpers ---------------------------------------------------------------------------

interface Fixture {
  readonly dir: string;
  readonly socketPath: string;
  readonly backend: FakeAdminBackend;
  readonly server: AdminServer;
}

async function withServer(fn: (f: Fixture) => Promise<void>, socketName = 'admin.sock'): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-admin-'));
  const socketPath = path.join(dir, socketName);
  const backend = new FakeAdminBackend(BACKEND);
  const server = new AdminServer({ socketPath, backend, logger: silentLogger });
  try {
    await server.listen();
    await fn({ dir, socketPath, backend, server });
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A bare socket that reads reply lines, for sending what a well-behaved client never would. */
class RawClient {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.notify();
    });
    socket.on('error', () => undefined); // ECONNRESET after the server closes on us is expected
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.notify();
      resolve();
    }));
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path: socketPath });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  async line(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.socket.destroyed && this.lines.length === 0) throw new Error('connection closed before a line arrived');
      if (Date.now() > deadline) throw new Error('timed out waiting for a line');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return JSON.parse(this.lines.shift()!) as Record<string, unknown>;
  }

  async request(cmd: string, args: unknown = {}, id: string | number = 1): Promise<Record<string, unknown>> {
    this.send(`${JSON.stringify({ v: 1, id, cmd, args })}\n`);
    return this.line();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function errorOf(reply: Record<string, unknown>): { code: string; message: string; details: Record<string, unknown> } {
  return reply.error as { code: string; message: string; details: Record<string, unknown> };
}

// --- the socket file -----------------------------------------------------------------------

test('the socket is created with mode 0600, in a 0700 directory when the server creates it', async (t) => {
  await withServer(async ({ socketPath }) => {
    const st = await lstat(socketPath);
    t.true(st.isSocket());
    t.is(st.mode & 0o777, 0o600);
    t.is((await stat(path.dirname(socketPath))).mode & 0o777, 0o700);
    const entries = (await import('node:fs/promises')).readdir(path.dirname(path.dirname(socketPath)));
    t.false((await entries).some((e) => e.startsWith('.tfadmin-')), 'the temporary bind directory is gone');
  }, path.join('run', 'admin.sock'));
});

// Running a client as another user needs root: without it the test is registered as skipped, saying why.
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
(isRoot ? test : test.skip)(`another user cannot connect even when the directory is open to everyone${isRoot ? '' : ' (skipped: needs root to run a client as another user)'}`, async (t) => {
  await withServer(async ({ dir, socketPath }) => {
    await chmod(dir, 0o755); // only the socket's own mode stands in the way now
    const script = "const s=require('net').connect(process.argv[1]);s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)})";
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script, socketPath], { uid: 65534, gid: 65534, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
      child.on('error', reject);
      child.on('close', () => resolve(text.trim()));
    });
    t.is(out, 'EACCES');
  });
});

test('a stale socket left by a crashed run is replaced', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-admin-'));
  const socketPath = path.join(dir, 'admin.sock');
  try {
    // A socket file nobody listens on: bind, move the file away from libuv's path, close.
    const crashed = net.createServer();
    await new Promise<void>((r) => crashed.listen(path.join(dir, 'tmp.sock'), r));
    await rename(path.join(dir, 'tmp.sock'), socketPath);
    await new Promise<void>((r) => crashed.close(() => r()));
    t.true((await lstat(socketPath)).isSocket());

    const server = new AdminServer({ socketPath, backend: new FakeAdminBackend(BACKEND), logger: silentLogger });
    await server.listen();
    try {
      const c = await RawClient.connect(socketPath);
      t.is((await c.request('status')).ok, true);
      c.destroy();
      t.is((await lstat(socketPath)).mode & 0o777, 0o600);
    } finally {
      await server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a second server on the path of a live one is refused with TF_ADMIN_SOCKET_IN_USE and the first keeps serving', async (t) => {
  await withServer(async ({ socketPath }) => {
    const second = new AdminServer({ socketPath, backend: new FakeAdminBackend(BACKEND), logger: silentLogger });
    const err = await t.throwsAsync(second.listen());
    t.true(isTwinframeError(err, 'TF_ADMIN_SOCKET_IN_USE'), String(err));
    await second.close();
    const c = await RawClient.connect(socketPath);
    t.is((await c.request('status')).ok, true);
    c.destroy();
  });
});

test('a regular file, a directory or a symlink at the socket path is refused and never deleted', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-admin-'));
  try {
    const file = path.join(dir, 'file.sock');
    await writeFile(file, 'precious');
    const sub = path.join(dir, 'dir.sock');
    await mkdir(sub);
    const link = path.join(dir, 'link.sock');
    await symlink(file, link);
    const dangling = path.join(dir, 'dangling.sock');
    await symlink(path.join(dir, 'nowhere'), dangling);

    for (const p of [file, sub, link, dangling]) {
      const server = new AdminServer({ socketPath: p, backend: new FakeAdminBackend(BACKEND), logger: silentLogger });
      const err = await t.throwsAsync(server.listen(), undefined, p);
      t.true(isTwinframeError(err, 'TF_ADMIN_SOCKET_IN_USE'), `${p}: ${String(err)}`);
      t.truthy(await lstat(p), `${p} still exists`);
      await server.close();
    }
    t.is(await readFile(file, 'utf8'), 'precious');
    t.true((await lstat(sub)).isDirectory());
    t.true((await lstat(link)).isSymbolicLink());
    t.true((await lstat(dangling)).isSymbolicLink());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('close removes the socket file, ends watchers, and frees the path for a new server', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-admin-'));
  const socketPath = path.join(dir, 'admin.sock');
  try {
    const backend = new FakeAdminBackend(BACKEND);
    const server = new AdminServer({ socketPath, backend, logger: silentLogger });
    await server.listen();
    const watcher = await RawClient.connect(socketPath);
    t.is((await watcher.request('watch')).ok, true);
    await server.close();
    await watcher.closed;
    t.is(backend.listeners.size, 0);
    await t.throwsAsync(lstat(socketPath));
    await server.close(); // twice is harmless

    const again = new AdminServer({ socketPath, backend, logger: silentLogger });
    await again.listen();
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// --- requests --------------------------------------------------------------------------------

test('every command reaches the backend with its validated arguments', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const c = await RawClient.connect(socketPath);
    t.like(await c.request('set_config_type', { path: 'a', type: 'primary' }), { v: 1, id: 1, ok: true, result: { states: { a: 'Primary_Offline' } } });
    t.like(await c.request('heartbeat', { periodUs: 500 }, 'x'), { id: 'x', ok: true, result: { periodUs: 500, maxMissed: 3 } });
    t.like(await c.request('heartbeat', undefined, 3), { id: 3, ok: true });
    t.like(await c.request('limits', { maxStreams: 5 }), { ok: true });
    t.like(await c.request('failover'), { ok: true, result: { from: 'a', to: 'b' } });
    t.like(await c.request('failover_sync', { path: 'b' }), { ok: true });
    t.like(await c.request('failover_unsync', { path: 'b' }), { ok: true });
    t.like(await c.request('assets'), { ok: true });
    t.deepEqual(backend.calls.find(([cmd]) => cmd === 'set_config_type'), ['set_config_type', { path: 'a', type: 'primary' }]);
    t.deepEqual(backend.calls.find(([cmd]) => cmd === 'limits'), ['limits', { maxStreams: 5 }]);
    c.destroy();
  });
});

test('a refusal by the backend travels to the client with its code and details; other exceptions become TF_INTERNAL', async (t) => {
  await withServer(async ({ socketPath }) => {
    const c = await RawClient.connect(socketPath);
    const refused = await c.request('start_streaming', { path: 'b' });
    t.is(refused.ok, false);
    t.is(errorOf(refused).code, 'TF_FAILOVER_ILLEGAL_COMMAND');
    t.deepEqual(errorOf(refused).details.allowed, ['set_config_type', 'failover_sync']);
    const internal = await c.request('stop_streaming', { path: 'a' });
    t.is(errorOf(internal).code, 'TF_INTERNAL');
    t.is(errorOf(internal).message, 'engine exploded');
    const disabled = await c.request('inject_fault', { path: 'a', kind: 'crash' });
    t.is(errorOf(disabled).code, 'TF_FAULT_INJECTION_DISABLED');
    t.is((await c.request('status')).ok, true);
    c.destroy();
  });
});

const BAD_LINES: Array<[string, string | Buffer, RegExp]> = [
  ['invalid JSON', '{"v":1,"id":1,"cmd":"status"', /not valid JSON/],
  ['binary garbage', Buffer.concat([Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x1b, 0x5b]), Buffer.from('\n')]), /not valid JSON/],
  ['a JSON array', '[1,2,3]\n', /JSON object/],
  ['a JSON string', '"status"\n', /JSON object/],
  ['no version', '{"id":1,"cmd":"status"}\n', /protocol version/],
  ['a wrong version', '{"v":2,"id":1,"cmd":"status"}\n', /unsupported protocol version 2/],
  ['no id', '{"v":1,"cmd":"status"}\n', /id/],
  ['an object as id', '{"v":1,"id":{},"cmd":"status"}\n', /id/],
  ['an unknown command', '{"v":1,"id":1,"cmd":"reboot"}\n', /unknown command 'reboot'/],
  ['a command that is not a string', '{"v":1,"id":1,"cmd":7}\n', /cmd must be a string/],
  ['a prototype name as command', '{"v":1,"id":1,"cmd":"constructor"}\n', /unknown command/],
  ['args that are not an object', '{"v":1,"id":1,"cmd":"status","args":[]}\n', /args must be a JSON object/],
  ['a wrong path', '{"v":1,"id":1,"cmd":"start_streaming","args":{"path":"c"}}\n', /path/],
  ['a missing path', '{"v":1,"id":1,"cmd":"start_streaming","args":{}}\n', /path/],
  ['a wrong type name', '{"v":1,"id":1,"cmd":"set_config_type","args":{"path":"a","type":"master"}}\n', /type/],
  ['a string where a number goes', '{"v":1,"id":1,"cmd":"heartbeat","args":{"periodUs":"250"}}\n', /periodUs/],
  ['a negative limit', '{"v":1,"id":1,"cmd":"limits","args":{"maxStreams":-1}}\n', /maxStreams/],
  ['an unknown argument', '{"v":1,"id":1,"cmd":"status","args":{"verbose":true}}\n', /unknown argument/],
  ['an unknown fault kind', '{"v":1,"id":1,"cmd":"inject_fault","args":{"path":"a","kind":"meteor"}}\n', /kind/],
  ['an unknown envelope field', '{"v":1,"id":1,"cmd":"status","extra":1}\n', /unknown request field/],
];

test('every kind of malformed request is answered with TF_ADMIN_BAD_REQUEST and the connection keeps working', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const c = await RawClient.connect(socketPath);
    for (const [name, line, message] of BAD_LINES) {
      c.send(typeof line === 'string' && !line.endsWith('\n') ? `${line}\n` : line);
      const reply = await c.line();
      t.is(reply.v, 1, name);
      t.is(reply.ok, false, name);
      t.is(errorOf(reply).code, 'TF_ADMIN_BAD_REQUEST', name);
      t.regex(errorOf(reply).message, message, name);
    }
    t.is(backend.calls.length, 0, 'nothing malformed reached the backend');
    t.like(await c.request('status', {}, 'after'), { id: 'after', ok: true });
    c.destroy();
  });
});

test('a bad request whose id is readable gets that id back, otherwise null', async (t) => {
  await withServer(async ({ socketPath }) => {
    const c = await RawClient.connect(socketPath);
    c.send('{"v":1,"id":"q7","cmd":"nope"}\n');
    t.is((await c.line()).id, 'q7');
    c.send('not json\n');
    t.is((await c.line()).id, null);
    c.destroy();
  });
});

test('a line longer than 64 KiB gets an error reply and its connection closed; the server serves the next client', async (t) => {
  await withServer(async ({ socketPath }) => {
    const c = await RawClient.connect(socketPath);
    c.send(Buffer.alloc(MAX_REQUEST_LINE_BYTES + 10, 0x61)); // no newline at all
    const reply = await c.line();
    t.is(errorOf(reply).code, 'TF_ADMIN_BAD_REQUEST');
    t.regex(errorOf(reply).message, /longer than 65536 bytes/);
    await c.closed;

    const d = await RawClient.connect(socketPath);
    const padded = `{"v":1,"id":1,"cmd":"status","args":{}}`;
    d.send(`${padded}${' '.repeat(MAX_REQUEST_LINE_BYTES + 1 - padded.length)}\n`); // one byte over, with its newline
    t.is(errorOf(await d.line()).code, 'TF_ADMIN_BAD_REQUEST');
    await d.closed;

    const e = await RawClient.connect(socketPath);
    e.send(`${padded}${' '.repeat(MAX_REQUEST_LINE_BYTES - padded.length)}\n`); // exactly at the limit
    t.like(await e.line(), { ok: true, id: 1 });
    e.destroy();
  });
});

test('requests on one connection are answered in order, even when pipelined', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    backend.statusDelayMs = 30;
    const c = await RawClient.connect(socketPath);
    c.send([
      JSON.stringify({ v: 1, id: 1, cmd: 'status' }),
      JSON.stringify({ v: 1, id: 2, cmd: 'assets' }),
      'garbage',
      JSON.stringify({ v: 1, id: 4, cmd: 'heartbeat', args: {} }),
    ].join('\n') + '\n');
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await c.line()).id);
    t.deepEqual(ids, [1, 2, null, 4]);
    c.destroy();
  });
});

test('a client that half-closes after its request still gets the reply', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    backend.statusDelayMs = 30; // the reply is computed after the client's end arrives
    const c = await RawClient.connect(socketPath);
    c.socket.end(`${JSON.stringify({ v: 1, id: 'half', cmd: 'status' })}\n`);
    t.like(await c.line(), { id: 'half', ok: true });
    await c.closed;
  });
});

test('a client that floods requests without reading is throttled, loses no reply, and does not block others', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    const flood = await RawClient.connect(socketPath);
    flood.socket.pause();
    const n = 20_000; // ~1 MB of requests, ~14 MB of replies
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ v: 1, id: i, cmd: 'status' })).join('\n');
    flood.send(`${lines}\n`);
    await new Promise((r) => setTimeout(r, 500));
    t.true(backend.calls.length < n, `throttled: ${backend.calls.length} of ${n} handled while the client does not read`);
    t.true(flood.socket.writableLength > 0, 'the server stopped reading the flood');

    const other = await AdminClient.connect(socketPath);
    t.is((await other.request('heartbeat')).periodUs, 250);
    other.close();

    flood.socket.resume();
    for (let i = 0; i < n; i++) {
      const reply = await flood.line(10_000);
      if (reply.id !== i) return t.fail(`reply ${i} came with id ${String(reply.id)}`);
    }
    t.is(backend.calls.filter(([c]) => c === 'status').length, n);
    flood.destroy();
  });
});

test('many clients at once are all answered', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    backend.statusDelayMs = 5;
    const clients = await Promise.all(Array.from({ length: 40 }, () => AdminClient.connect(socketPath)));
    const replies = await Promise.all(clients.map((c) => Promise.all([c.request('status'), c.request('heartbeat', { maxMissed: 4 })])));
    for (const c of clients) c.close();
    // Each client got its own answer to each of its requests, not just some answer.
    for (const [status, heartbeat] of replies) {
      t.is(status.paths.a.path, 'a');
      t.like(heartbeat, { maxMissed: 4, periodUs: 250 });
    }
    t.is(replies.length, 40);
    t.is(backend.calls.filter(([c]) => c === 'status').length, 40);
    t.is(backend.calls.filter(([c]) => c === 'heartbeat').length, 40);
  });
});

test('clients that disconnect mid-reply or mid-request do not disturb the server', async (t) => {
  await withServer(async ({ socketPath, backend }) => {
    backend.statusDelayMs = 50;
    backend.sessionCount = 50_000; // a reply of several megabytes
    for (let i = 0; i < 5; i++) {
      const c = await RawClient.connect(socketPath);
      c.send(`${JSON.stringify({ v: 1, id: 1, cmd: 'status' })}\n${JSON.stringify({ v: 1, id: 2, cmd: 'sessions' })}\n`);
      c.destroy(); // gone before the replies are written
      const d = await RawClient.connect(socketPath);
      d.send(`${JSON.stringify({ v: 1, id: 1, cmd: 'sessions' })}\n`);
      await new Promise((r) => setTimeout(r, 5));
      d.destroy(); // gone while a large reply is being written
      const e = await RawClient.connect(socketPath);
      e.send('{"v":1,"id":1,"cmd":"sta'); // half a request, then gone
      e.destroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    backend.sessionCount = 1;
    const ok = await AdminClient.connect(socketPath);
    t.is((await ok.request('sessions')).length, 1);
    ok.close();
  });
});

// --- watch ----------------------------------------------------------------------------------

test('watch delivers events as event lines, only to watchers, and unsubscribes when the client leaves', async (t) => {
  await withServer(async ({ socketPath, backend, server }) => {
    const watcher = await RawClient.connect(socketPath);
    const bystander = await RawClient.connect(socketPath);
    t.like(await watcher.request('watch', {}, 'w'), { id: 'w', ok: true, result: { watching: true } });
    t.is(backend.listeners.size, 1);

    const failover: WatchEvent = { type: 'failover', pair: 0, at: '2025-01-01T00:00:00.000Z', from: 'a', to: 'b', cause: 'exception: boom', detectionLatencyUs: 310, switchLatencyUs: 20 };
    const state: WatchEvent = { type: 'state', at: '2025-01-01T00:00:00.001Z', pair: 1, states: { a: 'Failed', b: 'Primary_No_Secondary' }, cause: 'critical_failure' };
    backend.emit(failover);
    backend.emit(state);
    t.deepEqual(await watcher.line(), { v: 1, event: failover });
    t.deepEqual(await watcher.line(), { v: 1, event: state });

    // Requests still work on a watching connection.
    t.like(await watcher.request('status', {}, 9), { id: 9, ok: true });
    // The bystander never asked to watch: its next line is its own reply.
    t.like(await bystander.request('status', {}, 'b'), { id: 'b', ok: true });

    watcher.destroy();
    await watcher.closed;
    for (let i = 0; i < 50 && backend.listeners.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.is(backend.listeners.size, 0);
    backend.emit(state); // nobody listening: harmless
    t.is(server.clientCount, 1, 'the bystander is still connected');
    bystander.destroy();
    await bystander.closed;
    for (let i = 0; i < 200 && server.clientCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.is(server.clientCount, 0, 'the server forgot both clients');
  });
});

test('the AdminClient reports refusals and connection failures as different errors', async (t) => {
  await withServer(async ({ dir, socketPath, backend }) => {
    const c = await AdminClient.connect(socketPath);
    const refused = await t.throwsAsync(c.request('start_streaming', { path: 'b' }));
    t.true(refused instanceof AdminReplyError);
    t.is((refused as AdminReplyError).code, 'TF_FAILOVER_ILLEGAL_COMMAND');

    const events: WatchEvent[] = [];
    const iterating = (async () => {
      for await (const e of c.watch()) events.push(e);
    })();
    for (let i = 0; i < 50 && backend.listeners.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    backend.emit({ type: 'config', at: 'now', changed: ['limits.maxStreams'] });
    for (let i = 0; i < 50 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    c.close();
    await iterating;
    t.deepEqual(events, [{ type: 'config', at: 'now', changed: ['limits.maxStreams'] }]);
    t.is(c.lastError, null);

    const missing = await t.throwsAsync(AdminClient.connect(path.join(dir, 'missing.sock')));
    t.true(missing instanceof AdminConnectionError);
    t.is((missing as AdminConnectionError).code, 'ENOENT');
  });
});

leakCheck(test);
