// The asset index file ('.tfidx') as bytes: its layout, the header and
// metadata codec, and the lookups on what it holds. The one module that knows
// the format: the catalog writes and reads files with it, a data path preads
// times at timeEntryOffset(), the RTSP adapter looks up key frames. No I/O here
// and no imports from the control plane, so every thread may use it.
//
// Layout (little-endian):
//   0..3    magic 'TFIX'
//   4..7    u32 version (3)
//   8..11   u32 jsonLength
//   12..15  u32 timesOffset = align8(32 + jsonLength)
//   16..19  u32 packetCount
//   20..23  u32 pictureCount
//   24..31  reserved, zero
//   32..    UTF-8 JSON of AssetIndexMeta, zero padding up to timesOffset
//   timesOffset..  u32[packetCount] packet send times, 90 kHz ticks from packet 0
//   picturesOffset = timesOffset + 4 * packetCount..
//           u32[2 * pictureCount] the video pictures in stream (decode) order:
//           the packet its PES starts at, then its npt (see pictureNpt below)
// A data-path thread preads times straight from `timesOffset + 4 * p`, so this
// layout is a contract: change it only with a new version number. Version 1
// had no pictures table, version 2 no content check of its asset (meta
// contentCheck): the cache finds such a file corrupt and rebuilds it.

import { z } from 'zod';
import { TwinframeError } from '../errors.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';

export const INDEX_FILE_EXTENSION = '.tfidx';
export const INDEX_MAGIC = 'TFIX';
const INDEX_VERSION = 3;

export const IndexHeader = {
  MAGIC_OFFSET: 0,
  VERSION_OFFSET: 4,
  JSON_LENGTH_OFFSET: 8,
  TIMES_OFFSET_OFFSET: 12,
  PACKET_COUNT_OFFSET: 16,
  PICTURE_COUNT_OFFSET: 20,
  RESERVED_OFFSET: 24,
  /** The header's size; the JSON starts here. */
  SIZE: 32,
  JSON_OFFSET: 32,
  /** Bytes per entry of the times table. */
  TIME_ENTRY_SIZE: 4,
  TIMES_ALIGNMENT: 8,
  /** Bytes per entry of the pictures table (packet, npt ticks). */
  PICTURE_ENTRY_SIZE: 8,
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

/** Byte position of the pictures table: right after the times table. */
export function picturesTableOffset(timesOffset: number, packetCount: number): number {
  return timeEntryOffset(timesOffset, packetCount);
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
  /** Packets of the video PID with a payload in the key frame's PES (what trick play sends of it). */
  videoPackets: number;
}

export interface AssetIndexMeta {
  version: 3;
  sourcePath: string;
  sourceSize: number;
  sourceMtimeMs: number;
  /** Proof of which bytes were indexed: catalog/content-check.ts, compared before the index is used. */
  contentCheck: string;
  packetCount: number;
  /** Send time of the last packet plus one packet's duration at `bitrate`. */
  durationMs: number;
  /**
   * The end of the asset's npt range, as DESCRIBE and PLAY announce it: the later
   * of durationMs and the end of the last frame's presentation. A PES is
   * presented its PTS − PCR after it is sent (~0.7 s with ffmpeg's muxer), and
   * a player (GStreamer) drops every frame presented after the announced end.
   */
  presentationEndMs: number;
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
  /**
   * The video pictures in stream order, two entries each: the packet its PES
   * starts at (ascending), then its npt in 90 kHz ticks: its PTS less the first
   * key frame's (media time, as a player counts it; with ffmpeg's muxer a key
   * frame's npt is its send time, the time a seek to it names, to within 1 ms).
   */
  pictures: Uint32Array;
}

const u32 = z.number().int().min(0).max(0xffffffff);
const pid = z.number().int().min(0).max(0x1fff);

const metaSchema = z.object({
  version: z.literal(3),
  sourcePath: z.string().min(1),
  sourceSize: z.number().int().min(0),
  sourceMtimeMs: z.number().finite(),
  contentCheck: z.string().regex(/^[0-9a-f]{64}$/),
  packetCount: u32,
  durationMs: z.number().finite().min(0),
  presentationEndMs: z.number().finite().min(0),
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
  randomAccess: z.array(z.object({ packet: u32, ticks: u32, videoPackets: u32 })),
});

/** The error every reader of a bad index file throws. */
export function corruptIndex(file: string, problem: string, details: Record<string, unknown> = {}): TwinframeError {
  return new TwinframeError('TF_INDEX_CORRUPT', `asset index ${file} is corrupt: ${problem}`, { indexPath: file, ...details });
}

export interface ParsedHeader {
  jsonLength: number;
  timesOffset: number;
  packetCount: number;
  picturesOffset: number;
  pictureCount: number;
}

/** Validates the 32-byte header against the file's size. */
export function parseHeader(file: string, header: Buffer, fileSize: number): ParsedHeader {
  if (fileSize < IndexHeader.SIZE || header.length < IndexHeader.SIZE) {
    throw corruptIndex(file, `${fileSize} bytes is shorter than the ${IndexHeader.SIZE}-byte header`);
  }
  const magic = header.toString('latin1', IndexHeader.MAGIC_OFFSET, IndexHeader.MAGIC_OFFSET + 4);
  if (magic !== INDEX_MAGIC) throw corruptIndex(file, `bad magic ${JSON.stringify(magic)}`);
  const version = header.readUInt32LE(IndexHeader.VERSION_OFFSET);
  if (version !== INDEX_VERSION) throw corruptIndex(file, `unsupported version ${version}`, { version });
  const jsonLength = header.readUInt32LE(IndexHeader.JSON_LENGTH_OFFSET);
  const timesOffset = header.readUInt32LE(IndexHeader.TIMES_OFFSET_OFFSET);
  const packetCount = header.readUInt32LE(IndexHeader.PACKET_COUNT_OFFSET);
  const pictureCount = header.readUInt32LE(IndexHeader.PICTURE_COUNT_OFFSET);
  if (jsonLength === 0 || jsonLength > MAX_JSON_LENGTH) throw corruptIndex(file, `implausible JSON length ${jsonLength}`);
  if (timesOffset !== timesTableOffset(jsonLength)) {
    throw corruptIndex(file, `times offset ${timesOffset} does not follow JSON length ${jsonLength}`);
  }
  for (let i = IndexHeader.RESERVED_OFFSET; i < IndexHeader.SIZE; i++) {
    if (header[i] !== 0) throw corruptIndex(file, `reserved header byte ${i} is not zero`);
  }
  const picturesOffset = picturesTableOffset(timesOffset, packetCount);
  const expected = picturesOffset + IndexHeader.PICTURE_ENTRY_SIZE * pictureCount;
  if (fileSize !== expected) {
    throw corruptIndex(file, `size ${fileSize} differs from the ${expected} bytes the header announces`, { fileSize, expected });
  }
  return { jsonLength, timesOffset, packetCount, picturesOffset, pictureCount };
}

/** Parses and validates the JSON metadata against its header. */
export function parseMeta(file: string, json: Buffer, header: ParsedHeader): AssetIndexMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw corruptIndex(file, `metadata is not JSON (${(err as Error).message})`);
  }
  const parsed = metaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corruptIndex(file, `metadata is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown'}`);
  }
  const meta = parsed.data;
  if (meta.packetCount !== header.packetCount) {
    throw corruptIndex(file, `metadata says ${meta.packetCount} packets, header ${header.packetCount}`);
  }
  // An asset is whole 188-byte packets (a cut one is refused): the count follows from its size.
  if (meta.sourceSize !== meta.packetCount * TS_PACKET_BYTES) {
    throw corruptIndex(file, `${meta.packetCount} packets do not make the asset's ${meta.sourceSize} bytes`);
  }
  let prev = -1;
  for (const rap of meta.randomAccess) {
    if (rap.packet <= prev || rap.packet >= meta.packetCount) {
      throw corruptIndex(file, `random-access point at packet ${rap.packet} is out of order or out of range`);
    }
    prev = rap.packet;
  }
  return meta;
}

