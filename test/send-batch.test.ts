// Batched sends (README, "Batched sends"): the native batched send and the
// plain-Node fallback put the same datagrams on the wire in the same order, and
// the addon's sendBatch says per datagram what became of it, on real sockets.

import test from 'ava';
import { createSocket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseConfig } from '../src/config/schema.js';
import { nativeSender } from '../src/datapath/send-batch.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { loadSample, startEngine, waitForRecovery } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const { EBADF, EACCES, ECONNREFUSED } = osConstants.errno;

/** Datagrams compared per session (about 1.2 s of the sample). */
const COMPARED = 400;

interface ScenarioResult {
  batchedNative: boolean;
  switched: { from: string; to: string };
  sessions: Array<{ transport: string; received: number; sent: number; digests: string[] }>;
}

async function scenario(env: NodeJS.ProcessEnv): Promise<ScenarioResult> {
  const { stdout } = await run(process.execPath, [path.join(here, 'helpers/send-path-scenario.js'), String(COMPARED)], { env: { ...process.env, ...env }, timeout: 60_000 });
  return JSON.parse(stdout) as ScenarioResult;
}

test.serial('the native batched send and the plain-Node fallback send identical datagrams in identical order, across a switch of the sending path', async (t) => {
  const native = await scenario({});
  const fallback = await scenario({ TWINFRAME_NATIVE: 'off' });
  t.is(native.batchedNative, nativeSender !== undefined, 'the child used the addon whenever this process has it');
  t.false(fallback.batchedNative);
  for (const [label, r] of [['native', native], ['fallback', fallback]] as const) {
    t.not(r.switched.from, r.switched.to);
    for (const [i, s] of r.sessions.entries()) {
      t.is(s.received, s.sent, `${label} session ${i}: every datagram sent arrived`);
      t.is(s.digests.length, COMPARED, `${label} session ${i}`);
    }
  }
  for (const [i, s] of native.sessions.entries()) {
    const other = fallback.sessions[i].digests;
    const firstDifference = s.digests.findIndex((d, k) => d !== other[k]);
    t.is(firstDifference, -1, `session ${i} (${s.transport}): datagram ${firstDifference} differs`);
  }
});

/** A UDP port of 127.0.0.1 that nobody listens on (just released). */
async function closedPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Open descriptors of this process (the leak check sees only Node's handles, not the addon's sockets). */
function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test.serial('the sockets of a data path that crashed or hung close with its thread; the rest close with their sessions', async (t) => {
  const sample = await loadSample();
  const fdsBefore = openFds();
  const engine = await startEngine();
  const receivers: UdpReceiver[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const receiver = await UdpReceiver.open();
      receivers.push(receiver);
      const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
      await engine.play(session.id);
    }
    for (const kind of ['crash', 'hang'] as const) {
      const before = engine.status().switches;
      engine.injectFault(engine.status().active!, kind);
      await waitForRecovery(engine, before);
      t.true(engine.isProtected(), `protected again after the ${kind}`);
    }
    t.true(receivers.every((r) => r.datagrams.length > 0));
  } finally {
    await engine.close();
    for (const r of receivers) await r.close();
    await sample.cleanup();
  }
  t.is(openFds(), fdsBefore, 'no descriptor left open');
});

(nativeSender ? test.serial : test.serial.skip)('sendBatch on real sockets: one run per socket in order, ECONNREFUSED for one datagram and then on, EBADF for a closed session; EACCES at connect to a broadcast address', async (t) => {
  const addon = nativeSender!;
  const fdsBefore = openFds();
  const receiver = await UdpReceiver.open({ mode: 'udp' });
  const fds: number[] = [];
  try {
    const open = (port: number): number => {
      const fd = addon.udpOpen('127.0.0.1', 0);
      t.true(fd >= 0, `udpOpen: ${fd}`);
      fds.push(fd);
      t.is(addon.udpConnect(fd, '127.0.0.1', port), 0);
      return fd;
    };
    const live = open(receiver.rtpPort);
    const dead = open(await closedPort());
    const buffers = Array.from({ length: 6 }, (_, i) => Buffer.alloc(200, i + 1));
    const send = (sockets: number[], datagrams: number[]): number[] => {
      const results = new Int32Array(sockets.length);
      addon.sendBatch(Int32Array.from(sockets), datagrams.map((d) => buffers[d]), Int32Array.from(datagrams.map((d) => 100 + d)), sockets.length, results);
      return [...results];
    };
    // The first datagram to the dead port leaves (the refusal comes back as ICMP).
    t.deepEqual(send([live, live, dead, live, -1], [0, 1, 2, 3, 4]), [0, 0, 0, 0, EBADF]);
    await receiver.waitForCount(3, 5000);
    // The next send on that socket reports it, once; the one after leaves again. The live socket is not disturbed.
    t.deepEqual(send([dead, live], [2, 5]), [ECONNREFUSED, 0]);
    t.deepEqual(send([dead], [2]), [0]);
    await receiver.waitForCount(4, 5000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(receiver.datagrams.map((d) => d.data), [
      buffers[0].subarray(0, 100), buffers[1].subarray(0, 101), buffers[3].subarray(0, 103), buffers[5].subarray(0, 105),
    ], 'the live socket got its datagrams in order, each the length asked for, nothing for fd -1');

    const broadcast = addon.udpOpen('127.0.0.1', 0);
    fds.push(broadcast);
    t.is(addon.udpConnect(broadcast, '127.255.255.255', 9), EACCES);
  } finally {
    for (const fd of fds) addon.udpClose(fd);
    await receiver.close();
  }
  t.is(openFds(), fdsBefore, 'every native socket closed');
});

test('pacing.batchWindowUs: 500 µs unless set, 50 to 1000 µs accepted, anything else refused with the field named', (t) => {
  t.is(parseConfig({}).pacing.batchWindowUs, 500);
  t.is(parseConfig({ pacing: { batchWindowUs: 50 } }).pacing.batchWindowUs, 50);
  t.is(parseConfig({ pacing: { batchWindowUs: 1000 } }).pacing.batchWindowUs, 1000);
  for (const bad of [0, 49, 1001, 250.5]) {
    t.throws(() => parseConfig({ pacing: { batchWindowUs: bad } }), { message: /pacing\.batchWindowUs/ }, String(bad));
  }
});

leakCheck(test);
