// The RTSP authenticator on its own: the digests against the RFCs' example
// vectors, the Authorization parser, and the rules (nonce bound to its
// connection and counted, Basic only when allowed, per-prefix access, the
// lockout of an address that fails too often) with a clock the test moves.

import test from 'ava';
import { hashBasicSecret, digestHa1, digestResponse, RtspAuthenticator, type AuthSettings, type AuthVerdict } from '../src/rtsp/auth.js';
import { parseAuthorization } from '../src/rtsp/headers/authorization.js';

// RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
const RFC7616 = {
  user: 'Mufasa', realm: 'http-auth@example.org', password: 'Circle of Life', method: 'GET', uri: '/dir/index.html',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', nc: '00000001',
};

test('SHA-256 and MD5 request digests match RFC 7616 §3.9.1', (t) => {
  const v = RFC7616;
  for (const [algorithm, expected] of [['SHA-256', '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1'], ['MD5', '8ca523f5e9506fed4657c9700eebdbec']] as const) {
    const ha1 = digestHa1(algorithm, v.user, v.realm, v.password);
    t.is(digestResponse({ algorithm, ha1, nonce: v.nonce, method: v.method, uri: v.uri, qop: { nc: v.nc, cnonce: v.cnonce } }), expected, algorithm);
  }
});

test('MD5 with qop=auth matches RFC 2617 §3.5', (t) => {
  const ha1 = digestHa1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life');
  t.is(digestResponse({ algorithm: 'MD5', ha1, nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', method: 'GET', uri: '/dir/index.html', qop: { nc: '00000001', cnonce: '0a4f113b' } }),
    '6629fae49393a05397450978507c4ef1');
});

test('Authorization values: Digest parameters quoted or not, Basic, and junk', (t) => {
  const d = parseAuthorization('Digest username="Mufasa", realm="a\\"b", nonce="n", uri="rtsp://h/x", response="ab", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"');
  t.is(d?.scheme, 'digest');
  if (d?.scheme === 'digest') {
    t.is(d.params.get('realm'), 'a"b');
    t.is(d.params.get('algorithm'), 'SHA-256');
    t.is(d.params.get('nc'), '00000001');
  }
  t.deepEqual(parseAuthorization(`Basic ${Buffer.from('alice:pa:ss').toString('base64')}`), { scheme: 'basic', user: 'alice', password: 'pa:ss' });
  t.is(parseAuthorization('Digest username="a", username="b"'), undefined, 'a repeated parameter');
  t.is(parseAuthorization('Digest username="a'), undefined, 'an unterminated quote');
  t.is(parseAuthorization('Bearer abc'), undefined);
  t.is(parseAuthorization('Basic !!!'), undefined);
});

const REALM = 'twinframe';
const PASSWORD = 'open sesame';

async function settings(over: Partial<AuthSettings> = {}): Promise<AuthSettings> {
  const user = (name: string): AuthSettings['users'][number] => ({ name, ha1: { MD5: digestHa1('MD5', name, REALM, PASSWORD), 'SHA-256': digestHa1('SHA-256', name, REALM, PASSWORD) } });
  return {
    enabled: true, realm: REALM, allowBasic: false, access: [], maxFailures: 3, lockoutMs: 60_000, nonceTimeoutMs: 70_000,
    users: [{ ...user('alice'), basic: await hashBasicSecret(PASSWORD) }, user('bob')],
    ...over,
  };
}

const URI = 'rtsp://127.0.0.1:8554/movies/a.ts';

function nonceOf(v: AuthVerdict): string {
  if (v.ok || v.status !== 401) throw new Error(`expected a 401, got ${JSON.stringify(v)}`);
  return /nonce="([^"]+)"/.exec(v.challenges[0])![1];
}

