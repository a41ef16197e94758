// Who may talk to the RTSP server: Digest authentication (RFC 7616, MD5 and
// SHA-256, answered with or without qop as RFC 2617 and RFC 2069 clients do),
// Basic (RFC 7617) only when allowed, per-prefix access, and a lockout of
// client addresses that fail too often. Knows users only as hashes: per user
// and algorithm H(user:realm:password) (HA1, what Digest needs), and for Basic
// a salted scrypt hash. Imports nothing from the control plane; the composition
// root hands it the settings and hands them again on a reload.
//
// Nonces. A nonce belongs to the TCP connection it was issued on (a WeakMap
// keyed by the connection, so it dies with it): presented on any other
// connection it is refused as stale, so a captured Authorization header cannot
// be replayed elsewhere. It expires when unused for nonceTimeoutMs (at least the
// RTSP session timeout, so a player's keep-alives keep it), and with qop=auth its
// nonce count must grow with every request. Players whose nonce went stale log
// in again on the fresh one (stale=TRUE).

import { createHash, randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';
import { parseAuthorization, serializeBasicChallenge, serializeDigestChallenge } from './headers/authorization.js';

export const DIGEST_ALGORITHMS = ['SHA-256', 'MD5'] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

export interface AuthUser {
  readonly name: string;
  /** H(name:realm:password) per algorithm, lower-case hex. */
  readonly ha1: Readonly<Record<DigestAlgorithm, string>>;
  /** For Basic: 'scrypt$N$r$p$salt$hash' (base64), see hashBasicSecret. */
  readonly basic?: string;
}

export interface AccessRule {
  /** An asset path prefix, as mount prefixes are written: '' or 'a/b'. */
  readonly prefix: string;
  readonly users: readonly string[];
}

export interface AuthSettings {
  /** false: every request passes (no challenge). */
  readonly enabled: boolean;
  readonly realm: string;
  /** Also accept Basic (the password crosses the network in clear text). */
  readonly allowBasic: boolean;
  readonly users: readonly AuthUser[];
  /** The longest matching prefix decides who may play; no match: every user. */
  readonly access: readonly AccessRule[];
  /** Failed logins from one address, within lockoutMs of the first, before it is locked out. */
  readonly maxFailures: number;
  readonly lockoutMs: number;
  /** A nonce unused for this long is stale. */
  readonly nonceTimeoutMs: number;
}

export interface AuthRequest {
  /** Identifies the TCP connection (its nonce lives as long as this object). */
  readonly connection: object;
  /** The client's IP address: what failures are counted against. */
  readonly peer: string;
  readonly method: string;
  readonly uri: string;
  /** The asset path the request names (percent-encoded, '/' first), undefined for '*'. */
  readonly assetPath: string | undefined;
  readonly authorization: string | undefined;
}

export type AuthVerdict =
  | { readonly ok: true; readonly user: string | undefined }
  /** 401 carries the challenges (one WWW-Authenticate per scheme and algorithm); 403 none. */
  | { readonly ok: false; readonly status: 401 | 403; readonly challenges: readonly string[]; readonly reason: string };

/** What the metrics read: counters since start, never reset. */
export interface AuthCounters {
  /** Credentials presented and wrong (unknown user, bad response or password). */
  readonly failedLogins: number;
  /** Times an address was locked out after too many failures. */
  readonly lockouts: number;
  /** Requests refused because their address was locked out. */
  readonly refusedLockedOut: number;
}

interface NonceState {
  nonce: string;
  lastUsedMs: number;
  /** Highest nonce count seen with qop=auth. */
  lastNc: number;
  /** The Basic value last accepted on this connection, and its user: scrypt once per connection. */
  basic?: { readonly value: string; readonly user: string };
}

interface FailureRecord {
  count: number;
  firstMs: number;
  lockedUntilMs: number;
}

/** Addresses whose failures are remembered at most; the oldest is forgotten first. */
const MAX_TRACKED_ADDRESSES = 10_000;

// --- hashing ----------------------------------------------------------------------------

const HASH_NAME: Readonly<Record<DigestAlgorithm, string>> = { MD5: 'md5', 'SHA-256': 'sha256' };

export function digestHash(algorithm: DigestAlgorithm, data: string): string {
  return createHash(HASH_NAME[algorithm]).update(data, 'utf8').digest('hex');
}

/** HA1 = H(user:realm:password) (RFC 7616 §3.4.2). */
export function digestHa1(algorithm: DigestAlgorithm, user: string, realm: string, password: string): string {
  return digestHash(algorithm, `${user}:${realm}:${password}`);
}

export interface DigestInput {
  readonly algorithm: DigestAlgorithm;
  readonly ha1: string;
  readonly nonce: string;
  readonly method: string;
  readonly uri: string;
  /** With qop=auth (RFC 2617/7616): nc and cnonce. Without: RFC 2069's H(HA1:nonce:HA2). */
  readonly qop?: { readonly nc: string; readonly cnonce: string };
}

/** The request-digest (RFC 7616 §3.4.1). */
export function digestResponse(d: DigestInput): string {
  const ha2 = digestHash(d.algorithm, `${d.method}:${d.uri}`);
  const middle = d.qop === undefined ? d.nonce : `${d.nonce}:${d.qop.nc}:${d.qop.cnonce}:auth`;
  return digestHash(d.algorithm, `${d.ha1}:${middle}:${ha2}`);
}

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32, saltLength: 16 } as const;

