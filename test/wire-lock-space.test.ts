// The wire's lock across the two processes of a pair (src/shared/wire.ts): each
// process locks with tags of its own half of the tag space, so a tag of the
// other process is never taken for one of this process's threads. Only the
// process the WRITER word names writes; a survivor's claim names itself, takes
// over a lock the dead one held and moves the tail to where the socket really
// is, so a send the dead writer made but did not record is not made twice. A
// writer takes over a lock held by a dead thread of its own process, never one
// held by a live one; a retired wire is written by nobody. Over a real loopback
// TCP connection, with the addon.

import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { WireWriter } from '../src/rtsp/wire-writer.js';
import { Wire, createWire, isForeignHolder, localTag, mainTag, wireAddon, wireTag, type LockSpace } from '../src/shared/wire.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

test.before(() => {
  if (!wireAddon) throw new Error('the wire needs the native addon (npm install builds it)');
});

/** A connected loopback pair: the descriptor of the sending side, and what the other side receives. */
async function connection(t: ExecutionContext): Promise<{ fd: number; sender: net.Socket; received: () => Buffer }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const sender = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(sender, 'connect');
  const [receiver] = await accepted;
  const chunks: Buffer[] = [];
  receiver.on('data', (chunk: Buffer) => chunks.push(chunk));
  t.teardown(() => {
    sender.destroy();
    receiver.destroy();
    server.close();
  });
  const fd = (sender as unknown as { _handle: { fd: number } })._handle.fd;
  return { fd, sender, received: () => Buffer.concat(chunks) };
}

function writer(sab: SharedArrayBuffer, fd: number, space: LockSpace, holderDead: (tag: number) => boolean): WireWriter {
  const w = new WireWriter(sab, { fd: () => fd, maxQueuedBytes: 1 << 20, lockSpace: space, onFailure: () => {} });
  w.holderDead = holderDead;
  return w;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 2000; !condition();) {
    if (Date.now() > deadline) throw new Error(`not reached: ${what}`);
    await sleep(5);
  }
}

test('the two halves of the tag space never meet: a thread\'s tag, the main thread\'s, and which process a holder is of', (t) => {
  const pathTag = 3; // (incarnation 1 << 1 | path 0) + 1
  t.not(wireTag(pathTag, 0), wireTag(pathTag, 1));
  t.not(mainTag(0), mainTag(1));
  t.is(localTag(wireTag(pathTag, 1)), pathTag);
  t.is(localTag(mainTag(1)), localTag(mainTag(0)));
  t.false(isForeignHolder(wireTag(pathTag, 0), 0));
  t.true(isForeignHolder(wireTag(pathTag, 0), 1));
  t.true(isForeignHolder(mainTag(1), 0));
  t.false(isForeignHolder(mainTag(1), 1));
  for (const space of [0, 1] as const) t.true(mainTag(space) > 0, 'a positive Int32: Atomics stores it as is');
});

test('a survivor writes only once it claimed the wire: the dead primary\'s lock is taken over, and bytes it sent without recording them are not sent again', async (t) => {
  const { fd, sender, received } = await connection(t);
  const sab = createWire(4096, fd);
  const wire = new Wire(sab);
  const words = new Int32Array(sab);
  // The primary (space 0, this process's default) appends a frame; a data path of it sends its first
  // 6 bytes and dies holding the lock, before it could record the new tail.
  const dead = wireTag(3, 0);
  t.is(wire.lock(dead), 0);
  t.true(wire.appendRaw(Buffer.from('HELLO WORLD')));
  sender.write('HELLO ');
  await until(() => received().length === 6, 'the dead writer\'s send arrived');
  // The survivor, in space 1: before its claim the wire is not its own, its writes wait.
  const w = writer(sab, fd, 1, () => false);
  w.write(Buffer.from('!'));
  await sleep(30);
  t.is(received().toString(), 'HELLO ', 'nothing written before the claim');
  t.is(Atomics.load(words, 0), dead, 'the dead one\'s lock is not taken before the claim');
  t.true(wire.claim(1), 'claimed: the dead one\'s lock taken over');
  t.true(wire.writesHere(1));
  t.is(wire.pending(), 11, 'the tail is moved by the first writer, under the lock');
  // The writer's next try: it moves the tail past the 6 bytes the socket took, then sends the rest.
  await until(() => received().length === 12, 'the rest arrived');
  t.is(received().toString(), 'HELLO WORLD!', 'every byte once, in order');
  t.true(wire.claim(1), 'a second claim has nothing to do');
  w.close();
});

test('a retired wire is written by nobody, in either process', (t) => {
  const sab = createWire(4096, -1);
  const wire = new Wire(sab);
  wire.retire();
  for (const space of [0, 1] as const) {
    t.false(wire.lockIn(wireTag(3, space), space, -1, () => true));
    t.true(wire.claim(space), 'nothing to claim');
    t.false(wire.writesHere(space));
  }
  t.is(wire.holder(), 0);
});

test('a lock held by a live thread of this process is waited for; by a dead one of this process, taken over', async (t) => {
  const { fd, received } = await connection(t);
  const sab = createWire(4096, fd);
  const words = new Int32Array(sab);
  let dead = false;
  const held = wireTag(5, 0);
  Atomics.store(words, 0, held);
  const w = writer(sab, fd, 0, (tag) => {
    t.is(tag, 5, 'asked of the thread\'s own tag');
    return dead;
  });
  w.write(Buffer.from('one'));
  await sleep(50);
  t.is(received().length, 0, 'a live holder of this process keeps the wire');
  t.is(Atomics.load(words, 0), held);
  dead = true;
  await until(() => received().length === 3, 'written once the holder is dead');
  t.is(received().toString(), 'one');
  w.close();
});

test('a role switch hands the wire over in two steps: while it hands, nobody writes or takes a lock over; then only the other process writes; a death meanwhile is left to the survivor\'s claim', (t) => {
  const wire = new Wire(createWire(4096, -1));
  const sender = wireTag(3, 0);
  t.is(wire.lock(sender), 0, 'a path of the primary (space 0) is mid-flush');
  wire.beginHandOver(0);
  for (const space of [0, 1] as const) t.false(wire.lockIn(wireTag(5, space), space, -1, () => false), `space ${space} neither writes nor takes the lock over while handing`);
  t.is(wire.holder(), sender, 'the primary\'s thread finishes');
  wire.unlock(sender);
  wire.handTo(1);
  t.false(wire.lockIn(wireTag(5, 0), 0, -1, () => true), 'the old primary no longer writes');
  t.true(wire.lockIn(wireTag(5, 1), 1, -1, () => false), 'the new one does');
  wire.unlock(wireTag(5, 1));

  // The primary dies while handing (its thread still holds the lock): the survivor's claim takes it.
  const dying = new Wire(createWire(4096, -1));
  t.is(dying.lock(sender), 0);
  dying.beginHandOver(0);
  t.true(dying.claim(1));
  t.true(dying.writesHere(1));
  t.is(dying.holder(), 0, 'the dead holder\'s lock is gone with the claim');
});
