// Builds an asset's index from its MPEG-TS file in one sequential pass: the
// program (PAT/PMT), the PCR timeline, the video random-access points, and the
// send time of every packet. Synchronous on purpose: it runs inside a piscina
// worker, where blocking I/O costs nobody else anything.
//
// Send times come from the PCR: between two PCR-bearing packets a packet's time
// is interpolated by its position (packet index); before the first and after the
// last PCR it is extrapolated at the bitrate measured across the PCRs. 33-bit
// wraps are unwrapped, and a discontinuity (flagged, backwards, or implausibly
// far ahead) continues the timeline at the measured bitrate, so pacing never
// jumps. Times are 90 kHz ticks relative to packet 0.

import fs from 'node:fs';
import { TwinframeError, type ErrorCode } from '../errors.js';
import {
  PCR_HZ,
  TICKS_HZ,
  PCR_PER_TICK,
  PCR_WRAP,
  PID_NULL,
  PID_PAT,
  TS_PACKET_BYTES,
  TS_SYNC_BYTE,
  packetPcr,
  payloadOffset,
} from '../mpegts/packet.js';
import { PTS_WRAP, pesPts } from '../mpegts/pes.js';
import { SectionAssembler, isPsiError, parsePat, parsePmt, type PmtSection, type PatSection } from '../mpegts/psi.js';
import { fileKind } from '../shared/asset-file.js';
import { assetContentCheck } from './content-check.js';
import type { AssetIndex, AssetIndexMeta, AssetStream, RandomAccessPoint } from '../index-format/index-format.js';

/** Packets per read: ~3 MiB, a whole number of packets so none straddles two reads. */
const CHUNK_PACKETS = 16_384;
/** At most one packet in this many may lack its sync byte before the file is refused as not TS. */
const BAD_PACKET_RATIO = 1000;
/** A PCR more than this far ahead of what the bitrate predicts is a discontinuity (1 s). */
const MAX_PCR_LEAD = PCR_HZ;
/** Give up looking for the first picture of a PES after this many bytes of it. */
const MAX_NAL_SCAN_BYTES = 256 * 1024;
const MAX_TICKS = 0xffffffff;

/** A typed array that doubles when full: growth is amortised, never per packet. */
class Growable<T extends Float64Array | Uint32Array> {
  data: T;
  length = 0;
  readonly #make: (length: number) => T;

  constructor(make: (length: number) => T) {
    this.#make = make;
    this.data = make(1024);
  }

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = this.#make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
}

const growableU32 = (): Growable<Uint32Array> => new Growable((n) => new Uint32Array(n));

function refuse(code: ErrorCode, file: string, problem: string, details: Record<string, unknown> = {}): TwinframeError {
  return new TwinframeError(code, `${file}: ${problem}`, { path: file, ...details });
}

/** Refusal of an asset that could not be opened: the name is missing, a link, or not readable. */
export function openRefusal(file: string, err: unknown): TwinframeError {
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno === 'ENOENT' || errno === 'ENOTDIR') return refuse('TF_ASSET_NOT_FOUND', file, 'no such file', { errno });
  if (errno === 'ELOOP') return refuse('TF_ASSET_UNREADABLE', file, 'is a symbolic link (assets are opened by their real path)', { errno });
  return refuse('TF_ASSET_UNREADABLE', file, `cannot be opened (${errno ?? (err as Error).message})`, { errno });
}

/** Refusal of an opened file that is no regular file (a FIFO, a device, a directory). */
export function notRegularRefusal(file: string, st: fs.Stats | fs.BigIntStats): TwinframeError {
  return refuse('TF_ASSET_UNREADABLE', file, `is ${fileKind(st)}, not a regular file`, { kind: fileKind(st) });
}

/** Reads exactly `length` bytes at `position`, or refuses the asset (it shrank or failed). */
function readChunk(fd: number, file: string, buf: Buffer, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, done, length - done, position + done);
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      throw refuse('TF_ASSET_UNREADABLE', file, `read error at byte ${position + done} (${errno ?? (err as Error).message})`, {
        errno,
        offset: position + done,
      });
    }
    if (n === 0) {
      throw refuse('TF_ASSET_UNREADABLE', file, `file shrank while being indexed (ended at byte ${position + done})`, {
        offset: position + done,
      });
    }
    done += n;
  }
}

