// The on-disk asset index ('.tfidx'): its exact binary layout, atomic writing,
// validated reading, and the random-access lookup that Range seeks use.
//
// Layout (little-endian):
//   0..3    magic 'TFIX'
//   4..7    u32 version (1)
//   8..11   u32 jsonLength
//   12..15  u32 timesOffset = align8(32 + jsonLength)
//   16..19  u32 packetCount
//   20..31  reserved, zero
//   32..    UTF-8 JSON of AssetIndexMeta, zero padding up to timesOffset
//   timesOffset..  u32[packetCount] packet send times, 90 kHz ticks from packet 0
// A data-path thread preads times straight from `timesOffset + 4 * p`, so this
// layout is a contract: change it only with a new version number.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { TwinframeError } from '../errors.js';
import { ASSET_OPEN_FLAGS } from '../shared/asset-file.js';

export const INDEX_FILE_EXTENSION = '.tfidx';
export const INDEX_MAGIC = 'TFIX';
export const INDEX_VERSION = 1;

export const IndexHeader = {
  MAGIC_OFFSET: 0,
  VERSION_OFFSET: 4,
  JSON_LENGTH_OFFSET: 8,
  TIMES_OFFSET_OFFSET: 12,
  PACKET_COUNT_OFFSET: 16,
  RESERVED_OFFSET: 20,
  /** The header's size; the JSON starts here. */
  SIZE: 32,
  JSON_OFFSET: 32,
  /** Bytes per entry of the times table. */
  TIME_ENTRY_SIZE: 4,
  TIMES_ALIGNMENT: 8,
} as const;

/** Upper bound on the JSON part, so a corrupt length cannot make a reader allocate gigabytes. */
const MAX_JSON_LENGTH = 64 * 1024 * 1024;

export function timesTableOffset(jsonLength: number): number {
  const end = IndexHeader.JSON_OFFSET + jsonLength;
  return Math.ceil(end / IndexHeader.TIMES_ALIGNMENT) * IndexHeader.TIMES_ALIGNMENT;
}

/** Byte position of packet `packet`'s send time in an index file. */
export function timeEntryOffset(timesOffset: number, packet: number): number {
  return timesOffset + IndexHeader.TIME_ENTRY_SIZE * packet;
}

export type StreamKind = 'video' | 'audio' | 'other';

export interface AssetStream {
  pid: number;
  streamType: number;
  kind: StreamKind;
  /** 'h264' | 'hevc' | 'mpeg2video' | 'aac' | 'mp2' | 'ac3' | ... (see mpegts/psi.ts StreamCodec). */
  codec: string;
}

export interface RandomAccessPoint {
  /** Index of the TS packet where the key frame's PES starts. */
  packet: number;
  /** That packet's send time, 90 kHz ticks from packet 0. */
  ticks: number;
}

export interface AssetIndexMeta {
  version: 1;
  sourcePath: string;
  sourceSize: number;
  sourceMtimeMs: number;
  packetCount: number;
  /** Send time of the last packet plus one packet's duration at `bitrate`. */
  durationMs: number;
  /** Bits per second, measured between PCRs. */
  bitrate: number;
  programNumber: number;
  pmtPid: number;
  pcrPid: number;
  streams: AssetStream[];
  pcrCount: number;
  /** Ascending by packet (and so by ticks). */
  randomAccess: RandomAccessPoint[];
}

export interface AssetIndex {
  meta: AssetIndexMeta;
  /** Send time of every packet, 90 kHz ticks from packet 0, non-decreasing. */
  times: Uint32Array;
}

const u32 = z.number().int().min(0).max(0xffffffff);
const pid = z.number().int().min(0).max(0x1fff);

const metaSchema = z.object({
  version: z.literal(1),
  sourcePath: z.string().min(1),
  sourceSize: z.number().int().min(0),
  sourceMtimeMs: z.number().finite(),
  packetCount: u32,
  durationMs: z.number().finite().min(0),
  bitrate: z.number().finite().positive(),
  programNumber: z.number().int().min(0).max(0xffff),
  pmtPid: pid,
  pcrPid: pid,
  streams: z.array(
    z.object({
      pid,
      streamType: z.number().int().min(0).max(0xff),
      kind: z.enum(['video', 'audio', 'other']),
      codec: z.string(),
    }),
  ),
  pcrCount: u32,
  randomAccess: z.array(z.object({ packet: u32, ticks: u32 })),
});

