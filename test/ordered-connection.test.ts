// Tests for the ordered connection shared by the RTSP and admin servers
// (src/net/ordered-connection.ts), over real loopback TCP sockets.

import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { OrderedConnection, type OrderedConnectionOptions } from '../src/net/ordered-connection.js';
import { leakCheck } from './helpers/leak-check.js';

const DEFAULTS: OrderedConnectionOptions = {
  pauseAt: 4,
  resumeAt: 1,
  closeGraceMs: 60_000,
  maxUnreadBytes: 1024,
  onUnreadLimit: () => {},
  onTaskError: () => {},
};

/** A connected pair on 127.0.0.1: the server side wrapped, the client side raw. Closed at teardown. */
async function pair(
  t: ExecutionContext,
  options: Partial<OrderedConnectionOptions> = {},
  clientHalfOpen = false,
): Promise<{ conn: OrderedConnection; client: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: clientHalfOpen });
  client.on('error', () => {});
  const [socket] = await accepted;
  socket.on('error', () => {});
  t.teardown(() => {
    client.destroy();
    socket.destroy();
    server.close();
  });
  return { conn: new OrderedConnection(socket, { ...DEFAULTS, ...options }), client };
}

/** Resolves once every task queued so far has run. */
function settled(conn: OrderedConnection): Promise<void> {
  return new Promise((resolve) => conn.enqueue(() => resolve()));
}

test('tasks run one at a time in the order they were queued, a slow one holding back the rest', async (t) => {
  const { conn } = await pair(t);
  const order: string[] = [];
  conn.enqueue(async () => {
    await sleep(50);
    order.push('slow');
  });
  conn.enqueue(() => {
    order.push('fast');
  });
  await settled(conn);
  t.deepEqual(order, ['slow', 'fast']);
});

test('a task that throws is reported and the queue goes on', async (t) => {
  const errors: unknown[] = [];
  const { conn } = await pair(t, { onTaskError: (err) => errors.push(err) });
  let ran = false;
  conn.enqueue(() => {
    throw new Error('boom');
  });
  conn.enqueue(() => {
    ran = true;
  });
  await settled(conn);
  t.is(errors.length, 1);
  t.is((errors[0] as Error).message, 'boom');
  t.true(ran);
});

test('reading stops at pauseAt waiting tasks and starts again at resumeAt', async (t) => {
  const { conn } = await pair(t, { pauseAt: 3, resumeAt: 1 });
  const gates: Array<() => void> = [];
  for (let i = 0; i < 3; i++) conn.enqueue(() => new Promise<void>((resolve) => gates.push(resolve)));
  t.is(conn.waiting, 3);
  t.true(conn.socket.isPaused(), 'paused with 3 waiting');
  await sleep(0);
  gates.shift()?.();
  while (conn.waiting > 2) await sleep(1);
  t.true(conn.socket.isPaused(), 'still paused with 2 waiting');
  while (gates.length === 0) await sleep(1);
  gates.shift()?.();
  while (conn.waiting > 1) await sleep(1);
  t.false(conn.socket.isPaused(), 'reading again with 1 waiting');
  while (gates.length === 0) await sleep(1);
  gates.shift()?.();
  await settled(conn);
});

test('after stopReading, reading is not resumed', async (t) => {
  const { conn } = await pair(t, { pauseAt: 2, resumeAt: 1 });
  conn.enqueue(() => {});
  conn.enqueue(() => {});
  t.true(conn.socket.isPaused());
  conn.stopReading();
  t.true(conn.ending);
  await settled(conn);
  t.true(conn.socket.isPaused());
});

test('writeBounded drops a peer that leaves more than maxUnreadBytes unread; write does not', async (t) => {
  const limits: number[] = [];
  const { conn, client } = await pair(t, { maxUnreadBytes: 1024 * 1024, onUnreadLimit: (n) => limits.push(n) });
  client.pause(); // never reads
  conn.write(Buffer.alloc(32 * 1024 * 1024));
  t.true(conn.open, 'write() has no bound');
  conn.writeBounded(Buffer.alloc(1));
  t.is(limits.length, 1);
  t.true(limits[0] > 1024 * 1024);
  t.true(conn.socket.destroyed);
  t.false(conn.open);
  conn.writeBounded(Buffer.alloc(1)); // closed: ignored
  t.is(limits.length, 1);
});

test('end() sends what was written and closes; a peer that holds on is destroyed after the grace', async (t) => {
  // A half-open client: it reads our FIN but never sends its own.
  const { conn, client } = await pair(t, { closeGraceMs: 100 }, true);
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  conn.write('last words');
  conn.end();
  t.true(conn.ending);
  await once(conn.socket, 'close');
  t.is(Buffer.concat(received).toString(), 'last words');
});

test('with destroyWhenFlushed, end() destroys the socket once its output is flushed', async (t) => {
  // A half-open client never closes its side: only the flush can close ours.
  const { conn, client } = await pair(t, { destroyWhenFlushed: true }, true);
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = once(client, 'end');
  conn.write('bye');
  conn.end();
  await once(conn.socket, 'close'); // closeGraceMs is a minute: only the flush can have closed it
  await ended;
  t.is(Buffer.concat(received).toString(), 'bye');
});

test('with drainTo, the next task waits until the peer has read the output down to the limit', async (t) => {
  const { conn, client } = await pair(t, { drainTo: 64 * 1024 });
  client.pause();
  let second = false;
  conn.enqueue(() => conn.write(Buffer.alloc(32 * 1024 * 1024)));
  conn.enqueue(() => {
    second = true;
  });
  await sleep(200);
  t.false(second, 'held back while the output is unread');
  client.resume();
  await settled(conn);
  t.true(second);
});

leakCheck(test);
