// Program-specific information (ISO/IEC 13818-1, 2.4.4): reassembling PSI
// sections from TS packets, checking their CRC-32, and parsing the program
// association table (PAT) and program map table (PMT), including what kind of
// elementary stream each stream_type and descriptor set denotes.

import { TS_PACKET_BYTES, packetPusi, payloadOffset } from './packet.js';

export const TABLE_ID_PAT = 0x00;
export const TABLE_ID_PMT = 0x02;

/** A section is at most 1024 bytes for PAT/PMT (4096 for private sections). */
const MAX_SECTION_SIZE = 4096;

// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial value all ones, no bit
// reflection, no final XOR. A section including its CRC field checks to 0.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32Mpeg2(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ buf[i]) & 0xff]) >>> 0;
  return crc >>> 0;
}

export interface PsiDescriptor {
  readonly tag: number;
  readonly data: Uint8Array;
}

export interface PatProgram {
  readonly programNumber: number;
  /** program_map_PID (network_PID when programNumber is 0). */
  readonly pid: number;
}

export interface PatSection {
  readonly tableId: number;
  readonly transportStreamId: number;
  readonly version: number;
  readonly currentNext: boolean;
  readonly sectionNumber: number;
  readonly lastSectionNumber: number;
  /** Programs in table order, without the network information entry (program 0). */
  readonly programs: readonly PatProgram[];
  readonly networkPid: number | undefined;
}

export type StreamKind = 'video' | 'audio' | 'other';
export type StreamCodec =
  | 'mpeg1video'
  | 'mpeg2video'
  | 'mpeg4video'
  | 'h264'
  | 'hevc'
  | 'vvc'
  | 'vc1'
  | 'mp2'
  | 'aac'
  | 'aac-latm'
  | 'ac3'
  | 'eac3'
  | 'dts'
  | 'truehd'
  | 'opus'
  | 'dvb-subtitle'
  | 'teletext'
  | 'id3'
  | 'scte35'
  | 'unknown';

export interface PmtStream {
  readonly streamType: number;
  readonly pid: number;
  readonly descriptors: readonly PsiDescriptor[];
  readonly kind: StreamKind;
  readonly codec: StreamCodec;
}

export interface PmtSection {
  readonly tableId: number;
  readonly programNumber: number;
  readonly version: number;
  readonly currentNext: boolean;
  readonly pcrPid: number;
  readonly programInfo: readonly PsiDescriptor[];
  readonly streams: readonly PmtStream[];
}

/** Why a section was refused; parse functions return it instead of throwing, PSI repeats. */
export interface PsiError {
  readonly error: string;
}

export function isPsiError(v: unknown): v is PsiError {
  return typeof v === 'object' && v !== null && 'error' in v;
}

/**
 * Checks the generic long-form section header and CRC. `section` starts at
 * table_id; returns the section's total length (3 + section_length) or an error.
 */
function checkLongSection(section: Uint8Array, tableId: number): number | PsiError {
  if (section.length < 12) return { error: `section too short (${section.length} bytes)` };
  if (section[0] !== tableId) return { error: `table_id 0x${section[0].toString(16)} is not 0x${tableId.toString(16)}` };
  if ((section[1] & 0x80) === 0) return { error: 'section_syntax_indicator is 0' };
  const sectionLength = ((section[1] & 0x0f) << 8) | section[2];
  const total = 3 + sectionLength;
  if (sectionLength < 9 || total > section.length) {
    return { error: `section_length ${sectionLength} does not fit ${section.length} bytes` };
  }
  if (crc32Mpeg2(section, 0, total) !== 0) return { error: 'CRC-32 mismatch' };
  return total;
}

function parseDescriptors(buf: Uint8Array, start: number, end: number): PsiDescriptor[] | PsiError {
  const out: PsiDescriptor[] = [];
  let p = start;
  while (p + 2 <= end) {
    const tag = buf[p];
    const len = buf[p + 1];
    if (p + 2 + len > end) return { error: `descriptor 0x${tag.toString(16)} overruns its loop` };
    out.push({ tag, data: buf.slice(p + 2, p + 2 + len) });
    p += 2 + len;
  }
  return out;
}

