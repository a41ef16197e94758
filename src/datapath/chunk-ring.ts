// The memory one session's read-ahead shares between its data path and that
// path's reader thread (./reader-worker.ts): RING_CHUNKS chunk slots, each a run
// of TS packets and their send times, with an Int32 header per slot. A slot's
// state word publishes it: the path writes a request's position, then stores
// REQUESTED; the reader takes it (REQUESTED → READING), fills it, then stores
// DONE, so the bytes are there before the path can see DONE. Only the path
// frees a slot, and only one the reader no longer holds.
//
// Size: RING_CHUNKS × CHUNK_DATAGRAMS datagrams (64 × 1316 bytes, 84 KB, plus
// 1.8 KB of send times) per session and path: what the old synchronous reader
// held in its one chunk. The path refills a chunk as soon as its cursor has
// passed it, so 3 to 4 chunks (48 to 64 datagrams: 150–200 ms of a 3.5 Mbit/s
// stream) are read or being read ahead of the cursor. A cold disk's read (a
// seek of ~10 ms, more with other sessions' reads queued before it on the same
// reader) fits many times in that lead; a chunk of 16 datagrams keeps each read
// small (21 KB), so one slow session's read holds the queue only briefly.

import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import { TS_PACKETS_PER_DATAGRAM } from '../rtp/packetizer.js';

export const CHUNK_DATAGRAMS = 16;
export const CHUNK_PACKETS = TS_PACKETS_PER_DATAGRAM * CHUNK_DATAGRAMS;
export const RING_CHUNKS = 4;

export const ChunkState = { FREE: 0, REQUESTED: 1, READING: 2, DONE: 3, FAILED: 4 } as const;

/** What a failed read means (src/datapath/error-scope.ts): the path's disk, or the asset itself. */
export const FailureKind = { NONE: 0, DISK: 1, ASSET: 2 } as const;

// Header words. WAITING: the path waits for a chunk (the reader wakes it).
// FAILED_KIND / MESSAGE_BYTES: the ring's first failed read (the reader serves a
// failed ring no more). ASSET_FD / INDEX_FD: the handles to read, -1 once lost.
const WAITING = 0;
const ASSET_FD = 1;
const INDEX_FD = 2;
const FAILED_KIND = 3;
const MESSAGE_BYTES = 4;
const SLOTS = 8;
// Per slot: state, first packet, packet count, request number (the reader serves the oldest first).
const STATE = 0;
const FIRST = 1;
const COUNT = 2;
const SEQ = 3;
const SLOT_WORDS = 4;
const HEADER_BYTES = (SLOTS + RING_CHUNKS * SLOT_WORDS) * 4;
const MESSAGE_MAX = 1024;
const TIMES_OFFSET = HEADER_BYTES + MESSAGE_MAX;
const PAYLOAD_OFFSET = TIMES_OFFSET + RING_CHUNKS * CHUNK_PACKETS * 4;
const RING_BYTES = PAYLOAD_OFFSET + RING_CHUNKS * CHUNK_PACKETS * TS_PACKET_BYTES;

export class ChunkRing {
  readonly sab: SharedArrayBuffer;
  private readonly i32: Int32Array;
  private readonly message: Uint8Array;
  /** Send times (90 kHz ticks) of every slot's packets, CHUNK_PACKETS per slot. */
  readonly times: Uint32Array;
  /** Packets of every slot, CHUNK_PACKETS × 188 bytes per slot. */
  readonly payload: Buffer;

  constructor(sab = new SharedArrayBuffer(RING_BYTES)) {
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.message = new Uint8Array(sab, HEADER_BYTES, MESSAGE_MAX);
    this.times = new Uint32Array(sab, TIMES_OFFSET, RING_CHUNKS * CHUNK_PACKETS);
    this.payload = Buffer.from(sab, PAYLOAD_OFFSET, RING_CHUNKS * CHUNK_PACKETS * TS_PACKET_BYTES);
  }

  static readonly BYTES = RING_BYTES;

  // ── Both sides ────────────────────────────────────────────────────────────

