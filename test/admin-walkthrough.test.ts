// The patent's walk-through, driven by an operator through the real twinframectl
// against a running server: build the pair step by step, stream a session,
// break the primary, repair it, and find the session intact and every step
// reported by `watch`. Also: settings changed through the CLI survive a restart.

import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AdminClient } from '../src/admin/client.js';
import { parseConfig } from '../src/config/schema.js';
import { loadConfig } from '../src/config/store.js';
import { silentLogger } from '../src/log.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { checkRtpStream, loadSample, nowMs, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { PACING_BOUND_MS, largestGap, minDatagrams } from './helpers/stream-pacing.js';
import { TWINFRAMECTL } from './helpers/run.js';

const run = promisify(execFile);

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

/** RTSP on a port the OS picks: the tests here drive the engine and the admin socket, never a fixed port. */
const RTSP_ANY_PORT = { host: '127.0.0.1', port: 0 };

async function tempServer(dir: string, overrides: { autoFailover: boolean; faultInjection: boolean }): Promise<TwinframeServer> {
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: path.dirname(sample.asset.assetPath) }], cacheDir: path.join(dir, 'cache') },
    failover: { autoFailover: overrides.autoFailover },
    admin: { socketPath: path.join(dir, 'admin.sock'), faultInjection: overrides.faultInjection },
  });
  return startServer({ config, configPath: path.join(dir, 'config.json'), logger: silentLogger, rtsp: RTSP_ANY_PORT });
}

/**
 * Resolves once the spawned `watch` prints what the server publishes: limits are
 * set (to the values they have) until a 'config' event reaches its output.
 */
async function subscribed(socket: string, output: () => string): Promise<void> {
  const client = await AdminClient.connect(socket);
  try {
    const { maxStreams } = await client.request('limits', {});
    const deadline = Date.now() + 20_000;
    while (!output().includes('"type":"config"')) {
      if (Date.now() > deadline) throw new Error(`watch printed no event in 20 s: ${output()}`);
      await client.request('limits', { maxStreams });
      await sleep(50);
    }
  } finally {
    client.close();
  }
}