function corrupt(file: string, problem: string, details: Record<string, unknown> = {}): TwinframeError {
  return new TwinframeError('TF_INDEX_CORRUPT', `asset index ${file} is corrupt: ${problem}`, { indexPath: file, ...details });
}

interface ParsedHeader {
  jsonLength: number;
  timesOffset: number;
  packetCount: number;
}

/** Validates the 32-byte header against the file's size. */
function parseHeader(file: string, header: Buffer, fileSize: number): ParsedHeader {
  if (fileSize < IndexHeader.SIZE || header.length < IndexHeader.SIZE) {
    throw corrupt(file, `${fileSize} bytes is shorter than the ${IndexHeader.SIZE}-byte header`);
  }
  const magic = header.toString('latin1', IndexHeader.MAGIC_OFFSET, IndexHeader.MAGIC_OFFSET + 4);
  if (magic !== INDEX_MAGIC) throw corrupt(file, `bad magic ${JSON.stringify(magic)}`);
  const version = header.readUInt32LE(IndexHeader.VERSION_OFFSET);
  if (version !== INDEX_VERSION) throw corrupt(file, `unsupported version ${version}`, { version });
  const jsonLength = header.readUInt32LE(IndexHeader.JSON_LENGTH_OFFSET);
  const timesOffset = header.readUInt32LE(IndexHeader.TIMES_OFFSET_OFFSET);
  const packetCount = header.readUInt32LE(IndexHeader.PACKET_COUNT_OFFSET);
  if (jsonLength === 0 || jsonLength > MAX_JSON_LENGTH) throw corrupt(file, `implausible JSON length ${jsonLength}`);
  if (timesOffset !== timesTableOffset(jsonLength)) {
    throw corrupt(file, `times offset ${timesOffset} does not follow JSON length ${jsonLength}`);
  }
  for (let i = IndexHeader.RESERVED_OFFSET; i < IndexHeader.SIZE; i++) {
    if (header[i] !== 0) throw corrupt(file, `reserved header byte ${i} is not zero`);
  }
  const expected = timeEntryOffset(timesOffset, packetCount);
  if (fileSize !== expected) {
    throw corrupt(file, `size ${fileSize} differs from the ${expected} bytes the header announces`, { fileSize, expected });
  }
  return { jsonLength, timesOffset, packetCount };
}

function parseMeta(file: string, json: Buffer, header: ParsedHeader): AssetIndexMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw corrupt(file, `metadata is not JSON (${(err as Error).message})`);
  }
  const parsed = metaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(file, `metadata is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown'}`);
  }
  const meta = parsed.data;
  if (meta.packetCount !== header.packetCount) {
    throw corrupt(file, `metadata says ${meta.packetCount} packets, header ${header.packetCount}`);
  }
  let prev = -1;
  for (const rap of meta.randomAccess) {
    if (rap.packet <= prev || rap.packet >= meta.packetCount) {
      throw corrupt(file, `random-access point at packet ${rap.packet} is out of order or out of range`);
    }
    prev = rap.packet;
  }
  return meta;
}

function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