/** Whether the file has sync bytes every 192 bytes after a 4-byte timecode (M2TS): worth saying when refusing it. */
function looksLikeM2ts(fd: number, size: number): boolean {
  const M2TS_PACKET = 192;
  if (size < 4 * M2TS_PACKET) return false;
  const head = Buffer.alloc(4 * M2TS_PACKET);
  try {
    if (fs.readSync(fd, head, 0, head.length, 0) < head.length) return false;
  } catch {
    return false;
  }
  for (let i = 0; i < 4; i++) if (head[i * M2TS_PACKET + 4] !== TS_SYNC_BYTE) return false;
  return true;
}

/** Which video picture types start a random-access point, for assets without random_access_indicator. */
type NalFlavour = 'h264' | 'hevc' | 'mpeg-video' | undefined;

/**
 * Finds, in the payload of one video PES, whether its first picture is a
 * random-access picture: H.264 IDR (NAL type 5), HEVC IRAP (types 16-23), or an
 * MPEG-1/2 sequence or GOP header before the first picture. Fed packet by packet;
 * keeps the start-code search state across packet boundaries.
 */
class KeyFrameScanner {
  flavour: NalFlavour = undefined;
  /** Packet index where the current PES started, or -1 when no PES is being scanned. */
  pesPacket = -1;
  #zeros = 0;
  #atHeader = false;
  #scanned = 0;
  /** PES header bytes still to skip; -1 until the fixed 9-byte part has been seen. */
  #skip = 0;
  #pesFixed = new Uint8Array(9);
  #pesFixedLen = 0;

  startPes(packet: number): void {
    this.pesPacket = packet;
    this.#zeros = 0;
    this.#atHeader = false;
    this.#scanned = 0;
    this.#skip = -1;
    this.#pesFixedLen = 0;
  }

