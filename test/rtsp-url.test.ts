// Request-URI parsing: host, port, the still-encoded path, and the split of the
// path into asset and track control.

import test from 'ava';

import { TwinframeError } from '../src/errors.js';
import { TRACK_CONTROL, parseRtspUrl } from '../src/rtsp/url.js';

test('"*" is the server as a whole', (t) => {
  t.deepEqual(parseRtspUrl('*'), { kind: 'star' });
});

const CASES: Array<[name: string, uri: string, expected: Record<string, unknown>]> = [
  [
    'an asset URL',
    'rtsp://127.0.0.1:8554/sample.ts',
    { scheme: 'rtsp', host: '127.0.0.1', port: 8554, path: '/sample.ts', assetPath: '/sample.ts', track: undefined, query: undefined },
  ],
  ['a track URL', 'rtsp://127.0.0.1:8554/sample.ts/track1', { path: '/sample.ts/track1', assetPath: '/sample.ts', track: 'track1' }],
  ['a nested asset with a track', 'rtsp://h/movies/2024/a.ts/track1', { assetPath: '/movies/2024/a.ts', track: 'track1' }],
  ['a trailing slash from a Content-Base', 'rtsp://h:554/sample.ts/', { path: '/sample.ts/', assetPath: '/sample.ts', track: undefined }],
  ['a track URL with a trailing slash', 'rtsp://h/sample.ts/track1/', { assetPath: '/sample.ts', track: 'track1' }],
  ['a query', 'rtsp://h/sample.ts?start=5&x=%20', { path: '/sample.ts', assetPath: '/sample.ts', query: 'start=5&x=%20' }],
  ['a query after a track', 'rtsp://h/sample.ts/track1?a=b', { assetPath: '/sample.ts', track: 'track1', query: 'a=b' }],
  ['a percent-encoded path, left encoded', 'rtsp://h/my%20movie.ts/track1', { path: '/my%20movie.ts/track1', assetPath: '/my%20movie.ts' }],
  ['an encoded slash and dots, left for the catalog', 'rtsp://h/a%2F..%2Fb.ts', { path: '/a%2F..%2Fb.ts', assetPath: '/a%2F..%2Fb.ts' }],
  ['no path', 'rtsp://h:8554', { port: 8554, path: '/', assetPath: '/', track: undefined }],
  ['the root', 'rtsp://h/', { path: '/', assetPath: '/' }],
  ['no port', 'rtsp://example.com/a.ts', { host: 'example.com', port: undefined }],
  ['an empty port', 'rtsp://example.com:/a.ts', { host: 'example.com', port: undefined }],
  ['an IPv6 host', 'rtsp://[::1]:8554/a.ts', { host: '::1', port: 8554, assetPath: '/a.ts' }],
  ['credentials, which are dropped', 'rtsp://user:p%40ss@h:8554/a.ts', { host: 'h', port: 8554, assetPath: '/a.ts' }],
  ['an upper-case scheme', 'RTSP://H/a.ts', { scheme: 'rtsp', host: 'H' }],
  ['rtsps', 'rtsps://h/a.ts', { scheme: 'rtsps' }],
  ['a segment named like a track at the root, which stays the asset', 'rtsp://h/track1', { assetPath: '/track1', track: undefined }],
  ['a track control that is not ours but has our shape', 'rtsp://h/a.ts/track2', { assetPath: '/a.ts', track: 'track2' }],
  ['a last segment that only starts like a track', 'rtsp://h/a/track1.ts', { assetPath: '/a/track1.ts', track: undefined }],
  ['sub-delimiters in the path', "rtsp://h/a!$&'()*+,;=:@b.ts", { path: "/a!$&'()*+,;=:@b.ts" }],
];

for (const [name, uri, expected] of CASES) {
  test(`a URL with ${name} is parsed`, (t) => {
    const url = parseRtspUrl(uri);
    t.is(url.kind, 'absolute');
    t.like(url, expected);
  });
}

test('the SDP track control is a track segment', (t) => {
  t.like(parseRtspUrl(`rtsp://h/a.ts/${TRACK_CONTROL}`), { track: TRACK_CONTROL });
});

test('credentials never appear in the parsed URL', (t) => {
  t.false(JSON.stringify(parseRtspUrl('rtsp://user:secret@h/a.ts')).includes('secret'));
});

const MALFORMED: Array<[string, string]> = [
  ['an empty string', ''],
  ['a relative path', '/sample.ts'],
  ['an http URL', 'http://h/a.ts'],
  ['no host', 'rtsp:///a.ts'],
  ['a port that is not a number', 'rtsp://h:abc/a.ts'],
  ['port 0', 'rtsp://h:0/a.ts'],
  ['a port above 65535', 'rtsp://h:65536/a.ts'],
  ['a fragment', 'rtsp://h/a.ts#frag'],
  ['a bad percent escape', 'rtsp://h/a%zz.ts'],
  ['a truncated percent escape', 'rtsp://h/a.ts%2'],
  ['a raw space', 'rtsp://h/a b.ts'],
  ['a backslash', 'rtsp://h/a\\b.ts'],
  ['a non-ASCII character', 'rtsp://h/caf\u00e9.ts'],
  ['an unterminated IPv6 literal', 'rtsp://[::1/a.ts'],
  ['a malformed IPv6 literal', 'rtsp://[zz]/a.ts'],
  ['garbage after an IPv6 literal', 'rtsp://[::1]x/a.ts'],
  ['a bad character in the query', 'rtsp://h/a.ts?a<b'],
  ['a missing scheme separator', 'rtsp:h/a.ts'],
];

for (const [name, uri] of MALFORMED) {
  test(`a URL with ${name} is a bad request`, (t) => {
    const err = t.throws<TwinframeError>(() => parseRtspUrl(uri), { instanceOf: TwinframeError });
    t.is(err?.code, 'TF_RTSP_BAD_REQUEST');
  });
}
