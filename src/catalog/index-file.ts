// Reading and writing asset index files ('.tfidx'): atomic writing and
// validated reading. The byte format itself is index-format/index-format.ts.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TwinframeError } from '../errors.js';
import {
  IndexHeader, TimesCheck, checkPictures, checkTimes, corruptIndex, decodeTimeEntry, encodeIndexHead, parseHeader, parseMeta, timeEntryOffset,
  type AssetIndex, type AssetIndexMeta,
} from '../index-format/index-format.js';
import { ASSET_OPEN_FLAGS } from '../shared/asset-file.js';

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
    throw corruptIndex(file, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      errno: (err as NodeJS.ErrnoException).code,
    });
  }
  try {
    return fn(fd, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
}

/** What the head of an index file says: the validated meta and where its tables are. */
export interface IndexHead {
  meta: AssetIndexMeta;
  timesOffset: number;
  picturesOffset: number;
  pictureCount: number;
}

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** Which index file a stat describes: a rewrite or a replacement changes one of these. */
export function indexFileKey(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** An index file read and validated whole, and which file it was (indexFileKey). */
export interface VerifiedIndexHead extends IndexHead {
  key: string;
}

/** Times-table entries checked per read: 4 MiB, so a huge table is never held whole. */
const TIMES_SLICE = 1 << 20;

/**
 * Reads an index file and validates all of it before anyone uses it: header and
 * metadata, every send time (slice by slice) and the pictures table. Synchronous:
 * for the index worker, where a 100 k-point index costs nobody's event loop.
 */
export function readVerifiedIndexHead(file: string): VerifiedIndexHead {
  return withIndexFd(file, (fd) => {
    const st = fs.fstatSync(fd, { bigint: true });
    const size = Number(st.size);
    const header = parseHeader(file, readExactly(fd, IndexHeader.SIZE, 0), size);
    const meta = parseMeta(file, readExactly(fd, header.jsonLength, IndexHeader.JSON_OFFSET), header);
    const check = new TimesCheck(file, meta);
    for (let first = 0; first < header.packetCount; first += TIMES_SLICE) {
      const entries = Math.min(TIMES_SLICE, header.packetCount - first);
      check.feed(readU32Table(file, fd, timeEntryOffset(header.timesOffset, first), entries));
    }
    check.end();
    checkPictures(file, meta, readU32Table(file, fd, header.picturesOffset, 2 * header.pictureCount));
    const { timesOffset, picturesOffset, pictureCount } = header;
    return { meta, timesOffset, picturesOffset, pictureCount, key: indexFileKey(st) };
  });
}

/** Reads and validates a whole index, times table included. */
export function readIndexFile(file: string): AssetIndex {
  return withIndexFd(file, (fd, size) => {
    const header = parseHeader(file, readExactly(fd, IndexHeader.SIZE, 0), size);
    const meta = parseMeta(file, readExactly(fd, header.jsonLength, IndexHeader.JSON_OFFSET), header);
    const times = readU32Table(file, fd, header.timesOffset, header.packetCount);
    checkTimes(file, meta, times);
    const pictures = readU32Table(file, fd, header.picturesOffset, 2 * header.pictureCount);
    checkPictures(file, meta, pictures);
    return { meta, times, pictures };
  });
}

function readU32Table(file: string, fd: number, offset: number, entries: number): Uint32Array {
  const table = new Uint32Array(entries);
  const bytes = Buffer.from(table.buffer, table.byteOffset, table.byteLength);
  let done = 0;
  while (done < bytes.length) {
    const n = fs.readSync(fd, bytes, done, bytes.length - done, offset + done);
    if (n === 0) throw corruptIndex(file, 'a table ends early');
    done += n;
  }
  if (!LITTLE_ENDIAN_HOST) bytes.swap32();
  return table;
}

/** The pictures table (AssetIndex.pictures) of an index file whose head was read. */
export async function readPicturesAsync(file: string, head: Pick<IndexHead, 'meta' | 'picturesOffset' | 'pictureCount'>): Promise<Uint32Array> {
  const handle = await fs.promises.open(file, ASSET_OPEN_FLAGS);
  try {
    const pictures = new Uint32Array(2 * head.pictureCount);
    const bytes = Buffer.from(pictures.buffer, pictures.byteOffset, pictures.byteLength);
    if (await readFully(handle, bytes, head.picturesOffset) !== bytes.length) throw corruptIndex(file, 'pictures table ends early');
    if (!LITTLE_ENDIAN_HOST) bytes.swap32();
    checkPictures(file, head.meta, pictures);
    return pictures;
  } finally {
    await handle.close();
  }
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done);
}

/** Writes a table in slices so a big-endian host's byte swap never copies it all at once. */
function writeU32Table(fd: number, table: Uint32Array): void {
  const SLICE = 1 << 20; // entries
  for (let start = 0; start < table.length; start += SLICE) {
    const part = table.subarray(start, Math.min(table.length, start + SLICE));
    const bytes = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    writeAll(fd, LITTLE_ENDIAN_HOST ? bytes : Buffer.from(bytes).swap32());
  }
}

/**
 * Writes the index atomically: a temporary file in the same directory, fsync,
 * rename over the target, fsync the directory. Readers see the old file or the
 * whole new one, never a torn one.
 */
export function writeIndexFile(file: string, index: AssetIndex): void {
  const { meta, times, pictures } = index;
  if (times.length !== meta.packetCount) {
    throw new RangeError(`times table has ${times.length} entries, meta.packetCount is ${meta.packetCount}`);
  }
  if (pictures.length % 2 !== 0) throw new RangeError(`pictures table has an odd ${pictures.length} entries`);
  const head = encodeIndexHead(meta, pictures.length / 2);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    writeAll(fd, head);
    writeU32Table(fd, times);
    writeU32Table(fd, pictures);
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

/**
 * One packet's send time (90 kHz ticks from packet 0), read from the index's
 * times table: what a PLAY that resumes mid-asset names in its Range.
 */
export async function readPacketTicksAsync(file: string, timesOffset: number, packet: number): Promise<number> {
  const handle = await fs.promises.open(file, ASSET_OPEN_FLAGS); // never waits on a FIFO swapped in for the index
  try {
    const buf = Buffer.alloc(IndexHeader.TIME_ENTRY_SIZE);
    if (await readFully(handle, buf, timeEntryOffset(timesOffset, packet)) !== buf.length) {
      throw new TwinframeError('TF_INDEX_CORRUPT', `index ${file} has no time for packet ${packet}`);
    }
    return decodeTimeEntry(buf);
  } finally {
    await handle.close();
  }
}
