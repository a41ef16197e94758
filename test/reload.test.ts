// Live reload of the configuration file: `twinframectl reload` changes a limit
// and the users while a session streams, and the viewer loses nothing; an
// invalid file is refused field by field and changes nothing; a field that
// needs a restart is reported and keeps its running value; SIGHUP to the real
// `twinframe` process reloads too.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LimitsSettings, ReloadResult } from '../src/admin/backend.js';
import type { TwinframeConfigInput } from '../src/config/schema.js';
import { loadConfig } from '../src/config/store.js';
import type { PlayResult } from '../src/engine/engine.js';
import { silentLogger } from '../src/log.js';
import { digestHa1, hashBasicSecret } from '../src/rtsp/auth.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { SAMPLE_ASSET, checkRtpStream, loadSample, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { requestWithLogin } from './helpers/rtsp-digest.js';
import { TWINFRAMECTL, runCapture, runToString } from './helpers/run.js';
import { PACING_BOUND_MS, largestGapMs, minDatagrams } from './helpers/stream-pacing.js';
import { freeTcpPort } from './helpers/free-port.js';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';

const BOB = { user: 'bob', password: 'b0b-pa55' };

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

interface Setup {
  readonly dir: string;
  readonly file: string;
  /** The file's contents besides media, cache and admin socket. */
  readonly write: (extra: Record<string, unknown>) => Promise<void>;
}

async function setUp(t: ExecutionContext, extra: TwinframeConfigInput): Promise<Setup> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-reload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'media'));
  await copyFile(SAMPLE_ASSET, path.join(dir, 'media', 'sample.ts'));
  const file = path.join(dir, 'config.json');
  const write = (more: Record<string, unknown>): Promise<void> => writeFile(file, JSON.stringify({
    media: { mounts: [{ prefix: '', dir: 'media' }], cacheDir: 'cache' },
    admin: { socketPath: 'admin.sock' },
    metrics: { listen: '' },
    ...more,
  }, null, 2));
  await write(extra);
  return { dir, file, write };
}

async function start(t: ExecutionContext, setup: Setup): Promise<TwinframeServer> {
  const server = await startServer({
    config: await loadConfig(setup.file), configPath: setup.file, loadConfig: () => loadConfig(setup.file), logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 },
  });
  t.teardown(() => server.close());
  return server;
}

function ctl(setup: Setup, ...args: string[]): ReturnType<typeof runCapture> {
  return runCapture([process.execPath, TWINFRAMECTL, '--socket', path.join(setup.dir, 'admin.sock'), '--json', ...args], { limitMs: 20_000 });
}

async function bobAsUser(): Promise<Record<string, unknown>> {
  return {
    name: BOB.user, realm: 'twinframe', md5: digestHa1('MD5', BOB.user, 'twinframe', BOB.password),
    sha256: digestHa1('SHA-256', BOB.user, 'twinframe', BOB.password), basic: await hashBasicSecret(BOB.password),
  };
}

test.serial('twinframectl reload changes a limit and the users while a session streams, and the viewer loses nothing', async (t) => {
  t.timeout(60_000);
  const setup = await setUp(t, { limits: { maxStreams: 10 } });
  const server = await start(t, setup);
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const viewer = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: 20_000 });
  t.teardown(() => viewer.close());
  t.is((await viewer.setup('/sample.ts/track1', receiver.transportHeader())).status, 200);
  const played = await viewer.play('/sample.ts/', 'npt=0-');
  t.is(played.status, 200);
  const playedAt = Date.now();
  const rtpInfo = parseRtpInfo(played.headers.get('rtp-info')!)[0];
  const play: PlayResult = { seq: rtpInfo.seq!, rtptime: rtpInfo.rtptime!, startPacket: 0, startTimeMs: 0 };
  await sleep(500);

  await setup.write({ limits: { maxStreams: 1 }, auth: { enabled: true, users: [await bobAsUser()] } });
  const reloaded = await ctl(setup, 'reload');
  t.is(reloaded.code, 0, reloaded.stderr);
  const result = JSON.parse(reloaded.stdout) as ReloadResult;
  t.deepEqual(result.applied, ['auth.enabled', 'auth.users', 'limits.maxStreams']);
  t.deepEqual(result.restartNeeded, []);
  t.false(reloaded.stdout.includes(digestHa1('MD5', BOB.user, 'twinframe', BOB.password)), 'the reply names fields, not their secrets');
  t.is(server.engine.getLimits().maxStreams, 1);
  t.is(server.config.limits.maxStreams, 1);
  t.is((JSON.parse((await ctl(setup, 'limits')).stdout) as LimitsSettings).maxStreams, 1);

  // A new viewer must log in now, as bob, and is then held to the new limit.
  const second = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => second.close());
  t.is((await second.request('DESCRIBE', '/sample.ts')).status, 401);
  t.is((await requestWithLogin(second, 'DESCRIBE', '/sample.ts', BOB)).status, 200);
  const other = await UdpReceiver.open();
  t.teardown(() => other.close());
  t.is((await requestWithLogin(second, 'SETUP', '/sample.ts/track1', BOB, { headers: { Transport: other.transportHeader() } })).status, 453, 'over the new limit');

  await sleep(500);
  // The first viewer logs in too now that the server asks for it.
  t.is((await requestWithLogin(viewer, 'PAUSE', '/sample.ts', BOB)).status, 200);
  const playedMs = Date.now() - playedAt;
  await receiver.waitForQuiet(150, 5000);
  const info = server.engine.getSession(viewer.session!)!;
  const check = checkRtpStream(receiver.packets, info, play, sample);
  t.true(receiver.datagrams.length >= minDatagrams(sample, playedMs), `received ${receiver.datagrams.length}`);
  t.deepEqual({ received: receiver.datagrams.length, lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched },
    { received: info.sent, lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch ?? '');
  t.true(largestGapMs(receiver.datagrams) < PACING_BOUND_MS, `largest gap ${largestGapMs(receiver.datagrams)} ms`);
  t.is((await requestWithLogin(viewer, 'TEARDOWN', '/sample.ts', BOB)).status, 200);
});

