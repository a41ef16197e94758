// Reads the RTCP the server sends (src/rtsp/rtcp.ts builds it): tests look
// for its sender reports and BYEs.

import { RTCP_VERSION } from '../../src/rtsp/rtcp.js';

export interface ParsedRtcp {
  readonly type: number;
  readonly count: number;
  readonly ssrc: number;
  readonly body: Buffer;
}

/** Split a compound packet. Throws on malformed input. */
export function parseCompound(buf: Buffer): ParsedRtcp[] {
  const out: ParsedRtcp[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < 8) throw new Error('RTCP packet truncated');
    if (buf[offset] >> 6 !== RTCP_VERSION) throw new Error('RTCP version is not 2');
    const length = (buf.readUInt16BE(offset + 2) + 1) * 4;
    if (offset + length > buf.length) throw new Error('RTCP length beyond the datagram');
    out.push({
      type: buf[offset + 1],
      count: buf[offset] & 0x1f,
      ssrc: buf.readUInt32BE(offset + 4),
      body: buf.subarray(offset, offset + length),
    });
    offset += length;
  }
  return out;
}
