// The admin socket is the operator's alone: its directory must be ours and
// writable by nobody else (a pre-created /tmp directory would let another user
// swap the socket), a connection from another user is refused by the kernel's
// record of who connected (SO_PEERCRED), and a client that never reads its
// replies is dropped instead of holding its connection forever.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { isTwinframeError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { AdminServer } from '../src/admin/server.js';
import { nativeAddon } from '../src/shared/native.js';
import { FakeAdminBackend } from './helpers/fake-admin-backend.js';
import { leakCheck } from './helpers/leak-check.js';
import { until } from './helpers/engine-fixture.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

async function tmpDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-admin-private-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a socket directory writable by others, or owned by another user, is refused with a clear error', async (t) => {
  const dir = await tmpDir(t);
  const open = path.join(dir, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  const server = new AdminServer({ socketPath: path.join(open, 'admin.sock'), backend: new FakeAdminBackend(), logger: silentLogger });
  const err = await t.throwsAsync(server.listen());
  t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'), String(err));
  t.regex(err?.message ?? '', /writable by others \(mode 777\)/);
  await server.close();
  if (!isRoot) return; // only root can give a directory away
  const theirs = path.join(dir, 'theirs');
  await mkdir(theirs, { mode: 0o700 });
  await chown(theirs, NOBODY, NOBODY);
  const other = new AdminServer({ socketPath: path.join(theirs, 'admin.sock'), backend: new FakeAdminBackend(), logger: silentLogger });
  const err2 = await t.throwsAsync(other.listen());
  t.regex(err2?.message ?? '', new RegExp(`owned by uid ${NOBODY}`));
  await other.close();
});

test.serial('a connection from another user is refused (SO_PEERCRED), the owner\'s is served', async (t) => {
  if (!isRoot || !nativeAddon) {
    t.log('needs root (to connect as another user) and the native addon');
    t.pass();
    return;
  }
  const dir = await tmpDir(t);
  await chmod(dir, 0o755); // traversable: only the peer check is left to refuse
  const socketPath = path.join(dir, 'admin.sock');
  const server = new AdminServer({ socketPath, backend: new FakeAdminBackend(), logger: silentLogger });
  t.teardown(() => server.close());
  await server.listen();
  await chmod(socketPath, 0o666); // as a permission mistake would leave it
  // A request from uid 65534: the server closes the connection without answering.
  const script = `const s=require('net').connect(${JSON.stringify(socketPath)});let got='';s.on('data',d=>got+=d);s.on('error',e=>{console.log('error '+e.code);});s.on('close',()=>{console.log(got===''?'closed unanswered':'answered '+got.slice(0,80));});s.write('{"v":1,"id":1,"cmd":"status","args":{}}\\n');`;
  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await once(child, 'close');
  t.regex(out.trim(), /(^|\n)closed unanswered$/, 'closed (or reset) without an answer');
  // The owner (root here) is served.
  const own = net.connect(socketPath);
  own.write('{"v":1,"id":1,"cmd":"status","args":{}}\n');
  const [reply] = (await once(own, 'data')) as [Buffer];
  t.regex(reply.toString(), /"id":1/);
  own.destroy();
});

test.serial('a client that never reads its replies is dropped once they stay unread', async (t) => {
  const dir = await tmpDir(t);
  const socketPath = path.join(dir, 'admin.sock');
  const server = new AdminServer({ socketPath, backend: new FakeAdminBackend(), logger: silentLogger, maxPendingWriteBytes: 4096, stalledClientMs: 500 });
  t.teardown(() => server.close());
  await server.listen();
  const client = net.connect(socketPath);
  client.on('error', () => {});
  await once(client, 'connect');
  client.pause(); // never reads
  const request = '{"v":1,"id":1,"cmd":"status","args":{}}\n';
  // Enough requests that the replies fill the socket buffers and the server's pending bound.
  const started = Date.now();
  for (let i = 0; i < 20_000; i++) client.write(request);
  await until(() => server.clientCount === 1, 'the connection to be taken');
  await until(() => server.clientCount === 0, 'the server to drop the client that does not read', 15_000);
  t.log(`dropped ${Date.now() - started} ms after its requests`);
  client.destroy();
  t.pass();
});

leakCheck(test);
