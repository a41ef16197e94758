// One request/response stream connection whose requests are handled strictly
// one after another, so replies keep the request order, and whose peer cannot
// make the server's buffers grow without bound: reading stops while too many
// requests wait, unread output beyond a limit drops the connection, and a
// connection being closed gets a grace period to read its last reply, not
// forever. Shared by the RTSP server and the admin server.

import type net from 'node:net';

export interface OrderedConnectionOptions {
  /** Reading stops when this many tasks wait (the running one included)... */
  readonly pauseAt: number;
  /** ...and starts again once no more than this many do. */
  readonly resumeAt: number;
  /** After end(), how long the peer gets to read what was written before the connection is destroyed. */
  readonly closeGraceMs: number;
  /** writeBounded() drops the connection once more than this many written bytes are unsent. */
  readonly maxUnreadBytes: number;
  /** Called before writeBounded() drops the connection (for the log). */
  readonly onUnreadLimit: (unreadBytes: number) => void;
  /** A task threw or rejected; the queue goes on with the next task. */
  readonly onTaskError: (err: unknown) => void;
  /** After each task, wait until no more than this many bytes are unsent before the next. Default: no wait. */
  readonly drainTo?: number;
  /**
   * A drainTo wait longer than this is a peer that does not read: onUnreadLimit,
   * and the connection is dropped (else it holds its slot forever). Default: no bound.
   */
  readonly drainTimeoutMs?: number;
  /** end() destroys the socket as soon as the output is flushed, not only when the peer closes or the grace ends. */
  readonly destroyWhenFlushed?: boolean;
}

export class OrderedConnection {
  readonly socket: net.Socket;
  readonly #options: OrderedConnectionOptions;
  #queue: Promise<void> = Promise.resolve();
  #waiting = 0;
  #readPaused = false;
  #ending = false;

  constructor(socket: net.Socket, options: OrderedConnectionOptions) {
    this.socket = socket;
    this.#options = options;
  }

  /** The socket still takes output. */
  get open(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /** No more requests are read: what is queued is the last the peer gets. */
  get ending(): boolean {
    return this.#ending;
  }

  /** Tasks queued or running. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Stop taking requests (an error reply will end the connection); reading is not resumed again. */
  stopReading(): void {
    this.#ending = true;
  }

  /** Run `task` after every task queued before it; stop reading while too many wait. */
  enqueue(task: () => Promise<void> | void): void {
    this.#waiting++;
    if (this.#waiting >= this.#options.pauseAt && !this.#readPaused) {
      this.#readPaused = true;
      this.socket.pause();
    }
    const { drainTo } = this.#options;
    this.#queue = this.#queue
      .then(task)
      .then(() => (drainTo === undefined ? undefined : this.drained(drainTo)))
      .catch((err: unknown) => this.#options.onTaskError(err))
      .finally(() => {
        this.#waiting--;
        if (this.#readPaused && this.#waiting <= this.#options.resumeAt && !this.#ending) {
          this.#readPaused = false;
          this.socket.resume();
        }
      });
  }

  /** Write unless the connection is closed. */
  write(data: string | Uint8Array): void {
    if (!this.open) return;
    this.socket.write(data);
  }

  /** Write, then drop the connection if the peer has left more than maxUnreadBytes unread. */
  writeBounded(data: string | Uint8Array): void {
    if (!this.open) return;
    this.socket.write(data);
    if (this.socket.writableLength > this.#options.maxUnreadBytes) {
      this.#options.onUnreadLimit(this.socket.writableLength);
      this.socket.destroy();
    }
  }

  /** Send what is written, then close; destroy if the peer does not let go within the grace. */
  end(): void {
    this.#ending = true;
    if (this.socket.destroyed) return;
    if (this.#options.destroyWhenFlushed === true) this.socket.end(() => this.socket.destroy());
    else this.socket.end();
    setTimeout(() => this.socket.destroy(), this.#options.closeGraceMs).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves once the unsent output is down to `limit` bytes (or the connection is gone). */
  drained(limit: number, timeoutMs = this.#options.drainTimeoutMs): Promise<void> {
    const socket = this.socket;
    if (socket.destroyed || socket.writableLength <= limit) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.#options.onUnreadLimit(socket.writableLength);
        socket.destroy(); // 'close' resolves
      }, timeoutMs);
      timer?.unref();
      const done = (): void => {
        clearTimeout(timer);
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }
}