/**
 * Checks a times table against its metadata, slice by slice so a huge table is
 * never read whole: packet 0 at tick 0, never decreasing, and every
 * random-access point where the table puts it. Feed the slices in order, then end().
 */
export class TimesCheck {
  readonly #file: string;
  readonly #meta: AssetIndexMeta;
  #next = 0;
  #prev = 0;
  #rap = 0;

  constructor(file: string, meta: AssetIndexMeta) {
    this.#file = file;
    this.#meta = meta;
  }

  /** The next entries of the table, starting at packet `this.#next`. */
  feed(times: Uint32Array): void {
    const file = this.#file;
    const first = this.#next;
    const raps = this.#meta.randomAccess;
    let prev = first === 0 ? 0 : this.#prev;
    if (first === 0 && times.length > 0 && times[0] !== 0) throw corruptIndex(file, `packet 0 is sent at ${times[0]}, not 0`);
    for (let i = 0; i < times.length; i++) {
      const t = times[i];
      if (t < prev) throw corruptIndex(file, `send times decrease at packet ${first + i}`, { packet: first + i });
      prev = t;
    }
    const end = first + times.length;
    for (; this.#rap < raps.length && raps[this.#rap].packet < end; this.#rap++) {
      const rap = raps[this.#rap];
      if (times[rap.packet - first] !== rap.ticks) {
        throw corruptIndex(file, `random-access point at packet ${rap.packet} disagrees with the times table`);
      }
    }
    this.#prev = prev;
    this.#next = end;
  }

  end(): void {
    if (this.#next !== this.#meta.packetCount) {
      throw corruptIndex(this.#file, `times table has ${this.#next} entries for ${this.#meta.packetCount} packets`);
    }
  }
}

/** A whole times table at once (see TimesCheck). */
export function checkTimes(file: string, meta: AssetIndexMeta, times: Uint32Array): void {
  const check = new TimesCheck(file, meta);
  check.feed(times);
  check.end();
}

/** Checks a pictures table: packets ascending and inside the asset. */
export function checkPictures(file: string, meta: AssetIndexMeta, pictures: Uint32Array): void {
  let prev = -1;
  for (let k = 0; k < pictures.length; k += 2) {
    const packet = pictures[k];
    if (packet <= prev || packet >= meta.packetCount) {
      throw corruptIndex(file, `picture ${k / 2} at packet ${packet} is out of order or out of range`);
    }
    prev = packet;
  }
}

/** One entry of the times table, as read from the file. */
export function decodeTimeEntry(bytes: Buffer): number {
  return bytes.readUInt32LE(0);
}

/** Header + JSON + padding, ready to be followed by the times table. */
export function encodeIndexHead(meta: AssetIndexMeta, pictureCount: number): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const timesOffset = timesTableOffset(json.length);
  const head = Buffer.alloc(timesOffset); // zero-filled: reserved bytes and padding
  head.write(INDEX_MAGIC, IndexHeader.MAGIC_OFFSET, 'latin1');
  head.writeUInt32LE(INDEX_VERSION, IndexHeader.VERSION_OFFSET);
  head.writeUInt32LE(json.length, IndexHeader.JSON_LENGTH_OFFSET);
  head.writeUInt32LE(timesOffset, IndexHeader.TIMES_OFFSET_OFFSET);
  head.writeUInt32LE(meta.packetCount, IndexHeader.PACKET_COUNT_OFFSET);
  head.writeUInt32LE(pictureCount, IndexHeader.PICTURE_COUNT_OFFSET);
  json.copy(head, IndexHeader.JSON_OFFSET);
  return head;
}

/** Where and when a key frame starts: what a seek needs of it. */
export type KeyFrameTime = Pick<RandomAccessPoint, 'packet' | 'ticks'>;
export interface KeyFrameTimes {
  readonly randomAccess: readonly KeyFrameTime[];
}

/**
 * npt times travel in milliseconds (clients send `npt=30.000-`, PLAY replies name
 * a key frame's time to the millisecond), while a key frame's index time is its
 * first packet's send time, often a fraction of a millisecond after the whole
 * second of its picture: a key frame less than this after the asked time is the
 * one asked for. 90 ticks = 1 ms.
 */
const SEEK_TOLERANCE_TICKS = 90;

/**
 * The packet a PLAY with `Range: npt=<ticks>-` starts at: the last key frame at
 * or before the asked time (within SEEK_TOLERANCE_TICKS), so that a request for
 * a key frame's time, as a reply named it, starts at that key frame; before the
 * first key frame (npt=0 included) the asset's own start, PAT and PMT first.
 */
export function seekStartPacket(meta: KeyFrameTimes, ticks: number): number {
  const firstKey = meta.randomAccess[0];
  const wanted = ticks + SEEK_TOLERANCE_TICKS;
  if (firstKey === undefined || ticks === 0 || wanted < firstKey.ticks) return 0;
  return randomAccessAtOrBefore(meta, wanted).packet;
}

/**
 * The random-access point to start from for a seek to `ticks`: the last one at
 * or before it; before the first one, the first one; with none, packet 0.
 */
export function randomAccessAtOrBefore(meta: KeyFrameTimes, ticks: number): KeyFrameTime {
  const raps = meta.randomAccess;
  if (raps.length === 0) return { packet: 0, ticks: 0 };
  let lo = 0;
  let hi = raps.length - 1;
  if (ticks < raps[0].ticks) return { packet: raps[0].packet, ticks: raps[0].ticks };
  // Invariant: raps[lo].ticks <= ticks; find the last such index.
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (raps[mid].ticks <= ticks) lo = mid;
    else hi = mid - 1;
  }
  return { packet: raps[lo].packet, ticks: raps[lo].ticks };
}

/** The npt of the picture whose PES starts at `packet`, if one does. */
export function pictureNptAt(pictures: Uint32Array, packet: number): number | undefined {
  let lo = 0;
  let hi = pictures.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = pictures[2 * mid];
    if (at === packet) return pictures[2 * mid + 1];
    if (at < packet) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/**
 * The packet a range ending at npt `ticks` stops before: the start of the
 * picture that follows the last one (in stream order) presented at or before
 * `ticks` (within SEEK_TOLERANCE_TICKS, so an end named to the millisecond
 * includes the frame at it). Pictures sent before that one but presented
 * later (the references of B pictures) go too: a decoder needs them. With no
 * such picture, or none after it, the asset's end.
 */
export function rangeEndPacket(pictures: Uint32Array, packetCount: number, ticks: number): number {
  const limit = ticks + SEEK_TOLERANCE_TICKS;
  let last = -1;
  for (let k = 0; k < pictures.length; k += 2) {
    if (pictures[k + 1] <= limit) last = k;
  }
  if (last < 0) return pictures.length > 0 ? pictures[0] : packetCount;
  return last + 2 < pictures.length ? pictures[last + 2] : packetCount;
}
