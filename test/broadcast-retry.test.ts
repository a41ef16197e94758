// A running broadcast that fails is tried again with a bounded back-off
// (src/broadcast/schedule.ts retryDelayMs): each failure logged once, its
// status showing the next try; once the cause is gone it plays without the
// operator. A whole server on 127.0.0.1 (a unicast push), its limit at first
// too small for the broadcast.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { BroadcastChange } from '../src/broadcast/manager.js';
import { RETRY_FIRST_MS, RETRY_MAX_MS, retryDelayMs } from '../src/broadcast/schedule.js';
import { parseConfig } from '../src/config/schema.js';
import { startServer } from '../src/server.js';
import { SAMPLE_ASSET, until } from './helpers/engine-fixture.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

test('the back-off doubles from 1 s and stays at 60 s', (t) => {
  t.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 100, 1e6].map(retryDelayMs), [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
  t.is(RETRY_FIRST_MS, 1000);
  t.is(RETRY_MAX_MS, 60_000);
});

interface LogLine { readonly msg: string; readonly broadcast?: string; readonly failures?: number; readonly retryInMs?: number; readonly level: number }

test.serial('a failed running broadcast is tried again after 1 s, then 2 s, logged once per try, its next try shown; it plays once the cause is gone', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-bretry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: path.dirname(SAMPLE_ASSET) }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') }, metrics: { listen: '' },
    limits: { maxStreams: 10, mpegBandwidthKbps: 100, serverBandwidthKbps: 100 }, // the sample needs ~3000
    broadcasts: [{ name: 'news', asset: '/sample.ts', to: `127.0.0.1:${receiver.rtpPort}`, loop: true }],
  });
  const server = await startServer({ config, configPath: undefined, logger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.close());
  const changes: BroadcastChange[] = [];
  server.broadcasts.on('change', (c) => changes.push(c));

  await until(() => server.broadcasts.list()[0]?.status === 'failed', 'the first failure', 10_000);
  const first = server.broadcasts.list()[0];
  t.regex(first.error ?? '', /limit/i);
  t.truthy(first.nextRetry, 'its next try is shown');
  const inMs = Date.parse(first.nextRetry!) - Date.now();
  t.true(inMs > 0 && inMs <= RETRY_FIRST_MS, `next try in ${inMs} ms`);
  t.is(server.broadcasts.find('news')!.nextAtMs, Date.parse(first.nextRetry!), 'the RTSP side sees the same time (Retry-After)');

  // The second try fails too, and waits twice as long.
  await until(() => lines.some((l) => l.broadcast === 'news' && l.failures === 2), 'the second failure', 10_000);
  const second = server.broadcasts.list()[0];
  t.is(second.status, 'failed');
  const wait = Date.parse(second.nextRetry!) - Date.now();
  t.true(wait > RETRY_FIRST_MS - 200 && wait <= 2 * RETRY_FIRST_MS, `next try in ${wait} ms`);

  server.engine.setLimits({ maxStreams: 10, mpegBandwidthKbps: 100_000, serverBandwidthKbps: 100_000 });
  await until(() => server.broadcasts.list()[0].status === 'playing', 'the broadcast playing once there is room', 10_000);
  t.is(server.broadcasts.list()[0].nextRetry, null);
  t.is(server.broadcasts.list()[0].error, null);
  await receiver.waitForCount(10);

  // One log line per failure, each naming its step; 'watch' sees each failure with its next try.
  const failures = lines.filter((l) => l.broadcast === 'news' && l.failures !== undefined);
  t.deepEqual(failures.map((l) => [l.failures, l.retryInMs]), [[1, 1000], [2, 2000]]);
  const failedChanges = changes.filter((c) => c.status === 'failed');
  t.true(failedChanges.length >= 1 && failedChanges.every((c) => /next try at/.test(c.detail ?? '')), JSON.stringify(failedChanges));
});