test.serial('an invalid file is refused field by field and changes nothing; a field that needs a restart is reported and keeps its running value', async (t) => {
  t.timeout(60_000);
  const setup = await setUp(t, { limits: { maxStreams: 10 } });
  const server = await start(t, setup);
  const limitsBefore = server.engine.getLimits();

  await setup.write({ limits: { maxStreams: 0 }, rtsp: { sessionTimeoutSec: 'long' }, auth: { enabled: true, users: [{ name: 'no way' }] } });
  const refused = await ctl(setup, 'reload');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /TF_CONFIG_INVALID/);
  for (const field of ['limits.maxStreams', 'rtsp.sessionTimeoutSec', 'auth.users[0].name', 'auth.users[0].md5']) t.true(refused.stderr.includes(field), `names ${field}: ${refused.stderr}`);
  t.deepEqual(server.engine.getLimits(), limitsBefore);
  t.false(server.config.auth.enabled);
  const viewer = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => viewer.close());
  t.is((await viewer.request('DESCRIBE', '/sample.ts')).status, 200, 'no login asked: auth stays off');

  await setup.write({ limits: { maxStreams: 7 }, rtsp: { port: 9554, requestTimeoutSec: 3 }, paths: { pairs: 3 }, metrics: { listen: '127.0.0.1:0' } });
  const partly = await ctl(setup, 'reload');
  t.is(partly.code, 0, partly.stderr);
  const result = JSON.parse(partly.stdout) as ReloadResult;
  t.deepEqual(result.applied, ['limits.maxStreams', 'rtsp.requestTimeoutSec']);
  t.deepEqual(result.restartNeeded.map((r) => [r.path, r.running, r.file]),
    [['metrics.listen', '""', '"127.0.0.1:0"'], ['paths.pairs', String(server.engine.pairCount), '3'], ['rtsp.port', '8554', '9554']]);
  t.is(server.metrics, undefined, 'no metrics listener was started by the reload');
  t.is(server.engine.getLimits().maxStreams, 7);
  t.is(server.engine.pairCount, 1);
  t.is(server.config.rtsp.port, 8554, 'the running value stays');
  t.is(server.config.rtsp.requestTimeoutSec, 3);
  t.is((await viewer.request('OPTIONS', '*')).status, 200, 'the open connection lives on');

  const text = await runCapture([process.execPath, TWINFRAMECTL, '--socket', path.join(setup.dir, 'admin.sock'), 'reload']);
  t.is(text.code, 0);
  t.regex(text.stdout, /applied: nothing changed/);
  t.regex(text.stdout, /needs a restart: rtsp\.port \(running 8554, file 9554\)/);
});

test.serial('the RTSP connection cap comes from the file and a reload raises it for the next connections', async (t) => {
  t.timeout(30_000);
  const setup = await setUp(t, { rtsp: { maxConnections: 1 } });
  const server = await start(t, setup);
  const first = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => first.close());
  t.is((await first.request('OPTIONS', '*')).status, 200);
  const refused = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => refused.close());
  t.is((await refused.nextResponse()).status, 503, 'over rtsp.maxConnections');
  await setup.write({ rtsp: { maxConnections: 2 } });
  t.deepEqual((await server.reload()).applied, ['rtsp.maxConnections']);
  const second = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => second.close());
  t.is((await second.request('OPTIONS', '*')).status, 200);
  t.is((await first.request('OPTIONS', '*')).status, 200, 'the first connection lives on');
});


test.serial('SIGHUP makes the twinframe process reload its file', async (t) => {
  t.timeout(60_000);
  const setup = await setUp(t, { limits: { maxStreams: 10 }, log: { level: 'warn' } });
  const twinframe = fileURLToPath(new URL('../src/cli/twinframe.js', import.meta.url));
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, twinframe, '--config', setup.file, '--port', String(await freeTcpPort())], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
  child.stderr.resume();
  await until(() => stdout.includes('serving'), 'the server to start', 30_000);

  await setup.write({ limits: { maxStreams: 3 }, log: { level: 'warn' } });
  child.kill('SIGHUP');
  const limits = async (): Promise<number> => (JSON.parse(await runToString([process.execPath, TWINFRAMECTL, '--socket', path.join(setup.dir, 'admin.sock'), '--json', 'limits'])) as LimitsSettings).maxStreams;
  const deadline = Date.now() + 10_000;
  let maxStreams = await limits();
  while (maxStreams !== 3 && Date.now() < deadline) {
    await sleep(100);
    maxStreams = await limits();
  }
  t.is(maxStreams, 3);
  t.is(child.exitCode, null, 'still running');
});

leakCheck(test);
