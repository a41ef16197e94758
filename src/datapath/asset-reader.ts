// Reads one session's asset for one data path: TS packets and their send times
// (from the asset's index file), a chunk at a time with positioned reads, so the
// hot loop makes two syscalls per 64 datagrams and allocates nothing.
// Each data path opens its own file handles: a disk fault on one path's files
// must not reach its twin.

import { closeSync, openSync, readSync } from 'node:fs';
import { TS_PACKET_BYTES, TS_PACKETS_PER_DATAGRAM } from '../rtp/packetizer.js';

const CHUNK_PACKETS = TS_PACKETS_PER_DATAGRAM * 64;

/** An asset read failed: the path has lost its disk. */
export class DiskError extends Error {
  override readonly name = 'DiskError';
}

/** The asset itself is unusable or changed (truncated, replaced, not a regular file): every path sees it. */
export class AssetError extends Error {
  override readonly name = 'AssetError';
}

export class AssetReader {
  readonly packetCount: number;
  private readonly timesOffset: number;
  private assetFd: number;
  private indexFd: number;
  private readonly payload = Buffer.allocUnsafe(CHUNK_PACKETS * TS_PACKET_BYTES);
  private readonly times = new Uint32Array(CHUNK_PACKETS);
  private readonly timesBytes = Buffer.from(this.times.buffer);
  private readonly oneTime = new Uint32Array(1);
  private readonly oneTimeBytes = Buffer.from(this.oneTime.buffer);
  private chunkFirst = 0;
  private chunkCount = 0;

  constructor(assetPath: string, indexPath: string, packetCount: number, timesOffset: number) {
    this.packetCount = packetCount;
    this.timesOffset = timesOffset;
    this.assetFd = openOrThrow(assetPath);
    try {
      this.indexFd = openOrThrow(indexPath);
    } catch (err) {
      closeSync(this.assetFd);
      throw err;
    }
  }

  /** Make packets [first, first + count) available; count never crosses the asset's end. */
  private ensure(first: number, count: number): void {
    if (first >= this.chunkFirst && first + count <= this.chunkFirst + this.chunkCount) return;
    const n = Math.min(CHUNK_PACKETS, this.packetCount - first);
    try {
      readExactly(this.assetFd, this.payload, n * TS_PACKET_BYTES, first * TS_PACKET_BYTES);
      readExactly(this.indexFd, this.timesBytes, n * 4, this.timesOffset + first * 4);
    } catch (err) {
      this.chunkCount = 0;
      throw readError(`asset read failed at packet ${first}`, err);
    }
    this.chunkFirst = first;
    this.chunkCount = n;
  }

  /** Send time of a packet, in 90 kHz ticks from the asset's first packet. */
  timeOf(packet: number): number {
    if (packet >= this.chunkFirst && packet < this.chunkFirst + this.chunkCount) return this.times[packet - this.chunkFirst]!;
    try {
      readExactly(this.indexFd, this.oneTimeBytes, 4, this.timesOffset + packet * 4);
    } catch (err) {
      throw readError(`index read failed at packet ${packet}`, err);
    }
    return this.oneTime[0]!;
  }

  /**
   * Copy `count` packets starting at `first` into `out` at `offset`, and return
   * the send time (ticks) of the first one.
   */
  copyPackets(first: number, count: number, out: Buffer, offset: number): number {
    this.ensure(first, count);
    const start = (first - this.chunkFirst) * TS_PACKET_BYTES;
    this.payload.copy(out, offset, start, start + count * TS_PACKET_BYTES);
    return this.times[first - this.chunkFirst]!;
  }

  /** Fault injection: lose the disk. The next read fails as a real EBADF would. */
  breakDisk(): void {
    this.close();
    this.chunkCount = 0;
  }

  close(): void {
    for (const fd of [this.assetFd, this.indexFd]) {
      if (fd >= 0) {
        try { closeSync(fd); } catch { /* already closed */ }
      }
    }
    this.assetFd = -1;
    this.indexFd = -1;
  }
}

function openOrThrow(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw new DiskError(`cannot open ${path}: ${(err as Error).message}`);
  }
}

/** A failed read with its context: an AssetError stays the asset's, anything else is the disk's. */
function readError(context: string, err: unknown): Error {
  const message = `${context}: ${(err as Error).message}`;
  return err instanceof AssetError ? new AssetError(message) : new DiskError(message);
}

function readExactly(fd: number, buf: Buffer, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    // The index says there is data here: the file was truncated under us.
    if (n === 0) throw new AssetError(`unexpected end of file at byte ${position + done}`);
    done += n;
  }
}
