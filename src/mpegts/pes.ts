// The PES header's time stamps (ISO/IEC 13818-1 §2.4.3.7): where a PES packet's
// PTS and DTS sit, read from the first TS packet of the PES.

/** PTS/DTS are 33-bit counts of the 90 kHz clock. */
export const PTS_WRAP = 2 ** 33;

/** Offset of the PTS in a PES header; the DTS follows at +5. */
const PES_PTS_OFFSET = 9;
const PES_FIXED_HEADER = 9;

/**
 * The PTS of the PES whose header starts at `start` (a payload_unit_start
 * packet's payload), or -1 when it carries none or its header runs past `end`.
 */
export function pesPts(buf: Uint8Array, start: number, end: number): number {
  if (start + PES_FIXED_HEADER > end) return -1;
  if (buf[start] !== 0 || buf[start + 1] !== 0 || buf[start + 2] !== 1) return -1;
  if ((buf[start + 7] & 0x80) === 0) return -1;
  const at = start + PES_PTS_OFFSET;
  if (at + 5 > end) return -1;
  return decodeTimestamp(buf, at);
}

/** A 33-bit time stamp in its 5-byte PES form (4 prefix bits, marker bits between). */
export function decodeTimestamp(buf: Uint8Array, at: number): number {
  const high = (buf[at] >> 1) & 0x07; // bits 32..30
  const low = (buf[at + 1] << 22) | ((buf[at + 2] >> 1) << 15) | (buf[at + 3] << 7) | (buf[at + 4] >> 1);
  return high * 2 ** 30 + low;
}
