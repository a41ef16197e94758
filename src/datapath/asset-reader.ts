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
import { IndexHeader, parseHeader, parseMeta, timeEntryOffset } from '../index-format/index-format.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import type { TrickKey, TrickProgram, TrickSource } from '../mpegts/trick.js';
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

/** Trick play's view of an asset: its key frames and the program the trick stream announces. */
export interface TrickTable {
  readonly keys: readonly TrickKey[];
  readonly program: TrickProgram;
}

/** A session's asset as its data path reads it: opened and checked here, read ahead by the path's reader thread. */
export class AssetReader implements TrickSource {
  readonly packetCount: number;
  private assetFd: number;
  private indexFd = -1;
  private readonly ahead: ReadAhead;
  private readonly thread: ReaderThread;
  /** The reader's failure, once seen: thrown again by every later read. */
  private failure: Error | undefined;
  /** Trick play: the key-frame table once the reader thread read it (asked for on first use). */
  private trick: TrickTable | undefined;
  private trickAsked = false;
  // Trick play's cached scan: packet `scanPacket` is the `scanK`-th video packet with a payload of the key frame at `scanKey`.
  private scanKey = -1;
  private scanK = -1;
  private scanPacket = -1;
  private videoPid = -1;

  /** `loop`: a looping session, read ahead across its loop point (read-ahead.ts). */
  constructor(asset: ReaderAsset, thread: ReaderThread, loop = false) {
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
    this.ahead = new ReadAhead(thread, asset, this.assetFd, this.indexFd, loop);
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

  /**
   * The key-frame table, or undefined while the reader thread reads it (asked
   * once; the thread wakes the path with the answer). Throws AssetError or
   * DiskError when that read failed.
   */
  trickTable(): TrickTable | undefined {
    if (this.trick) return this.trick;
    if (this.failure) throw this.failure;
    if (!this.trickAsked) {
      this.trickAsked = true;
      this.thread.askKeys(this.ahead.id);
    }
    const answer = this.thread.keysFor(this.ahead.id);
    if (answer === undefined) {
      if (this.thread.failure) throw (this.failure = new DiskError(`this path's reader thread failed: ${this.thread.failure.message}`));
      return undefined;
    }
    if (answer.type === 'keys-failed') throw (this.failure = answer.failure === FailureKind.ASSET ? new AssetError(answer.message) : new DiskError(answer.message));
    this.trick = decodeKeyTable(answer.table);
    this.videoPid = this.trick.program.videoPid;
    return this.trick;
  }

  /**
   * TrickSource: copy the `k`-th packet of the video PID with a payload from
   * `key`'s PES. The scan from the key frame's first packet is cached, so the
   * packets of one key frame in order cost one step each. False while a packet
   * on the way is not read yet (its read is under way).
   */
  copyVideoPacket(key: TrickKey, k: number, out: Uint8Array, at: number): boolean {
    if (key.packet !== this.scanKey || k < this.scanK) {
      this.scanKey = key.packet;
      this.scanK = -1;
      this.scanPacket = key.packet - 1;
    }
    const ring = this.ahead.ring;
    while (this.scanK < k) {
      const next = this.scanPacket + 1;
      if (next >= this.packetCount) throw new AssetError(`key frame at packet ${key.packet} has fewer than ${k + 1} video packets before the asset's end`);
      const slot = this.locate(next, 1);
      if (slot < 0) return false;
      const o = (slot * CHUNK_PACKETS + next - ring.first(slot)) * TS_PACKET_BYTES;
      const p = ring.payload;
      const pid = ((p[o + 1] & 0x1f) << 8) | p[o + 2];
      if (pid === this.videoPid && (p[o + 3] & 0x10) !== 0) this.scanK++;
      this.scanPacket = next;
    }
    const slot = this.locate(this.scanPacket, 1);
    if (slot < 0) return false;
    const o = (slot * CHUNK_PACKETS + this.scanPacket - ring.first(slot)) * TS_PACKET_BYTES;
    ring.payload.copy(out, at, o, o + TS_PACKET_BYTES);
    return true;
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

// A key-frame table as the reader thread hands it to its path (Float64 words):
// key count, program number, PMT PID, video PID, video stream type, then per
// key frame its packet, npt ticks and video packets.
const KEY_TABLE_HEAD = 5;
const KEY_WORDS = 3;

/**
 * The reader thread's read of a session's key-frame table: the index file's
 * header and metadata (random-access points and streams) through `indexFd`,
 * once per session that plays a Scale. DiskError if a read fails, AssetError
 * if the index is corrupt or the asset has no video stream.
 */
export function readKeyTable(asset: ReaderAsset, indexFd: number): SharedArrayBuffer {
  const file = asset.indexPath;
  const size = Number(fstatOf(indexFd, file).size);
  const header = Buffer.alloc(IndexHeader.SIZE);
  fill(asset, indexFd, 'index', header, IndexHeader.SIZE, 0);
  let meta;
  try {
    const parsed = parseHeader(file, header, size);
    const json = Buffer.alloc(parsed.jsonLength);
    fill(asset, indexFd, 'index', json, parsed.jsonLength, IndexHeader.JSON_OFFSET);
    meta = parseMeta(file, json, parsed);
  } catch (err) {
    if (err instanceof DiskError || err instanceof AssetError) throw err;
    throw new AssetError((err as Error).message);
  }
  const video = meta.streams.find((s) => s.kind === 'video');
  if (!video) throw new AssetError(`asset ${asset.assetPath} has no video stream: no trick play`);
  const keys = meta.randomAccess;
  const table = new Float64Array(new SharedArrayBuffer((KEY_TABLE_HEAD + KEY_WORDS * keys.length) * 8));
  table.set([keys.length, meta.programNumber, meta.pmtPid, video.pid, video.streamType]);
  keys.forEach((key, i) => table.set([key.packet, key.ticks, key.videoPackets], KEY_TABLE_HEAD + KEY_WORDS * i));
  return table.buffer;
}

function decodeKeyTable(sab: SharedArrayBuffer): TrickTable {
  const t = new Float64Array(sab);
  const keys: TrickKey[] = [];
  for (let i = 0; i < t[0]; i++) {
    const o = KEY_TABLE_HEAD + KEY_WORDS * i;
    keys.push({ packet: t[o], ticks: t[o + 1], videoPackets: t[o + 2] });
  }
  return { keys, program: { programNumber: t[1], pmtPid: t[2], videoPid: t[3], videoStreamType: t[4] } };
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
