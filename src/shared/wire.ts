// The wire: the outgoing bytes of one RTSP connection that carries RTP
// interleaved (RFC 2326 §10.12), shared by every thread that writes to it — the
// active data path (media frames), its twin after a switch, and the main thread
// (RTSP responses, RTCP reports). README, "RTP over the RTSP connection".
//
//   SharedArrayBuffer: LOCK | TAIL | COMMIT {head, media cursor} | CAPACITY | … | ring bytes
//
// Bytes enter the ring as whole frames and leave it in order from the tail, by
// whoever holds the LOCK, whatever part of a frame the socket takes: so a frame
// is never split between writers, lost or repeated, and a response is never cut
// into by media. Appending publishes the head together with the media cursor
// after the last frame appended (one 64-bit store in the addon), so a path that
// takes over knows exactly which datagrams a dead sender put in the ring, and
// flushing stores the new tail in the same native call as the send: nothing a
// thread that dies in this process did is ever done twice or lost (a killed
// process may die between a send and that store: see the pair's claim below).
// The ring is bounded: a client
// that does not read fills it, and its datagrams stay due until the session's
// backlog bound ends it (src/datapath/path-session.ts).
//
// Needs the native addon (an fd shared across threads, sendmsg, the atomic
// commit): without it RTP over TCP is refused at SETUP (461).
//
// A process pair maps the same wire in both processes (its memory is a shared
// region, src/pair-process/shared-wires.ts), and their threads' tags would
// collide: each process takes one half of the tag space (its lock space, bit
// 30). One process writes at a time, the one the WRITER word names: a thread
// that took the lock while it names the other process lets go at once, and a
// lock held by a thread of the other process is taken over only while it names
// this one. The WRITER word changes hands twice: a process that hands sending
// over (a role switch) marks it HANDING (nobody writes or takes a lock over),
// and names the other once none of its threads holds the lock; and a survivor
// names itself (claim) once every thread of the dead
// primary that wrote wires is past its last system call, and marks the wire
// RESYNC: its first writer then moves the tail, under the lock and before it
// sends, to where the socket really is (the kernel's count of bytes written,
// against BASE, the count when the wire was made), so a send the dead writer
// made but did not record is not made again. A retired wire (RETIRED) is
// written by nobody.

import { nativeAddon, type NativeAddon } from './native.js';

/** Int32 words of the header (native/src/twinframe_native.c, WIRE_*: keep in step). */
const WIRE_I32 = {
  /** 0 free, else the holder's tag (wireTag): a data path's claim tag, or the main thread's (mainTag), in its process's space. */
  LOCK: 0,
  /** Bytes flushed so far (wraps at 2^32). */
  TAIL: 1,
  /** Bytes appended so far (wraps): the low half of the 64-bit commit word. */
  HEAD: 2,
  /** The media cursor after the last media frame appended (low 32 bits): the high half. */
  MEDIA: 3,
  /** Ring bytes, a power of two. */
  CAPACITY: 4,
  /** The lock space whose process writes (a process pair), or RETIRED. */
  WRITER: 5,
  /** The socket's byte count (socketBytesWritten, low 32 bits) when the wire was made: TAIL counts from there. */
  BASE: 6,
  /** 1: claimed from a dead writer, the tail is checked against the socket before the next send. */
  RESYNC: 7,
  /** 1: BASE holds the socket's count (it could be read when the wire was made). */
  BASE_KNOWN: 8,
} as const;
/** WRITER of a wire taken out of use for a new one on the same connection. */
const RETIRED = 2;
/** WRITER while a role switch hands the wire over: nobody writes, nobody takes a lock over, until the sender's threads let go. */
const HANDING = 3;
const DATA_OFFSET = 64;

/** A lock tag's process half: set in the tags of a process in lock space 1. */
const SPACE_BIT = 0x40000000;
/** The main thread's tag within a space: never a data path's claim tag ((incarnation << 1 | path) + 1 stays far below). */
const MAIN_LOCAL_TAG = 0x3fffffff;
/** The tag a survivor's claim locks with (the takeover thread, or the main thread): never taken for a dead path's. */
const CLAIM_LOCAL_TAG = 0x3ffffffe;

/** Which half of a pair's tag space a process's threads lock wires with. */
export type LockSpace = 0 | 1;

/** A thread's tag for a wire's lock: its own tag (a claim tag, or MAIN_LOCAL) in its process's space. */
export function wireTag(local: number, space: LockSpace): number {
  return space === 1 ? local | SPACE_BIT : local;
}

/** The main thread's tag in `space`. */
export function mainTag(space: LockSpace): number {
  return wireTag(MAIN_LOCAL_TAG, space);
}

/** `holder` locked from the other process of a pair (which no longer writes, as this one does). */
export function isForeignHolder(holder: number, space: LockSpace): boolean {
  return ((holder & SPACE_BIT) !== 0) !== (space === 1);
}

/** A holder's own tag, without its space. */
export function localTag(holder: number): number {
  return holder & ~SPACE_BIT;
}

let processSpace: LockSpace = 0;

