// One session's asset for one data path: TS packets and their send times (from
// the asset's index file). The path opens and checks the files here; its reader
// thread reads them ahead of the cursor, a chunk at a time with positioned reads
// (readChunk, ./read-ahead.ts), so the hot loop never waits for the disk and
// allocates nothing. Each data path opens its own file handles and has its own
// reader: a disk fault on one path's files must not reach its twin. It opens
// them without blocking or following a final link (ASSET_OPEN_FLAGS) and checks
// the open asset against the file the catalog approved, so a name swapped since for a FIFO or another file is
// refused instead of streamed or waited on.
//
// Two scopes of failure:
// - AssetError: the asset itself is not what the index describes (another file,
//   not a regular file, gone, shorter than indexed): its twin sees the same.
// - DiskError: a read through this path's own handle failed (EIO, EBADF, ...).

import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { IndexHeader, timeEntryOffset } from '../index-format/index-format.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import { ASSET_NAME_ERRNOS, ASSET_OPEN_FLAGS, fileKind, inodeOf } from '../shared/asset-file.js';
import type { ReadAsset } from '../shared/messages.js';
import { CHUNK_PACKETS, FailureKind } from './chunk-ring.js';
import { NOT_READ, READ_FAILED, ReadAhead } from './read-ahead.js';
import type { ReaderThread } from './reader-thread.js';

export { NOT_READ };

const TIME_BYTES = IndexHeader.TIME_ENTRY_SIZE;

/** A read through this path's handle failed: the path has lost its disk. */
export class DiskError extends Error {
  override readonly name = 'DiskError';
}

/** The asset (or its index) changed or is not usable: every path that reads it sees the same. */
export class AssetError extends Error {
  override readonly name = 'AssetError';
}

/** What the reader needs from an open-session command. */
export type ReaderAsset = ReadAsset;

/** A session's asset as its data path reads it: opened and checked here, read ahead by the path's reader thread. */
export class AssetReader {
  readonly packetCount: number;
  private assetFd: number;
  private indexFd = -1;
  private readonly ahead: ReadAhead;
  private readonly thread: ReaderThread;
  /** The reader's failure, once seen: thrown again by every later read. */
  private failure: Error | undefined;

  constructor(asset: ReaderAsset, thread: ReaderThread) {
    this.packetCount = asset.packetCount;
    this.assetFd = openFile(asset.assetPath, 'asset');
    try {
      checkAsset(asset, this.assetFd);
      this.indexFd = openFile(asset.indexPath, 'index');
      checkIndex(asset, this.indexFd);
    } catch (err) {
      this.closeFiles();
      throw err;
    }
    this.thread = thread;
    this.ahead = new ReadAhead(thread, asset, this.assetFd, this.indexFd);
    // Read the asset's start while the viewer is still setting up: a first PLAY from the
    // start then finds it read on both paths (a PLAY elsewhere moves the window there).
    if (asset.packetCount > 0) this.ahead.locate(0, 1);
  }

  /** Send time of a packet, in 90 kHz ticks from the asset's first packet, or NOT_READ (its read is under way). */
  timeOf(packet: number): number {
    const slot = this.locate(packet, 1);
    return slot < 0 ? NOT_READ : this.ahead.ring.times[slot * CHUNK_PACKETS + packet - this.ahead.ring.first(slot)];
  }

  /**
   * Copy `count` packets starting at `first` into `out` at `offset` and return
   * the send time (ticks) of the first one, or NOT_READ (nothing copied; the
   * read is under way and the reader thread wakes the path when it is done).
   * Throws DiskError or AssetError when the read failed.
   */
  copyPackets(first: number, count: number, out: Buffer, offset: number): number {
    const slot = this.locate(first, count);
    if (slot < 0) return NOT_READ;
    const ring = this.ahead.ring;
    const index = slot * CHUNK_PACKETS + first - ring.first(slot);
    ring.payload.copy(out, offset, index * TS_PACKET_BYTES, (index + count) * TS_PACKET_BYTES);
    return ring.times[index];
  }

  private locate(first: number, count: number): number {
    if (this.failure) throw this.failure;
    const slot = this.ahead.locate(first, count);
    if (slot === NOT_READ && this.thread.failure) {
      // The path's own reader is gone: as good as its disk.
      this.failure = new DiskError(`this path's reader thread failed: ${this.thread.failure.message}`);
      throw this.failure;
    }
    if (slot !== READ_FAILED) return slot;
    const { kind, message } = this.ahead.failure();
    this.failure = kind === FailureKind.ASSET ? new AssetError(message) : new DiskError(message);
    throw this.failure;
  }

  /** Fault injection: lose the disk. The next read fails as a real EBADF would. */
  breakDisk(): void {
    this.ahead.loseFiles();
    this.closeFiles();
  }

