// Per-client limits: a flood of connections from one address does not keep a
// viewer on another address from playing; one connection or one address cannot
// take every stream; a session set up and never played is given up; a trickle
// of '$' bytes or blank lines does not keep a connection forever.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { TwinframeServer } from '../src/server.js';
import { SAMPLE_ASSET, sleep, until } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { startFileServer } from './helpers/media-server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PER_ADDRESS = 8;
const REQUEST_TIMEOUT_MS = 600;
const IDLE_TIMEOUT_MS = 900;
const SETUP_TIMEOUT_MS = 800;

let server: TwinframeServer;
let port: number;
let tmp: string;

test.before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-limits-'));
  server = await startFileServer(path.dirname(SAMPLE_ASSET), tmp,
    { rtsp: { maxConnectionsPerAddress: PER_ADDRESS, maxSessionsPerAddress: 3, maxSessionsPerConnection: 2 } },
    { requestTimeoutMs: REQUEST_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS, setupTimeoutMs: SETUP_TIMEOUT_MS });
  port = server.rtsp.port;
});

test.after.always(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test.serial('1,000 connections from one address do not keep a client on another address from playing', async (t) => {
  const flood = spawn(process.execPath, [path.join(HERE, 'helpers/connection-flood.js'), '--port', String(port), '--count', '1000'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const receiver = await UdpReceiver.open({ host: '127.0.0.2' });
  let client: RtspClient | undefined;
  try {
    const [line] = (await once(flood.stdout, 'data')) as [Buffer];
    const counts = JSON.parse(line.toString()) as { accepted: number; refused: number };
    t.is(counts.accepted, PER_ADDRESS, 'the address got its share of connections');
    t.is(counts.refused, 1000 - PER_ADDRESS, 'the rest were answered 503');
    client = await RtspClient.connect({ port, localAddress: '127.0.0.2' });
    t.is((await client.setup('/sample.ts', receiver.transportHeader())).status, 200);
    t.is((await client.play('/sample.ts')).status, 200);
    await receiver.waitForCount(50, 5000);
    t.pass();
  } finally {
    await client?.release();
    await receiver.close();
    flood.stdin.end();
    if (flood.exitCode === null) await once(flood, 'exit');
  }
});

test.serial('one connection, and one address, cannot set up more sessions than their limits (453)', async (t) => {
  const receiver = await UdpReceiver.open();
  const first = await RtspClient.connect({ port });
  const second = await RtspClient.connect({ port });
  try {
    const setup = async (c: RtspClient): Promise<number> => {
      c.session = undefined;
      return (await c.setup('/sample.ts', receiver.transportHeader())).status;
    };
    t.is(await setup(first), 200);
    t.is(await setup(first), 200);
    t.is(await setup(first), 453, 'a third on one connection');
    t.is(await setup(second), 200, 'another connection of the address');
    t.is(await setup(second), 453, 'a fourth from one address');
  } finally {
    await first.close();
    await second.close();
    await receiver.close();
    for (const s of server.rtsp.sessions()) server.engine.closeSession(s.id);
  }
});

test.serial('a session set up and never played is torn down after the setup timeout', async (t) => {
  const receiver = await UdpReceiver.open();
  const c = await RtspClient.connect({ port });
  try {
    t.is((await c.setup('/sample.ts', receiver.transportHeader())).status, 200);
    const id = c.session!;
    await sleep(SETUP_TIMEOUT_MS / 2);
    t.true(server.rtsp.sessions().some((s) => s.id === id));
    await until(() => !server.rtsp.sessions().some((s) => s.id === id), 'the session to be torn down', SETUP_TIMEOUT_MS * 4);
    t.is((await c.play('/sample.ts')).status, 454, 'it is gone');
  } finally {
    await c.close();
    await receiver.close();
  }
});

/** Opens a raw connection, writes `piece` every `everyMs`; resolves with how long the server kept it. */
async function trickle(piece: string, everyMs: number, limitMs: number): Promise<number> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const start = Date.now();
  const timer = setInterval(() => socket.write(piece), everyMs);
  const limit = setTimeout(() => socket.destroy(), limitMs);
  socket.resume();
  await once(socket, 'close');
  clearInterval(timer);
  clearTimeout(limit);
  return Date.now() - start;
}

test.serial("a trickle of '$' bytes is closed at the request timeout, and one of blank lines at the idle timeout", async (t) => {
  const dollar = await trickle('$', 100, 10_000);
  t.true(dollar < REQUEST_TIMEOUT_MS + 1500, `a '$' trickle kept its connection ${dollar} ms`);
  const blank = await trickle('\r\n', 100, 10_000);
  t.true(blank < IDLE_TIMEOUT_MS + 1500, `a blank-line trickle kept its connection ${blank} ms`);
  // Whole frames of no session: not a request either.
  const frames = await trickle('$\u0000\u0000\u0000', 100, 10_000);
  t.true(frames < IDLE_TIMEOUT_MS + 1500, `a trickle of empty frames kept its connection ${frames} ms`);
});

leakCheck(test);
