// The RTP-Info header (RFC 2326 §12.33): in a PLAY reply, for each stream, the
// RTP sequence number and timestamp of the first packet sent after the PLAY,
// so the player can map RTP time to the npt position it asked for.

import { TwinframeError } from '../../errors.js';

export interface RtpInfoEntry {
  /** The stream's control URL, as the client knows it. */
  readonly url: string;
  /** 16-bit RTP sequence number. */
  readonly seq?: number;
  /** 32-bit RTP timestamp. */
  readonly rtptime?: number;
}

// The parameters that may follow url=. Anything else after a ';' is taken as part
// of the URL, since RFC 2326 does not forbid ';' inside it.
const PARAM = /;[ \t]*(seq|rtptime|ssrc)[ \t]*=/i;

/**
 * Players split RTP-Info at ',' ';' and white space without regard to the URL
 * (ffmpeg's rtsp_parse_rtp_info does), so those characters are percent-encoded
 * rather than sent raw. Our control URLs never contain them in practice.
 */
function encodeUrl(url: string): string {
  return url.replace(/[,; \t]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function serializeEntry(entry: RtpInfoEntry): string {
  if (/[\r\n]/.test(entry.url) || entry.url === '') throw new TypeError('RTP-Info url is empty or has a line break');
  let text = `url=${encodeUrl(entry.url)}`;
  if (entry.seq !== undefined) {
    if (!Number.isInteger(entry.seq) || entry.seq < 0 || entry.seq > 0xffff) throw new TypeError(`invalid RTP seq ${entry.seq}`);
    text += `;seq=${entry.seq}`;
  }
  if (entry.rtptime !== undefined) {
    if (!Number.isInteger(entry.rtptime) || entry.rtptime < 0 || entry.rtptime > 0xffffffff) {
      throw new TypeError(`invalid RTP timestamp ${entry.rtptime}`);
    }
    text += `;rtptime=${entry.rtptime}`;
  }
  return text;
}

export function serializeRtpInfo(entries: readonly RtpInfoEntry[]): string {
  if (entries.length === 0) throw new TypeError('RTP-Info needs at least one stream');
  return entries.map(serializeEntry).join(',');
}

function bad(message: string, value: string): never {
  throw new TwinframeError('TF_RTSP_BAD_REQUEST', `RTP-Info: ${message}`, { header: 'RTP-Info', value });
}

function parseEntry(text: string, header: string): RtpInfoEntry {
  const m = /^url[ \t]*=[ \t]*/i.exec(text);
  if (!m) bad('entry does not start with url=', header);
  const rest = text.slice(m[0].length);
  const p = PARAM.exec(rest);
  const url = (p ? rest.slice(0, p.index) : rest).trim();
  if (url === '') bad('empty url', header);
  const entry: { url: string; seq?: number; rtptime?: number } = { url };
  if (p) {
    for (const param of rest.slice(p.index + 1).split(';')) {
      const eq = param.indexOf('=');
      const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      // ssrc (RFC 7826) and unknown parameters are ignored.
      if (name !== 'seq' && name !== 'rtptime') continue;
      const value = eq < 0 ? '' : param.slice(eq + 1).trim();
      if (!/^[0-9]{1,10}$/.test(value)) bad(`malformed ${name}`, header);
      const n = Number(value);
      if (name === 'seq') {
        if (n > 0xffff) bad('seq out of range', header);
        entry.seq = n;
      } else if (name === 'rtptime') {
        if (n > 0xffffffff) bad('rtptime out of range', header);
        entry.rtptime = n;
      }
    }
  }
  return entry;
}

/** Parse an RTP-Info value (the test client reads it from PLAY replies). */
export function parseRtpInfo(value: string): RtpInfoEntry[] {
  // A ',' starts a new entry only when "url=" follows: URLs may contain commas.
  const entries = value
    .split(/,(?=[ \t]*url[ \t]*=)/i)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) bad('empty header', value);
  return entries.map((e) => parseEntry(e, value));
}
