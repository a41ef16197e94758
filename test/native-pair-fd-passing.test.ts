// Issue 17, primitive 2: descriptors passed over a Unix socket (SCM_RIGHTS on
// SOCK_SEQPACKET) to a real second process: a UDP sending socket (both
// processes then send from the same source port), the RTSP-style listening
// socket (the other process accepts on it), and an accepted TCP connection that
// keeps working after the process that passed it is SIGKILLed.

import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeAddon } from '../src/shared/native.js';
import { FdChannelListener, adoptDescriptor, descriptorOf, openPeerPidfd, waitProcessExit, type FdChannel, type FdMessage } from '../src/pair-process/native-pair.js';
import { ReadableWatcher } from '../src/pair-process/native-watcher.js';
import { leakCheck } from './helpers/leak-check.js';
import { childExited } from './helpers/native-pair-waiter.js';

const CHILD = fileURLToPath(new URL('./helpers/native-pair-child.js', import.meta.url));
const LIMIT_MS = 30_000;

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + LIMIT_MS;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${LIMIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A listener in a fresh temp dir, a child started in `mode` that connects to it, and the accepted channel whose messages a ReadableWatcher queues. */
async function childOnChannel(t: ExecutionContext, mode: string): Promise<{ child: ChildProcess; channel: FdChannel; next: () => Promise<FdMessage> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinframe-fd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const listener = new FdChannelListener(path.join(dir, 'channel'));
  t.teardown(() => listener.close());
  const child = spawn(process.execPath, [CHILD, mode, listener.socketPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  t.teardown(async () => {
    child.kill('SIGKILL');
    await childExited(child);
  });
  const channel = await until('the child connects', () => listener.accept());
  t.teardown(() => channel.close());
  const queue: FdMessage[] = [];
  let closed = false;
  const watcher = new ReadableWatcher(channel.fd, {
    once: false,
    onReadable: () => {
      for (let m = channel.receive(); m !== undefined && !closed; m = channel.receive()) {
        if (m === 'closed') closed = true;
        else queue.push(m);
      }
      if (closed) void watcher.stop(); // an ended socket stays readable
    },
    onError: (err) => t.fail(err.message),
  });
  t.teardown(() => watcher.stop());
  const next = (): Promise<FdMessage> => until('a message from the child', () => {
    if (queue.length === 0 && closed) throw new Error('the child closed the channel');
    return queue.shift();
  });
  return { child, channel, next };
}

test.serial('a child takes a UDP socket and a TCP listener: both processes send from one source port, the child accepts on the listener', async (t) => {
  const addon = nativeAddon!;
  const receiver = dgram.createSocket('udp4');
  t.teardown(() => receiver.close());
  const datagrams: Array<{ text: string; port: number }> = [];
  receiver.on('message', (msg, rinfo) => datagrams.push({ text: msg.toString('utf8'), port: rinfo.port }));
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
  const udpFd = addon.udpOpen('127.0.0.1', 0);
  t.true(udpFd >= 0);
  t.teardown(() => addon.udpClose(udpFd));
  t.is(addon.udpConnect(udpFd, '127.0.0.1', receiver.address().port), 0);
  const server = net.createServer(() => t.fail('the parent accepted: its listener was closed after the hand-over'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: tcpPort } = server.address() as net.AddressInfo;

  const { child, channel, next } = await childOnChannel(t, 'receive');
  t.is(channel.peerUid(), process.getuid!());
  channel.send(Buffer.from('datagram'), [udpFd, descriptorOf(server)]);
  await new Promise((resolve) => server.close(resolve)); // the child's copy keeps the socket listening
  const payload = Buffer.from(`datagram from parent ${process.pid}`);
  const results = new Int32Array(1);
  addon.sendBatch(Int32Array.of(udpFd), [payload], Int32Array.of(payload.length), 1, results);
  t.is(results[0], 0);
  t.is((await next()).payload.toString('utf8'), 'listening');

  const answer = await new Promise<string>((resolve, reject) => {
    const client = net.connect(tcpPort, '127.0.0.1');
    let text = '';
    client.on('data', (d: Buffer) => { text += d.toString('utf8'); });
    client.on('end', () => { client.destroy(); resolve(text); });
    client.on('error', reject);
  });
  t.is(answer, `accepted by child ${child.pid}`);
  t.is(await childExited(child), 0);

  await until('both datagrams', () => (datagrams.length >= 2 ? true : undefined));
  t.deepEqual(datagrams.map((d) => d.text).sort(), [`datagram from child ${child.pid}`, `datagram from parent ${process.pid}`].sort());
  t.is(datagrams[0].port, datagrams[1].port, 'one source port for both processes');
});

test.serial('an accepted TCP connection passed to this process keeps working after the sender is SIGKILLed; the channel names its peer\'s pidfd', async (t) => {
  const { child, channel, next } = await childOnChannel(t, 'hand-over');
  const peer = openPeerPidfd(channel.fd);
  t.teardown(() => fs.closeSync(peer));
  t.regex(fs.readFileSync(`/proc/self/fdinfo/${peer}`, 'utf8'), new RegExp(`^Pid:\\s+${child.pid}$`, 'm'), 'the kernel names the child as the peer');
  t.is(waitProcessExit(peer, 0), 'timeout');
  const port = Number((await next()).payload.toString('utf8'));
  const client = net.connect(port, '127.0.0.1');
  t.teardown(() => client.destroy());
  const { payload, fds } = await next();
  t.is(payload.toString('utf8'), 'connection');
  t.is(fds.length, 1);
  child.kill('SIGKILL');
  await childExited(child);
  t.is(waitProcessExit(peer, 0), 'exited');

  const taken = new net.Socket({ fd: fds[0], readable: true, writable: true });
  t.teardown(() => taken.destroy());
  const ping = new Promise<string>((resolve) => taken.once('data', (d: Buffer) => resolve(d.toString('utf8'))));
  client.write('ping');
  t.is(await ping, 'ping');
  const pong = new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString('utf8'))));
  taken.write('pong');
  t.is(await pong, 'pong');
});

test.serial('a message too large to receive is refused and the descriptors it carried are closed, not leaked; a received one is adopted by a thread', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinframe-fd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const listener = new FdChannelListener(path.join(dir, 'channel'));
  t.teardown(() => listener.close());
  const { FdChannel } = await import('../src/pair-process/native-pair.js');
  const sender = FdChannel.connect(listener.socketPath);
  t.teardown(() => sender.close());
  const receiving = await until('accept', () => listener.accept());
  t.teardown(() => receiving.close());
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
  const before = openFds();
  sender.send(Buffer.alloc(70 * 1024, 1), [0, 1, 2]);
  t.throws(() => receiving.receive(), { code: 'EMSGSIZE' });
  t.is(openFds(), before);
  sender.send(Buffer.from('small'), [0]);
  const m = receiving.receive();
  if (m === undefined || m === 'closed' || m.fds.length !== 1) return t.fail(`one message with one descriptor expected: ${JSON.stringify(m)}`);
  t.is(nativeAddon!.closeFd(m.fds[0]), os.constants.errno.EBADF, 'closeFd closes only what this thread owns');
  adoptDescriptor(m.fds[0]);
  t.throws(() => adoptDescriptor(m.fds[0]), { code: 'EEXIST' });
  t.is(nativeAddon!.closeFd(m.fds[0]), 0);
  t.throws(() => adoptDescriptor(m.fds[0]), { code: 'EBADF' });
  t.is(openFds(), before);
  sender.close();
  t.is(receiving.receive(), 'closed');
});

leakCheck(test);