/** This process's lock space: 0, unless it joined a primary in space 0 as its standby (it keeps it after a takeover). */
export function processLockSpace(): LockSpace {
  return processSpace;
}

/** A standby takes the half its primary does not use, before it follows any wire. */
export function setProcessLockSpace(space: LockSpace): void {
  processSpace = space;
}

/** The addon, when it is built with the wire functions. */
export const wireAddon: NativeAddon | undefined = typeof nativeAddon?.wireFlush === 'function' ? nativeAddon : undefined;

/** The bytes of a wire whose ring holds at least `bytes` (rounded up to a power of two). */
function wireBytes(bytes: number): number {
  let capacity = 4096;
  while (capacity < bytes) capacity *= 2;
  return DATA_OFFSET + capacity;
}

/**
 * A new wire in `memory` (zeroed, wireBytes long; default: this process's heap),
 * written by this process, for the connection `fd`: everything written to it so
 * far must be in the kernel already (BASE counts from there).
 */
export function createWire(bytes: number, fd: number, memory: (size: number) => SharedArrayBuffer = (size) => new SharedArrayBuffer(size)): SharedArrayBuffer {
  const sab = memory(wireBytes(bytes));
  const words = new Int32Array(sab);
  Atomics.store(words, WIRE_I32.CAPACITY, sab.byteLength - DATA_OFFSET);
  Atomics.store(words, WIRE_I32.WRITER, processSpace);
  const written = fd >= 0 && wireAddon ? wireAddon.socketBytesWritten(fd) : -1;
  if (written >= 0) {
    Atomics.store(words, WIRE_I32.BASE, low32(written));
    Atomics.store(words, WIRE_I32.BASE_KNOWN, 1);
  }
  return sab;
}

/** The low 32 bits of a byte count up to 2^53, as the wire's positions keep them. */
function low32(count: number): number {
  return (count % 2 ** 32) | 0;
}

/**
 * Bound what the kernel queues on an interleaved connection to `bytes` (SO_SNDBUF;
 * without it the send buffer grows to megabytes, and a viewer that stops reading
 * would be noticed only seconds of stream later). TCP still carries `bytes` per
 * round trip, so a bound of the stream's backlog allows round trips that long.
 */
export function limitSendBuffer(fd: number, bytes: number): void {
  wireAddon?.setSendBuffer(fd, bytes);
}

export class Wire {
  readonly sab: SharedArrayBuffer;
  /** The whole buffer as Int32 words: the header, and the view the addon takes. */
  readonly words: Int32Array;
  readonly capacity: number;
  private readonly addon: NativeAddon;

  constructor(sab: SharedArrayBuffer) {
    if (!wireAddon) throw new Error('the wire needs the native addon');
    this.addon = wireAddon;
    this.sab = sab;
    this.words = new Int32Array(sab);
    this.capacity = Atomics.load(this.words, WIRE_I32.CAPACITY);
  }

  /** Take the lock: 0 when taken, else the current holder's tag. */
  lock(tag: number): number {
    return Atomics.compareExchange(this.words, WIRE_I32.LOCK, 0, tag);
  }

  /** Replace a dead holder's lock with ours; true when it was still `holder`'s. */
  steal(holder: number, tag: number): boolean {
    return Atomics.compareExchange(this.words, WIRE_I32.LOCK, holder, tag) === holder;
  }

  unlock(tag: number): void {
    Atomics.compareExchange(this.words, WIRE_I32.LOCK, tag, 0);
  }

  /** Whether the process of `space` writes this wire (else the other, or nobody: retired). */
  writesHere(space: LockSpace): boolean {
    return Atomics.load(this.words, WIRE_I32.WRITER) === space;
  }

  /**
   * A role switch, first half: nobody writes and nobody takes a lock over (a
   * holder of this process finishes), until handTo. A survivor's claim takes a
   * wire left in this state by a death (its tail checked, as after any death).
   */
  beginHandOver(space: LockSpace): void {
    Atomics.compareExchange(this.words, WIRE_I32.WRITER, space, HANDING);
  }

  /** A role switch, second half (no thread of this process holds the lock): the process of `space` writes from now on. */
  handTo(space: LockSpace): void {
    Atomics.compareExchange(this.words, WIRE_I32.WRITER, HANDING, space);
  }

  /** Nobody writes this wire again (a new one replaced it on the connection). */
  retire(): void {
    Atomics.store(this.words, WIRE_I32.WRITER, RETIRED);
  }

  get retired(): boolean {
    return Atomics.load(this.words, WIRE_I32.WRITER) === RETIRED;
  }

  /** The lock's holder now (0: free). */
  holder(): number {
    return Atomics.load(this.words, WIRE_I32.LOCK);
  }

