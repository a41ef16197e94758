// `twinframectl user add|remove|list` on a configuration file: the password
// comes from stdin (never the command line), only its hashes are stored (the
// file made owner-only), nothing the commands print holds a secret, and a
// running server is told to reload so a new user can log in at once.

import test from 'ava';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/store.js';
import { silentLogger } from '../src/log.js';
import { digestHa1 } from '../src/rtsp/auth.js';
import { startServer } from '../src/server.js';
import { leakCheck } from './helpers/leak-check.js';
import { TWINFRAMECTL, runCapture, type RunResult } from './helpers/run.js';

const PASSWORD = 'Tr0ub4dor&3-horse';

interface StoredUser { name: string; realm: string; md5: string; sha256: string; basic: string }

test.serial('user add stores hashes only and prints no secret; list and remove never show one either', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-user-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  const user = (stdin: string, ...args: string[]): Promise<RunResult> =>
    runCapture([process.execPath, TWINFRAMECTL, 'user', '--config', file, '--no-reload', ...args], { stdin, limitMs: 20_000 });

  const added = await user(`${PASSWORD}\n`, 'add', 'alice');
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /user alice added/);
  const stored = (JSON.parse(await readFile(file, 'utf8')) as { auth: { users: StoredUser[] } }).auth.users;
  t.is(stored.length, 1);
  const alice = stored[0];
  t.like(alice, { name: 'alice', realm: 'twinframe', md5: digestHa1('MD5', 'alice', 'twinframe', PASSWORD), sha256: digestHa1('SHA-256', 'alice', 'twinframe', PASSWORD) });
  t.regex(alice.basic, /^scrypt\$/);
  t.false((await readFile(file, 'utf8')).includes(PASSWORD), 'the password itself is not stored');
  t.is((await stat(file)).mode & 0o777, 0o600, 'a new file holding hashes is owner-only');

  // Per-prefix access is edited in the file; remove takes the user out of the rules too.
  const raw = JSON.parse(await readFile(file, 'utf8')) as { auth: Record<string, unknown> };
  raw.auth.access = [{ prefix: 'movies', users: ['alice'] }];
  await writeFile(file, JSON.stringify(raw));

  const secrets = [PASSWORD, alice.md5, alice.sha256, alice.basic, alice.basic.split('$')[5]];
  const outputs: RunResult[] = [added];
  outputs.push(await user(`${PASSWORD}\n`, 'add', 'alice'));
  t.regex(outputs[1].stdout, /password changed/);
  outputs.push(await user('', 'list'), await user('', '--json', 'list'));
  t.regex(outputs[2].stdout, /alice\s+MD5 SHA-256\s+yes\s+movies/);
  t.like(JSON.parse(outputs[3].stdout), { enabled: false, users: [{ name: 'alice', basic: true, prefixes: ['movies'] }] });
  outputs.push(await user('', 'add', 'bob'));
  t.is(outputs[4].code, 2, 'an empty password is refused');
  outputs.push(await user('', 'remove', 'alice'));
  t.is(outputs[5].code, 0, outputs[5].stderr);
  const after = await loadConfig(file);
  t.deepEqual(after.auth.users, []);
  t.deepEqual(after.auth.access, [{ prefix: 'movies', users: [] }], 'the rule stays and now lets nobody play');
  for (const [i, out] of outputs.entries()) {
    for (const secret of secrets) t.false(`${out.stdout}${out.stderr}`.includes(secret), `output ${i} shows a secret`);
  }
});

test.serial('user add on a running server reloads it: the new user is in force at once', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-user-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ admin: { socketPath: 'admin.sock' }, media: { cacheDir: 'cache' }, metrics: { listen: '' }, auth: { enabled: true } }));
  const server = await startServer({ config: await loadConfig(file), configPath: file, loadConfig: () => loadConfig(file), logger: silentLogger, rtsp: { port: 0 } });
  t.teardown(() => server.close());
  const added = await runCapture([process.execPath, TWINFRAMECTL, 'user', '--config', file, 'add', 'carol'], { stdin: `${PASSWORD}\n`, limitMs: 20_000 });
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /the running server reloaded .*: applied auth\.users/);
  t.deepEqual(server.config.auth.users.map((u) => u.name), ['carol']);
});

leakCheck(test);
