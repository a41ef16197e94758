// The Session header, and the RTP-Info header that a PLAY reply carries next to
// it: for each, one table of wire forms shared by parse and serialize.

import test from 'ava';

import { TwinframeError } from '../src/errors.js';
import { parseRtpInfo, serializeRtpInfo, type RtpInfoEntry } from '../src/rtsp/headers/rtp-info.js';
import { MAX_SESSION_ID_LENGTH, isValidSessionId, parseSession, serializeSession, type SessionHeader } from '../src/rtsp/headers/session.js';

const SESSION_CASES: Array<{ name: string; wire: string; header: SessionHeader }> = [
  { name: 'a bare id', wire: '12345678', header: { id: '12345678' } },
  { name: 'an id with a timeout', wire: 'A3f9c0de;timeout=60', header: { id: 'A3f9c0de', timeout: 60 } },
  { name: 'an id made of every safe character', wire: 'a$b-c_d.e+f', header: { id: 'a$b-c_d.e+f' } },
  { name: 'an id of the longest length', wire: 'x'.repeat(MAX_SESSION_ID_LENGTH), header: { id: 'x'.repeat(MAX_SESSION_ID_LENGTH) } },
  { name: 'a zero timeout', wire: 'abc;timeout=0', header: { id: 'abc', timeout: 0 } },
];

for (const c of SESSION_CASES) {
  test(`Session parses ${c.name}`, (t) => {
    t.deepEqual(parseSession(c.wire), c.header);
  });
  test(`Session serializes ${c.name}`, (t) => {
    t.is(serializeSession(c.header), c.wire);
  });
}

const SESSION_LENIENT: Array<[string, SessionHeader]> = [
  [' abc ; timeout = 30 ', { id: 'abc', timeout: 30 }],
  ['abc;Timeout=30', { id: 'abc', timeout: 30 }],
  ['abc;x-other=1', { id: 'abc' }],
  ['abc;', { id: 'abc' }],
];

for (const [input, header] of SESSION_LENIENT) {
  test(`Session accepts ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseSession(input), header);
  });
}

const SESSION_MALFORMED: Array<[string, string]> = [
  ['an empty value', ''],
  ['only parameters', ';timeout=60'],
  ['an id with a space', 'ab cd'],
  ['an id with a slash', 'ab/cd'],
  ['an id with a comma', 'ab,cd'],
  ['an id with a non-ASCII letter', 'caf\xe9'],
  ['an id one character too long', 'x'.repeat(MAX_SESSION_ID_LENGTH + 1)],
  ['a timeout that is not a number', 'abc;timeout=soon'],
  ['an empty timeout', 'abc;timeout'],
  ['a negative timeout', 'abc;timeout=-1'],
];

for (const [name, input] of SESSION_MALFORMED) {
  test(`Session with ${name} is a bad request`, (t) => {
    const err = t.throws<TwinframeError>(() => parseSession(input), { instanceOf: TwinframeError });
    t.is(err?.code, 'TF_RTSP_BAD_REQUEST');
  });
}

test('an invalid session id cannot be serialized', (t) => {
  t.false(isValidSessionId('a b'));
  t.true(isValidSessionId('ab'));
  t.throws(() => serializeSession({ id: 'a\r\nb' }), { instanceOf: TypeError });
  t.throws(() => serializeSession({ id: 'ab', timeout: 1.5 }), { instanceOf: TypeError });
});

// --- RTP-Info ---------------------------------------------------------------

const RTP_INFO_CASES: Array<{ name: string; wire: string; entries: RtpInfoEntry[] }> = [
  {
    name: 'one stream',
    wire: 'url=rtsp://127.0.0.1:8554/sample.ts/track1;seq=12345;rtptime=3735928559',
    entries: [{ url: 'rtsp://127.0.0.1:8554/sample.ts/track1', seq: 12345, rtptime: 3735928559 }],
  },
  {
    name: 'two streams',
    wire: 'url=rtsp://h/a.ts/track1;seq=0;rtptime=0,url=rtsp://h/a.ts/track2;seq=65535;rtptime=4294967295',
    entries: [
      { url: 'rtsp://h/a.ts/track1', seq: 0, rtptime: 0 },
      { url: 'rtsp://h/a.ts/track2', seq: 65535, rtptime: 4294967295 },
    ],
  },
  { name: 'a url alone', wire: 'url=rtsp://h/a.ts/track1', entries: [{ url: 'rtsp://h/a.ts/track1' }] },
  { name: 'seq without rtptime', wire: 'url=rtsp://h/a.ts/track1;seq=7', entries: [{ url: 'rtsp://h/a.ts/track1', seq: 7 }] },
];

for (const c of RTP_INFO_CASES) {
  test(`RTP-Info parses ${c.name}`, (t) => {
    t.deepEqual(parseRtpInfo(c.wire), c.entries);
  });
  test(`RTP-Info serializes ${c.name}`, (t) => {
    t.is(serializeRtpInfo(c.entries), c.wire);
  });
}

test('RTP-Info percent-encodes the separators players split on', (t) => {
  const wire = serializeRtpInfo([{ url: 'rtsp://h/a b,c;d.ts/track1', seq: 1 }]);
  t.is(wire, 'url=rtsp://h/a%20b%2Cc%3Bd.ts/track1;seq=1');
});

test('RTP-Info parsing tolerates spaces, ssrc and commas inside a URL', (t) => {
  t.deepEqual(parseRtpInfo('url=rtsp://h/a,b.ts/track1; seq=1 ; rtptime=2;ssrc=DEADBEEF, url=rtsp://h/x;y/track2;seq=3'), [
    { url: 'rtsp://h/a,b.ts/track1', seq: 1, rtptime: 2 },
    { url: 'rtsp://h/x;y/track2', seq: 3 },
  ]);
});

test('RTP-Info refuses malformed values', (t) => {
  for (const input of ['', 'seq=1', 'url=;seq=1', 'url=rtsp://h/a;seq=65536', 'url=rtsp://h/a;rtptime=4294967296', 'url=rtsp://h/a;seq=x']) {
    t.throws(() => parseRtpInfo(input), { instanceOf: TwinframeError }, input);
  }
  t.throws(() => serializeRtpInfo([]), { instanceOf: TypeError });
  t.throws(() => serializeRtpInfo([{ url: 'rtsp://h/a', seq: 70000 }]), { instanceOf: TypeError });
});
