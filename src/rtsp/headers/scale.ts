// The Scale header (RFC 2326 §12.34): the playback speed and direction a PLAY
// asks for. A server that cannot play at the asked scale may play at another
// and must then say which in its reply; twinframe plays at 1 (trick play is not
// wired yet), so a well-formed Scale is answered `Scale: 1`.

import { TwinframeError } from '../../errors.js';

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

/** A scale as a reply carries it: an integer without decimals, as live555 writes it. */
export function formatScale(scale: number): string {
  if (!Number.isFinite(scale) || scale === 0) throw new RangeError(`invalid scale ${scale}`);
  return Number.isInteger(scale) ? String(scale) : String(Number(scale.toFixed(3)));
}
