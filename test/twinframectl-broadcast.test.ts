// `twinframectl broadcast add|list|remove|start|stop` against a real server
// whose configuration file holds the table: each change is written there
// (atomically, by the admin socket's backend) and applied live; the sessions,
// status and watch commands show the broadcast apart from viewers; a bad
// request is refused with a clear error and changes nothing.

import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { loadConfig } from '../src/config/store.js';
import type { BroadcastView, SessionView, StatusResult, WatchEvent } from '../src/admin/backend.js';
import { AdminClient } from '../src/admin/client.js';
import { sleep, until } from './helpers/engine-fixture.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { startConfigFileServer } from './helpers/config-file-server.js';
import { leakCheck } from './helpers/leak-check.js';
import { TWINFRAMECTL, runCapture } from './helpers/run.js';

leakCheck(test);

test.serial('broadcast add, list, stop, start, remove: persisted in the configuration file, applied live, shown apart from viewers', async (t) => {
  const { server, file, socket, ctl } = await startConfigFileServer(t, 'twinframe-ctl-broadcast-');
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await ctl(...args);
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const to = `127.0.0.1:${receiver.rtpPort}`;
  const watcher = await AdminClient.connect(socket);
  t.teardown(() => watcher.close());
  const events: WatchEvent[] = [];
  const watching = (async () => { for await (const e of watcher.watch()) events.push(e); })();
  await sleep(200); // the watch request reaches the server first

  const added = await json<BroadcastView>('broadcast', 'add', 'news', '--asset', '/sample.ts', '--to', to, '--loop');
  t.like(added, { name: 'news', asset: '/sample.ts', to, loop: true, transport: 'rtp', state: 'running' });
  t.truthy(Date.parse(added.at), 'the time it was added is its schedule\'s start');
  t.like((await loadConfig(file)).broadcasts[0], { name: 'news', to, loop: true, state: 'running', at: added.at });
  await receiver.waitForCount(10);

  await until(() => events.some((e) => e.type === 'broadcast' && e.name === 'news' && e.change === 'playing')
    && events.some((e) => e.type === 'session' && e.change === 'opened' && e.broadcast === 'news'), 'watch events of the broadcast');
  watcher.close();
  await watching;

  const list = await json<BroadcastView[]>('broadcast', 'list');
  t.like(list[0], { name: 'news', status: 'playing' });
  const sessions = await json<SessionView[]>('sessions');
  t.like(sessions[0], { kind: 'broadcast', broadcast: 'news', asset: '/sample.ts', client: to, state: 'playing' });
  const status = await json<StatusResult>('status');
  t.deepEqual(status.broadcasts, { table: 1, sessions: 1 });
  const plain = await runCapture([process.execPath, TWINFRAMECTL, '--socket', socket, 'broadcast', 'list'], { limitMs: 20_000 });
  t.regex(plain.stdout, /^NAME\s+ASSET\s+TO\s+AT/m);
  t.regex(plain.stdout, /news\s+\/sample\.ts\s+127\.0\.0\.1:\d+\s+\S+\s+yes\s+rtp\s+running\s+playing/);

  // Refusals: each says what is wrong, and the table stays as it was.
  const refusals: Array<[string[], string, RegExp]> = [
    [['add', 'news', '--asset', '/sample.ts', '--to', to], 'TF_BROADCAST_EXISTS', /exists/],
    [['add', 'b', '--asset', '/nothing.ts', '--to', to], 'TF_ASSET_NOT_FOUND', /nothing\.ts|not found/],
    [['add', 'b', '--asset', '/sample.ts', '--to', '127.0.0.1'], 'TF_ADMIN_BAD_REQUEST', /to: must be an IPv4 address:port/],
    [['add', 'b', '--asset', '/sample.ts', '--to', '127.0.0.1:5005'], 'TF_ADMIN_BAD_REQUEST', /port must be even/],
    [['add', 'b', '--asset', '/sample.ts', '--to', to, '--at', 'tomorrow'], 'TF_ADMIN_BAD_REQUEST', /at: must be an ISO 8601 time/],
    [['add', 'b', '--asset', '/sample.ts', '--to', '192.0.2.7:5004'], 'TF_BROADCAST_DESTINATION', /allowForeignDestination/],
    [['add', 'b', '--asset', '/sample.ts', '--to', '255.255.255.255:5004'], 'TF_BROADCAST_DESTINATION', /not a unicast or multicast address/],
    [['start', 'nobody'], 'TF_BROADCAST_NOT_FOUND', /no broadcast 'nobody'/],
  ];
  for (const [args, code, message] of refusals) {
    const r = await ctl('broadcast', ...args);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    const error = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
    t.is(error.code, code, `${args.join(' ')}: ${error.message}`);
    t.regex(error.message, message);
  }
  t.deepEqual((await loadConfig(file)).broadcasts.map((b) => b.name), ['news']);

  // Limits: a second broadcast over the MPEG bandwidth limit is refused at add.
  const limits = await json<{ mpegBandwidthKbps: number }>('limits', '--mpeg-bandwidth-kbps', String(Math.ceil(sessions[0].bitrateKbps * 1.5)), '--server-bandwidth-kbps', String(sessions[0].bitrateKbps * 3));
  t.truthy(limits);
  const over = await ctl('broadcast', 'add', 'second', '--asset', '/sample.ts', '--to', to);
  t.is((JSON.parse(over.stdout) as { error: { code: string } }).error.code, 'TF_BANDWIDTH_LIMIT');

  const stopped = await json<BroadcastView>('broadcast', 'stop', 'news');
  t.like(stopped, { state: 'stopped', status: 'stopped', sessionId: null });
  t.is(server.engine.listSessions().length, 0);
  t.is((await loadConfig(file)).broadcasts[0].state, 'stopped');
  await receiver.waitForQuiet(150, 5000);

  const started = await json<BroadcastView>('broadcast', 'start', 'news');
  t.is(started.state, 'running');
  await until(() => server.engine.listSessions().length === 1, 'the broadcast playing again');
  const count = receiver.datagrams.length;
  await receiver.waitForCount(count + 10);

  // The stream-count limit: a stopped broadcast added, then refused at start while 'news' takes the only stream.
  await json('limits', '--max-streams', '1');
  t.like(await json<BroadcastView>('broadcast', 'add', 'spare', '--asset', '/sample.ts', '--to', to, '--stopped'), { state: 'stopped', status: 'stopped' });
  const full = await ctl('broadcast', 'start', 'spare');
  t.is(full.code, 1);
  t.is((JSON.parse(full.stdout) as { error: { code: string } }).error.code, 'TF_SESSION_LIMIT');
  t.is((await loadConfig(file)).broadcasts.find((b) => b.name === 'spare')!.state, 'stopped', 'a refused start changes nothing');
  await json('broadcast', 'remove', 'spare');

  t.deepEqual(await json('broadcast', 'remove', 'news'), { name: 'news', removed: true });
  t.deepEqual((await loadConfig(file)).broadcasts, []);
  t.is(server.engine.listSessions().length, 0);

  // A broadcast written into the file by hand runs after a reload.
  const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  raw.broadcasts = [{ name: 'by-hand', asset: '/sample.ts', to, loop: true }];
  await writeFile(file, JSON.stringify(raw));
  const reloaded = await json<{ applied: string[] }>('reload');
  t.deepEqual(reloaded.applied, ['broadcasts']);
  await until(() => server.engine.listSessions()[0]?.broadcast === 'by-hand', 'the broadcast from the file playing');
});
