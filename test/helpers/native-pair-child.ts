// The other process of the native-pair tests (test/native-pair-*.test.ts): a
// real second process, as the standby twinframe will be. Modes:
//   count <file> <bytes> <n>   map the shared region, say ready, wait for GO,
//                              then n Atomics.add and n compareExchange increments
//   receive <channel>          take a UDP socket and a TCP listener over the fd
//                              channel, send a datagram on the UDP one, accept one
//                              connection on the listener and answer it
//   hand-over <channel>        accept one TCP connection, pass it over the fd
//                              channel, then wait to be killed
//   hold <file> <bytes> <mib>  take the life lock at offset 0 of the region from
//                              the main thread, fill <mib> MiB of memory, print
//                              "ready", then wait to be killed

import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { nativeAddon } from '../../src/shared/native.js';
import { FdChannel, acquireLifeLock, adoptDescriptor, descriptorOf, lifeLockWords, openSharedRegion, waitReadable } from '../../src/pair-process/native-pair.js';

/** Words of the counting region. */
export const COUNT_ADD = 0;
export const COUNT_CAS = 1;
export const COUNT_READY = 2;
export const COUNT_GO = 3;

function count(file: string, bytes: number, n: number): void {
  const words = new Int32Array(openSharedRegion(file, bytes));
  Atomics.add(words, COUNT_READY, 1);
  while (Atomics.load(words, COUNT_GO) === 0) { /* both processes start together, so they contend */ }
  for (let i = 0; i < n; i++) {
    Atomics.add(words, COUNT_ADD, 1);
    let seen = Atomics.load(words, COUNT_CAS);
    for (;;) {
      const before = Atomics.compareExchange(words, COUNT_CAS, seen, seen + 1);
      if (before === seen) break;
      seen = before;
    }
  }
}

/** The next message on the channel, waiting up to 10 s for one. */
function nextMessage(channel: FdChannel): { text: string; fds: number[] } {
  for (;;) {
    const message = channel.receive();
    if (message === 'closed') throw new Error('channel closed');
    if (message) return { text: message.payload.toString('utf8'), fds: message.fds };
    if (!waitReadable(channel.fd, 10_000)) throw new Error('no message in 10 s');
  }
}

async function receive(channelPath: string): Promise<void> {
  const channel = FdChannel.connect(channelPath);
  const { text, fds: [udpFd, listenFd] } = nextMessage(channel);
  adoptDescriptor(udpFd); // this thread sends on it and closes it, as a data path would
  const payload = Buffer.from(`${text} from child ${process.pid}`);
  const results = new Int32Array(1);
  nativeAddon!.sendBatch(Int32Array.of(udpFd), [payload], Int32Array.of(payload.length), 1, results);
  if (results[0] !== 0) throw new Error(`send on the passed UDP socket: errno ${results[0]}`);
  const server = net.createServer((socket) => {
    socket.end(`accepted by child ${process.pid}`);
    server.close();
  });
  await new Promise<void>((resolve) => server.listen({ fd: listenFd }, resolve));
  channel.send(Buffer.from('listening'));
  await new Promise((resolve) => server.once('close', resolve));
  if (nativeAddon!.udpClose(udpFd) !== 0) throw new Error('the adopted UDP socket did not close');
  channel.close();
}

async function handOver(channelPath: string): Promise<void> {
  const channel = FdChannel.connect(channelPath);
  const server = net.createServer((socket) => {
    channel.send(Buffer.from('connection'), [descriptorOf(socket)]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  channel.send(Buffer.from(String((server.address() as net.AddressInfo).port)));
  setInterval(() => undefined, 60_000); // until SIGKILLed
}

function hold(file: string, bytes: number, mib: number): void {
  const lock = lifeLockWords(openSharedRegion(file, bytes), 0);
  const outcome = acquireLifeLock(lock, 0);
  if (outcome === 'timeout') throw new Error('the life lock is held');
  const memory = Buffer.alloc(mib * 1024 * 1024, 1); // a process of some size: its teardown is what a pidfd waits for
  process.stdout.write('ready\n');
  setInterval(() => { memory[0]++; }, 60_000); // until SIGKILLed
}

const [mode, ...args] = process.argv.slice(2);
if (process.argv[1] !== fileURLToPath(import.meta.url)) {
  // imported by a test for the constants above
} else if (mode === 'count') count(args[0], Number(args[1]), Number(args[2]));
else if (mode === 'receive') await receive(args[0]);
else if (mode === 'hand-over') await handOver(args[0]);
else if (mode === 'hold') hold(args[0], Number(args[1]), Number(args[2]));
else throw new Error(`unknown mode ${mode}`);
