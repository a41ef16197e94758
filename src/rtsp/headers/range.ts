// The Range header (RFC 2326 §12.29) in its npt form (§3.6): parse what a PLAY
// asks for, serialize what the reply says is played, and resolve a request
// against an asset's duration.
//
// Status choices, so that every caller answers alike:
// - malformed npt syntax, an unknown unit, or a range the asset cannot satisfy
//   → TF_RANGE_INVALID (457 Invalid Range). A 400 would be just as legal for
//   syntax, but 457 names the header at fault, and players treat both the same.
// - a well-formed range in a unit RFC 2326 defines that we do not implement
//   (smpte, smpte-30-drop, smpte-25, clock), several ranges in one header
//   → TF_RTSP_NOT_IMPLEMENTED (501): the request is valid, the server lacks the feature.

import { TwinframeError } from '../../errors.js';

/** Seconds from the start of the presentation, or 'now' (the current position). */
export type NptTime = number | 'now';

export interface NptRange {
  readonly unit: 'npt';
  /** Absent in the "-end" form. */
  readonly start?: NptTime;
  /** Absent in the open "start-" form. */
  readonly end?: NptTime;
  /**
   * The ";time=" parameter (UTC wall-clock time at which to start), unparsed.
   * We never schedule: a caller that receives one should answer 501.
   */
  readonly time?: string;
}

const UNIMPLEMENTED_UNITS = new Set(['smpte', 'smpte-30-drop', 'smpte-25', 'clock']);

const NPT_SEC = /^([0-9]+)(?:\.([0-9]*))?$/;
const NPT_HHMMSS = /^([0-9]+):([0-9]{1,2}):([0-9]{1,2})(?:\.([0-9]*))?$/;

function invalid(message: string, value: string): never {
  throw new TwinframeError('TF_RANGE_INVALID', `Range: ${message}`, { header: 'Range', value });
}

function parseNptTime(text: string, header: string): NptTime {
  if (text === 'now') return 'now';
  let m = NPT_SEC.exec(text);
  if (m) return checkFinite(Number(`${m[1]}.${m[2] || '0'}`), header);
  m = NPT_HHMMSS.exec(text);
  if (m) {
    const hh = Number(m[1]);
    const mm = Number(m[2]);
    const ss = Number(`${m[3]}.${m[4] || '0'}`);
    // RFC 2326 §3.6: npt-mm and npt-ss are 0-59.
    if (mm > 59 || ss >= 60) invalid('minutes and seconds must be below 60', header);
    return checkFinite(hh * 3600 + mm * 60 + ss, header);
  }
  return invalid(`malformed npt time ${JSON.stringify(text)}`, header);
}

function checkFinite(seconds: number, header: string): number {
  if (!Number.isFinite(seconds)) invalid('npt time out of range', header);
  return seconds;
}

/** Parse a Range header value. See the module comment for which failure gets which status. */
export function parseRange(value: string): NptRange {
  const [spec, ...params] = value.split(';').map((p) => p.trim());
  let time: string | undefined;
  for (const param of params) {
    const m = /^time[ \t]*=[ \t]*(.+)$/i.exec(param);
    if (m) time = m[1]!;
    else if (param !== '') invalid('unknown parameter', value);
  }
  const eq = spec.indexOf('=');
  if (eq < 0) invalid('no range unit', value);
  const unit = spec.slice(0, eq).trim().toLowerCase();
  const ranges = spec.slice(eq + 1).trim();
  if (unit !== 'npt') {
    if (UNIMPLEMENTED_UNITS.has(unit)) {
      throw new TwinframeError('TF_RTSP_NOT_IMPLEMENTED', `Range: unit ${unit} is not implemented`, { header: 'Range', value });
    }
    invalid(`unknown unit ${JSON.stringify(unit)}`, value);
  }
  if (ranges.includes(',')) {
    throw new TwinframeError('TF_RTSP_NOT_IMPLEMENTED', 'Range: several ranges are not implemented', { header: 'Range', value });
  }
  const dash = ranges.indexOf('-');
  if (dash < 0) invalid('npt range without "-"', value);
  const startText = ranges.slice(0, dash).trim();
  const endText = ranges.slice(dash + 1).trim();
  if (startText === '' && endText === '') invalid('npt range with neither start nor end', value);
  const range: { -readonly [K in keyof NptRange]: NptRange[K] } = { unit: 'npt' };
  if (startText !== '') range.start = parseNptTime(startText, value);
  if (endText !== '') range.end = parseNptTime(endText, value);
  if (typeof range.start === 'number' && typeof range.end === 'number' && range.end <= range.start) {
    // Ranges are half-open (RFC 2326 §12.29): end ≤ start is empty.
    invalid('end is not after start', value);
  }
  if (time !== undefined) range.time = time;
  return range;
}

/** npt seconds as sent on the wire: always three decimals, as live555 and ffmpeg write them. */
export function formatNptSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`invalid npt time ${seconds}`);
  return seconds.toFixed(3);
}

function formatNptTime(t: NptTime): string {
  return t === 'now' ? 'now' : formatNptSeconds(t);
}

export function serializeRange(range: NptRange): string {
  if (range.start === undefined && range.end === undefined) throw new RangeError('npt range needs a start or an end');
  const text = `npt=${range.start === undefined ? '' : formatNptTime(range.start)}-${range.end === undefined ? '' : formatNptTime(range.end)}`;
  if (range.time === undefined) return text;
  if (/[\r\n;]/.test(range.time)) throw new TypeError('Range time parameter contains a separator');
  return `${text};time=${range.time}`;
}

export interface ResolvedRange {
  readonly start: number;
  /** Never beyond the duration: a later end is clamped to it. */
  readonly end: number;
}

/**
 * A requested range as seconds within [0, duration]. `now` and a missing start
 * both mean the current position (RFC 2326 gives "-end" no other reading for a
 * server that is already positioned). A start at or beyond the duration, an
 * end of 'now', or an empty interval → TF_RANGE_INVALID (457).
 */
export function resolveRange(range: NptRange | undefined, media: { duration: number; position?: number }): ResolvedRange {
  const position = media.position ?? 0;
  const header = range === undefined ? '' : serializeRangeLoose(range);
  const start = range?.start === undefined || range.start === 'now' ? position : range.start;
  if (range?.end === 'now') invalid('end cannot be now for stored media', header);
  const end = range?.end === undefined ? media.duration : Math.min(range.end, media.duration);
  if (start >= media.duration) {
    throw new TwinframeError('TF_RANGE_INVALID', 'Range: start is at or beyond the end of the asset', {
      header: 'Range',
      value: header,
      duration: media.duration,
    });
  }
  if (end <= start) invalid('end is not after start', header);
  return { start, end };
}

function serializeRangeLoose(range: NptRange): string {
  try {
    return serializeRange(range);
  } catch {
    return '';
  }
}
