// What a viewer of a broadcast (rtsp://host/broadcast/<name>) is answered when
// the broadcast sends nothing: PLAY of one that will start (scheduled) is 503
// with Retry-After and keeps the viewer's handle; of one stopped, ended or
// failed is 503 and frees it; of one removed is 454 and frees it. The broadcasts
// are the RTSP server's BroadcastLookup seam (as in test/multicast-rtsp), so no
// datagram is sent; the RTSP server and its engine backend are real.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { BroadcastStream } from '../src/broadcast/lookup.js';
import { EngineRtspBackend } from '../src/rtsp-backend.js';
import { RtspServer } from '../src/rtsp/server.js';
import type { TwinframeServer } from '../src/server.js';
import { startFileServer } from './helpers/media-server.js';
import { RtspClient } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../assets');

const GROUP: Omit<BroadcastStream, 'name' | 'status'> = { assetName: '/sample.ts', destination: { address: '239.255.16.9', port: 5004 }, ttl: 1, transport: 'rtp', sessionId: undefined };
const broadcasts = new Map<string, BroadcastStream>();

let server: TwinframeServer;
let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-bviewers-'));
  server = await startFileServer(ASSETS, tmp);
});
test.after.always(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface LogLine { readonly msg: string; readonly status?: number; readonly suppressed?: number }

/** An RTSP server over the lookup above, its log lines kept. */
async function rtspServer(t: import('ava').ExecutionContext, options: Partial<ConstructorParameters<typeof RtspServer>[0]> = {}): Promise<{ rtsp: RtspServer; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const rtsp = new RtspServer({ backend: new EngineRtspBackend(server.engine, server.catalog), port: 0, logger, broadcasts: { find: (name) => broadcasts.get(name) }, ...options });
  await rtsp.listen();
  t.teardown(() => rtsp.close());
  return { rtsp, lines };
}

/** A client joined to broadcast `name` (multicast SETUP answered 200). */
async function joined(t: import('ava').ExecutionContext, rtsp: RtspServer, name: string): Promise<RtspClient> {
  const client = await RtspClient.connect({ port: rtsp.port });
  t.teardown(() => client.close());
  t.is((await client.setup(`/broadcast/${name}/track1`, 'RTP/AVP;multicast')).status, 200);
  return client;
}

test.serial('PLAY of a broadcast that sends nothing: 503 (Retry-After when its start or next try is known), the handle kept only while it will start; 454 only when it was removed', async (t) => {
  const { rtsp } = await rtspServer(t);
  const now = Date.now();
  broadcasts.set('later', { ...GROUP, name: 'later', status: 'scheduled', nextAtMs: now + 30_000 });
  broadcasts.set('off', { ...GROUP, name: 'off', status: 'stopped' });
  broadcasts.set('broken', { ...GROUP, name: 'broken', status: 'failed', nextAtMs: now + 4_000 });
  broadcasts.set('gone', { ...GROUP, name: 'gone', status: 'playing', sessionId: 'abc' });
  broadcasts.set('on', { ...GROUP, name: 'on', status: 'playing', sessionId: 'def' });
  t.teardown(() => broadcasts.clear());

  const later = await joined(t, rtsp, 'later');
  const play = await later.play('/broadcast/later');
  t.is(play.status, 503);
  const retry = Number(play.headers.get('retry-after'));
  t.true(retry >= 25 && retry <= 30, `Retry-After ${retry}: its start`);
  t.regex(play.body.toString(), /not sending now \(scheduled\)/);
  t.is((await later.request('GET_PARAMETER', '/broadcast/later')).status, 200, 'a scheduled broadcast keeps the handle');

  const off = await joined(t, rtsp, 'off');
  const offPlay = await off.play('/broadcast/off');
  t.is(offPlay.status, 503, 'stopped: Service Unavailable, not Session Not Found');
  t.is(offPlay.headers.get('retry-after'), undefined, 'a stopped broadcast has no time to come back');
  t.regex(offPlay.body.toString(), /stopped.*SETUP again/);
  t.is((await off.request('GET_PARAMETER', '/broadcast/off')).status, 454, 'the handle is freed');

  const broken = await joined(t, rtsp, 'broken');
  const brokenPlay = await broken.play('/broadcast/broken');
  t.is(brokenPlay.status, 503);
  const next = Number(brokenPlay.headers.get('retry-after'));
  t.true(next >= 1 && next <= 4, `Retry-After ${next}: its next try`);

  const gone = await joined(t, rtsp, 'gone');
  broadcasts.delete('gone');
  t.is((await gone.play('/broadcast/gone')).status, 454, 'removed: Session Not Found');

  const on = await joined(t, rtsp, 'on');
  t.is((await on.play('/broadcast/on')).status, 200);
  t.deepEqual(rtsp.broadcastViewers().map((v) => v.broadcast).sort(), ['later', 'on'], 'only the scheduled and the playing broadcast keep their viewer');
});

test.serial('refusals of broadcast viewers are logged within the per-client bound of every RTSP refusal, the rest summed up in one line', async (t) => {
  const { rtsp, lines } = await rtspServer(t, { refusalLogLimit: { perClient: 3, total: 100 } });
  broadcasts.set('evening', { ...GROUP, name: 'evening', status: 'scheduled' });
  broadcasts.set('push', { ...GROUP, name: 'push', destination: { address: '127.0.0.1', port: 5006 }, status: 'playing', sessionId: 'abc' });
  t.teardown(() => broadcasts.clear());
  const client = await RtspClient.connect({ port: rtsp.port });
  t.teardown(() => client.close());
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    t.is((await client.describe('/broadcast/push')).status, 405);
    t.is((await client.setup('/broadcast/evening/track1', 'RTP/AVP;unicast;client_port=5000-5001')).status, 461);
  }
  // 3 lines per status and 1 s window (one window, unless a loaded machine took longer).
  const windows = Math.ceil((Date.now() - started) / 1000);
  const logged = (status: number): number => lines.filter((l) => l.status === status && /^broadcast .*refused$/.test(l.msg)).length;
  await rtsp.close(); // ends the window: what was held back is summed up
  for (const status of [405, 461]) {
    const suppressed = lines.filter((l) => l.status === status && l.suppressed !== undefined).reduce((sum, l) => sum + l.suppressed!, 0);
    t.true(logged(status) >= 3 && logged(status) <= 3 * windows, `${logged(status)} lines of ${status} in ${windows} window(s), not twenty`);
    t.is(logged(status) + suppressed, 20, `every ${status} refusal logged or counted in a summary line`);
  }
});