  /**
   * Take the lock as `tag`, a thread of `space` that writes on the socket `fd`:
   * free, or held by a thread of the other process while the WRITER word names
   * this one (that process handed over or was claimed from: its threads write
   * nothing more), or by a data path of this process that `deadHere` says is
   * dead (never this process's main thread or a claim). Then keep it only if
   * this process writes the wire (else let go: false), the tail checked against
   * the socket first if the wire was just claimed.
   */
  lockIn(tag: number, space: LockSpace, fd: number, deadHere: (holder: number) => boolean): boolean {
    const holder = this.lock(tag);
    if (holder !== 0) {
      const dead = isForeignHolder(holder, space) ? this.writesHere(space) : localTag(holder) < CLAIM_LOCAL_TAG && deadHere(localTag(holder));
      if (!dead || !this.steal(holder, tag)) return false;
    }
    if (!this.writesHere(space)) {
      this.unlock(tag);
      return false;
    }
    if (Atomics.load(this.words, WIRE_I32.RESYNC) === 1) this.resync(fd);
    return true;
  }

  /**
   * A survivor, once every writer of the dead primary is past its last system
   * call: this process writes from now on (a lock the dead one held is taken
   * over), and its first writer checks the tail against the socket. True once
   * claimed or when there is nothing to claim (retired, or this process writes
   * already); false when the lock is busy (a thread of this process holds it for
   * a moment, finding the wire not its own, or the other claim, takeover thread
   * or main thread, holds it: try again).
   */
  claim(space: LockSpace): boolean {
    if (this.retired || this.writesHere(space)) return true;
    const tag = wireTag(CLAIM_LOCAL_TAG, space);
    const holder = this.lock(tag);
    if (holder !== 0 && (!isForeignHolder(holder, space) || !this.steal(holder, tag))) return false;
    // Under the lock: a claim of the other thread (takeover thread, main thread) may have come first.
    if (!this.retired && !this.writesHere(space)) {
      Atomics.store(this.words, WIRE_I32.RESYNC, 1);
      Atomics.store(this.words, WIRE_I32.WRITER, space);
    }
    this.unlock(tag);
    return true;
  }

  /**
   * Under the lock, on a claimed wire: the tail moves to where the socket `fd`
   * really is (a send the dead writer made but did not record). Past the head it
   * cannot be (the socket took only what the ring held): the tail stays then.
   */
  private resync(fd: number): void {
    // Without the count at creation there is nothing to compare with: the tail stays (a send not recorded may repeat).
    if (Atomics.load(this.words, WIRE_I32.BASE_KNOWN) === 1) {
      const written = fd >= 0 ? this.addon.socketBytesWritten(fd) : -1;
      if (written < 0) return; // not read now: the next writer tries again
      const flushed = (low32(written) - Atomics.load(this.words, WIRE_I32.BASE)) >>> 0;
      const moved = (flushed - (Atomics.load(this.words, WIRE_I32.TAIL) >>> 0)) >>> 0;
      if (moved <= this.pending()) Atomics.store(this.words, WIRE_I32.TAIL, flushed | 0);
    }
    Atomics.store(this.words, WIRE_I32.RESYNC, 0);
  }

  /** Bytes appended and not yet flushed. */
  pending(): number {
    return (Atomics.load(this.words, WIRE_I32.HEAD) - Atomics.load(this.words, WIRE_I32.TAIL)) >>> 0;
  }

  /** The media cursor (low 32 bits) after the last media frame in the ring. Read under the lock. */
  mediaNext(): number {
    return Atomics.load(this.words, WIRE_I32.MEDIA) >>> 0;
  }

  /** Say that the next media frame is datagram `cursor` (a new session on the connection). Under the lock. */
  setMediaNext(cursor: number): void {
    this.addon.wireSetMedia(this.words, cursor >>> 0);
  }

  /**
   * Append datagrams first..first+count-1 as interleaved frames on `channel`, the
   * first being media cursor `cursor`; returns how many fitted. Under the lock.
   */
  appendMedia(buffers: readonly Buffer[], lengths: Int32Array, first: number, count: number, channel: number, cursor: number): number {
    return this.addon.wireAppend(this.words, buffers, lengths, first, count, channel, cursor >>> 0);
  }

  /** Append bytes as they are (a response, an RTCP frame with its prefix); false when they do not fit now. Under the lock. */
  appendRaw(bytes: Buffer): boolean {
    RAW_LENGTH[0] = bytes.length;
    RAW_BUFFER[0] = bytes;
    try {
      return this.addon.wireAppend(this.words, RAW_BUFFER, RAW_LENGTH, 0, 1, -1, 0) === 1;
    } finally {
      RAW_BUFFER[0] = EMPTY;
    }
  }

  /** Send what the ring holds on `fd`: the bytes sent, or -errno (-EAGAIN: the socket's buffer is full). Under the lock. */
  flush(fd: number): number {
    return this.addon.wireFlush(fd, this.words);
  }
}

const EMPTY = Buffer.alloc(0);
const RAW_BUFFER: Buffer[] = [EMPTY];
const RAW_LENGTH = new Int32Array(1);

/** An interleaved frame's 4-byte prefix and payload, for appendRaw (RTCP from the main thread). */
export function interleavedFrame(channel: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame[0] = 0x24;
  frame[1] = channel;
  frame.writeUInt16BE(payload.length, 2);
  payload.copy(frame, 4);
  return frame;
}