function withIndexFd<T>(file: string, fn: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, ASSET_OPEN_FLAGS);
  } catch (err) {
    throw corrupt(file, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      errno: (err as NodeJS.ErrnoException).code,
    });
  }
  try {
    return fn(fd, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads and validates only the header and metadata: cheap, for cache checks and catalogs. */
export function readIndexMeta(file: string): AssetIndexMeta {
  return withIndexFd(file, (fd, size) => {
    const header = parseHeader(file, readExactly(fd, IndexHeader.SIZE, 0), size);
    return parseMeta(file, readExactly(fd, header.jsonLength, IndexHeader.JSON_OFFSET), header);
  });
}

/** Async twin of readIndexMeta for the main thread. */
export async function readIndexMetaAsync(file: string): Promise<AssetIndexMeta> {
  return (await readIndexHeadAsync(file)).meta;
}

/** The validated meta and where the times table starts: everything a reader of the file needs, from one read. */
export async function readIndexHeadAsync(file: string): Promise<{ meta: AssetIndexMeta; timesOffset: number }> {
  let handle: fs.promises.FileHandle;
  try {
    // Non-blocking like an asset: a FIFO in the cache must not park a libuv thread (its size 0 then fails the header check).
    handle = await fs.promises.open(file, ASSET_OPEN_FLAGS);
  } catch (err) {
    throw corrupt(file, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      errno: (err as NodeJS.ErrnoException).code,
    });
  }
  try {
    const { size } = await handle.stat();
    const headerBuf = Buffer.alloc(IndexHeader.SIZE);
    const header = parseHeader(file, headerBuf.subarray(0, await readFully(handle, headerBuf, 0)), size);
    const json = Buffer.alloc(header.jsonLength);
    const meta = parseMeta(file, json.subarray(0, await readFully(handle, json, IndexHeader.JSON_OFFSET)), header);
    return { meta, timesOffset: header.timesOffset };
  } finally {
    await handle.close();
  }
}

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** Reads and validates a whole index, times table included. */
export function readIndexFile(file: string): AssetIndex {
  return withIndexFd(file, (fd, size) => {
    const header = parseHeader(file, readExactly(fd, IndexHeader.SIZE, 0), size);
    const meta = parseMeta(file, readExactly(fd, header.jsonLength, IndexHeader.JSON_OFFSET), header);
    const times = new Uint32Array(header.packetCount);
    const bytes = Buffer.from(times.buffer, times.byteOffset, times.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const n = fs.readSync(fd, bytes, done, bytes.length - done, header.timesOffset + done);
      if (n === 0) throw corrupt(file, 'times table ends early');
      done += n;
    }
    if (!LITTLE_ENDIAN_HOST) bytes.swap32();
    if (header.packetCount > 0 && times[0] !== 0) throw corrupt(file, `packet 0 is sent at ${times[0]}, not 0`);
    for (let p = 1; p < times.length; p++) {
      if (times[p] < times[p - 1]) throw corrupt(file, `send times decrease at packet ${p}`, { packet: p });
    }
    for (const rap of meta.randomAccess) {
      if (times[rap.packet] !== rap.ticks) {
        throw corrupt(file, `random-access point at packet ${rap.packet} disagrees with the times table`);
      }
    }
    return { meta, times };
  });
}

/** Header + JSON + padding, ready to be followed by the times table. */
export function encodeIndexHead(meta: AssetIndexMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const timesOffset = timesTableOffset(json.length);
  const head = Buffer.alloc(timesOffset); // zero-filled: reserved bytes and padding
  head.write(INDEX_MAGIC, IndexHeader.MAGIC_OFFSET, 'latin1');
  head.writeUInt32LE(INDEX_VERSION, IndexHeader.VERSION_OFFSET);
  head.writeUInt32LE(json.length, IndexHeader.JSON_LENGTH_OFFSET);
  head.writeUInt32LE(timesOffset, IndexHeader.TIMES_OFFSET_OFFSET);
  head.writeUInt32LE(meta.packetCount, IndexHeader.PACKET_COUNT_OFFSET);
  json.copy(head, IndexHeader.JSON_OFFSET);
  return head;
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done);
}

/**
 * Writes the index atomically: a temporary file in the same directory, fsync,
 * rename over the target, fsync the directory. Readers see the old file or the
 * whole new one, never a torn one.
 */
export function writeIndexFile(file: string, index: AssetIndex): void {
  const { meta, times } = index;
  if (times.length !== meta.packetCount) {
    throw new RangeError(`times table has ${times.length} entries, meta.packetCount is ${meta.packetCount}`);
  }
  const head = encodeIndexHead(meta);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    writeAll(fd, head);
    // Write the table in slices so a big-endian host's byte swap never copies it all at once.
    const SLICE = 1 << 20; // entries
    for (let start = 0; start < times.length; start += SLICE) {
      const part = times.subarray(start, Math.min(times.length, start + SLICE));
      const bytes = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
      writeAll(fd, LITTLE_ENDIAN_HOST ? bytes : Buffer.from(bytes).swap32());
    }
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // Directory fsync is for durability across power loss only; some file systems refuse it.
  }
}

/**
 * The random-access point to start from for a seek to `ticks`: the last one at
 * or before it; before the first one, the first one; with none, packet 0.
 */
export function randomAccessAtOrBefore(meta: Pick<AssetIndexMeta, 'randomAccess'>, ticks: number): RandomAccessPoint {
  const raps = meta.randomAccess;
  if (raps.length === 0) return { packet: 0, ticks: 0 };
  let lo = 0;
  let hi = raps.length - 1;
  if (ticks < raps[0].ticks) return { ...raps[0] };
  // Invariant: raps[lo].ticks <= ticks; find the last such index.
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (raps[mid].ticks <= ticks) lo = mid;
    else hi = mid - 1;
  }
  return { ...raps[lo] };
}

/** Read until `buf` is full or the file ends (one read() may return less); returns the bytes read. */
async function readFully(handle: fs.promises.FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
