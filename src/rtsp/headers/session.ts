// The Session header (RFC 2326 §12.37): a session identifier and, in replies,
// the timeout after which an idle session is torn down.

import { TwinframeError } from '../../errors.js';

export interface SessionHeader {
  readonly id: string;
  /** Seconds (delta-seconds). Servers send it so players know how often to keep alive. */
  readonly timeout?: number;
}

/** Longest id we accept. RFC 2326 sets no bound; ours keeps ids loggable and map keys small. */
export const MAX_SESSION_ID_LENGTH = 64;

// RFC 2326 §3.4: session-id = 1*( ALPHA | DIGIT | safe ), safe = "$" | "-" | "_" | "." | "+".
const SESSION_ID = /^[A-Za-z0-9$\-_.+]+$/;

export function isValidSessionId(id: string): boolean {
  return id.length <= MAX_SESSION_ID_LENGTH && SESSION_ID.test(id);
}

function bad(message: string, value: string): never {
  throw new TwinframeError('TF_RTSP_BAD_REQUEST', `Session: ${message}`, { header: 'Session', value });
}

/**
 * Parse "id" or "id;timeout=N". Unknown parameters are ignored. A malformed
 * header is a 400 (TF_RTSP_BAD_REQUEST), not a 454: 454 says "no such session",
 * which is a statement about a well-formed id.
 */
export function parseSession(value: string): SessionHeader {
  const [rawId, ...params] = value.split(';');
  const id = rawId.trim();
  if (id === '') bad('empty session id', value);
  if (id.length > MAX_SESSION_ID_LENGTH) bad(`session id longer than ${MAX_SESSION_ID_LENGTH}`, value);
  if (!SESSION_ID.test(id)) bad('malformed session id', value);
  let timeout: number | undefined;
  for (const param of params) {
    const eq = param.indexOf('=');
    const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
    if (name !== 'timeout') continue;
    const v = eq < 0 ? '' : param.slice(eq + 1).trim();
    if (!/^[0-9]{1,9}$/.test(v)) bad('malformed timeout', value);
    timeout = Number(v);
  }
  return timeout === undefined ? { id } : { id, timeout };
}

export function serializeSession(header: SessionHeader): string {
  if (!isValidSessionId(header.id)) throw new TypeError(`invalid session id ${JSON.stringify(header.id)}`);
  if (header.timeout === undefined) return header.id;
  if (!Number.isInteger(header.timeout) || header.timeout < 0) throw new TypeError(`invalid session timeout ${header.timeout}`);
  return `${header.id};timeout=${header.timeout}`;
}
