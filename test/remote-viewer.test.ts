// A viewer on another host. The test makes one: a network namespace joined to
// this host by a veth pair with its own private /30 (a second loopback address
// would not do: a socket bound to 127.0.0.1 reaches every 127.x address). Traffic
// goes only to loopback and to that namespace, which each test removes again.
//
// - The real `twinframe` process, default configuration, only --host set to the
//   host end of the pair: the viewer in the namespace plays the asset byte for
//   byte, the media comes from the address it reached, and no data path fails.
// - A destination the stream address cannot reach is refused at SETUP with 462,
//   before any session or path is touched.
// - A configured network.streamIp is the source as given.

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { parseConfig } from '../src/config/schema.js';
import type { SessionInfo } from '../src/engine/engine.js';
import { silentLogger } from '../src/log.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { parseTransport } from '../src/rtsp/headers/transport.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { checkRtpStream, loadSample, sleep, type SampleAsset } from './helpers/engine-fixture.js';
import { createVethNamespace, netnsUnavailable, type VethNamespace } from './helpers/netns.js';
import { RtspClient, parseRtpPacket } from './helpers/rtsp-client.js';
import { runToString } from './helpers/run.js';
import { leakCheck } from './helpers/leak-check.js';
import { freeTcpPort } from './helpers/free-port.js';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TWINFRAME = path.join(ROOT, 'dist/src/cli/twinframe.js');
const TWINFRAMECTL = path.join(ROOT, 'dist/src/cli/twinframectl.js');
const VIEWER = path.join(ROOT, 'dist/test/helpers/netns-viewer.js');
const PLAY_SECONDS = 3;
/** A fresh server indexes the asset at its first SETUP: seconds on a busy machine. */
const RTSP_TIMEOUT_MS = 20_000;

const unavailable = netnsUnavailable();
const nsTest = unavailable === undefined ? test.serial : test.serial.skip;
if (unavailable !== undefined) console.warn(`remote-viewer tests skipped: ${unavailable}`);

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

/** A namespace for this test, removed when it ends however it ends. */
async function namespace(t: ExecutionContext): Promise<VethNamespace> {
  const ns = await createVethNamespace();
  t.teardown(() => ns.remove());
  return ns;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-remote-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

nsTest('a viewer on another host plays byte-exact from `twinframe --host <address>` with the default configuration, and no path fails', async (t) => {
  t.timeout(60_000);
  const ns = await namespace(t);
  const dir = await tempDir(t);
  // Only a cache of its own, so the run leaves nothing in the checkout.
  const configPath = path.join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({ media: { cacheDir: path.join(dir, 'cache') } }));
  const socket = path.join(dir, 'admin.sock');
  const port = await freeTcpPort(ns.hostAddress);
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, TWINFRAME, '-c', configPath, '--host', ns.hostAddress, '--port', String(port), '--admin-socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let log = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { log += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });

  await waitFor(() => stdout.includes(`rtsp://${ns.hostAddress}:${port}/sample.ts`), 20_000, `the server to start: ${stdout}${log}`);
  const out = path.join(dir, 'received.bin');
  const viewer = await runToString([...ns.exec, process.execPath, VIEWER, ns.hostAddress, String(port), '/sample.ts', String(PLAY_SECONDS), ns.nsAddress, out], 30_000);
  const result = JSON.parse(viewer) as {
    describe: number; setup: number; transport: string; play: number | undefined; rtpInfo: string | undefined;
    teardown: number | undefined; received: number; sources: Record<string, number>;
  };
  t.like(result, { describe: 200, setup: 200, play: 200, teardown: 200 }, viewer);

  // Every datagram came from one source: the address the viewer reached, on the session's server port.
  const [transport] = parseTransport(result.transport);
  t.deepEqual(Object.keys(result.sources), [`${ns.hostAddress}:${transport.serverPort!.first}`]);

  // Byte for byte the asset from its first packet, in order, none lost or repeated, with its RTP times.
  const [info] = parseRtpInfo(result.rtpInfo ?? '');
  const packets = splitRecords(await readFile(out)).map(parseRtpPacket);
  t.true(packets.length >= 250 * PLAY_SECONDS, `received ${packets.length} datagrams`);
  const session = { initialSeq: info.seq!, ssrc: transport.ssrc! } as SessionInfo;
  const check = checkRtpStream(packets, session, { seq: info.seq!, rtptime: info.rtptime!, startPacket: 0, startTimeMs: 0 }, sample);
  t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, check.firstMismatch);

  // No path failed: not in the log, not in the operator's status.
  const failures = log.split('\n').filter((l) => l.includes('"data path failed"')).map((l) => (JSON.parse(l) as { cause: string }).cause);
  t.deepEqual(failures, [], 'no path failure in the server log');
  const status = JSON.parse(await runToString([process.execPath, TWINFRAMECTL, '--socket', socket, '--json', 'status'], 10_000)) as { lastFailover: { cause: string } | null };
  t.is(status.lastFailover, null, JSON.stringify(status.lastFailover));

  child.kill('SIGTERM');
  t.is(await exited, 0, 'stops cleanly on SIGTERM');
});

