// A watcher thread that blocks in the kernel until a descriptor is readable and
// then tells its owner: for a pidfd, the moment the process it names has
// exited (once); for an FdChannel, each time a message is waiting (the owner's
// callback drains it, then the thread waits again). The thread can also wake
// this process's Atomics.wait-ers itself, without a turn of the event loop.
// Needs the native addon (waitReadable): the constructor throws
// PairNativeUnavailableError without it.

import { Worker } from 'node:worker_threads';
import type { WatcherToMain, WatcherWorkerData } from '../shared/messages.js';
import { requirePairNative } from './native-pair.js';

/** Indexes of WatcherWorkerData.control. */
export const WATCH_STOP = 0;
export const WATCH_ARMED = 1;

/** How long the thread sleeps in one wait before it looks at STOP: bounds how long stop() takes. */
export const WATCH_SLICE_MS = 100;

export interface ReadableWatcherOptions {
  readonly once: boolean;
  /** Store 1 at array[index] and Atomics.notify it from the watcher thread, before the callback runs. */
  readonly wake?: { readonly array: Int32Array; readonly index: number };
  /** The descriptor was readable; `at` is process.hrtime.bigint() when the thread saw it. Drain the descriptor here (synchronously). */
  readonly onReadable: (at: bigint) => void;
  readonly onError: (err: Error) => void;
}

export class ReadableWatcher {
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  readonly #worker: Worker;

  constructor(fd: number, options: ReadableWatcherOptions) {
    requirePairNative();
    Atomics.store(this.#control, WATCH_ARMED, 1);
    const workerData: WatcherWorkerData = { fd, once: options.once, control: this.#control, ...(options.wake ? { wake: options.wake } : {}) };
    this.#worker = new Worker(new URL('./native-watcher-thread.js', import.meta.url), { workerData, name: 'twinframe-fd-watcher' });
    this.#worker.on('message', (message: WatcherToMain) => {
      if (message.type === 'error') {
        options.onError(new Error(message.message));
        return;
      }
      try {
        options.onReadable(message.at);
      } finally {
        // Drained (or the callback threw): wait for the next message.
        Atomics.store(this.#control, WATCH_ARMED, 1);
        Atomics.notify(this.#control, WATCH_ARMED);
      }
    });
    this.#worker.on('error', options.onError);
  }

  /** Stop the thread (within WATCH_SLICE_MS); the descriptor stays open, the owner closes it after. */
  async stop(): Promise<void> {
    Atomics.store(this.#control, WATCH_STOP, 1);
    Atomics.notify(this.#control, WATCH_ARMED);
    await this.#worker.terminate();
  }
}