function digestHeader(o: { user?: string; password?: string; nonce: string; nc?: number; algorithm?: 'MD5' | 'SHA-256'; method?: string; uri?: string }): string {
  const algorithm = o.algorithm ?? 'MD5';
  const user = o.user ?? 'alice';
  const method = o.method ?? 'DESCRIBE';
  const uri = o.uri ?? URI;
  const ha1 = digestHa1(algorithm, user, REALM, o.password ?? PASSWORD);
  if (o.nc === undefined) {
    // RFC 2069 form, as live555 (VLC) and GStreamer answer.
    const response = digestResponse({ algorithm, ha1, nonce: o.nonce, method, uri });
    return `Digest username="${user}", realm="${REALM}", nonce="${o.nonce}", uri="${uri}", response="${response}"`;
  }
  const nc = o.nc.toString(16).padStart(8, '0');
  const response = digestResponse({ algorithm, ha1, nonce: o.nonce, method, uri, qop: { nc, cnonce: 'abc' } });
  return `Digest username="${user}", realm="${REALM}", nonce="${o.nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}, qop=auth, nc=${nc}, cnonce="abc"`;
}

function request(connection: object, authorization?: string, peer = '10.0.0.1', assetPath = '/movies/a.ts') {
  return { connection, peer, method: 'DESCRIBE', uri: URI, assetPath, authorization };
}

test('a challenge offers SHA-256 then MD5 (the one ffmpeg and live555 take, the last), Basic only when allowed', async (t) => {
  const v = await new RtspAuthenticator(await settings()).check(request({}));
  t.false(v.ok);
  if (!v.ok) {
    t.is(v.status, 401);
    t.is(v.challenges.length, 2);
    t.regex(v.challenges[0], /^Digest realm="twinframe", nonce="[^"]+", algorithm=SHA-256, qop="auth"$/);
    t.regex(v.challenges[1], /^Digest realm="twinframe", nonce="[^"]+", algorithm=MD5, qop="auth"$/);
  }
  const basic = await new RtspAuthenticator(await settings({ allowBasic: true })).check(request({}));
  t.true(!basic.ok && basic.challenges.at(-1) === 'Basic realm="twinframe", charset="UTF-8"');
});

test('Digest with and without qop, MD5 and SHA-256, passes; the nonce is refused on another connection and a nonce count is not taken twice', async (t) => {
  const auth = new RtspAuthenticator(await settings());
  const conn = {};
  const nonce = nonceOf(await auth.check(request(conn), 0));
  t.deepEqual(await auth.check(request(conn, digestHeader({ nonce })), 1), { ok: true, user: 'alice' }, 'RFC 2069 form');
  t.deepEqual(await auth.check(request(conn, digestHeader({ nonce, nc: 1, algorithm: 'SHA-256' })), 2), { ok: true, user: 'alice' });
  t.deepEqual(await auth.check(request(conn, digestHeader({ nonce, nc: 2 })), 3), { ok: true, user: 'alice' });
  const replayed = await auth.check(request(conn, digestHeader({ nonce, nc: 2 })), 4);
  t.true(!replayed.ok && replayed.status === 401 && replayed.challenges[0].includes('stale=TRUE'), 'the same nonce count again');
  // The header a viewer sent, replayed on another connection: refused, and not a failed login (the password was right).
  const other = await auth.check(request({}, digestHeader({ nonce, nc: 9 })), 5);
  t.true(!other.ok && other.status === 401 && other.challenges[0].includes('stale=TRUE'));
  t.is(auth.counters().failedLogins, 0);
});

test('a nonce unused for the nonce timeout is stale; a request within it keeps it fresh', async (t) => {
  const auth = new RtspAuthenticator(await settings({ nonceTimeoutMs: 1000 }));
  const conn = {};
  const nonce = nonceOf(await auth.check(request(conn), 0));
  t.true((await auth.check(request(conn, digestHeader({ nonce, nc: 1 })), 900)).ok);
  t.true((await auth.check(request(conn, digestHeader({ nonce, nc: 2 })), 1800)).ok, 'used at 900: fresh until 1900');
  const late = await auth.check(request(conn, digestHeader({ nonce, nc: 3 })), 2900);
  t.true(!late.ok && late.status === 401 && late.challenges[0].includes('stale=TRUE'));
});

