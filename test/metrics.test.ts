// The metrics listener of a whole server (metrics.listen on port 0): a scrape
// during an RTSP session shows the session, the datagrams and bits its sending
// path counted in shared memory, the batches' pacing lateness and the RTSP
// requests; after an injected crash of the sending path it shows the failover
// with its cause and latencies, and the twin sending; a slow disk under the
// sender shows a handover with its cause. /healthz is 200 while a
// path can send and 503 when none can (autoFailover off: no path is Primary
// until an operator says so, and none is after the lone Primary crashes).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { FailoverEvent } from '../src/engine/engine.js';
import { LATENESS_BUCKETS_MS, PATH_I32 } from '../src/shared/layout.js';
import { loadSample, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { startMediaServer } from './helpers/media-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

type Labels = Record<string, string>;

/** Every datagram of the sample: 12 bytes of RTP header and 7 TS packets (until its last one). */
const DATAGRAM_BITS = (12 + 7 * 188) * 8;

async function eventually(done: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The exposition text as (name, labels, value) samples. */
function parseExposition(text: string): Array<{ name: string; labels: Labels; value: number }> {
  const out: Array<{ name: string; labels: Labels; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Labels = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample `name` whose labels include `labels` (summed over the rest); undefined when there is none. */
function value(samples: ReturnType<typeof parseExposition>, name: string, labels: Labels = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}

async function scrapeText(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

async function scrape(port: number): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await scrapeText(port));
}

async function healthz(port: number): Promise<{ status: number; body: { healthy: boolean; pairs: Array<{ pair: number; sending: string | null }> } }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: res.status, body: await res.json() as { healthy: boolean; pairs: Array<{ pair: number; sending: string | null }> } };
}

test('the lateness buckets fit the per-path words the layout gives them', (t) => {
  const stride: number = PATH_I32.STRIDE;
  t.is(stride, PATH_I32.LATENESS_BUCKET + LATENESS_BUCKETS_MS.length + 1);
});

test.serial('a scrape during a session shows it, its datagrams and RTSP requests; after a crash of the sender, the failover with its cause', async (t) => {
  t.timeout(60_000);
  const { server } = await startMediaServer(t, ['sample.ts'], { admin: { faultInjection: true }, metrics: { listen: '127.0.0.1:0' } });
  const port = server.metrics!.port;
  t.not(port, 0, 'port 0 became a real port, returned by startServer');
  t.is((await healthz(port)).status, 200);

  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const client = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: 20_000 });
  t.teardown(() => client.close());
  t.is((await client.setup('/sample.ts/track1', receiver.transportHeader())).status, 200);
  t.is((await client.play('/sample.ts/', 'npt=0-')).status, 200);
  t.is((await client.request('FROBNICATE', '/sample.ts')).status, 501);
  await receiver.waitForCount(100, 10_000);

  const text = await scrapeText(port);
  const during = parseExposition(text);
  // The Grafana dashboard shows only metrics the server has.
  const dashboard = readFileSync(path.join(ROOT, 'deploy/grafana-dashboard.json'), 'utf8');
  const shown = new Set([...dashboard.matchAll(/\b((?:twinframe|process)_[a-z_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, '')));
  t.deepEqual([...shown].filter((name) => !text.includes(`# TYPE ${name} `)), [], 'on the dashboard but not served');
  t.is(value(during, 'twinframe_sessions', { transport: 'RTP/AVP', state: 'playing' }), 1, 'the session, by transport');
  const sender = server.engine.status().active!;
  const datagrams = value(during, 'twinframe_path_sent_datagrams_total')!;
  t.true(datagrams >= 100, `datagrams counted: ${datagrams}`);
  t.true(value(during, 'twinframe_path_sent_datagrams_total', { pair: '0', path: sender })! > 0, `path ${sender} sends`);
  // Read a moment after the datagrams (the paths send on meanwhile): whole RTP packets, at least as many.
  const bits = value(during, 'twinframe_path_sent_bits_total')!;
  t.true(bits % DATAGRAM_BITS === 0 && bits / DATAGRAM_BITS >= datagrams && bits / DATAGRAM_BITS < datagrams + 100, `bits: the RTP packets sent (${bits})`);
  const batches = value(during, 'twinframe_pacing_lateness_seconds_count')!;
  t.true(batches > 0 && batches <= datagrams, `send batches counted for lateness: ${batches}`);
  t.is(value(during, 'twinframe_pacing_lateness_seconds_bucket', { le: '+Inf' }), batches);
  t.is(value(during, 'twinframe_rtsp_requests_total', { method: 'SETUP', status: '200' }), 1);
  t.is(value(during, 'twinframe_rtsp_requests_total', { method: 'PLAY', status: '200' }), 1);
  t.is(value(during, 'twinframe_rtsp_requests_total', { method: 'other', status: '501' }), 1);
  t.is(value(during, 'twinframe_path_sending', { path: sender }), 1);
  t.is(value(during, 'twinframe_path_state', { path: sender, state: 'Primary' }), 1);
  t.is(value(during, 'twinframe_assets'), 1);
  t.is(value(during, 'twinframe_asset_index_seconds_count', { result: 'ok' }), 1, 'the asset was indexed once, at its first DESCRIBE or SETUP');
  t.is(value(during, 'twinframe_failovers_total'), undefined, 'no failover yet');

  // Crash the path that sends now (a handover may have moved sending since the scrape).
  const failovers: FailoverEvent[] = [];
  server.engine.on('failover', (e) => failovers.push(e));
  const crashed = server.engine.status().active!;
  server.engine.injectFault(crashed, 'crash');
  await until(() => failovers.some((e) => e.pathName === crashed), `the failover of path ${crashed}`, 10_000);
  const event = failovers.find((e) => e.pathName === crashed)!;
  t.is(event.cause, 'exit');
  const twin = crashed === 'a' ? 'b' : 'a';
  const twinBefore = value(await scrape(port), 'twinframe_path_sent_datagrams_total', { path: twin })!;
  await eventually(async () => value(await scrape(port), 'twinframe_path_sent_datagrams_total', { path: twin })! > twinBefore + 20, `path ${twin} sending`, 10_000);

  const after = await scrape(port);
  t.is(value(after, 'twinframe_failovers_total', { pair: '0', path: crashed, cause: 'exit' }), 1, 'the failover, with its cause');
  t.is(value(after, 'twinframe_failover_detection_seconds_count', { cause: 'exit' }), 1);
  t.is(value(after, 'twinframe_failover_switch_seconds_count', { cause: 'exit' }), event.switchLatencyMs === undefined ? undefined : 1);
  t.true(value(after, 'twinframe_path_sent_datagrams_total')! > datagrams, 'the datagrams go on');
  t.is(value(after, 'twinframe_sessions', { transport: 'RTP/AVP', state: 'playing' }), 1, 'the session goes on');
  t.true(value(after, 'twinframe_switches_total', { pair: '0' })! >= 2);
  t.is((await healthz(port)).status, 200, 'the twin sends: healthy');

  // A sender whose disk is slower than its read-ahead lasts hands over to its twin: cause read-wait.
  // A handover (a late sender, frequent on a loaded machine) may move sending just before the
  // slow disk lands: then it slows the standby, and nothing is handed over; slow the sender again.
  const readWaits = async (): Promise<number> => value(await scrape(port), 'twinframe_handovers_total', { pair: '0', cause: 'read-wait' }) ?? 0;
  for (let attempt = 1; ; attempt++) {
    await server.engine.waitUntilProtected(10_000);
    server.engine.injectFault(server.engine.status().active!, 'slow-disk', 0, 1000);
    try {
      await eventually(async () => (await readWaits()) >= 1, 'a read-wait handover', 4000);
      break;
    } catch (err) {
      if (attempt === 3) throw err;
      t.log('the slow disk met the standby (sending had moved): again');
    }
  }
  t.is((await client.teardown('/sample.ts')).status, 200);
});

test.serial('/healthz is 503 while no path can send, 200 once one can, 503 again when the lone sender crashes', async (t) => {
  t.timeout(60_000);
  const { server } = await startMediaServer(t, ['sample.ts'], {
    admin: { faultInjection: true }, failover: { autoFailover: false }, metrics: { listen: '127.0.0.1:0' },
  });
  const port = server.metrics!.port;
  const idle = await healthz(port);
  t.is(idle.status, 503, 'both paths Undefined: nobody sends');
  t.deepEqual(idle.body, { healthy: false, pairs: [{ pair: 0, sending: null }] });

  await server.engine.command({ kind: 'set_config_type', path: 'a', type: 'primary' });
  await server.engine.command({ kind: 'start_streaming', path: 'a' });
  const up = await healthz(port);
  t.is(up.status, 200);
  t.deepEqual(up.body, { healthy: true, pairs: [{ pair: 0, sending: 'a' }] });
  t.is(value(await scrape(port), 'twinframe_path_state', { path: 'a', state: 'Primary_No_Secondary' }), 1);

  server.engine.injectFault('a', 'crash');
  await eventually(async () => (await healthz(port)).status === 503, '/healthz 503 after the crash', 10_000);
  const down = await scrape(port);
  t.is(value(down, 'twinframe_failovers_total', { path: 'a', cause: 'exit' }), 1);
  t.is(value(down, 'twinframe_path_sending'), 0, 'nobody sends');
  const head = await fetch(`http://127.0.0.1:${port}/healthz`, { method: 'HEAD' });
  t.is(head.status, 503);
  t.is((await fetch(`http://127.0.0.1:${port}/nothing`)).status, 404);
});

leakCheck(test);
