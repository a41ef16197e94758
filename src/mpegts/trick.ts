// Trick play (RTSP Scale ≠ 1): a new, valid MPEG-TS built from an asset's key
// frames, as live555 builds one from its .tsx index. For each key frame in
// play order (ascending for Scale > 0, descending for Scale < 0) a *group*:
//
//   PAT | PMT | PCR (adaptation-only, video PID) | the key frame's video packets | null padding
//
// padded to whole datagrams of 7 packets. Audio and every other PID are
// dropped; the PMT lists the video stream only, with the video PID as PCR PID.
// Continuity counters, PCRs and the key frame's PTS/DTS are rewritten so that
// group j is presented at |t_j − t_0| / |Scale| after the segment's start
// (t: the key frame's npt): the PCR advances at 1/|Scale| of media time.
//
// Everything here is a pure function of (key frames, start packet, Scale,
// datagram number), so both data paths build the same bytes for a datagram and
// a failover during trick play is as lossless as during normal play. No I/O,
// no allocation per datagram.

import { crc32Mpeg2 } from './psi.js';
import { PCR_PER_TICK, PID_NULL, PID_PAT, TS_PACKET_BYTES, TS_SYNC_BYTE, encodePcr, payloadOffset } from './packet.js';
import { PTS_WRAP } from './pes.js';

/** The Scale values served besides 1 (normal play). */
export const TRICK_SCALES: readonly number[] = [2, 4, 8, 16, -2, -4, -8, -16];

export const TRICK_PACKETS_PER_DATAGRAM = 7;
/** PAT, PMT and the PCR packet open every group. */
const GROUP_HEADER_PACKETS = 3;
/** A key frame is presented this long after its PCR: room for the decoder to receive it (0.3 s). */
const PTS_LEAD_TICKS = 27_000;
/** The output timeline starts here, so PTS − lead stays positive (1 s). */
const BASE_TICKS = 90_000;

/** A key frame as the index knows it. */
export interface TrickKey {
  /** Packet its PES starts at. */
  readonly packet: number;
  /** Its npt (send time), 90 kHz ticks. */
  readonly ticks: number;
  /** How many packets of the video PID carry its PES (from `packet` to the next video PES; adaptation-only ones not counted). */
  readonly videoPackets: number;
}

/** The program the trick stream announces. */
export interface TrickProgram {
  readonly programNumber: number;
  readonly pmtPid: number;
  readonly videoPid: number;
  readonly videoStreamType: number;
}

export interface TrickPlan {
  readonly scale: number;
  /** Key frames in play order. */
  readonly keys: readonly TrickKey[];
  /** Datagram number at which group j starts; [keys.length] is the total. */
  readonly firstDatagram: Float64Array;
  /** When group j is due, 90 kHz ticks from the segment's start; [keys.length]: the end. */
  readonly atTicks: Float64Array;
  /** Video packets in the groups before group j (continuity counters continue across groups). */
  readonly videoBefore: Float64Array;
}

export function isTrickScale(scale: number): boolean {
  return TRICK_SCALES.includes(scale);
}

/**
 * The groups of a trick segment starting at `startPacket`: the key frames at or
 * after it (Scale > 0) or at or before it (Scale < 0), in play order.
 */
export function planTrick(allKeys: readonly TrickKey[], startPacket: number, scale: number): TrickPlan {
  if (!isTrickScale(scale)) throw new RangeError(`unsupported trick scale ${scale}`);
  const keys = scale > 0 ? allKeys.filter((k) => k.packet >= startPacket) : allKeys.filter((k) => k.packet <= startPacket).reverse();
  const n = keys.length;
  const firstDatagram = new Float64Array(n + 1);
  const atTicks = new Float64Array(n + 1);
  const videoBefore = new Float64Array(n + 1);
  const speed = Math.abs(scale);
  for (let j = 0; j < n; j++) {
    const key = keys[j];
    const packets = GROUP_HEADER_PACKETS + key.videoPackets;
    firstDatagram[j + 1] = firstDatagram[j] + Math.ceil(packets / TRICK_PACKETS_PER_DATAGRAM);
    videoBefore[j + 1] = videoBefore[j] + key.videoPackets;
    atTicks[j] = Math.abs(key.ticks - keys[0].ticks) / speed;
  }
  // The last group lasts as long as the one before it (or 1 s of media for a lone key frame).
  const lastSpan = n >= 2 ? atTicks[n - 1] - atTicks[n - 2] : 90_000 / speed;
  if (n > 0) atTicks[n] = atTicks[n - 1] + lastSpan;
  return { scale, keys, firstDatagram, atTicks, videoBefore };
}