/** SIGINT (watch exits 0 on it) and wait for the exit; SIGKILL if it does not come. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function twinframectl(socket: string, ...args: string[]): Promise<{ code: number; json: unknown; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [TWINFRAMECTL, '--socket', socket, '--json', ...args], { timeout: 20_000 });
    return { code: 0, json: JSON.parse(stdout), stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, json: e.stdout ? JSON.parse(e.stdout) : undefined, stdout: e.stdout ?? '' };
  }
}

function states(json: unknown): { a: string; b: string } {
  return (json as { states: { a: string; b: string } }).states;
}

test.serial('an operator takes the pair through the patent walk-through, survives a fault and repairs it, the session intact', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-walk-'));
  const server = await tempServer(dir, { autoFailover: false, faultInjection: true });
  const socket = server.config.admin.socketPath;
  const watcher = spawn(process.execPath, [TWINFRAMECTL, '--socket', socket, '--json', 'watch'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let watched = '';
  watcher.stdout.on('data', (chunk: Buffer) => { watched += chunk.toString(); });
  const receiver = await UdpReceiver.open();
  try {
    await subscribed(socket, () => watched);
    const initial = (await twinframectl(socket, 'status')).json as { paths: { a: { namedState: string }; b: { namedState: string } } };
    t.deepEqual([initial.paths.a.namedState, initial.paths.b.namedState], ['Undefined', 'Undefined']);

    t.deepEqual(states((await twinframectl(socket, 'set-config-type', 'a', 'primary')).json), { a: 'Primary_Offline', b: 'Undefined' });
    t.deepEqual(states((await twinframectl(socket, 'start-streaming', 'a')).json), { a: 'Primary_No_Secondary', b: 'Undefined' });
    t.deepEqual(states((await twinframectl(socket, 'set-config-type', 'b', 'secondary')).json), { a: 'Primary_No_Secondary', b: 'Secondary_Offline' });
    t.deepEqual(states((await twinframectl(socket, 'failover-sync', 'b')).json), { a: 'Primary_No_Secondary', b: 'Secondary_Synchronized' });
    t.deepEqual(states((await twinframectl(socket, 'start-streaming', 'b')).json), { a: 'Primary', b: 'Secondary' });

    const refused = await twinframectl(socket, 'failover-sync', 'b');
    t.is(refused.code, 1, 'an illegal command exits 1');
    t.regex(JSON.stringify(refused.json), /TF_FAILOVER_ILLEGAL_COMMAND/);

    // A session streams.
    const engine = server.engine;
    const session = await engine.openSession({ asset: sample.asset, assetName: '/sample.ts', destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    const play = await engine.play(session.id);
    const playedAt = nowMs();
    await sleep(400);
    const sessions = (await twinframectl(socket, 'sessions')).json as Array<{ id: string; state: string }>;
    t.deepEqual(sessions.map((s) => [s.id, s.state]), [[session.id, 'playing']]);

    // Break the primary: a → Failed, b → Primary_No_Secondary, the stream goes on.
    const injectedAt = nowMs();
    const injected = await twinframectl(socket, 'inject-fault', 'a', 'exception');
    t.is(injected.code, 0);
    let status: { paths: { a: { namedState: string }; b: { namedState: string } }; active: string; lastFailover: { cause: string } | null } | undefined;
    for (let i = 0; i < 100; i++) {
      status = (await twinframectl(socket, 'status')).json as typeof status;
      if (status!.paths.b.namedState === 'Primary_No_Secondary' && status!.paths.a.namedState !== 'Failed') break;
      await sleep(20);
    }
    t.is(status!.active, 'b');
    t.is(status!.paths.b.namedState, 'Primary_No_Secondary');
    t.is(status!.paths.a.namedState, 'Secondary_Offline', 'the failed path was restarted and waits to be synchronized');
    t.is(status!.lastFailover?.cause, 'exception');

    // Repair: synchronize the restarted path mid-stream and start it.
    t.deepEqual(states((await twinframectl(socket, 'failover-sync', 'a')).json), { a: 'Secondary_Synchronized', b: 'Primary_No_Secondary' });
    t.deepEqual(states((await twinframectl(socket, 'start-streaming', 'a')).json), { a: 'Secondary', b: 'Primary' });

    // And it protects again: a manual switch is lossless too. From whichever path sends
    // then: a standby that found the sender late may have taken sending over (a handover).
    const switchedAt = nowMs();
    const switched = await twinframectl(socket, 'failover');
    t.is(switched.code, 0);
    const { from, to } = switched.json as { from: string; to: string };
    t.like(switched.json, { cause: 'manual' });
    t.deepEqual([from, to].sort(), ['a', 'b'], `switched from ${from} to ${to}`);
    await sleep(300);
    engine.pause(session.id);
    const pausedAt = nowMs();
    await receiver.waitForQuiet(150, 5000);
    const check = checkRtpStream(receiver.packets, session, play, sample);
    const min = minDatagrams(sample, pausedAt - playedAt);
    t.true(receiver.datagrams.length >= min, `received ${receiver.datagrams.length} in ${(pausedAt - playedAt).toFixed(0)} ms of playing, at least ${min} expected`);
    t.is(receiver.datagrams.length, engine.getSession(session.id)!.sent);
    const arrivals = receiver.arrivalsMs();
    const gaps = [largestGap(arrivals, injectedAt, switchedAt).maxMs, largestGap(arrivals, switchedAt, pausedAt).maxMs];
    t.true(gaps.every((g) => g < PACING_BOUND_MS), `largest gap after the fault and after the switch under ${PACING_BOUND_MS} ms: ${gaps.map((g) => g.toFixed(1)).join(', ')} ms`);
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);

    // watch reported each step (its output can trail the replies: wait for the last step's event).
    await until(() => watched.includes('"a":"Secondary","b":"Primary"'), 'watch to report the last step', 10_000).catch(() => undefined);
    const events = watched.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; cause?: string; states?: { a: string; b: string }; change?: string });
    const seen = events.filter((e) => e.type === 'state').map((e) => `${e.states!.a}/${e.states!.b}`);
    for (const step of [
      'Primary_Offline/Undefined', 'Primary_No_Secondary/Undefined', 'Primary_No_Secondary/Secondary_Offline',
      'Primary_No_Secondary/Secondary_Synchronizing', 'Primary_No_Secondary/Secondary_Synchronized', 'Primary/Secondary',
      'Failed/Primary_No_Secondary', 'Secondary_Offline/Primary_No_Secondary', 'Secondary_Synchronized/Primary_No_Secondary',
      'Secondary/Primary',
    ]) t.true(seen.includes(step), `watch reported ${step}: ${seen.join(', ')}`);
    t.true(events.some((e) => e.type === 'failover' && e.cause === 'exception'), 'watch reported the failover');
    t.true(events.some((e) => e.type === 'session' && e.change === 'opened'), 'watch reported the session');
  } finally {
    await stopChild(watcher);
    await receiver.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('heartbeat and limits set through twinframectl are persisted and survive a restart', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-persist-'));
  let server = await tempServer(dir, { autoFailover: true, faultInjection: false });
  try {
    const socket = server.config.admin.socketPath;
    const hb = await twinframectl(socket, 'heartbeat', '--period-us', '1000', '--max-missed', '4');
    t.is(hb.code, 0);
    t.like(hb.json, { periodUs: 1000, maxMissed: 4 });
    const tooSlow = await twinframectl(socket, 'heartbeat', '--period-us', '20000', '--max-missed', '3');
    t.is(tooSlow.code, 1, 'detection slower than a frame is refused');
    t.regex(JSON.stringify(tooSlow.json), /TF_HEARTBEAT_TOO_SLOW/);
    t.is((await twinframectl(socket, 'limits', '--max-streams', '7')).code, 0);
    const fault = await twinframectl(socket, 'inject-fault', 'a', 'crash');
    t.is(fault.code, 1);
    t.regex(JSON.stringify(fault.json), /TF_FAULT_INJECTION_DISABLED/);

    await server.close();
    const persisted = await loadConfig(path.join(dir, 'config.json'));
    t.is(persisted.failover.heartbeatPeriodUs, 1000);
    t.is(persisted.limits.maxStreams, 7);
    server = await startServer({ config: persisted, configPath: path.join(dir, 'config.json'), logger: silentLogger, rtsp: RTSP_ANY_PORT });
    const status = (await twinframectl(server.config.admin.socketPath, 'status')).json as { heartbeat: { periodUs: number; maxMissed: number } };
    t.like(status.heartbeat, { periodUs: 1000, maxMissed: 4 });
    t.like((await twinframectl(server.config.admin.socketPath, 'limits')).json, { maxStreams: 7 });
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

leakCheck(test);
