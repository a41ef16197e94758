// The SDP (RFC 4566) a DESCRIBE returns for one MPEG-TS asset: a single RTP/AVP
// media section with static payload type 33 (RFC 2250 / RFC 3551: MP2T, 90 kHz),
// as live555's own MPEG-TS server describes its files, which is what ffmpeg,
// VLC (live555) and GStreamer are tested against.
//
// Controls: the session level says a=control:* (aggregate control is the
// Content-Base itself) and the media level a relative control (track1). ffmpeg,
// live555 and GStreamer all build "<Content-Base>/track1" by plain appending,
// but a client that resolves by RFC 3986 rules would resolve "track1" against
// the asset's parent directory unless the base ends in '/': so send a
// Content-Base with a trailing '/' in the DESCRIBE reply (url.ts accepts the
// trailing '/' that players then put on the aggregate PLAY URL).
//
// A multicast broadcast says where its media already goes (RFC 4566 §5.7, as
// GStreamer's RTSP server and live555 describe a multicast stream): the group
// and its TTL in c=, the group's port in m=, and an open range from now. A
// broadcast of bare MPEG-TS datagrams has the proto "udp" and the media subtype
// MP2T as its format (RFC 4566 §5.14).

import { TICKS_HZ } from '../mpegts/packet.js';
import { RTP_PAYLOAD_TYPE_MP2T } from '../rtp/packetizer.js';
import { TRACK_CONTROL } from './url.js';

export interface SdpParams {
  /** o= sess-id: a numeric string, unique per asset (RFC 4566 suggests an NTP timestamp). */
  readonly sessionId: string | number | bigint;
  /** o= sess-version: bump it when the asset changes. Default 1. */
  readonly sessionVersion?: string | number | bigint;
  /** The address the RTSP connection reached (o= unicast-address). */
  readonly serverAddress: string;
  /** s=: the asset's name. Line breaks are replaced by spaces. */
  readonly name: string;
  /** Presentation length in seconds; undefined gives an open range ("npt=0-"). */
  readonly durationSeconds?: number;
  /** Media-level a=control. Default TRACK_CONTROL. */
  readonly trackControl?: string;
  /** b=AS: mux rate in kbit/s. Players (VLC) size their receive buffers from it. */
  readonly bitrateKbps?: number;
  /** A multicast broadcast: its group, TTL and port, its kind of datagrams; the range is then "npt=now-". */
  readonly multicast?: { readonly group: string; readonly ttl: number; readonly port: number; readonly transport: 'rtp' | 'udp' };
}


function numeric(value: string | number | bigint, what: string): string {
  const text = String(value);
  if (!/^[0-9]{1,20}$/.test(text)) throw new TypeError(`SDP ${what} must be a decimal number, got ${JSON.stringify(text)}`);
  return text;
}

/** SDP text fields cannot carry line breaks; NUL is forbidden too (RFC 4566 §5). */
function textField(value: string): string {
  const clean = value.replace(/[\r\n\0]+/g, ' ').trim();
  // RFC 4566 §5.3: a session without a meaningful name is "s= ".
  return clean === '' ? ' ' : clean;
}

/** o= sess-id: a stable number per name (FNV-1a, 32 bits). */
export function sdpSessionId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function buildSdp(params: SdpParams): string {
  const addrType = params.serverAddress.includes(':') ? 'IP6' : 'IP4';
  if (!/^[0-9A-Za-z.:%-]+$/.test(params.serverAddress)) throw new TypeError(`invalid SDP address ${params.serverAddress}`);
  const control = params.trackControl ?? TRACK_CONTROL;
  if (!/^[\x21-\x7e]+$/.test(control)) throw new TypeError(`invalid SDP control ${control}`);
  const multicast = params.multicast;
  if (multicast !== undefined) checkMulticast(multicast);
  let range = multicast === undefined ? 'npt=0-' : 'npt=now-';
  if (params.durationSeconds !== undefined && multicast === undefined) {
    if (!Number.isFinite(params.durationSeconds) || params.durationSeconds < 0) {
      throw new TypeError(`invalid duration ${params.durationSeconds}`);
    }
    range += params.durationSeconds.toFixed(3);
  }
  const lines = [
    'v=0',
    `o=- ${numeric(params.sessionId, 'session id')} ${numeric(params.sessionVersion ?? 1, 'session version')} IN ${addrType} ${params.serverAddress}`,
    `s=${textField(params.name)}`,
    // The media goes where SETUP says, not to a session-wide address; a broadcast's to its group.
    multicast === undefined ? `c=IN ${addrType} ${addrType === 'IP4' ? '0.0.0.0' : '::'}` : `c=IN IP4 ${multicast.group}/${multicast.ttl}`,
    't=0 0',
    'a=control:*',
    `a=range:${range}`,
    multicast?.transport === 'udp' ? `m=video ${multicast.port} udp MP2T` : `m=video ${multicast?.port ?? 0} RTP/AVP ${RTP_PAYLOAD_TYPE_MP2T}`,
  ];
  if (params.bitrateKbps !== undefined) {
    if (!Number.isFinite(params.bitrateKbps) || params.bitrateKbps <= 0) throw new TypeError(`invalid bitrate ${params.bitrateKbps}`);
    lines.push(`b=AS:${Math.ceil(params.bitrateKbps)}`);
  }
  if (multicast?.transport !== 'udp') lines.push(`a=rtpmap:${RTP_PAYLOAD_TYPE_MP2T} MP2T/${TICKS_HZ}`);
  lines.push(`a=control:${control}`);
  return `${lines.join('\r\n')}\r\n`;
}

function checkMulticast(m: NonNullable<SdpParams['multicast']>): void {
  if (!/^(22[4-9]|23[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/.test(m.group)) throw new TypeError(`invalid multicast group ${m.group}`);
  if (!Number.isInteger(m.ttl) || m.ttl < 0 || m.ttl > 255) throw new TypeError(`invalid multicast ttl ${m.ttl}`);
  if (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535) throw new TypeError(`invalid multicast port ${m.port}`);
}