  state(slot: number): number {
    return Atomics.load(this.i32, SLOTS + slot * SLOT_WORDS + STATE);
  }

  first(slot: number): number {
    return this.i32[SLOTS + slot * SLOT_WORDS + FIRST];
  }

  count(slot: number): number {
    return this.i32[SLOTS + slot * SLOT_WORDS + COUNT];
  }

  failedKind(): number {
    return Atomics.load(this.i32, FAILED_KIND);
  }

  failureMessage(): string {
    return Buffer.from(this.message.buffer, this.message.byteOffset, this.i32[MESSAGE_BYTES]).toString('utf8');
  }

  files(): { assetFd: number; indexFd: number } {
    return { assetFd: Atomics.load(this.i32, ASSET_FD), indexFd: Atomics.load(this.i32, INDEX_FD) };
  }

  // ── The data path ─────────────────────────────────────────────────────────

  setFiles(assetFd: number, indexFd: number): void {
    Atomics.store(this.i32, ASSET_FD, assetFd);
    Atomics.store(this.i32, INDEX_FD, indexFd);
  }

  /** Ask for packets [first, first + count) in a FREE slot. */
  request(slot: number, first: number, count: number, seq: number): void {
    const base = SLOTS + slot * SLOT_WORDS;
    this.i32[base + FIRST] = first;
    this.i32[base + COUNT] = count;
    this.i32[base + SEQ] = seq;
    Atomics.store(this.i32, base + STATE, ChunkState.REQUESTED);
  }

  /** Withdraw a request the reader has not taken yet; false if it has (READING or DONE). */
  cancel(slot: number): boolean {
    return Atomics.compareExchange(this.i32, SLOTS + slot * SLOT_WORDS + STATE, ChunkState.REQUESTED, ChunkState.FREE) === ChunkState.REQUESTED;
  }

  /** Free a slot the reader is done with (DONE or FAILED). */
  free(slot: number): void {
    Atomics.store(this.i32, SLOTS + slot * SLOT_WORDS + STATE, ChunkState.FREE);
  }

  /** The path waits for a chunk: the reader wakes it when one completes. */
  setWaiting(): void {
    Atomics.store(this.i32, WAITING, 1);
  }

  // ── The reader thread ─────────────────────────────────────────────────────

  /** The oldest REQUESTED slot, or -1. */
  oldestRequest(): number {
    let best = -1;
    let bestSeq = 0;
    for (let slot = 0; slot < RING_CHUNKS; slot++) {
      if (this.state(slot) !== ChunkState.REQUESTED) continue;
      const seq = this.i32[SLOTS + slot * SLOT_WORDS + SEQ];
      if (best < 0 || ((seq - bestSeq) | 0) < 0) {
        best = slot;
        bestSeq = seq;
      }
    }
    return best;
  }

  /** Take a request; false if the path withdrew it meanwhile. */
  take(slot: number): boolean {
    return Atomics.compareExchange(this.i32, SLOTS + slot * SLOT_WORDS + STATE, ChunkState.REQUESTED, ChunkState.READING) === ChunkState.REQUESTED;
  }

  complete(slot: number): void {
    Atomics.store(this.i32, SLOTS + slot * SLOT_WORDS + STATE, ChunkState.DONE);
  }

  /** The read of a slot failed: record why (the ring's first failure only). */
  fail(slot: number, kind: number, message: string): void {
    if (Atomics.load(this.i32, FAILED_KIND) === FailureKind.NONE) {
      const written = Buffer.from(this.message.buffer, this.message.byteOffset, MESSAGE_MAX).write(message, 'utf8');
      this.i32[MESSAGE_BYTES] = written;
      Atomics.store(this.i32, FAILED_KIND, kind);
    }
    Atomics.store(this.i32, SLOTS + slot * SLOT_WORDS + STATE, ChunkState.FAILED);
  }

  /** True (and cleared) if the path waits for a chunk. */
  takeWaiting(): boolean {
    return Atomics.exchange(this.i32, WAITING, 0) !== 0;
  }
}
