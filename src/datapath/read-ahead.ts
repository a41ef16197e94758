// One session's read-ahead, as its data path drives it: a window of up to
// RING_CHUNKS consecutive chunks of the asset, requested from this path's reader
// thread ahead of the session's cursor (./chunk-ring.ts). The path never waits
// for a read: a packet that is not read yet answers NOT_READ, and the reads for
// it are under way (a packet outside the window moves the window there at once:
// a seek, a resume, a path that joins a segment late). Nothing here allocates.
//
// A looping session (a broadcast with loop) plays packet 0 right after the
// asset's last packet: its window goes on at packet 0 after the end, so the
// next pass's first chunk is read before the loop point, not waited for.

import { ChunkRing, ChunkState, CHUNK_PACKETS, FailureKind, RING_CHUNKS } from './chunk-ring.js';
import type { ReaderThread } from './reader-thread.js';
import type { ReadAsset } from '../shared/messages.js';

/** A packet whose read is under way. */
export const NOT_READ = -1;
/** The ring's reader failed a read: see failure(). */
export const READ_FAILED = -2;

export class ReadAhead {
  readonly ring = new ChunkRing();
  private readonly thread: ReaderThread;
  private readonly packetCount: number;
  /** The window wraps to packet 0 after the asset's end (a looping session). */
  private readonly loop: boolean;
  /** The reader's id for this ring. */
  readonly id: number;
  /** The window's slots in packet order: a circular list of `length` from `head`. */
  private readonly order = new Int32Array(RING_CHUNKS);
  private head = 0;
  private length = 0;
  /** First packet after the window: where the next request starts. */
  private windowEnd = 0;
  private readonly inWindow = new Uint8Array(RING_CHUNKS);
  /** Slots left out of the window while the reader still fills them: free once it is done. */
  private readonly abandoned = new Uint8Array(RING_CHUNKS);
  private seq = 0;

  /** Reads of `asset` through these (already opened and checked) handles; `loop`: the session starts over at packet 0 after the end. */
  constructor(thread: ReaderThread, asset: ReadAsset, assetFd: number, indexFd: number, loop = false) {
    this.thread = thread;
    this.packetCount = asset.packetCount;
    this.loop = loop;
    this.ring.setFiles(assetFd, indexFd);
    this.id = thread.open(this.ring, asset);
  }

  /**
   * The slot holding packets [first, first + count) (count within one
   * datagram), NOT_READ while its read is under way, or READ_FAILED.
   */
  locate(first: number, count: number): number {
    this.releaseBefore(first);
    for (let i = 0; i < this.length; i++) {
      const slot = this.order[(this.head + i) % RING_CHUNKS];
      const start = this.ring.first(slot);
      const end = start + this.ring.count(slot);
      if (first < start || first >= end) continue;
      if (first + count > end) break; // another segment's alignment: start the window here
      if (i > 0) this.dropFirst(i); // the cursor wrapped to the next pass: the last pass's chunks are behind it
      return this.settled(slot);
    }
    this.moveTo(first);
    return this.length > 0 ? this.settled(this.order[this.head]) : NOT_READ;
  }

  /** A slot as it stands: itself once read, NOT_READ (the reader will wake the path) or READ_FAILED. */
  private settled(slot: number): number {
    let state = this.ring.state(slot);
    if (state === ChunkState.DONE) return slot;
    if (state === ChunkState.FAILED || this.ring.failedKind() !== FailureKind.NONE) return READ_FAILED;
    this.ring.setWaiting();
    state = this.ring.state(slot); // completed before the flag was seen: no wake comes
    return state === ChunkState.DONE ? slot : state === ChunkState.FAILED ? READ_FAILED : NOT_READ;
  }

  /** The cursor has passed every chunk that ends at or before `first`: refill them ahead. */
  private releaseBefore(first: number): void {
    let passed = 0;
    while (passed < this.length) {
      const slot = this.order[(this.head + passed) % RING_CHUNKS];
      if (this.ring.first(slot) + this.ring.count(slot) > first) break;
      passed++;
    }
    if (passed > 0) this.dropFirst(passed);
  }

  /** Drop the window's first `n` chunks (the cursor is past them) and refill after what is left. */
  private dropFirst(n: number): void {
    for (let i = 0; i < n; i++) {
      this.drop(this.order[this.head]);
      this.head = (this.head + 1) % RING_CHUNKS;
      this.length--;
    }
    if (this.length > 0) this.fill();
  }

  /** Start the window at `first`: what it held is dropped, reads start there at once. */
  private moveTo(first: number): void {
    this.dropFirst(this.length);
    this.head = 0;
    this.windowEnd = first;
    this.fill();
  }

  /** Request chunks after the window until it holds RING_CHUNKS or reaches the asset's end (a looping session's goes on at packet 0). */
  private fill(): void {
    let requested = false;
    while (this.length < RING_CHUNKS && this.windowEnd < this.packetCount) {
      const slot = this.freeSlot();
      if (slot < 0) break;
      const count = Math.min(CHUNK_PACKETS, this.packetCount - this.windowEnd);
      this.ring.request(slot, this.windowEnd, count, ++this.seq);
      this.inWindow[slot] = 1;
      this.order[(this.head + this.length) % RING_CHUNKS] = slot;
      this.length++;
      this.windowEnd += count;
      if (this.loop && this.windowEnd === this.packetCount) this.windowEnd = 0;
      requested = true;
    }
    if (requested) this.thread.ring();
  }

  /** Take a slot out of the window: freed now, or once the reader is done with it. */
  private drop(slot: number): void {
    this.inWindow[slot] = 0;
    const state = this.ring.state(slot);
    if (state === ChunkState.DONE || state === ChunkState.FAILED || this.ring.cancel(slot)) this.ring.free(slot);
    else this.abandoned[slot] = 1;
  }

  private freeSlot(): number {
    for (let slot = 0; slot < RING_CHUNKS; slot++) {
      if (this.inWindow[slot] === 1) continue;
      if (this.abandoned[slot] === 1) {
        const state = this.ring.state(slot);
        if (state !== ChunkState.DONE && state !== ChunkState.FAILED) continue;
        this.abandoned[slot] = 0;
        this.ring.free(slot);
      }
      return slot;
    }
    return -1;
  }

  /** Why the reader failed: its kind (FailureKind) and message. */
  failure(): { kind: number; message: string } {
    return { kind: this.ring.failedKind(), message: this.ring.failureMessage() };
  }

  /** The disk fault: the handles are lost (reads fail as EBADF) and every chunk read so far is forgotten. */
  loseFiles(): void {
    this.ring.setFiles(-1, -1);
    this.moveTo(this.packetCount);
  }

  /** The reader lets go of the ring; its handles are about to be closed (and their numbers reused). */
  close(): void {
    this.ring.setFiles(-1, -1);
    this.thread.close(this.id);
  }
}