/** Parses one PAT section (starting at table_id). */
export function parsePat(section: Uint8Array): PatSection | PsiError {
  const total = checkLongSection(section, TABLE_ID_PAT);
  if (typeof total !== 'number') return total;
  const programs: PatProgram[] = [];
  let networkPid: number | undefined;
  const loopEnd = total - 4;
  if ((loopEnd - 8) % 4 !== 0) return { error: 'PAT program loop is not a multiple of 4 bytes' };
  for (let p = 8; p + 4 <= loopEnd; p += 4) {
    const programNumber = (section[p] << 8) | section[p + 1];
    const pid = ((section[p + 2] & 0x1f) << 8) | section[p + 3];
    if (programNumber === 0) networkPid = pid;
    else programs.push({ programNumber, pid });
  }
  return {
    tableId: section[0],
    transportStreamId: (section[3] << 8) | section[4],
    version: (section[5] >> 1) & 0x1f,
    currentNext: (section[5] & 0x01) !== 0,
    sectionNumber: section[6],
    lastSectionNumber: section[7],
    programs,
    networkPid,
  };
}

/** Parses one PMT section (starting at table_id). */
export function parsePmt(section: Uint8Array): PmtSection | PsiError {
  const total = checkLongSection(section, TABLE_ID_PMT);
  if (typeof total !== 'number') return total;
  const loopEnd = total - 4;
  const pcrPid = ((section[8] & 0x1f) << 8) | section[9];
  const programInfoLength = ((section[10] & 0x0f) << 8) | section[11];
  if (12 + programInfoLength > loopEnd) return { error: 'program_info_length overruns the section' };
  const programInfo = parseDescriptors(section, 12, 12 + programInfoLength);
  if (isPsiError(programInfo)) return programInfo;
  const streams: PmtStream[] = [];
  let p = 12 + programInfoLength;
  while (p + 5 <= loopEnd) {
    const streamType = section[p];
    const pid = ((section[p + 1] & 0x1f) << 8) | section[p + 2];
    const esInfoLength = ((section[p + 3] & 0x0f) << 8) | section[p + 4];
    if (p + 5 + esInfoLength > loopEnd) return { error: `ES_info_length of PID ${pid} overruns the section` };
    const descriptors = parseDescriptors(section, p + 5, p + 5 + esInfoLength);
    if (isPsiError(descriptors)) return descriptors;
    const { kind, codec } = classifyStream(streamType, descriptors);
    streams.push({ streamType, pid, descriptors, kind, codec });
    p += 5 + esInfoLength;
  }
  if (p !== loopEnd) return { error: 'PMT stream loop has trailing bytes' };
  return {
    tableId: section[0],
    programNumber: (section[3] << 8) | section[4],
    version: (section[5] >> 1) & 0x1f,
    currentNext: (section[5] & 0x01) !== 0,
    pcrPid,
    programInfo,
    streams,
  };
}

const DESC_REGISTRATION = 0x05;
const DESC_TELETEXT = 0x56;
const DESC_SUBTITLING = 0x59;
const DESC_AC3 = 0x6a;
const DESC_EAC3 = 0x7a;
const DESC_DTS = 0x7b;

function registration(descriptors: readonly PsiDescriptor[]): string | undefined {
  const reg = descriptors.find((d) => d.tag === DESC_REGISTRATION && d.data.length >= 4);
  return reg === undefined ? undefined : String.fromCharCode(reg.data[0], reg.data[1], reg.data[2], reg.data[3]);
}

/**
 * What an elementary stream carries. The stream_type alone is enough for the
 * ISO types; private data (0x06) and user-private types (0x80+) are told apart
 * by DVB descriptors and the registration descriptor's format identifier.
 */
