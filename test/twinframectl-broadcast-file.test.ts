// `twinframectl broadcast` edits against a configuration file that was changed
// by hand and not reloaded yet: an edit rewrites its own row only (rows written
// there by hand stay for the next reload), refuses with TF_BROADCAST_FILE_CHANGED
// an edit of a row the file changed (saying which field and why), and edits and
// reloads run one at a time, so a reload sent right behind an edit leaves the
// running table equal to the file.

import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import type { BroadcastView } from '../src/admin/backend.js';
import { AdminClient } from '../src/admin/client.js';
import { hasLoopPlan } from '../src/broadcast/loop-source.js';
import { loadConfig } from '../src/config/store.js';
import { startConfigFileServer } from './helpers/config-file-server.js';
import { until } from './helpers/engine-fixture.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

test.serial('an edit keeps the rows written in the file and not reloaded, refuses to edit a row the file changed, and a reload right behind it applies the file whole', async (t) => {
  const { server, file, socket, ctl } = await startConfigFileServer(t, 'twinframe-ctl-bfile-');
  const refusal = async (...args: string[]): Promise<{ code: string; message: string }> => {
    const r = await ctl('broadcast', ...args);
    t.is(r.code, 1, r.stdout);
    return (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
  };
  // Stopped rows: nothing is sent, the table is what is tested.
  const row = (name: string, extra: Record<string, unknown> = {}) => ({ name, asset: '/sample.ts', to: '127.0.0.1:5004', state: 'stopped', ...extra });
  const editFile = async (edit: (rows: Array<Record<string, unknown>>) => Array<Record<string, unknown>>): Promise<void> => {
    const raw = JSON.parse(await readFile(file, 'utf8')) as { broadcasts?: Array<Record<string, unknown>> };
    raw.broadcasts = edit(raw.broadcasts ?? []);
    await writeFile(file, JSON.stringify(raw));
  };
  const fileNames = async (): Promise<string[]> => (await loadConfig(file)).broadcasts.map((b) => b.name);
  const runningNames = (): string[] => server.broadcasts.table().map((b) => b.name);

  // A row written by hand, not reloaded: an add keeps it in the file (and does not run it).
  await editFile((rows) => [...rows, row('by-hand')]);
  t.is((await ctl('broadcast', 'add', 'news', '--asset', '/sample.ts', '--to', '127.0.0.1:5004', '--stopped')).code, 0);
  t.deepEqual(await fileNames(), ['by-hand', 'news'], 'the row written by hand is kept');
  t.deepEqual(runningNames(), ['news'], 'and waits for a reload');
  t.deepEqual((JSON.parse(await readFile(file, 'utf8')) as { broadcasts: unknown[] }).broadcasts[0], row('by-hand'), 'as it was written (defaults left out)');

  // That row cannot be added again: it is there, not yet applied.
  const again = await refusal('add', 'by-hand', '--asset', '/sample.ts', '--to', '127.0.0.1:5004', '--stopped');
  t.is(again.code, 'TF_BROADCAST_FILE_CHANGED');
  t.regex(again.message, /'by-hand' is in the configuration file .* but not in the running table: it was written there since the last reload; reload/);

  // A row edited by hand: start/stop of it is refused, naming the field, and the file stays as the operator left it.
  await editFile((rows) => rows.map((r) => (r.name === 'news' ? { ...r, loop: true } : r)));
  const before = await readFile(file, 'utf8');
  const edited = await refusal('start', 'news');
  t.is(edited.code, 'TF_BROADCAST_FILE_CHANGED');
  t.regex(edited.message, /'news' differs in the configuration file .* from the running one \(loop: file true, running false\): it was edited there since the last reload/);
  t.is(await readFile(file, 'utf8'), before, 'a refused edit writes nothing');
  // A row removed by hand: its start/stop is refused too; its removal is what the file says already.
  await editFile((rows) => rows.filter((r) => r.name !== 'news'));
  t.regex((await refusal('stop', 'news')).message, /'news' is no longer in the configuration file .*: it was removed there since the last reload/);
  t.is((await ctl('broadcast', 'remove', 'news')).code, 0);
  t.deepEqual(runningNames(), []);
  t.deepEqual(await fileNames(), ['by-hand']);

  // An edit and a reload sent together (in that order, on one connection): the reload waits for the edit and applies the file it left.
  const admin = await AdminClient.connect(socket);
  t.teardown(() => admin.close());
  const [added, reloaded] = await Promise.all([
    admin.request('broadcast_add', { name: 'extra', asset: '/sample.ts', to: '127.0.0.1:5004', state: 'stopped' }),
    admin.request('reload'),
  ]);
  t.is(added.name, 'extra');
  t.deepEqual(reloaded.applied, ['broadcasts']);
  t.deepEqual(await fileNames(), ['by-hand', 'extra']);
  t.deepEqual(runningNames(), ['by-hand', 'extra'], 'the running table is the file');
  t.deepEqual(server.broadcasts.table(), (await loadConfig(file)).broadcasts);
});

test.serial('an edit whose start must first read the asset for its loop plan answers at once with status preparing; the broadcast plays when the plan is read', async (t) => {
  const { server, ctl } = await startConfigFileServer(t, 'twinframe-ctl-bprep-');
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  t.false(hasLoopPlan(await server.catalog.resolve('/sample.ts')), 'the sample was not read for a plan in this process yet');
  const to = `127.0.0.1:${receiver.rtpPort}`;
  const r = await ctl('broadcast', 'add', 'loopy', '--asset', '/sample.ts', '--to', to, '--loop');
  t.is(r.code, 0, r.stderr);
  const added = JSON.parse(r.stdout) as BroadcastView;
  t.like(added, { name: 'loopy', state: 'running', status: 'preparing', sessionId: null });
  await until(() => server.broadcasts.list()[0].status === 'playing', 'the broadcast playing once its plan is read', 15_000);
  await receiver.waitForCount(10);
  // Read once per file: the next start of it does not prepare again, and its reply has the outcome.
  t.is((await ctl('broadcast', 'stop', 'loopy')).code, 0);
  const started = JSON.parse((await ctl('broadcast', 'start', 'loopy')).stdout) as BroadcastView;
  t.is(started.status, 'playing');
});
