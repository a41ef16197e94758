// A watcher thread that blocks in the kernel until something happens and then
// tells its owner: a descriptor became readable (a pidfd: the process it names
// has exited; an FdChannel: a message is waiting, each time after the owner's
// callback drained it), or the holder of a life lock released it or died. The
// thread can also wake this process's Atomics.wait-ers itself, without a turn
// of the event loop. Needs the native addon: the constructors throw
// PairNativeUnavailableError without it.

import { Worker } from 'node:worker_threads';
import type { WatchTarget, WatcherToMain, WatcherWorkerData } from '../shared/messages.js';
import { requirePairNative } from './native-pair.js';

/** Indexes of WatcherWorkerData.control. */
export const WATCH_STOP = 0;
export const WATCH_ARMED = 1;

/** How long the thread sleeps in one wait before it looks at STOP: bounds how long stop() takes. */
export const WATCH_SLICE_MS = 100;

/** Store 1 at array[index] and Atomics.notify it from the watcher thread, before the owner hears of it. */
export interface WatchWake {
  readonly array: Int32Array;
  readonly index: number;
}

class WatcherThread {
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  readonly #worker: Worker;

  constructor(target: WatchTarget, wake: WatchWake | undefined, onEvent: (message: WatcherToMain) => void, onError: (err: Error) => void) {
    requirePairNative();
    Atomics.store(this.#control, WATCH_ARMED, 1);
    const workerData: WatcherWorkerData = { target, control: this.#control, ...(wake ? { wake } : {}) };
    this.#worker = new Worker(new URL('./native-watcher-thread.js', import.meta.url), { workerData, name: 'twinframe-watcher' });
    this.#worker.on('message', (message: WatcherToMain) => {
      if (message.type === 'error') {
        onError(new Error(message.message));
        return;
      }
      try {
        onEvent(message);
      } finally {
        // Drained (or the callback threw): wait for the next time.
        Atomics.store(this.#control, WATCH_ARMED, 1);
        Atomics.notify(this.#control, WATCH_ARMED);
      }
    });
    this.#worker.on('error', onError);
  }

  /** Stop the thread (within WATCH_SLICE_MS). What it watched stays open: its owner closes it after. */
  async stop(): Promise<void> {
    Atomics.store(this.#control, WATCH_STOP, 1);
    Atomics.notify(this.#control, WATCH_ARMED);
    await this.#worker.terminate();
  }
}

export interface ReadableWatcherOptions {
  readonly once: boolean;
  readonly wake?: WatchWake;
  /**
   * The descriptor was readable; `at` is process.hrtime.bigint() when the thread saw it.
   * Drain the descriptor here (synchronously). A socket whose peer closed stays
   * readable: stop the watcher then (FdChannel.receive() returned 'closed').
   */
  readonly onReadable: (at: bigint) => void;
  readonly onError: (err: Error) => void;
}

/** Calls back when a descriptor is readable: a pidfd (once), or an FdChannel (each time). */
export class ReadableWatcher {
  readonly #thread: WatcherThread;

  constructor(fd: number, options: ReadableWatcherOptions) {
    this.#thread = new WatcherThread({ kind: 'fd', fd, once: options.once }, options.wake, (message) => {
      if (message.type === 'readable') options.onReadable(message.at);
    }, options.onError);
  }

  stop(): Promise<void> {
    return this.#thread.stop();
  }
}

export interface LifeLockWatcherOptions {
  readonly wake?: WatchWake;
  /** The holder died (died) or released the lock (a role switch); `at` as for ReadableWatcher. The thread has released the lock again. */
  readonly onHolderGone: (at: bigint, died: boolean) => void;
  readonly onError: (err: Error) => void;
}

/** Calls back once, when the holder of a life lock (lifeLockWords) died or released it. */
export class LifeLockWatcher {
  readonly #thread: WatcherThread;

  constructor(lock: Int32Array, options: LifeLockWatcherOptions) {
    this.#thread = new WatcherThread({ kind: 'life-lock', lock }, options.wake, (message) => {
      if (message.type === 'holder-gone') options.onHolderGone(message.at, message.died);
    }, options.onError);
  }

  stop(): Promise<void> {
    return this.#thread.stop();
  }
}