function scryptAsync(password: BinaryLike, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** A salted scrypt hash of a password, for Basic: 'scrypt$N$r$p$salt$hash'. */
export async function hashBasicSecret(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltLength);
  const key = await scryptAsync(password, salt, SCRYPT.keyLength, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** The shape hashBasicSecret writes (the configuration schema checks it). */
export const BASIC_SECRET_PATTERN = /^scrypt\$\d{1,7}\$\d{1,2}\$\d{1,2}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

async function verifyBasicSecret(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 });
  return timingSafeEqual(key, expected);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// --- the authenticator ------------------------------------------------------------------

export class RtspAuthenticator {
  #settings: AuthSettings;
  #users = new Map<string, AuthUser>();
  readonly #nonces = new WeakMap<object, NonceState>();
  readonly #failures = new Map<string, FailureRecord>();
  #failedLogins = 0;
  #lockouts = 0;
  #refusedLockedOut = 0;

  constructor(settings: AuthSettings) {
    this.#settings = settings;
    this.configure(settings);
  }

  /** New settings (a reload): users, realm, access and limits apply to the next request; issued nonces stay valid. */
  configure(settings: AuthSettings): void {
    this.#settings = settings;
    this.#users = new Map(settings.users.map((u) => [u.name, u]));
  }

  get enabled(): boolean {
    return this.#settings.enabled;
  }

  counters(): AuthCounters {
    return { failedLogins: this.#failedLogins, lockouts: this.#lockouts, refusedLockedOut: this.#refusedLockedOut };
  }

  /** Decides one request. nowMs: a monotonic clock (tests pass their own). */
  async check(req: AuthRequest, nowMs: number = performance.now()): Promise<AuthVerdict> {
    if (!this.#settings.enabled) return { ok: true, user: undefined };
    const locked = this.#lockedOut(req.peer, nowMs);
    if (locked) {
      this.#refusedLockedOut++;
      return { ok: false, status: 403, challenges: [], reason: 'too many failed logins from this address' };
    }
    const credentials = req.authorization === undefined ? undefined : parseAuthorization(req.authorization);
    if (credentials === undefined) {
      return this.#challenge(req, nowMs, false, req.authorization === undefined ? 'no credentials' : 'unreadable Authorization header');
    }
    let user: string;
    if (credentials.scheme === 'basic') {
      if (!this.#settings.allowBasic) return this.#challenge(req, nowMs, false, 'Basic is not allowed');
      const verdict = await this.#basic(req, credentials.user, credentials.password);
      if (verdict !== undefined) return this.#failed(req, nowMs, verdict);
      user = credentials.user;
    } else {
      const verdict = this.#digest(req, credentials.params, nowMs);
      if (typeof verdict !== 'string') return verdict;
      user = verdict;
    }
    if (!this.#mayPlay(user, req.assetPath)) {
      return { ok: false, status: 403, challenges: [], reason: `user ${user} may not play this path` };
    }
    return { ok: true, user };
  }

  /** The user when the Digest credentials hold, else the refusal. */
  #digest(req: AuthRequest, params: ReadonlyMap<string, string>, nowMs: number): string | AuthVerdict {
    const name = params.get('username') ?? '';
    const nonce = params.get('nonce') ?? '';
    const response = (params.get('response') ?? '').toLowerCase();
    const algorithm = DIGEST_ALGORITHMS.find((a) => a.toLowerCase() === (params.get('algorithm') ?? 'MD5').toLowerCase());
    const qop = params.get('qop');
    const nc = params.get('nc');
    const cnonce = params.get('cnonce');
    if (algorithm === undefined || params.get('realm') !== this.#settings.realm || (qop !== undefined && qop !== 'auth')) {
      return this.#challenge(req, nowMs, false, 'Digest parameters this server did not offer');
    }
    if (qop !== undefined && (nc === undefined || !/^[0-9a-fA-F]{8}$/.test(nc) || cnonce === undefined)) {
      return this.#challenge(req, nowMs, false, 'qop=auth without nc and cnonce');
    }
    const uri = params.get('uri');
    if (uri === undefined || !sameRequestUri(uri, req.uri)) return this.#challenge(req, nowMs, false, 'Digest uri is not the request URI');
    const user = this.#users.get(name);
    const expected = user === undefined ? undefined : digestResponse({
      algorithm, ha1: user.ha1[algorithm], nonce, method: req.method, uri, ...(qop === undefined ? {} : { qop: { nc: nc!, cnonce: cnonce! } }),
    });
    if (expected === undefined || !sameText(expected, response)) return this.#failed(req, nowMs, 'wrong user name or password');
    // The password is right; is the nonce this connection's, fresh, and its count new?
    const state = this.#nonces.get(req.connection);
    if (state === undefined || state.nonce !== nonce || nowMs - state.lastUsedMs > this.#settings.nonceTimeoutMs) {
      return this.#challenge(req, nowMs, true, 'stale nonce: expired, or issued on another connection');
    }
    if (qop !== undefined) {
      const count = parseInt(nc!, 16);
      if (count <= state.lastNc) return this.#challenge(req, nowMs, true, 'nonce count replayed');
      state.lastNc = count;
    }
    state.lastUsedMs = nowMs;
    return name;
  }

  /** undefined when the Basic credentials hold, else why not. */
  async #basic(req: AuthRequest, name: string, password: string): Promise<string | undefined> {
    const state = this.#nonces.get(req.connection);
    const value = req.authorization!;
    if (state?.basic !== undefined && state.basic.user === name && sameText(state.basic.value, value) && this.#users.has(name)) return undefined;
    const stored = this.#users.get(name)?.basic;
    if (stored === undefined || !(await verifyBasicSecret(password, stored))) return 'wrong user name or password';
    const kept = state ?? { nonce: '', lastUsedMs: -Infinity, lastNc: 0 };
    kept.basic = { value, user: name };
    this.#nonces.set(req.connection, kept);
    return undefined;
  }

  /** 401 with a fresh nonce for this connection, one challenge per algorithm (MD5 last: ffmpeg and live555 use the last). */
  #challenge(req: AuthRequest, nowMs: number, stale: boolean, reason: string): AuthVerdict {
    const nonce = randomBytes(18).toString('base64url');
    const previous = this.#nonces.get(req.connection);
    this.#nonces.set(req.connection, { nonce, lastUsedMs: nowMs, lastNc: 0, ...(previous?.basic ? { basic: previous.basic } : {}) });
    const { realm } = this.#settings;
    const challenges = DIGEST_ALGORITHMS.map((algorithm) => serializeDigestChallenge({ realm, nonce, algorithm, stale }));
    if (this.#settings.allowBasic) challenges.push(serializeBasicChallenge(realm));
    return { ok: false, status: 401, challenges, reason };
  }

  /** Counts a failed login against the address; at maxFailures it is locked out for lockoutMs. */
  #failed(req: AuthRequest, nowMs: number, reason: string): AuthVerdict {
    this.#failedLogins++;
    let record = this.#failures.get(req.peer);
    if (record === undefined || nowMs - record.firstMs > this.#settings.lockoutMs) {
      record = { count: 0, firstMs: nowMs, lockedUntilMs: 0 };
    }
    this.#failures.delete(req.peer); // re-inserted last: the map's order is least recently failed first
    this.#failures.set(req.peer, record);
    if (this.#failures.size > MAX_TRACKED_ADDRESSES) this.#failures.delete(this.#failures.keys().next().value!);
    record.count++;
    if (record.count >= this.#settings.maxFailures) {
      record.lockedUntilMs = nowMs + this.#settings.lockoutMs;
      this.#lockouts++;
      return { ok: false, status: 403, challenges: [], reason: `${reason}; address locked out after ${record.count} failed logins` };
    }
    return this.#challenge(req, nowMs, false, reason);
  }

  #lockedOut(peer: string, nowMs: number): boolean {
    const record = this.#failures.get(peer);
    if (record === undefined || record.lockedUntilMs <= nowMs) return false;
    return true;
  }

  #mayPlay(user: string, assetPath: string | undefined): boolean {
    if (assetPath === undefined) return true;
    const segments = decodedSegments(assetPath);
    if (segments === undefined) return false;
    let best: AccessRule | undefined;
    let bestLength = -1;
    for (const rule of this.#settings.access) {
      const prefix = rule.prefix === '' ? [] : rule.prefix.split('/');
      if (prefix.length > bestLength && prefix.length <= segments.length && prefix.every((s, i) => s === segments[i])) {
        best = rule;
        bestLength = prefix.length;
      }
    }
    return best === undefined || best.users.includes(user);
  }
}

/** '/a%2Fb/c' → ['a/b', 'c']: the names the catalog will look up; undefined when not decodable. */
function decodedSegments(assetPath: string): string[] | undefined {
  try {
    return assetPath.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

/**
 * Digest's uri names the request's URI. Players differ in how they write it (with or
 * without a trailing '/', another spelling of the host, the aggregate URL on a
 * track's SETUP), so it must name the same path, or the path one segment up.
 */
function sameRequestUri(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  const path = (u: string): string => u.replace(/^rtsps?:\/\/[^/]*/i, '').replace(/[?#].*$/, '').replace(/\/+$/, '');
  const a = path(digestUri);
  const b = path(requestUri);
  return a === b || (a !== '' && b.slice(0, b.lastIndexOf('/')) === a);
}
