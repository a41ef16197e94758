// A UDP receiver on its own thread, for tests that block the main thread: it
// stamps arrivals on the shared clock while the main thread cannot run.

import { Worker } from 'node:worker_threads';

const source = `
const { parentPort } = require('node:worker_threads');
const dgram = require('node:dgram');
const socket = dgram.createSocket('udp4');
const arrivals = [];
socket.on('message', (m) => arrivals.push([m.length >= 12 ? m.readUInt16BE(2) : -1, Number(process.hrtime.bigint()) / 1e6]));
socket.bind(0, '127.0.0.1', () => {
  socket.setRecvBufferSize(4 * 1024 * 1024);
  parentPort.postMessage({ port: socket.address().port });
});
parentPort.on('message', () => { socket.close(); parentPort.postMessage({ arrivals }); });
`;

export interface Arrival {
  readonly seq: number;
  readonly atMs: number;
}

export class ThreadReceiver {
  private constructor(private readonly worker: Worker, readonly port: number) {}

  static async open(): Promise<ThreadReceiver> {
    const worker = new Worker(source, { eval: true });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        worker.once('message', (m: { port: number }) => resolve(m.port));
        worker.once('error', reject);
      });
      return new ThreadReceiver(worker, port);
    } catch (err) {
      await worker.terminate();
      throw err;
    }
  }

  /** Stop receiving and return every arrival (sequence number, shared-clock ms); the thread ends either way. */
  async stop(): Promise<Arrival[]> {
    try {
      const result = new Promise<Array<[number, number]>>((resolve) => this.worker.once('message', (m: { arrivals: Array<[number, number]> }) => resolve(m.arrivals)));
      this.worker.postMessage('stop');
      const arrivals = await result;
      return arrivals.map(([seq, atMs]) => ({ seq, atMs }));
    } finally {
      await this.close();
    }
  }

  /** End the thread and its socket; safe to call again, for finally/t.teardown. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
