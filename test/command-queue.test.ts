// The SAB command queue between the control plane and a data path.

import test from 'ava';
import { Worker } from 'node:worker_threads';
import { CommandReader, CommandWriter, createQueueStorage } from '../src/shared/command-queue.js';
import type { PathCommand } from '../src/shared/commands.js';
import { leakCheck } from './helpers/leak-check.js';

test('commands come out whole and in order', (t) => {
  const storage = createQueueStorage(4096);
  const writer = new CommandWriter(storage);
  const reader = new CommandReader(storage);
  t.false(reader.hasCommand());
  const sent: PathCommand[] = [
    { type: 'close-session', slot: 3 },
    { type: 'inject-fault', kind: 'hang' },
    { type: 'sync-marker', token: 42 },
  ];
  for (const c of sent) writer.push(c);
  t.true(reader.hasCommand());
  t.deepEqual([reader.pop(), reader.pop(), reader.pop(), reader.pop()], [...sent, undefined]);
});

test('a command that does not fit is refused whole, and the queue stays usable', (t) => {
  const storage = createQueueStorage(256);
  const writer = new CommandWriter(storage);
  const reader = new CommandReader(storage);
  let pushed = 0;
  const err = t.throws(() => {
    for (;;) {
      writer.push({ type: 'sync-marker', token: pushed });
      pushed++;
    }
  });
  t.is((err as { code?: string }).code, 'TF_COMMAND_QUEUE_FULL');
  for (let i = 0; i < pushed; i++) t.deepEqual(reader.pop(), { type: 'sync-marker', token: i });
  t.is(reader.pop(), undefined);
  writer.push({ type: 'close-session', slot: 1 });
  t.deepEqual(reader.pop(), { type: 'close-session', slot: 1 });
});

test('a consumer thread that never yields to its event loop sees every command', async (t) => {
  const storage = createQueueStorage(64 * 1024);
  const writer = new CommandWriter(storage);
  const url = new URL('../src/shared/command-queue.js', import.meta.url).href;
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ CommandReader }) => {
      const reader = new CommandReader(workerData.storage);
      const tokens = [];
      const deadline = Date.now() + 5000;
      // Busy-poll without ever returning to the event loop, as a data path does.
      while (tokens.length < 500 && Date.now() < deadline) {
        const c = reader.pop();
        if (c) tokens.push(c.token);
      }
      parentPort.postMessage(tokens);
    });
  `, { eval: true, workerData: { storage, url } });
  t.teardown(() => worker.terminate());
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (let i = 0; i < 500; i++) writer.push({ type: 'sync-marker', token: i });
  const tokens = await new Promise<number[]>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  t.deepEqual(tokens, Array.from({ length: 500 }, (_, i) => i));
});

leakCheck(test);
