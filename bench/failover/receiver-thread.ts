// Entry of the receiver as a worker thread of the bench (--receiver thread): its
// init is the workerData, commands and reports go over parentPort.

import { parentPort, workerData } from 'node:worker_threads';
import type { ReceiverInit } from './model.js';
import { runReceiver } from './receiver.js';

const port = parentPort;
if (port === null) throw new Error('receiver-thread.js runs as a worker thread (new Worker), not on its own');
runReceiver(workerData as ReceiverInit, {
  post: (msg, transfer) => port.postMessage(msg, transfer ?? []),
  onMessage: (handler) => port.on('message', handler),
  close: () => port.close(),
});