/** The in-process server of the next tests, on loopback, closed at the test's end. */
async function loopbackServer(t: ExecutionContext, dir: string, overrides: { allowForeignDestination?: boolean; streamIp?: string }): Promise<TwinframeServer> {
  const config = parseConfig({
    rtsp: { allowForeignDestination: overrides.allowForeignDestination ?? false },
    network: overrides.streamIp === undefined ? {} : { streamIp: overrides.streamIp },
    media: { mounts: [{ prefix: '', dir: path.join(ROOT, 'assets') }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
    log: { level: 'silent' },
  });
  const server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.close());
  return server;
}

nsTest('a destination the stream address cannot reach is refused at SETUP with 462, and no path is touched', async (t) => {
  const ns = await namespace(t);
  const dir = await tempDir(t);
  const server = await loopbackServer(t, dir, { allowForeignDestination: true });
  const failures: string[] = [];
  server.engine.on('failover', (e: { cause: string }) => failures.push(e.cause));
  const client = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: RTSP_TIMEOUT_MS });
  t.teardown(() => client.close());
  // The viewer reached us on 127.0.0.1, so that is the stream address; it cannot send to the namespace (EINVAL).
  const refused = await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=${ns.nsAddress};client_port=5000-5001`);
  t.is(refused.status, 462);
  t.is(client.session, undefined);
  t.deepEqual(server.engine.listSessions(), []);
  // Port 0 is refused by the engine too (RTSP already refuses it, 461): the data paths' connect() would throw.
  await t.throwsAsync(server.engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: 0 }, transport: 'rtp' }), { code: 'TF_RTSP_DESTINATION_UNREACHABLE' });
  // The same request aimed at a reachable destination is served.
  const served = await client.setup('/sample.ts/track1', 'RTP/AVP;unicast;destination=127.0.0.1;client_port=5000-5001');
  t.is(served.status, 200);
  t.is((await client.teardown('/sample.ts')).status, 200);
  await sleep(300);
  t.deepEqual(failures, [], 'no data path failed');
});

nsTest('a configured network.streamIp is the source of the media as given', async (t) => {
  const ns = await namespace(t);
  const dir = await tempDir(t);
  // The host end of the pair is an address of this host, so it can send to loopback.
  const server = await loopbackServer(t, dir, { streamIp: ns.hostAddress });
  const receiver = dgram.createSocket('udp4');
  t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  const sources = new Set<string>();
  receiver.on('message', (_m, rinfo) => sources.add(`${rinfo.address}:${rinfo.port}`));
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
  const client = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: RTSP_TIMEOUT_MS });
  t.teardown(() => client.close());
  t.is((await client.setup('/sample.ts/track1', `RTP/AVP;unicast;client_port=${receiver.address().port}`)).status, 200);
  const info = server.engine.getSession(client.session!)!;
  t.is(info.source.address, ns.hostAddress);
  t.is((await client.play('/sample.ts')).status, 200);
  await waitFor(() => sources.size > 0, 5000, 'datagrams');
  t.is((await client.teardown('/sample.ts')).status, 200);
  t.deepEqual([...sources], [`${ns.hostAddress}:${info.source.rtpPort}`]);
});

// ── helpers ──────────────────────────────────────────────────────────────────

/** The viewer's records: a u32 little-endian length, then that many bytes. */
function splitRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 4 <= buf.length;) {
    const length = buf.readUInt32LE(off);
    out.push(buf.subarray(off + 4, off + 4 + length));
    off += 4 + length;
  }
  return out;
}


async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

leakCheck(test);
