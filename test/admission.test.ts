// Admission is reserved before the engine awaits anything, and a session that
// cannot be queued on its data paths is undone whole. Against the real RTSP
// server: a storm of concurrent SETUPs cannot pass a stream limit together.
// Against the engine: a full command queue leaves no session, admission, port
// or data-path socket behind.

import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { pino } from 'pino';
import { parseConfig } from '../src/config/schema.js';
import { Engine, type EngineAsset, type StreamLimits } from '../src/engine/engine.js';
import { isTwinframeError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { demoteThread } from '../src/shared/thread-priority.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { loadSample, sleep, type SampleAsset } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const STORM = 20;

let sample: SampleAsset;
let server: TwinframeServer;
let tmp: string;
let receiver: UdpReceiver;

test.before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-admission-'));
  sample = await loadSample();
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: path.join(ROOT, 'assets') }], cacheDir: path.join(tmp, 'cache') },
    admin: { socketPath: path.join(tmp, 'admin.sock') },
    log: { level: 'silent' },
  });
  server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0, sessionTimeoutMs: 30_000 } });
  receiver = await UdpReceiver.open();
});

test.after.always(async () => {
  await receiver?.close();
  await server?.close();
  await sample?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** `count` clients connect, then all send SETUP at once; returns the clients and their statuses. */
async function setupStorm(count: number): Promise<{ clients: RtspClient[]; statuses: number[] }> {
  const clients = await Promise.all(Array.from({ length: count }, () => RtspClient.connect({ port: server.rtsp.port })));
  const replies = await Promise.all(clients.map((c) => c.setup('/sample.ts/track1', receiver.transportHeader())));
  return { clients, statuses: replies.map((r) => r.status) };
}

function tally(statuses: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

/** TEARDOWN every client that got a session, close them all; true if every TEARDOWN got 200. */
async function finish(clients: readonly RtspClient[]): Promise<boolean> {
  let ok = true;
  for (const c of clients) {
    if (c.session !== undefined && (await c.teardown('/sample.ts')).status !== 200) ok = false;
    await c.close();
  }
  return ok;
}

/** Two sessions of the sample fit under each of these limits, a third does not. */
const TWO_FIT: Array<[string, (l: StreamLimits) => StreamLimits]> = [
  ['maxStreams 2', (l) => ({ ...l, maxStreams: 2 })],
  ['an MPEG bandwidth limit', (l) => ({ ...l, maxStreams: 100, mpegBandwidthKbps: Math.floor((2.5 * sample.asset.bitrate) / 1000) })],
];

for (const [title, limit] of TWO_FIT) {
  test.serial(`${STORM} concurrent SETUPs against ${title} get exactly 2 × 200 and ${STORM - 2} × 453, and nothing leaks`, async (t) => {
    const original = server.engine.getLimits();
    server.engine.setLimits(limit(original));
    try {
      const storm = await setupStorm(STORM);
      t.deepEqual(tally(storm.statuses), { 200: 2, 453: STORM - 2 }, JSON.stringify(storm.statuses));
      t.is(server.engine.listSessions().length, 2, 'the engine holds exactly the admitted sessions');
      t.is(server.rtsp.sessions().length, 2);
      t.true(await finish(storm.clients), 'the admitted sessions tear down');
      t.deepEqual(server.engine.listSessions(), []);

      // Nothing was left reserved by the refused ones: the limit admits two again.
      const again = await setupStorm(3);
      t.deepEqual(tally(again.statuses), { 200: 2, 453: 1 }, JSON.stringify(again.statuses));
      for (const c of again.clients.filter((c) => c.session !== undefined)) t.is((await c.play('/sample.ts')).status, 200, 'an admitted session plays');
      t.true(await finish(again.clients));
      t.deepEqual(server.engine.listSessions(), []);
    } finally {
      server.engine.setLimits(original);
    }
  });
}

test.serial('a session whose command does not fit a data path\'s queue is undone: no session, admission, port or path socket is left', async (t) => {
  // Path b hangs at once (its first command), so everything queued after stays in
  // its queue; path a takes every command. Not synchronized (autoFailover off), b
  // is not watched for heartbeats and stays hung until the engine closes.
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }));
  const engine = await Engine.start({ autoFailover: false, faultInjection: true, maxSessions: 64, logger });
  try {
    await waitFor(() => engine.status().paths.every((p) => p.threadId !== null), 5000, 'both paths to run');
    engine.injectFault('b', 'hang');
    // The spin must not hold a core at real-time priority for the whole test.
    await sleep(50);
    demoteThread(engine.status().paths[1].threadId!);

    // Paths just under PATH_MAX make each open-session command ~8 KB: the queue fills in ~30.
    const asset: EngineAsset = { ...sample.asset, assetPath: padPath(sample.asset.assetPath), indexPath: padPath(sample.asset.indexPath) };
    let refused: unknown;
    let opened = 0;
    while (refused === undefined && opened < 64) {
      await engine.openSession({ asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' })
        .then(() => { opened++; }, (err: unknown) => { refused = err; });
    }
    t.true(isTwinframeError(refused, 'TF_COMMAND_QUEUE_FULL'), `refused with ${String(refused)}`);
    t.true(opened > 10, `${opened} sessions fitted before the queue was full`);
    const open = engine.listSessions();
    t.is(open.length, opened, 'the refused session is not in the table');

    // Its admission was released: one more fits under a limit of opened + 1.
    engine.setLimits({ ...engine.getLimits(), maxStreams: opened + 1 });
    t.notThrows(() => engine.checkAdmission(asset.bitrate));

    // Its ports were released, and path a, which had opened it, closed its socket:
    // only then can the port pair be bound exclusively again.
    const record = logs.find((l) => l.msg === 'session refused: its command could not be queued on every data path');
    t.truthy(record, 'the refusal is logged');
    const rtpPort = record!.rtpPort;
    if (typeof rtpPort !== 'number') throw new Error(`no rtpPort in ${JSON.stringify(record)}`);
    t.false(open.some((s) => s.source.rtpPort === rtpPort));
    // Path a binds a session's port a few ms after it takes the command; give it time, had it kept the session.
    await sleep(500);
    await waitFor(async () => (await canBindExclusively(rtpPort)) && (await canBindExclusively(rtpPort + 1)), 3000, `port pair ${rtpPort}/${rtpPort + 1} to be free`);
    t.pass();
  } finally {
    await engine.close();
  }
});

/** The same file, named with './' segments up to ~4000 bytes (PATH_MAX is 4096). */
function padPath(file: string): string {
  const dir = path.dirname(file);
  return `${dir}/${'./'.repeat(Math.floor((4000 - file.length) / 2))}${path.basename(file)}`;
}

async function canBindExclusively(port: number): Promise<boolean> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind({ address: '127.0.0.1', port, exclusive: true }, () => resolve(true));
  });
  socket.close();
  return ok;
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

leakCheck(test);