export function trickDatagramCount(plan: TrickPlan): number {
  return plan.firstDatagram[plan.keys.length];
}

/** The group datagram `d` (from the segment's start) belongs to. */
export function trickGroupOf(plan: TrickPlan, d: number): number {
  let lo = 0;
  let hi = plan.keys.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (plan.firstDatagram[mid] <= d) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** When datagram `d` is due: its group's datagrams spread evenly until the next group. */
export function trickDeadlineTicks(plan: TrickPlan, d: number): number {
  const j = trickGroupOf(plan, d);
  const first = plan.firstDatagram[j];
  const count = plan.firstDatagram[j + 1] - first;
  return plan.atTicks[j] + ((d - first) / count) * (plan.atTicks[j + 1] - plan.atTicks[j]);
}

/** Where a trick datagram's bytes come from: copies the k-th video packet with a payload of `key`'s PES to out[at..at+188). */
export interface TrickSource {
  /** False when those bytes are not read yet (the caller tries again later). */
  copyVideoPacket(key: TrickKey, k: number, out: Uint8Array, at: number): boolean;
}

/**
 * Writes datagram `d` (7 packets) of the plan at out[at..]. False (with `out`
 * partly written) when the source has not read a packet yet.
 */
export function buildTrickDatagram(plan: TrickPlan, program: TrickProgram, d: number, source: TrickSource, out: Uint8Array, at: number): boolean {
  const j = trickGroupOf(plan, d);
  const key = plan.keys[j];
  const deadline = trickDeadlineTicks(plan, d);
  const pcr27 = (BASE_TICKS + deadline) * PCR_PER_TICK;
  const pts = BASE_TICKS + plan.atTicks[j] + PTS_LEAD_TICKS;
  const firstSlot = (d - plan.firstDatagram[j]) * TRICK_PACKETS_PER_DATAGRAM;
  for (let i = 0; i < TRICK_PACKETS_PER_DATAGRAM; i++) {
    const slot = firstSlot + i;
    const o = at + i * TS_PACKET_BYTES;
    if (slot === 0) writePat(program, j & 0x0f, out, o);
    else if (slot === 1) writePmt(program, j & 0x0f, out, o);
    else if (slot === 2) writePcrPacket(program.videoPid, (plan.videoBefore[j] - 1) & 0x0f, pcr27, j === 0, out, o);
    else if (slot - GROUP_HEADER_PACKETS < key.videoPackets) {
      const k = slot - GROUP_HEADER_PACKETS;
      if (!source.copyVideoPacket(key, k, out, o)) return false;
      rewriteVideoPacket(out, o, (plan.videoBefore[j] + k) & 0x0f, pcr27, k === 0 ? pts : -1);
    } else {
      writeNullPacket(out, o);
    }
  }
  return true;
}

function writeHeader(out: Uint8Array, o: number, pid: number, pusi: boolean, afc: number, cc: number): void {
  out[o] = TS_SYNC_BYTE;
  out[o + 1] = (pusi ? 0x40 : 0) | ((pid >> 8) & 0x1f);
  out[o + 2] = pid & 0xff;
  out[o + 3] = (afc << 4) | (cc & 0x0f);
}

/** A PSI section in one packet: header, pointer field 0, the section (body[0, length)) with its CRC, 0xFF stuffing. */
function writeSection(out: Uint8Array, o: number, pid: number, cc: number, body: Uint8Array, length: number): void {
  writeHeader(out, o, pid, true, 1, cc);
  out[o + 4] = 0; // pointer_field
  const start = o + 5;
  for (let i = 0; i < length; i++) out[start + i] = body[i];
  const crc = crc32Mpeg2(out, start, start + length);
  const c = start + length;
  out[c] = crc >>> 24;
  out[c + 1] = (crc >>> 16) & 0xff;
  out[c + 2] = (crc >>> 8) & 0xff;
  out[c + 3] = crc & 0xff;
  out.fill(0xff, c + 4, o + TS_PACKET_BYTES);
}

/** The PAT's or PMT's section before its CRC, written here (the hot loop allocates nothing). */
const sectionBody = new Uint8Array(17);

function writePat(p: TrickProgram, cc: number, out: Uint8Array, o: number): void {
  // table_id, section_length 13, transport_stream_id 1, version 0 current, section 0 of 0, the program.
  const b = sectionBody;
  b[0] = 0x00; b[1] = 0xb0; b[2] = 13; b[3] = 0x00; b[4] = 0x01; b[5] = 0xc1; b[6] = 0x00; b[7] = 0x00;
  b[8] = p.programNumber >> 8; b[9] = p.programNumber & 0xff; b[10] = 0xe0 | (p.pmtPid >> 8); b[11] = p.pmtPid & 0xff;
  writeSection(out, o, PID_PAT, cc, b, 12);
}

function writePmt(p: TrickProgram, cc: number, out: Uint8Array, o: number): void {
  // table_id 2, section_length 18, the program, PCR PID = video PID, no program info, one stream.
  const b = sectionBody;
  b[0] = 0x02; b[1] = 0xb0; b[2] = 18; b[3] = p.programNumber >> 8; b[4] = p.programNumber & 0xff; b[5] = 0xc1; b[6] = 0x00; b[7] = 0x00;
  b[8] = 0xe0 | (p.videoPid >> 8); b[9] = p.videoPid & 0xff; b[10] = 0xf0; b[11] = 0x00;
  b[12] = p.videoStreamType; b[13] = 0xe0 | (p.videoPid >> 8); b[14] = p.videoPid & 0xff; b[15] = 0xf0; b[16] = 0x00;
  writeSection(out, o, p.pmtPid, cc, b, 17);
}

/** An adaptation-field-only packet carrying the PCR (its continuity counter repeats the PID's last one). */
function writePcrPacket(pid: number, cc: number, pcr27: number, discontinuity: boolean, out: Uint8Array, o: number): void {
  writeHeader(out, o, pid, false, 2, cc);
  out[o + 4] = TS_PACKET_BYTES - 5; // adaptation_field_length: the rest of the packet
  out[o + 5] = 0x10 | (discontinuity ? 0x80 : 0);
  encodePcr(pcr27, out, o + 6);
  out.fill(0xff, o + 12, o + TS_PACKET_BYTES);
}

function writeNullPacket(out: Uint8Array, o: number): void {
  writeHeader(out, o, PID_NULL, false, 1, 0);
  out.fill(0xff, o + 4, o + TS_PACKET_BYTES);
}

/**
 * A copied video packet made to fit the new stream: its continuity counter,
 * its PCR if it has one, and (`pts` ≥ 0, the PES's first packet) its PTS and
 * DTS, both set to `pts`: an I picture alone is decoded as it is presented.
 */
function rewriteVideoPacket(out: Uint8Array, o: number, cc: number, pcr27: number, pts: number): void {
  out[o + 3] = (out[o + 3] & 0xf0) | cc;
  if ((out[o + 3] & 0x20) !== 0 && out[o + 4] >= 7 && (out[o + 5] & 0x10) !== 0) {
    out[o + 5] = out[o + 5] & ~0x80; // not a discontinuity: the PCR packet before it set the timeline
    encodePcr(pcr27, out, o + 6);
  }
  if (pts < 0 || (out[o + 1] & 0x40) === 0) return;
  const p = payloadOffset(out, o);
  if (p < 0 || p + 19 > o + TS_PACKET_BYTES || out[p] !== 0 || out[p + 1] !== 0 || out[p + 2] !== 1) return;
  const flags = out[p + 7] >> 6;
  if (flags === 2) {
    encodeTimestamp(0x2, pts, out, p + 9);
  } else if (flags === 3) {
    encodeTimestamp(0x3, pts, out, p + 9);
    encodeTimestamp(0x1, pts, out, p + 14);
  }
}

/** A 33-bit time stamp in its 5-byte PES form with a 4-bit prefix ('0010' PTS only, '0011' PTS of a pair, '0001' DTS). */
export function encodeTimestamp(prefix: number, ts: number, out: Uint8Array, at: number): void {
  const v = ((ts % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
  const high = Math.floor(v / 2 ** 30); // bits 32..30
  const low = v % 2 ** 30;
  out[at] = (prefix << 4) | (high << 1) | 1;
  out[at + 1] = (low >>> 22) & 0xff;
  out[at + 2] = (((low >>> 15) & 0x7f) << 1) | 1;
  out[at + 3] = (low >>> 7) & 0xff;
  out[at + 4] = ((low & 0x7f) << 1) | 1;
}
