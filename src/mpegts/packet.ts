// MPEG transport stream packets (ISO/IEC 13818-1, 2.4.3): the constants and the
// header / adaptation field accessors. Accessors read straight from a buffer at
// a packet offset and allocate nothing, so an indexer can call them for every
// packet of a multi-gigabyte file; `parsePacketHeader` is the allocating,
// all-in-one view for tests and diagnostics.

export const TS_PACKET_BYTES = 188;
export const TS_SYNC_BYTE = 0x47;
export const TS_HEADER_SIZE = 4;

export const PID_PAT = 0x0000;
export const PID_NULL = 0x1fff;
export const MAX_PID = 0x1fff;

/**
 * The PCR counts a 27 MHz clock; PTS/DTS, the index's send times and MP2T's RTP
 * timestamps (RFC 2250 §2) count 90 kHz ticks.
 */
export const PCR_HZ = 27_000_000;
export const TICKS_HZ = 90_000;
export const TICKS_PER_MS = TICKS_HZ / 1000;
export const PCR_PER_TICK = PCR_HZ / TICKS_HZ; // 300
/** PCR = base(33 bits) * 300 + extension(9 bits, < 300): it wraps at 2^33 * 300. */
export const PCR_WRAP = 2 ** 33 * 300;

/** adaptation_field_control values (2 bits). */
export const AFC_RESERVED = 0;
export const AFC_PAYLOAD_ONLY = 1;
export const AFC_ADAPTATION_ONLY = 2;
export const AFC_ADAPTATION_AND_PAYLOAD = 3;

// Adaptation field flag bits (the byte after adaptation_field_length).
const AF_DISCONTINUITY = 0x80;
const AF_RANDOM_ACCESS = 0x40;
const AF_PCR = 0x10;

export function hasSyncByte(buf: Uint8Array, off: number): boolean {
  return buf[off] === TS_SYNC_BYTE;
}

export function packetTransportError(buf: Uint8Array, off: number): boolean {
  return (buf[off + 1] & 0x80) !== 0;
}

/** payload_unit_start_indicator: a PES packet or a PSI section starts in this packet. */
export function packetPusi(buf: Uint8Array, off: number): boolean {
  return (buf[off + 1] & 0x40) !== 0;
}

export function packetPid(buf: Uint8Array, off: number): number {
  return ((buf[off + 1] & 0x1f) << 8) | buf[off + 2];
}

export function packetAdaptationFieldControl(buf: Uint8Array, off: number): number {
  return (buf[off + 3] >> 4) & 0x03;
}

export function packetContinuityCounter(buf: Uint8Array, off: number): number {
  return buf[off + 3] & 0x0f;
}

export function packetHasAdaptationField(buf: Uint8Array, off: number): boolean {
  return (buf[off + 3] & 0x20) !== 0;
}

export function packetHasPayload(buf: Uint8Array, off: number): boolean {
  return (buf[off + 3] & 0x10) !== 0;
}

/**
 * adaptation_field_length, or 0 when the packet has no adaptation field. A
 * length that would run past the packet is reported as -1 so callers can treat
 * the packet as damaged instead of reading a neighbour's bytes.
 */
export function adaptationFieldLength(buf: Uint8Array, off: number): number {
  if ((buf[off + 3] & 0x20) === 0) return 0;
  const len = buf[off + 4];
  // With a payload the field can be at most 182 bytes; without one, exactly 183.
  return len > TS_PACKET_BYTES - 5 ? -1 : len;
}

/** The adaptation field flags byte, or 0 when there is none or it is empty. */
function adaptationFlags(buf: Uint8Array, off: number): number {
  const len = adaptationFieldLength(buf, off);
  return len > 0 ? buf[off + 5] : 0;
}

export function packetDiscontinuity(buf: Uint8Array, off: number): boolean {
  return (adaptationFlags(buf, off) & AF_DISCONTINUITY) !== 0;
}

export function packetRandomAccess(buf: Uint8Array, off: number): boolean {
  return (adaptationFlags(buf, off) & AF_RANDOM_ACCESS) !== 0;
}

export function packetHasPcr(buf: Uint8Array, off: number): boolean {
  // The PCR takes 6 bytes after the flags byte: the field must be long enough.
  return (adaptationFlags(buf, off) & AF_PCR) !== 0 && adaptationFieldLength(buf, off) >= 7;
}