  /** Scans payload bytes [p, end); returns true for a key frame, false for not, undefined while unsure. */
  feed(buf: Uint8Array, p: number, end: number): boolean | undefined {
    if (this.#skip < 0) {
      // Collect the fixed part of the PES header: start code, stream_id, length, flags, header length.
      while (p < end && this.#pesFixedLen < 9) this.#pesFixed[this.#pesFixedLen++] = buf[p++]!;
      if (this.#pesFixedLen < 9) return undefined;
      const h = this.#pesFixed;
      if (h[0] !== 0 || h[1] !== 0 || h[2] !== 1) return false; // not a PES: give up on it
      this.#skip = h[8]!;
    }
    const skipNow = Math.min(this.#skip, end - p);
    p += skipNow;
    this.#skip -= skipNow;
    if (this.#skip > 0) return undefined;
    let zeros = this.#zeros;
    let atHeader = this.#atHeader;
    this.#scanned += end - p;
    for (; p < end; p++) {
      const b = buf[p];
      if (atHeader) {
        atHeader = false;
        const verdict = this.#classify(b);
        if (verdict !== undefined) return verdict;
      }
      if (b === 0) {
        zeros++;
      } else {
        if (b === 1 && zeros >= 2) atHeader = true;
        zeros = 0;
      }
    }
    this.#zeros = zeros;
    this.#atHeader = atHeader;
    return this.#scanned > MAX_NAL_SCAN_BYTES ? false : undefined;
  }

  /** Looks at the byte after a start code: a verdict once the first picture shows up. */
  #classify(b: number): boolean | undefined {
    switch (this.flavour) {
      case 'h264': {
        const type = b & 0x1f;
        if (type === 5) return true;
        if (type >= 1 && type <= 4) return false;
        return undefined; // SEI, SPS, PPS, AUD, ...: keep looking
      }
      case 'hevc': {
        const type = (b >> 1) & 0x3f;
        if (type >= 16 && type <= 23) return true;
        if (type < 32) return false;
        return undefined; // VPS, SPS, PPS, AUD, SEI
      }
      case 'mpeg-video':
        if (b === 0xb3 || b === 0xb8) return true; // sequence header, group of pictures
        if (b === 0x00) return false; // picture start without either
        return undefined;
      default:
        return false;
    }
  }
}

function nalFlavour(codec: string): NalFlavour {
  if (codec === 'h264') return 'h264';
  if (codec === 'hevc') return 'hevc';
  if (codec === 'mpeg2video' || codec === 'mpeg1video') return 'mpeg-video';
  return undefined;
}

/**
 * Random-access points an index may list unless told otherwise (media.maxRandomAccessPoints):
 * every reader parses the list, ~2 µs and ~50 bytes of JSON a point.
 */
export const DEFAULT_MAX_RANDOM_ACCESS_POINTS = 200_000;

/**
 * Indexes the asset open on `fd` (opened with ASSET_OPEN_FLAGS; the caller
 * closes it): the index describes this very file, whatever `file` names by now.
 */
export function indexOpenAsset(fd: number, file: string, maxRandomAccessPoints = DEFAULT_MAX_RANDOM_ACCESS_POINTS): AssetIndex {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw notRegularRefusal(file, st);
  return indexOpenFile(fd, file, st.size, st.mtimeMs, maxRandomAccessPoints);
}

function indexOpenFile(fd: number, file: string, size: number, mtimeMs: number, maxRandomAccessPoints: number): AssetIndex {
  if (size === 0) throw refuse('TF_ASSET_EMPTY', file, 'file is empty (0 bytes)');
  const packetCount = Math.floor(size / TS_PACKET_BYTES);
  const remainder = size % TS_PACKET_BYTES;
  const truncated = (): TwinframeError =>
    refuse(
      'TF_ASSET_TRUNCATED',
      file,
      `size ${size} is not a multiple of ${TS_PACKET_BYTES}: the last packet, at byte ${packetCount * TS_PACKET_BYTES}, is cut after ${remainder} bytes`,
      { size, offset: packetCount * TS_PACKET_BYTES, remainder },
    );

  if (packetCount === 0) {
    // Less than one packet: a cut packet if it at least starts like one.
    const head = Buffer.alloc(1);
    readChunk(fd, file, head, 1, 0);
    if (head[0] === TS_SYNC_BYTE) throw truncated();
    throw refuse('TF_ASSET_NOT_TS', file, `no sync byte 0x47 at byte 0 (${size} bytes, less than one packet)`, {
      offset: 0,
    });
  }
  if (packetCount > MAX_TICKS) throw refuse('TF_ASSET_UNREADABLE', file, `${packetCount} packets is too many to index`);

  const allowedBad = Math.floor(packetCount / BAD_PACKET_RATIO);
  let badPackets = 0;
  let firstBad = -1;

  let pat: PatSection | undefined;
  let pmt: PmtSection | undefined;
  let programNumber = -1;
  let pmtPid = -1;
  let lastPsiError: string | undefined;
  let patSeen = 0;
  let pmtSeen = 0;
  let videoPid = -1;
  /** 1 for the PIDs of the program's elementary streams, once the PMT is known. */
  const elementary = new Uint8Array(PID_NULL + 1);
  const scanner = new KeyFrameScanner();
  const patAssembler = new SectionAssembler();
  const pmtAssembler = new SectionAssembler();
  const onPat = (section: Uint8Array): void => {
    if (pat !== undefined) return;
    patSeen++;
    const parsed = parsePat(section);
    if (isPsiError(parsed)) {
      lastPsiError = `PAT: ${parsed.error}`;
      return;
    }
    if (!parsed.currentNext) return;
    const program = parsed.programs[0];
    if (program === undefined) {
      lastPsiError = 'PAT lists no program';
      return;
    }
    pat = parsed;
    programNumber = program.programNumber;
    pmtPid = program.pid;
  };
  const onPmt = (section: Uint8Array): void => {
    if (pmt !== undefined) return;
    pmtSeen++;
    const parsed = parsePmt(section);
    if (isPsiError(parsed)) {
      lastPsiError = `PMT: ${parsed.error}`;
      return;
    }
    // Several programs' PMTs may share a PID: take only ours.
    if (parsed.programNumber !== programNumber || !parsed.currentNext) return;
    pmt = parsed;
    for (const s of parsed.streams) elementary[s.pid] = 1;
    const video = parsed.streams.find((s) => s.kind === 'video');
    if (video !== undefined) {
      videoPid = video.pid;
      scanner.flavour = nalFlavour(video.codec);
    }
  };

  // PCRs of every PID: the PCR PID is known only once the PMT is, which may come
  // after the first PCRs. [packet, pid | discontinuity << 16] pairs plus values.
  const pcrWhere = growableU32();
  const pcrValue = new Growable((n) => new Float64Array(n));
  // PES starts flagged random_access_indicator, any PID: [packet, pid] pairs.
  const raiStarts = growableU32();
  // PES starts whose first picture is a key frame, on the video PID (fallback).
  const nalStarts = growableU32();
  // Every video PES: its first packet and how many packets of the video PID carry a payload of it.
  const videoPesStart = growableU32();
  const videoPesPackets = growableU32();
  // PES starts with a PTS on the elementary PIDs: [packet, pid] pairs plus PTSs.
  const pesWhere = growableU32();
  const pesPtsValue = new Growable((n) => new Float64Array(n));
  const chunk = Buffer.allocUnsafe(CHUNK_PACKETS * TS_PACKET_BYTES);
  for (let first = 0; first < packetCount; first += CHUNK_PACKETS) {
    const n = Math.min(CHUNK_PACKETS, packetCount - first);
    readChunk(fd, file, chunk, n * TS_PACKET_BYTES, first * TS_PACKET_BYTES);
    for (let i = 0; i < n; i++) {
      const o = i * TS_PACKET_BYTES;
      const packet = first + i;
      if (chunk[o] !== TS_SYNC_BYTE) {
        // Packets stay at fixed 188-byte positions: a bad one is skipped and the next is read normally.
        if (firstBad < 0) firstBad = packet;
        if (++badPackets > allowedBad) {
          throw refuse(
            'TF_ASSET_NOT_TS',
            file,
            `no sync byte 0x47 at packet ${firstBad} (byte ${firstBad * TS_PACKET_BYTES}); ${badPackets} bad packets exceed the ${allowedBad} tolerated${looksLikeM2ts(fd, size) ? ' (it looks like 192-byte M2TS/Blu-ray packets, which are not supported)' : ''}`,
            { offset: firstBad * TS_PACKET_BYTES, packet: firstBad, badPackets },
          );
        }
        continue;
      }
      const b1 = chunk[o + 1];
      if (b1 & 0x80) continue; // transport_error_indicator: contents unreliable
      const pid = ((b1 & 0x1f) << 8) | chunk[o + 2];
      if (pid === PID_NULL) continue;
      const pusi = (b1 & 0x40) !== 0;
      const b3 = chunk[o + 3];
      if (b3 & 0x20) {
        const afLen = chunk[o + 4];
        if (afLen > 0 && afLen <= TS_PACKET_BYTES - 5) {
          const flags = chunk[o + 5];
          if (flags & 0x10 && afLen >= 7) {
            pcrWhere.push(packet);
            pcrWhere.push(pid | (flags & 0x80 ? 0x10000 : 0));
            pcrValue.push(packetPcr(chunk, o));
          }
          if (flags & 0x40 && pusi) {
            raiStarts.push(packet);
            raiStarts.push(pid);
          }
        }
      }
      if (pusi && elementary[pid] === 1) {
        const start = payloadOffset(chunk, o);
        const pts = start < 0 ? -1 : pesPts(chunk, start, o + TS_PACKET_BYTES);
        if (pts >= 0) {
          pesWhere.push(packet);
          pesWhere.push(pid);
          pesPtsValue.push(pts);
        }
      }
      if (pid === PID_PAT) {
        if (pat === undefined) patAssembler.push(chunk, o, onPat);
      } else if (pid === pmtPid) {
        if (pmt === undefined) pmtAssembler.push(chunk, o, onPmt);
      }
      if (pid === videoPid) {
        if (pusi) {
          videoPesStart.push(packet);
          videoPesPackets.push(1);
        } else if (videoPesPackets.length > 0 && (b3 & 0x10) !== 0) {
          videoPesPackets.data[videoPesPackets.length - 1]++;
        }
      }
      if (pid === videoPid && scanner.flavour !== undefined) {
        if (pusi) scanner.startPes(packet);
        if (scanner.pesPacket >= 0) {
          const start = payloadOffset(chunk, o);
          if (start >= 0) {
            const verdict = scanner.feed(chunk, start, o + TS_PACKET_BYTES);
            if (verdict === true) nalStarts.push(scanner.pesPacket);
            if (verdict !== undefined) scanner.pesPacket = -1;
          }
        }
      }
    }
    // Refuse a cut file as soon as its start shows it is TS, without reading it all.
    if (remainder !== 0) throw truncated();
  }

  if (pat === undefined) {
    throw refuse(
      'TF_ASSET_NO_PAT',
      file,
      `no valid program association table (PID 0) in ${packetCount} packets${lastPsiError ? `; last problem: ${lastPsiError}` : ''}`,
      { patSections: patSeen },
    );
  }
  const program = pmt;
  if (program === undefined) {
    throw refuse(
      'TF_ASSET_NO_PMT',
      file,
      `the PAT maps program ${programNumber} to PID ${pmtPid}, but no valid program map table was found there${lastPsiError ? `; last problem: ${lastPsiError}` : ''}`,
      { programNumber, pmtPid, pmtSections: pmtSeen },
    );
  }
  const pcrPid = program.pcrPid;
  if (pcrPid === PID_NULL) {
    throw refuse('TF_ASSET_NO_PCR', file, `program ${programNumber} declares no PCR PID (0x1FFF)`, { programNumber });
  }

  // Keep the PCRs of the PCR PID only.
  const pcrPackets = new Float64Array(pcrValue.length);
  const pcrs = new Float64Array(pcrValue.length);
  const pcrDisc = new Uint8Array(pcrValue.length);
  let pcrCount = 0;
  for (let k = 0; k < pcrValue.length; k++) {
    const where = pcrWhere.data[2 * k + 1];
    if ((where & 0x1fff) !== pcrPid) continue;
    pcrPackets[pcrCount] = pcrWhere.data[2 * k]!;
    pcrs[pcrCount] = pcrValue.data[k]!;
    pcrDisc[pcrCount] = where >> 16;
    pcrCount++;
  }
  if (pcrCount < 2) {
    throw refuse(
      'TF_ASSET_NO_PCR',
      file,
      `${pcrCount === 0 ? 'no' : 'only one'} program clock reference on PCR PID ${pcrPid}; at least 2 are needed to pace the stream`,
      { pcrPid, pcrCount },
    );
  }

  const timeline = pcrTimeline(file, pcrPackets.subarray(0, pcrCount), pcrs.subarray(0, pcrCount), pcrDisc, pcrPid);
  const times = new Uint32Array(packetCount);
  const lastRel = fillSendTimes(file, times, pcrPackets.subarray(0, pcrCount), timeline.virtualPcr, timeline.perPacket);

  const randomAccess: RandomAccessPoint[] = [];
  for (let k = 0; k < raiStarts.length; k += 2) {
    if (raiStarts.data[k + 1] === videoPid) randomAccess.push({ packet: raiStarts.data[k], ticks: 0, videoPackets: 0 });
  }
  if (randomAccess.length === 0) {
    for (let k = 0; k < nalStarts.length; k++) randomAccess.push({ packet: nalStarts.data[k], ticks: 0, videoPackets: 0 });
  }
  if (randomAccess.length > maxRandomAccessPoints) {
    throw refuse(
      'TF_ASSET_UNREADABLE',
      file,
      `${randomAccess.length} random-access points are more than the ${maxRandomAccessPoints} an index may list (media.maxRandomAccessPoints)`,
      { randomAccessPoints: randomAccess.length, limit: maxRandomAccessPoints },
    );
  }
  let pes = 0;
  for (const rap of randomAccess) {
    rap.ticks = times[rap.packet]!;
    while (pes < videoPesStart.length && videoPesStart.data[pes] < rap.packet) pes++;
    rap.videoPackets = videoPesStart.data[pes] === rap.packet ? videoPesPackets.data[pes] : 0;
  }
  const presentation = presentationTimes(
    { packets: pcrPackets.subarray(0, pcrCount), pcrs: pcrs.subarray(0, pcrCount) },
    times,
    { where: pesWhere.data.subarray(0, pesWhere.length), pts: pesPtsValue.data.subarray(0, pesPtsValue.length) },
    videoPid,
    randomAccess[0]?.packet,
  );
  const durationMs = (lastRel + timeline.perPacket) / (PCR_HZ / 1000);

  const streams: AssetStream[] = program.streams.map((s) => ({
    pid: s.pid,
    streamType: s.streamType,
    kind: s.kind,
    codec: s.codec,
  }));
  const meta: AssetIndexMeta = {
    version: 3,
    sourcePath: file,
    sourceSize: size,
    sourceMtimeMs: mtimeMs,
    contentCheck: assetContentCheck(fd, size, file),
    packetCount,
    durationMs,
    presentationEndMs: Math.max(durationMs, presentation.endTicks / (TICKS_HZ / 1000)),
    bitrate: Math.round(timeline.bitrate),
    programNumber,
    pmtPid,
    pcrPid,
    streams,
    pcrCount,
    randomAccess,
  };
  return { meta, times, pictures: presentation.pictures };
}

interface PresentationTimes {
  /** The video pictures' (packet, npt ticks) pairs: AssetIndex.pictures. */
  pictures: Uint32Array;
  /** When the last presentation ends, 90 kHz ticks on the send-time timeline (0 without PES time stamps). */
  endTicks: number;
}

/**
 * Puts every PES's PTS on the send-time timeline: a PES is presented its
 * PTS − PCR after it is sent (the PCR interpolated at its packet, on the PCR
 * PID), which survives wraps and discontinuities since only this local
 * difference is used. Pictures' npts count from the first key frame's
 * presentation, as a player counts media time; without a key frame's PES, from the first picture's. With ffmpeg's muxer that makes a key frame's npt its send time
 * to within a millisecond, the time a seek to it names. The end is the last presentation plus one frame (the median
 * spacing of the video's presentation times).
 */
function presentationTimes(
  pcr: { packets: Float64Array; pcrs: Float64Array },
  times: Uint32Array,
  pes: { where: Uint32Array; pts: Float64Array },
  videoPid: number,
  firstKeyPacket: number | undefined,
): PresentationTimes {
  const count = pes.pts.length;
  const presented = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < count; i++) {
    const packet = pes.where[2 * i];
    while (k + 1 < pcr.packets.length && pcr.packets[k + 1] <= packet) k++;
    const pcrAt = pcr.pcrs[k] / PCR_PER_TICK + (times[packet] - times[pcr.packets[k]]);
    let lead = (pes.pts[i] - pcrAt) % PTS_WRAP;
    if (lead < 0) lead += PTS_WRAP;
    if (lead >= PTS_WRAP / 2) lead -= PTS_WRAP; // a PTS behind its PCR: a broken mux, kept as it is
    presented[i] = times[packet] + lead;
  }
  let end = 0;
  let origin = Number.NaN;
  const video: number[] = [];
  for (let i = 0; i < count; i++) {
    end = Math.max(end, presented[i]);
    if (pes.where[2 * i + 1] !== videoPid) continue;
    const packet = pes.where[2 * i];
    if (packet === firstKeyPacket) origin = presented[i]!;
    video.push(i);
  }
  if (Number.isNaN(origin) && video.length > 0) origin = presented[video[0]]!;
  const pictures = new Uint32Array(2 * video.length);
  const sorted = new Float64Array(video.length);
  video.forEach((i, n) => {
    pictures[2 * n] = pes.where[2 * i]!;
    pictures[2 * n + 1] = Math.min(MAX_TICKS, Math.max(0, Math.round(presented[i] - origin)));
    sorted[n] = presented[i]!;
  });
  sorted.sort();
  const gaps = new Float64Array(Math.max(0, sorted.length - 1));
  for (let n = 1; n < sorted.length; n++) gaps[n - 1] = sorted[n] - sorted[n - 1];
  gaps.sort();
  const frame = gaps.length > 0 ? gaps[gaps.length >> 1] : 0;
  return { pictures, endTicks: sorted.length > 0 ? Math.max(end, sorted[sorted.length - 1] + frame) : end };
}

interface PcrTimeline {
  /** Continuous 27 MHz time of each PCR, the first at 0: unwrapped, discontinuities bridged. */
  virtualPcr: Float64Array;
  bitrate: number;
  /** One packet's duration at the bitrate, 27 MHz units. */
  perPacket: number;
}

/**
 * Turns raw PCRs into one continuous timeline. An interval is trusted unless
 * the second PCR carries discontinuity_indicator, goes backwards (seen, after
 * unwrapping the 33-bit wrap, as a jump of many hours), or runs more than 1 s
 * ahead of what the bytes in between take at the stream's rate. The bitrate is
 * the trusted intervals' bytes over their time: first to last PCR for a clean file.
 */
function pcrTimeline(file: string, packets: Float64Array, pcrs: Float64Array, disc: Uint8Array, pcrPid: number): PcrTimeline {
  const n = pcrs.length;
  const delta = new Float64Array(n);
  const rates = new Float64Array(n);
  let rateCount = 0;
  for (let i = 1; i < n; i++) {
    let d = pcrs[i] - pcrs[i - 1];
    if (d < 0) d += PCR_WRAP;
    delta[i] = d;
    if (!disc[i] && d > 0) rates[rateCount++] = ((packets[i] - packets[i - 1]) * TS_PACKET_BYTES * 8 * PCR_HZ) / d;
  }
  if (rateCount === 0) {
    throw refuse('TF_ASSET_NO_PCR', file, `the ${n} PCRs on PID ${pcrPid} never advance, so no bitrate can be measured`, {
      pcrPid,
      pcrCount: n,
    });
  }
  // A first estimate that one wild interval cannot skew: the median rate.
  const sorted = rates.subarray(0, rateCount).sort();
  const median = sorted[rateCount >> 1];

  const trusted = new Uint8Array(n);
  let bytes = 0;
  let time = 0;
  for (let i = 1; i < n; i++) {
    const span = (packets[i] - packets[i - 1]) * TS_PACKET_BYTES;
    const predicted = (span * 8 * PCR_HZ) / median;
    if (disc[i] || delta[i] > predicted + MAX_PCR_LEAD) continue;
    trusted[i] = 1;
    bytes += span;
    time += delta[i];
  }
  if (time <= 0) {
    throw refuse('TF_ASSET_NO_PCR', file, `no two consecutive PCRs on PID ${pcrPid} give a usable bitrate`, { pcrPid, pcrCount: n });
  }
  const bitrate = (bytes * 8 * PCR_HZ) / time;
  const perPacket = (TS_PACKET_BYTES * 8 * PCR_HZ) / bitrate;
  const virtualPcr = new Float64Array(n);
  for (let i = 1; i < n; i++) {
    virtualPcr[i] = virtualPcr[i - 1] + (trusted[i] ? delta[i] : (packets[i] - packets[i - 1]) * perPacket);
  }
  return { virtualPcr, bitrate, perPacket };
}

/**
 * Fills `times` (90 kHz ticks from packet 0) by interpolating the virtual PCR
 * between PCR packets and extrapolating at both ends. Returns the last packet's
 * time in 27 MHz units from packet 0.
 */
function fillSendTimes(file: string, times: Uint32Array, packets: Float64Array, vpcr: Float64Array, perPacket: number): number {
  const n = packets.length;
  const total = times.length;
  // Packet 0 sits `packets[0]` packets before the first PCR.
  const base = -packets[0] * perPacket;
  let prev = 0;
  const put = (p: number, rel27: number): void => {
    let ticks = Math.round(rel27 / PCR_PER_TICK);
    // Interpolation rounding must never step backwards.
    if (ticks < prev) ticks = prev;
    if (ticks > MAX_TICKS) {
      throw refuse('TF_ASSET_UNREADABLE', file, `longer than the ${Math.floor(MAX_TICKS / TICKS_HZ / 3600)} h an index can time (packet ${p})`, {
        packet: p,
      });
    }
    times[p] = ticks;
    prev = ticks;
  };
  for (let p = 0; p < packets[0]; p++) put(p, p * perPacket);
  for (let i = 1; i < n; i++) {
    const p0 = packets[i - 1];
    const span = packets[i] - p0;
    const v0 = vpcr[i - 1] - base;
    const dv = vpcr[i] - vpcr[i - 1];
    for (let k = 0; k < span; k++) put(p0 + k, v0 + (dv * k) / span);
  }
  const last = packets[n - 1];
  const vLast = vpcr[n - 1] - base;
  for (let p = last; p < total; p++) put(p, vLast + (p - last) * perPacket);
  return vLast + (total - 1 - last) * perPacket;
}
