// The Authorization request header and the WWW-Authenticate challenge (RTSP
// borrows HTTP's: RFC 2326 §12.5, RFC 7235 §4.1-4.2), for the Basic (RFC 7617)
// and Digest (RFC 7616, RFC 2617 compatible) schemes. Syntax only: what the
// credentials are worth is decided by rtsp/auth.ts.

/** Longest Authorization value read; beyond it the header is not credentials but noise. */
const MAX_AUTHORIZATION_LENGTH = 4096;

export type Credentials =
  | { readonly scheme: 'basic'; readonly user: string; readonly password: string }
  /** Parameter names lower-cased, quoted values unquoted. */
  | { readonly scheme: 'digest'; readonly params: ReadonlyMap<string, string> };

// auth-param = token "=" ( token / quoted-string ), separated by commas (RFC 7235 §2.1).
const PARAM_SOURCE = /\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/.source;

/** The credentials an Authorization value carries, or undefined when it is malformed or of another scheme. */
export function parseAuthorization(value: string): Credentials | undefined {
  if (value.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const match = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(value);
  if (match === null) return undefined;
  const scheme = match[1].toLowerCase();
  const rest = match[2].trim();
  if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(rest)) return undefined;
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    return { scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (scheme !== 'digest') return undefined;
  const params = new Map<string, string>();
  const PARAM = new RegExp(PARAM_SOURCE, 'y');
  while (PARAM.lastIndex < rest.length) {
    const start = PARAM.lastIndex;
    const m = PARAM.exec(rest);
    if (m === null || PARAM.lastIndex === start) return undefined;
    const name = m[1].toLowerCase();
    if (params.has(name)) return undefined; // a repeated parameter is ambiguous: refuse it
    params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]);
  }
  return { scheme: 'digest', params };
}

export interface DigestChallenge {
  readonly realm: string;
  readonly nonce: string;
  readonly algorithm: 'MD5' | 'SHA-256';
  /** The nonce was refused for its age or its connection, not for the credentials (RFC 7616 §3.3). */
  readonly stale: boolean;
}

/**
 * One WWW-Authenticate value. realm and nonce come first, in this form, because
 * live555 (VLC) reads the header with sscanf("Digest realm=\"%[^\"]\", nonce=\"%[^\"]\"").
 * Both are server-made tokens without quotes or backslashes.
 */
export function serializeDigestChallenge(c: DigestChallenge): string {
  return `Digest realm="${c.realm}", nonce="${c.nonce}", algorithm=${c.algorithm}, qop="auth"${c.stale ? ', stale=TRUE' : ''}`;
}

export function serializeBasicChallenge(realm: string): string {
  return `Basic realm="${realm}", charset="UTF-8"`;
}
