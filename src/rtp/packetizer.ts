// RTP framing for MPEG-TS (RFC 3550 header, RFC 2250 payload type 33): seven
// 188-byte TS packets per datagram. Pure byte writing; no allocation.

import { TICKS_PER_MS, TS_PACKET_BYTES } from '../mpegts/packet.js';

export const TS_PACKETS_PER_DATAGRAM = 7;
export const TS_PAYLOAD_BYTES = TS_PACKET_BYTES * TS_PACKETS_PER_DATAGRAM; // 1316
export const RTP_HEADER_BYTES = 12;
/** RFC 2250 / RFC 3551 static payload type of MPEG-2 transport streams. */
export const RTP_PAYLOAD_TYPE_MP2T = 33;

/** The RTP timestamp `elapsedMs` after one that was `base` (90 kHz, wrapping at 2^32). */
export function rtpTimeAfter(base: number, elapsedMs: number): number {
  return (base + Math.round(elapsedMs * TICKS_PER_MS)) >>> 0;
}

/** Write a 12-byte RTP header (V=2, no padding/extension/CSRC, marker 0, PT 33). */
export function writeRtpHeader(buf: Uint8Array, seq: number, timestamp: number, ssrc: number): void {
  buf[0] = 0x80;
  buf[1] = RTP_PAYLOAD_TYPE_MP2T;
  buf[2] = (seq >>> 8) & 0xff;
  buf[3] = seq & 0xff;
  buf[4] = (timestamp >>> 24) & 0xff;
  buf[5] = (timestamp >>> 16) & 0xff;
  buf[6] = (timestamp >>> 8) & 0xff;
  buf[7] = timestamp & 0xff;
  buf[8] = (ssrc >>> 24) & 0xff;
  buf[9] = (ssrc >>> 16) & 0xff;
  buf[10] = (ssrc >>> 8) & 0xff;
  buf[11] = ssrc & 0xff;
}
