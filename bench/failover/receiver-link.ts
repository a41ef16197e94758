// The bench's handle on the receiver: a child process (default) or a worker
// thread of the bench, spoken to with ToReceiver / FromReceiver messages.

import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { EngineAsset } from '../../src/engine/engine.js';
import { sleep, withTimeout } from '../lib.js';
import type { FromReceiver, ReceiverInit, SocketData, ToReceiver } from './model.js';

/** What the bench's own waits are told when the receiver process or thread fails. */
interface ReceiverDied {
  readonly type: 'error';
  readonly message: string;
}

/** The bench's handle on the receiver, in a child process (default) or a worker thread of this process. */
export class Receiver {
  readonly ports: number[] = [];
  readonly recvBuffer: number[] = [];
  private last: number[] = [];
  private handlers: Array<(m: FromReceiver | ReceiverDied) => void> = [];
  private policyInfo: { policy: string; policyError: string | undefined } = { policy: '?', policyError: undefined };

  private constructor(
    private readonly post: (msg: ToReceiver) => void,
    private readonly stop: () => Promise<void>,
    readonly kind: 'process' | 'thread',
  ) {}

  get policy(): string {
    return this.policyInfo.policy;
  }

  get policyError(): string | undefined {
    return this.policyInfo.policyError;
  }

  static async open(kind: 'process' | 'thread', asset: EngineAsset, times: Uint32Array, rt: boolean): Promise<Receiver> {
    const init: ReceiverInit = { asset, times, rt };
    let receiver: Receiver;
    if (kind === 'thread') {
      const worker = new Worker(new URL('./receiver-thread.js', import.meta.url), { workerData: init, name: 'bench-receiver' });
      receiver = new Receiver((m) => worker.postMessage(m), async () => { await worker.terminate(); }, kind);
      worker.on('message', (m: FromReceiver) => receiver.dispatch(m));
      worker.on('error', (err) => receiver.fail(err));
    } else {
      const child = fork(fileURLToPath(new URL('./receiver-process.js', import.meta.url)), [], {
        serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      receiver = new Receiver((m) => { if (child.connected) child.send(m); }, async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill();
          await Promise.race([exited, sleep(2000)]);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      }, kind);
      child.on('message', (m: FromReceiver) => receiver.dispatch(m));
      child.on('error', (err) => receiver.fail(err));
      child.on('exit', (code, signal) => { if (code !== 0) receiver.fail(new Error(`receiver process exited (${code ?? signal})`)); });
      child.send({ type: 'init', init } satisfies ToReceiver);
    }
    try {
      const booted = await withTimeout(receiver.next('booted'), 15_000, 'receiver start');
      receiver.policyInfo = { policy: booted.policy, policyError: booted.policyError };
    } catch (err) {
      await receiver.stop();
      throw err;
    }
    return receiver;
  }

  private dispatch(m: FromReceiver): void {
    if (m.type === 'live') {
      this.last = m.last;
      return;
    }
    for (const h of [...this.handlers]) h(m);
  }

  /** The receiver died: every pending wait fails with why. */
  private fail(err: Error): void {
    for (const h of [...this.handlers]) h({ type: 'error', message: err.message });
  }

  private next<T extends FromReceiver['type']>(type: T): Promise<FromReceiver & { type: T }> {
    return new Promise((resolve, reject) => {
      const h = (m: FromReceiver | ReceiverDied): void => {
        if (m.type === 'error') {
          this.handlers = this.handlers.filter((x) => x !== h);
          reject(new Error(m.message));
        } else if (m.type === type) {
          this.handlers = this.handlers.filter((x) => x !== h);
          resolve(m as FromReceiver & { type: T });
        }
      };
      this.handlers.push(h);
    });
  }

  /** Bind `count` more sockets; returns their indices and ports. */
  async add(count: number): Promise<Array<{ sock: number; port: number }>> {
    const reply = this.next('added');
    this.post({ type: 'add', count });
    const added = await withTimeout(reply, 10_000, 'receiver sockets');
    this.ports.push(...added.ports);
    this.recvBuffer.push(...added.recvBuffer);
    return added.ports.map((port, k) => ({ sock: added.first + k, port }));
  }

  send(msg: ToReceiver): void {
    this.post(msg);
  }

  /** Last arrival on a socket (shared-clock ms, as of the last 'live' report, at most ~50 ms old). */
  lastArrivalMs(sock: number): number {
    return this.last[sock] ?? 0;
  }

  async collect(): Promise<SocketData[]> {
    const data = withTimeout(this.next('data'), 120_000, 'receiver data');
    this.post({ type: 'collect' });
    try {
      return (await data).sockets;
    } finally {
      await this.stop();
    }
  }

  async close(): Promise<void> {
    await this.stop();
  }
}