  close(): void {
    this.ahead.close();
    this.closeFiles();
  }

  private closeFiles(): void {
    for (const fd of [this.assetFd, this.indexFd]) {
      if (fd >= 0) {
        try { closeSync(fd); } catch { /* already closed */ }
      }
    }
    this.assetFd = -1;
    this.indexFd = -1;
  }
}

/** The open asset must be the approved inode, a regular file, holding every byte the index covers. */
function checkAsset(asset: ReaderAsset, fd: number): void {
  const { assetPath, assetIdentity: approved } = asset;
  const st = fstatOf(fd, assetPath);
  if (!st.isFile()) throw new AssetError(`asset ${assetPath} is ${fileKind(st)} now, not the regular file the catalog approved`);
  const { dev, ino } = inodeOf(st);
  if (dev !== approved.dev || ino !== approved.ino) {
    throw new AssetError(
      `asset ${assetPath} is another file now (device ${dev} inode ${ino}, ${st.size} bytes); the catalog approved device ${approved.dev} inode ${approved.ino}`,
    );
  }
  const covered = asset.packetCount * TS_PACKET_BYTES;
  if (Number(st.size) < covered) throw new AssetError(shrunk(asset, Number(st.size), covered));
}

/** The open index must be a regular file holding every packet's send time. */
function checkIndex(asset: ReaderAsset, fd: number): void {
  const { indexPath } = asset;
  const st = fstatOf(fd, indexPath);
  if (!st.isFile()) throw new AssetError(`index ${indexPath} is ${fileKind(st)}, not a regular file`);
  const needed = timeEntryOffset(asset.timesOffset, asset.packetCount);
  if (Number(st.size) < needed) throw new AssetError(`index ${indexPath} has ${st.size} bytes, shorter than the ${needed} its packet times need`);
}

function shrunk(asset: ReaderAsset, size: number, covered: number): string {
  const { assetPath, assetIdentity: approved } = asset;
  return `asset ${assetPath} was truncated: ${size} bytes now, its index covers ${covered} (the catalog approved ${approved.size} bytes, mtime ${new Date(approved.mtimeMs).toISOString()})`;
}

/**
 * The reader thread's one blocking call: read packets [first, first + count)
 * into `payload` and their send times into `times`, through `assetFd` and
 * `indexFd`. DiskError if a read fails, AssetError if a file ends first.
 */
export function readChunk(asset: ReaderAsset, assetFd: number, indexFd: number, first: number, count: number, payload: Buffer, times: Buffer): void {
  fill(asset, assetFd, 'asset', payload, count * TS_PACKET_BYTES, first * TS_PACKET_BYTES);
  fill(asset, indexFd, 'index', times, count * TIME_BYTES, timeEntryOffset(asset.timesOffset, first));
}

/** Fill buf[0, length) from `position`: DiskError if the read fails, AssetError if the file ends first. */
function fill(asset: ReaderAsset, fd: number, what: 'asset' | 'index', buf: Buffer, length: number, position: number): void {
  const file = what === 'asset' ? asset.assetPath : asset.indexPath;
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = readSync(fd, buf, done, length - done, position + done);
    } catch (err) {
      throw new DiskError(`read of ${file} failed at byte ${position + done}: ${(err as Error).message}`);
    }
    if (n === 0) throw endedEarly(asset, fd, what, position + done);
    done += n;
  }
}

/** The file ended at byte `at`, inside what the index covers: say what was found (one fstat). */
function endedEarly(asset: ReaderAsset, fd: number, what: 'asset' | 'index', at: number): AssetError {
  const file = what === 'asset' ? asset.assetPath : asset.indexPath;
  const size = Number(fstatOf(fd, file).size);
  if (what === 'asset') return new AssetError(`${shrunk(asset, size, asset.packetCount * TS_PACKET_BYTES)}; a read ended at byte ${at}`);
  return new AssetError(`index ${file} ends at byte ${at} (${size} bytes now), inside its packet-time table`);
}

/**
 * Opens without blocking or following a final link. A name that is gone, a
 * link, or not readable is the asset's problem; other errors are this path's.
 */
function openFile(file: string, what: 'asset' | 'index'): number {
  try {
    return openSync(file, ASSET_OPEN_FLAGS);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    const message = `cannot open ${what} ${file}: ${(err as Error).message}`;
    throw errno !== undefined && ASSET_NAME_ERRNOS.has(errno) ? new AssetError(message) : new DiskError(message);
  }
}

function fstatOf(fd: number, file: string): BigIntStats {
  try {
    return fstatSync(fd, { bigint: true });
  } catch (err) {
    throw new DiskError(`fstat of ${file} failed: ${(err as Error).message}`);
  }
}
