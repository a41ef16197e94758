// Reads one session's asset for one data path: TS packets and their send times
// (from the asset's index file), a chunk at a time with positioned reads, so the
// hot loop makes two syscalls per 64 datagrams and allocates nothing.
// Each data path opens its own file handles: a disk fault on one path's files
// must not reach its twin. It opens them without blocking or following a final
// link (ASSET_OPEN_FLAGS) and checks the open asset against the file the
// catalog approved, so a name swapped since for a FIFO or another file is
// refused instead of streamed or waited on.
//
// Two scopes of failure:
// - AssetError: the asset itself is not what the index describes (another file,
//   not a regular file, gone, shorter than indexed): its twin sees the same.
// - DiskError: a read through this path's own handle failed (EIO, EBADF, ...).

import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { IndexHeader, timeEntryOffset } from '../index-format/index-format.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import { TS_PACKETS_PER_DATAGRAM } from '../rtp/packetizer.js';
import { ASSET_NAME_ERRNOS, ASSET_OPEN_FLAGS, fileKind, inodeOf } from '../shared/asset-file.js';
import type { OpenSessionCommand } from '../shared/commands.js';

const CHUNK_PACKETS = TS_PACKETS_PER_DATAGRAM * 64;
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
export type ReaderAsset = Pick<OpenSessionCommand, 'assetPath' | 'indexPath' | 'packetCount' | 'timesOffset' | 'assetIdentity'>;

export class AssetReader {
  readonly packetCount: number;
  private readonly asset: ReaderAsset;
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

  constructor(asset: ReaderAsset) {
    this.asset = asset;
    this.packetCount = asset.packetCount;
    this.timesOffset = asset.timesOffset;
    this.assetFd = openFile(asset.assetPath, 'asset');
    this.indexFd = -1;
    try {
      this.checkAsset();
      this.indexFd = openFile(asset.indexPath, 'index');
      this.checkIndex();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The open asset must be the approved inode, a regular file, holding every byte the index covers. */
  private checkAsset(): void {
    const { assetPath, assetIdentity: approved } = this.asset;
    const st = fstatOf(this.assetFd, assetPath);
    if (!st.isFile()) throw new AssetError(`asset ${assetPath} is ${fileKind(st)} now, not the regular file the catalog approved`);
    const { dev, ino } = inodeOf(st);
    if (dev !== approved.dev || ino !== approved.ino) {
      throw new AssetError(
        `asset ${assetPath} is another file now (device ${dev} inode ${ino}, ${st.size} bytes); the catalog approved device ${approved.dev} inode ${approved.ino}`,
      );
    }
    const covered = this.packetCount * TS_PACKET_BYTES;
    if (Number(st.size) < covered) throw new AssetError(this.shrunk(Number(st.size), covered));
  }

  /** The open index must be a regular file holding every packet's send time. */
  private checkIndex(): void {
    const { indexPath } = this.asset;
    const st = fstatOf(this.indexFd, indexPath);
    if (!st.isFile()) throw new AssetError(`index ${indexPath} is ${fileKind(st)}, not a regular file`);
    const needed = timeEntryOffset(this.timesOffset, this.packetCount);
    if (Number(st.size) < needed) throw new AssetError(`index ${indexPath} has ${st.size} bytes, shorter than the ${needed} its packet times need`);
  }

  private shrunk(size: number, covered: number): string {
    const { assetPath, assetIdentity: approved } = this.asset;
    return `asset ${assetPath} was truncated: ${size} bytes now, its index covers ${covered} (the catalog approved ${approved.size} bytes, mtime ${new Date(approved.mtimeMs).toISOString()})`;
  }

  /** The file ended at byte `at`, inside what the index covers: say what was found (one fstat, off the hot path). */
  private endedEarly(fd: number, file: string, at: number): AssetError {
    const size = Number(fstatOf(fd, file).size);
    if (fd === this.assetFd) return new AssetError(`${this.shrunk(size, this.packetCount * TS_PACKET_BYTES)}; a read ended at byte ${at}`);
    return new AssetError(`index ${file} ends at byte ${at} (${size} bytes now), inside its packet-time table`);
  }

  /** Make packets [first, first + count) available; count never crosses the asset's end. */
  private ensure(first: number, count: number): void {
    if (first >= this.chunkFirst && first + count <= this.chunkFirst + this.chunkCount) return;
    const n = Math.min(CHUNK_PACKETS, this.packetCount - first);
    this.chunkCount = 0; // a failed read below leaves no half-filled chunk behind
    this.fill(this.assetFd, this.asset.assetPath, this.payload, n * TS_PACKET_BYTES, first * TS_PACKET_BYTES);
    this.fill(this.indexFd, this.asset.indexPath, this.timesBytes, n * TIME_BYTES, timeEntryOffset(this.timesOffset, first));
    this.chunkFirst = first;
    this.chunkCount = n;
  }

  /** Fill buf[0, length) from `position`: DiskError if the read fails, AssetError if the file ends first. */
  private fill(fd: number, file: string, buf: Buffer, length: number, position: number): void {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(fd, buf, done, length - done, position + done);
      } catch (err) {
        throw new DiskError(`read of ${file} failed at byte ${position + done}: ${(err as Error).message}`);
      }
      if (n === 0) throw this.endedEarly(fd, file, position + done);
      done += n;
    }
  }

  /** Send time of a packet, in 90 kHz ticks from the asset's first packet. */
  timeOf(packet: number): number {
    if (packet >= this.chunkFirst && packet < this.chunkFirst + this.chunkCount) return this.times[packet - this.chunkFirst];
    this.fill(this.indexFd, this.asset.indexPath, this.oneTimeBytes, TIME_BYTES, timeEntryOffset(this.timesOffset, packet));
    return this.oneTime[0];
  }

  /**
   * Copy `count` packets starting at `first` into `out` at `offset`, and return
   * the send time (ticks) of the first one.
   */
  copyPackets(first: number, count: number, out: Buffer, offset: number): number {
    this.ensure(first, count);
    const start = (first - this.chunkFirst) * TS_PACKET_BYTES;
    this.payload.copy(out, offset, start, start + count * TS_PACKET_BYTES);
    return this.times[first - this.chunkFirst];
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
