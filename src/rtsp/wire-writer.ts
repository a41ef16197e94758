// The main thread's side of an RTSP connection that carries interleaved RTP:
// once a session streams on the connection, every byte the server writes to it
// (responses, RTCP) goes through the connection's wire (src/shared/wire.ts), so
// that it lands between whole media frames, never inside one. The media itself
// is appended and flushed by the data paths; this writer appends the control
// plane's bytes under the wire's lock, flushes what it can on the connection's
// own descriptor, and tries again shortly while anything is left (the viewer's
// socket was full, or a data path held the lock for its turn).

import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { Wire, interleavedFrame, mainTag, type LockSpace } from '../shared/wire.js';

const PEER_GONE = new Set([constants.errno.EPIPE, constants.errno.ECONNRESET, constants.errno.EBADF]);
/** How soon to try again while bytes wait (a lock held for a path's turn, a full socket). */
const RETRY_MS = 2;

export interface WireWriterOptions {
  /** The connection's own socket descriptor; -1 once it is closed. */
  readonly fd: () => number;
  /** Bytes the server may have waiting for the wire before the connection is given up. */
  readonly maxQueuedBytes: number;
  /**
   * The connection cannot be written any more: drop it. `peerGone`: it reset or
   * closed (normal after a TEARDOWN), not a viewer that left too much unread.
   */
  readonly onFailure: (reason: string, peerGone: boolean) => void;
  /** This process's half of the lock's tags (src/shared/wire.ts). */
  readonly lockSpace: LockSpace;
  /**
   * Called once, at close: the wire's memory is no longer this writer's (a shared
   * region's name is removed, unless `handedOver`: the other process of the pair writes on).
   */
  readonly release?: (handedOver: boolean) => void;
}

export class WireWriter {
  readonly wire: Wire;
  readonly #options: WireWriterOptions;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  /** The lock is held across a PLAY (its reply must precede the first media frame). */
  #held = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #retired = false;
  readonly #drainWaiters: Array<() => void> = [];
  readonly #tag: number;
  /** Whether a lock holder (a data path's tag) is dead, so its lock may be taken over: known once the session is open. */
  holderDead: (tag: number) => boolean = () => false;

  /** A writer of the wire in `sab` (src/shared/wire.ts createWire; or one another process of the pair made). */
  constructor(sab: SharedArrayBuffer, options: WireWriterOptions) {
    this.wire = new Wire(sab);
    this.#options = options;
    this.#tag = mainTag(options.lockSpace);
  }

  /** Append `bytes` (a response) after everything written so far. */
  write(bytes: Buffer): void {
    if (this.#closed) return;
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (this.#queuedBytes > this.#options.maxQueuedBytes) {
      this.#fail(`the viewer left more than ${this.#options.maxQueuedBytes} bytes of responses unread`, false);
      return;
    }
    this.#pump();
  }

  /** An RTCP packet on its interleaved channel. */
  writeFrame(channel: number, packet: Buffer): void {
    this.write(interleavedFrame(channel, packet));
  }

  /**
   * Take the wire's lock and keep it until release(): no media frame goes out
   * meanwhile. Resolves once held (the data paths hold it for a turn at a time).
   */
  async hold(): Promise<void> {
    while (!this.#closed && !this.#lock()) await new Promise((resolve) => setTimeout(resolve, 0));
    this.#held = !this.#closed;
  }

  /** Write what is queued, then let the data paths at the wire again. */
  release(): void {
    if (!this.#held) return;
    this.#pump();
    this.#held = false;
    this.wire.unlock(this.#tag);
  }

  /** Bytes written here and not yet appended to the ring (its lock was busy, or the ring full). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Nothing queued here and nothing left in the ring. */
  get drained(): boolean {
    return this.#queue.length === 0 && this.wire.pending() === 0;
  }

  /** Resolves once drained (true), or after `timeoutMs` (false). */
  whenDrained(timeoutMs: number): Promise<boolean> {
    if (this.drained || this.#closed) return Promise.resolve(this.drained);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#drainWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      this.#schedule();
    });
  }

  /**
   * Take this wire out of use for a new one on the same connection: hold its lock
   * for good (a data path still serving the old session can append nothing
   * more: it would be flushed in between the new wire's bytes), send what it
   * holds, and close. False when it did not drain within `timeoutMs`.
   */
  async retire(timeoutMs: number): Promise<boolean> {
    await this.hold();
    const drained = await this.whenDrained(timeoutMs);
    this.wire.retire(); // and in the other process of a pair, whose data path may still follow the old session
    this.#retired = true;
    this.close();
    return drained;
  }

  /** `handedOver`: the other process of a pair writes on (a role switch); the wire's region is its own now. */
  close(handedOver = false): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#held && !this.#retired) this.wire.unlock(this.#tag);
    this.#held = false;
    this.#options.release?.(handedOver);
  }

  /** The wire's lock (Wire.lockIn): taken over from a data path of this process that died holding it, or from the pair's other process once this one writes. */
  #lock(): boolean {
    return this.wire.lockIn(this.#tag, this.#options.lockSpace, this.#options.fd(), this.#holderDead);
  }

  readonly #holderDead = (holder: number): boolean => this.holderDead(holder);

  /** Append what is queued and flush, under the lock (held already, or taken for this pass). */
  #pump(): void {
    if (this.#closed) return;
    const locked = this.#held || this.#lock();
    if (!locked) {
      this.#schedule();
      return;
    }
    try {
      while (this.#queue.length > 0 && this.wire.appendRaw(this.#queue[0])) this.#queuedBytes -= this.#queue.shift()!.length;
      const sent = this.wire.flush(this.#options.fd());
      if (sent < 0 && sent !== -constants.errno.EAGAIN) {
        this.#fail(`cannot write to the connection (${getSystemErrorName(sent)})`, PEER_GONE.has(-sent));
        return;
      }
    } finally {
      if (!this.#held && !this.#closed) this.wire.unlock(this.#tag);
    }
    if (this.drained) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    } else {
      this.#schedule();
    }
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, RETRY_MS);
    this.#timer.unref();
  }

  #fail(reason: string, peerGone: boolean): void {
    this.close();
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
    this.#options.onFailure(reason, peerGone);
  }
}