export function classifyStream(
  streamType: number,
  descriptors: readonly PsiDescriptor[] = [],
): { kind: StreamKind; codec: StreamCodec } {
  switch (streamType) {
    case 0x01:
      return { kind: 'video', codec: 'mpeg1video' };
    case 0x02:
      return { kind: 'video', codec: 'mpeg2video' };
    case 0x10:
      return { kind: 'video', codec: 'mpeg4video' };
    case 0x1b:
      return { kind: 'video', codec: 'h264' };
    case 0x24:
      return { kind: 'video', codec: 'hevc' };
    case 0x33:
      return { kind: 'video', codec: 'vvc' };
    case 0xea:
      return { kind: 'video', codec: 'vc1' };
    case 0x03:
    case 0x04:
      return { kind: 'audio', codec: 'mp2' };
    case 0x0f:
      return { kind: 'audio', codec: 'aac' };
    case 0x11:
      return { kind: 'audio', codec: 'aac-latm' };
    case 0x81:
      return { kind: 'audio', codec: 'ac3' };
    case 0x87:
      return { kind: 'audio', codec: 'eac3' };
    case 0x82:
    case 0x85:
    case 0x86: {
      // 0x86 is SCTE-35 in ATSC/SCTE systems, 0x82/0x85 DTS in Blu-ray style muxes.
      if (streamType === 0x86 && registration(descriptors) !== 'DTS1') return { kind: 'other', codec: 'scte35' };
      return { kind: 'audio', codec: 'dts' };
    }
    case 0x83:
      return { kind: 'audio', codec: 'truehd' };
    case 0x15:
      return { kind: 'other', codec: 'id3' };
    case 0x06: {
      if (descriptors.some((d) => d.tag === DESC_AC3)) return { kind: 'audio', codec: 'ac3' };
      if (descriptors.some((d) => d.tag === DESC_EAC3)) return { kind: 'audio', codec: 'eac3' };
      if (descriptors.some((d) => d.tag === DESC_DTS)) return { kind: 'audio', codec: 'dts' };
      if (descriptors.some((d) => d.tag === DESC_SUBTITLING)) return { kind: 'other', codec: 'dvb-subtitle' };
      if (descriptors.some((d) => d.tag === DESC_TELETEXT)) return { kind: 'other', codec: 'teletext' };
      break;
    }
  }
  switch (registration(descriptors)) {
    case 'AC-3':
      return { kind: 'audio', codec: 'ac3' };
    case 'EAC3':
      return { kind: 'audio', codec: 'eac3' };
    case 'Opus':
      return { kind: 'audio', codec: 'opus' };
    case 'HEVC':
      return { kind: 'video', codec: 'hevc' };
    case 'VC-1':
      return { kind: 'video', codec: 'vc1' };
    case 'ID3 ':
      return { kind: 'other', codec: 'id3' };
    case 'CUEI':
      return { kind: 'other', codec: 'scte35' };
  }
  return { kind: 'other', codec: 'unknown' };
}

/**
 * Reassembles the PSI sections of one PID from its TS packets (pointer_field,
 * sections spanning packets, several sections in one packet, 0xFF stuffing).
 * A packet lost in the middle of a section only costs that section: it fails
 * its CRC and the next payload_unit_start starts afresh.
 */
export class SectionAssembler {
  #buf = new Uint8Array(MAX_SECTION_SIZE + TS_PACKET_BYTES);
  #len = 0;
  /** Total length of the section being collected, or -1 while its header is incomplete. */
  #need = -1;
  #collecting = false;

  /** Feeds the packet at `off`; calls `onSection` with each section completed by it. */
  push(buf: Uint8Array, off: number, onSection: (section: Uint8Array) => void): void {
    const start = payloadOffset(buf, off);
    if (start < 0) return;
    const end = off + TS_PACKET_BYTES;
    let p = start;
    if (packetPusi(buf, off)) {
      const pointer = buf[p];
      p += 1;
      // Bytes before pointer_field's target finish the section already in progress.
      if (this.#collecting && p + pointer <= end) this.#append(buf, p, p + pointer, onSection);
      p += pointer;
      this.#reset();
      this.#collecting = true;
      this.#consume(buf, p, end, onSection);
    } else if (this.#collecting) {
      this.#consume(buf, p, end, onSection);
    }
  }

  #reset(): void {
    this.#len = 0;
    this.#need = -1;
    this.#collecting = false;
  }

  /** Consumes bytes that begin at a section boundary or continue the current section. */
  #consume(buf: Uint8Array, p: number, end: number, onSection: (section: Uint8Array) => void): void {
    while (p < end && this.#collecting) {
      if (this.#len === 0 && buf[p] === 0xff) {
        // Stuffing after the last section of this packet.
        this.#reset();
        return;
      }
      p = this.#append(buf, p, end, onSection);
    }
  }

  /** Appends bytes to the current section; returns where it stopped. */
  #append(buf: Uint8Array, p: number, end: number, onSection: (section: Uint8Array) => void): number {
    while (p < end) {
      const want = this.#need < 0 ? 3 - this.#len : this.#need - this.#len;
      const take = Math.min(want, end - p);
      this.#buf.set(buf.subarray(p, p + take), this.#len);
      this.#len += take;
      p += take;
      if (this.#need < 0) {
        if (this.#len < 3) continue;
        this.#need = 3 + (((this.#buf[1] & 0x0f) << 8) | this.#buf[2]);
        if (this.#need > MAX_SECTION_SIZE) {
          this.#reset();
          return end;
        }
      }
      if (this.#len === this.#need) {
        onSection(this.#buf.slice(0, this.#len));
        // Another section may follow in the same packet.
        this.#len = 0;
        this.#need = -1;
        return p;
      }
    }
    return p;
  }
}