/**
 * The packet's PCR in 27 MHz units (base * 300 + extension), or -1 when it has
 * none. Fits a double exactly: the maximum is below 2^42.
 */
export function packetPcr(buf: Uint8Array, off: number): number {
  if (!packetHasPcr(buf, off)) return -1;
  const p = off + 6;
  // 33-bit base: bytes p..p+3 are its top 32 bits, then the top bit of p+4.
  const base = (buf[p] * 0x1000000 + ((buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3])) * 2 + (buf[p + 4] >> 7);
  const ext = ((buf[p + 4] & 0x01) << 8) | buf[p + 5];
  return base * 300 + ext;
}

/**
 * Offset (absolute, in buf) of the first payload byte, or -1 when the packet has
 * no payload or its adaptation field leaves no room for one.
 */
export function payloadOffset(buf: Uint8Array, off: number): number {
  if ((buf[off + 3] & 0x10) === 0) return -1;
  let start = off + TS_HEADER_SIZE;
  if ((buf[off + 3] & 0x20) !== 0) {
    const len = buf[off + 4];
    start += 1 + len;
  }
  return start < off + TS_PACKET_BYTES ? start : -1;
}

/** Writes a PCR (27 MHz units) into a 6-byte field; the reserved bits are set to 1. */
export function encodePcr(pcr27: number, out: Uint8Array, at: number): void {
  const v = ((pcr27 % PCR_WRAP) + PCR_WRAP) % PCR_WRAP;
  const base = Math.floor(v / 300);
  const ext = v - base * 300;
  const hi = Math.floor(base / 2); // top 32 bits of the 33-bit base
  out[at] = (hi >>> 24) & 0xff;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = ((base & 1) << 7) | 0x7e | ((ext >> 8) & 0x01);
  out[at + 5] = ext & 0xff;
}

export interface TsAdaptationField {
  readonly length: number;
  readonly discontinuity: boolean;
  readonly randomAccess: boolean;
  readonly esPriority: boolean;
  /** 27 MHz units, or undefined when the field carries no PCR. */
  readonly pcr: number | undefined;
}

export interface TsPacketHeader {
  readonly sync: boolean;
  readonly transportError: boolean;
  readonly payloadUnitStart: boolean;
  readonly priority: boolean;
  readonly pid: number;
  readonly scrambling: number;
  readonly adaptationFieldControl: number;
  readonly continuityCounter: number;
  readonly adaptationField: TsAdaptationField | undefined;
  /** Offset of the payload relative to the packet start, or -1 without payload. */
  readonly payloadOffset: number;
}

/** The whole header of the packet at `off`, as an object (allocates: not for hot loops). */
export function parsePacketHeader(buf: Uint8Array, off = 0): TsPacketHeader {
  if (buf.length < off + TS_PACKET_BYTES) {
    throw new RangeError(`a TS packet needs ${TS_PACKET_BYTES} bytes at offset ${off}, buffer has ${buf.length}`);
  }
  const afLen = adaptationFieldLength(buf, off);
  let adaptationField: TsAdaptationField | undefined;
  if (packetHasAdaptationField(buf, off) && afLen >= 0) {
    const flags = afLen > 0 ? buf[off + 5] : 0;
    const pcr = packetPcr(buf, off);
    adaptationField = {
      length: afLen,
      discontinuity: (flags & AF_DISCONTINUITY) !== 0,
      randomAccess: (flags & AF_RANDOM_ACCESS) !== 0,
      esPriority: (flags & 0x20) !== 0,
      pcr: pcr >= 0 ? pcr : undefined,
    };
  }
  const pay = payloadOffset(buf, off);
  return {
    sync: buf[off] === TS_SYNC_BYTE,
    transportError: packetTransportError(buf, off),
    payloadUnitStart: packetPusi(buf, off),
    priority: (buf[off + 1] & 0x20) !== 0,
    pid: packetPid(buf, off),
    scrambling: (buf[off + 3] >> 6) & 0x03,
    adaptationFieldControl: packetAdaptationFieldControl(buf, off),
    continuityCounter: packetContinuityCounter(buf, off),
    adaptationField,
    payloadOffset: pay >= 0 ? pay - off : -1,
  };
}
