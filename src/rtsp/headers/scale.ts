// The Scale header (RFC 2326 §12.34): the playback speed and direction a PLAY
// asks for. twinframe plays 1 and trick play's TRICK_SCALES (±2, ±4, ±8, ±16,
// see mpegts/trick.ts) and echoes the scale in its reply; any other
// well-formed value is 456 Header Field Not Valid for Resource, as live555
// answers a Scale its index cannot serve.

import { TwinframeError } from '../../errors.js';
import { isTrickScale, TRICK_SCALES } from '../../mpegts/trick.js';

const SCALE = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/** A Scale value: a non-zero decimal; anything else is a bad request (400). */
export function parseScale(value: string): number {
  const text = value.trim();
  const scale = SCALE.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(scale) || scale === 0) {
    throw new TwinframeError('TF_RTSP_BAD_REQUEST', `Scale: ${JSON.stringify(value)} is not a non-zero number`, { header: 'Scale', value });
  }
  return scale;
}

/** A parsed Scale this server plays, or TF_RTSP_HEADER_NOT_VALID (456). */
export function playScale(scale: number): number {
  if (scale === 1 || isTrickScale(scale)) return scale;
  throw new TwinframeError('TF_RTSP_HEADER_NOT_VALID', `Scale ${scale} is not served (1, ${TRICK_SCALES.join(', ')})`, { header: 'Scale', value: scale });
}

/** A scale as a reply carries it: an integer without decimals, as live555 writes it. */
export function formatScale(scale: number): string {
  if (!Number.isFinite(scale) || scale === 0) throw new RangeError(`invalid scale ${scale}`);
  return Number.isInteger(scale) ? String(scale) : String(Number(scale.toFixed(3)));
}
