// A single-producer / single-consumer command queue on a SharedArrayBuffer
// (ringbuf.js). The control plane pushes; one data path pops on its next wake,
// without waiting for its event loop. Frames are a u32 length and UTF-8 JSON:
// commands are rare (session open/close, faults), so JSON is cheap enough here,
// and nothing per datagram goes through this queue.

import { RingBuffer } from 'ringbuf.js';
import { TwinframeError } from '../errors.js';
import type { PathCommand } from './commands.js';

const HEADER_BYTES = 4;
const DEFAULT_QUEUE_BYTES = 256 * 1024;
/** An open-session command is under 1 KiB. */
const BYTES_PER_SESSION = 1024;

/** A path's queue: room for its whole session table at once (a respawned path is sent every open session). */
export function queueCapacityFor(sessionSlots: number): number {
  return Math.max(DEFAULT_QUEUE_BYTES, sessionSlots * BYTES_PER_SESSION);
}

export function createQueueStorage(capacityBytes = DEFAULT_QUEUE_BYTES): SharedArrayBuffer {
  return RingBuffer.getStorageForCapacity(capacityBytes, Uint8Array);
}

export class CommandWriter {
  private readonly ring: RingBuffer;
  private readonly encoder = new TextEncoder();

  constructor(storage: SharedArrayBuffer) {
    this.ring = new RingBuffer(storage, Uint8Array);
  }

  /** Queue a command whole or not at all. */
  push(command: PathCommand): void {
    const body = this.encoder.encode(JSON.stringify(command));
    const frame = new Uint8Array(HEADER_BYTES + body.length);
    new DataView(frame.buffer).setUint32(0, body.length, true);
    frame.set(body, HEADER_BYTES);
    if (this.ring.availableWrite() < frame.length) {
      throw new TwinframeError('TF_COMMAND_QUEUE_FULL', `data path command queue is full (${frame.length} bytes needed)`);
    }
    // One push publishes the whole frame with a single write-pointer store.
    this.ring.push(frame);
  }
}

export class CommandReader {
  private readonly ring: RingBuffer;
  private readonly decoder = new TextDecoder();
  private readonly header = new Uint8Array(HEADER_BYTES);
  private readonly headerView = new DataView(this.header.buffer);

  constructor(storage: SharedArrayBuffer) {
    this.ring = new RingBuffer(storage, Uint8Array);
  }

  /** Cheap check for the hot loop: is a command waiting? */
  hasCommand(): boolean {
    return this.ring.availableRead() >= HEADER_BYTES;
  }

  /** Pop the next command, or undefined when the queue is empty. */
  pop(): PathCommand | undefined {
    if (this.ring.availableRead() < HEADER_BYTES) return undefined;
    this.ring.pop(this.header, HEADER_BYTES);
    const length = this.headerView.getUint32(0, true);
    const body = new Uint8Array(length);
    // The producer publishes a frame whole, so the body is already there.
    const read = this.ring.pop(body, length);
    if (read !== length) throw new Error(`command queue frame cut short: ${read} of ${length} bytes`);
    return JSON.parse(this.decoder.decode(body)) as PathCommand;
  }
}