test('wrong passwords are counted; at maxFailures the address is refused with 403 for the lockout, other addresses are not', async (t) => {
  const auth = new RtspAuthenticator(await settings());
  const conn = {};
  let nonce = nonceOf(await auth.check(request(conn), 0));
  for (let i = 1; i <= 2; i++) {
    const v = await auth.check(request(conn, digestHeader({ nonce, password: 'guess' })), i);
    t.true(!v.ok && v.status === 401, `failure ${i}`);
    nonce = nonceOf(v);
  }
  const third = await auth.check(request(conn, digestHeader({ nonce, password: 'guess' })), 3);
  t.true(!third.ok && third.status === 403);
  const right = await auth.check(request({}, undefined), 4);
  t.true(!right.ok && right.status === 403, 'locked out even before trying');
  t.true(!(await auth.check(request({}, undefined, '10.0.0.2'), 5)).ok, 'another address is challenged');
  const unlocked = await auth.check(request({}, undefined), 60_004);
  t.true(!unlocked.ok && unlocked.status === 401, 'after the lockout: challenged again');
  t.like(auth.counters(), { failedLogins: 3, lockouts: 1, refusedLockedOut: 1 });
  const unknown = await auth.check(request(conn, digestHeader({ nonce: nonceOf(unlocked), user: 'mallory' })), 60_005);
  t.true(!unknown.ok && unknown.status === 401);
  t.is(auth.counters().failedLogins, 4, 'an unknown user is a failed login');
});

test('Basic passes only when allowed, with the password whose scrypt hash is stored', async (t) => {
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const off = new RtspAuthenticator(await settings());
  t.true(!(await off.check(request({}, basic('alice', PASSWORD)))).ok, 'not allowed');
  const on = new RtspAuthenticator(await settings({ allowBasic: true }));
  t.deepEqual(await on.check(request({}, basic('alice', PASSWORD))), { ok: true, user: 'alice' });
  t.true(!(await on.check(request({}, basic('alice', 'nope')))).ok);
  t.true(!(await on.check(request({}, basic('bob', PASSWORD)))).ok, 'a user without a Basic hash');
});

test('per-prefix access: the longest matching prefix decides, percent-encoding does not get around it, no rule lets every user in', async (t) => {
  const auth = new RtspAuthenticator(await settings({ access: [{ prefix: 'movies', users: ['alice'] }, { prefix: 'movies/kids', users: ['alice', 'bob'] }] }));
  const as = async (user: string, assetPath: string): Promise<AuthVerdict> => {
    const conn = {};
    const nonce = nonceOf(await auth.check(request(conn, undefined, '10.0.0.9', assetPath)));
    return auth.check(request(conn, digestHeader({ user, nonce, nc: 1 }), '10.0.0.9', assetPath));
  };
  t.true((await as('alice', '/movies/a.ts')).ok);
  t.like(await as('bob', '/movies/a.ts'), { ok: false, status: 403 });
  t.like(await as('bob', '/%6Dovies/a.ts'), { ok: false, status: 403 }, 'an encoded prefix is the same prefix');
  t.true((await as('bob', '/movies/kids/a.ts')).ok);
  t.true((await as('bob', '/news/a.ts')).ok, 'no rule matches');
  t.is(auth.counters().failedLogins, 0, 'a refusal by access is not a failed login');
});

test('disabled, or reconfigured: the settings of the moment decide', async (t) => {
  const auth = new RtspAuthenticator(await settings({ enabled: false }));
  t.deepEqual(await auth.check(request({})), { ok: true, user: undefined });
  auth.configure(await settings());
  t.false((await auth.check(request({}))).ok);
});
