// The SDP a DESCRIBE returns: exact text for the common cases, the validation
// of what goes into it.

import test from 'ava';

import { buildSdp } from '../src/rtsp/sdp.js';
import { RTP_PAYLOAD_TYPE_MP2T } from '../src/rtp/packetizer.js';

test('the SDP of an asset with a duration is exactly what players expect', (t) => {
  const sdp = buildSdp({ sessionId: '3930000000', sessionVersion: 1, serverAddress: '192.0.2.10', name: 'sample.ts', durationSeconds: 12.02 });
  t.is(
    sdp,
    [
      'v=0',
      'o=- 3930000000 1 IN IP4 192.0.2.10',
      's=sample.ts',
      'c=IN IP4 0.0.0.0',
      't=0 0',
      'a=control:*',
      'a=range:npt=0-12.020',
      'm=video 0 RTP/AVP 33',
      'a=rtpmap:33 MP2T/90000',
      'a=control:track1',
      '',
    ].join('\r\n'),
  );
});

test('every line ends with CRLF and nothing else', (t) => {
  const sdp = buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: 'x', durationSeconds: 1 });
  t.true(sdp.endsWith('\r\n'));
  t.is(sdp.split('\r\n').length - 1, sdp.split('\n').length - 1);
  t.false(/\r(?!\n)/.test(sdp));
});

test('the duration is written with three decimals, rounded', (t) => {
  t.true(buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: 'x', durationSeconds: 3599.99951 }).includes('a=range:npt=0-3600.000\r\n'));
  t.true(buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: 'x', durationSeconds: 0 }).includes('a=range:npt=0-0.000\r\n'));
});

test('an unknown duration gives an open range', (t) => {
  t.true(buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: 'live' }).includes('a=range:npt=0-\r\n'));
});

test('a bitrate adds b=AS to the media section, after m= and before the attributes', (t) => {
  const sdp = buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: 'x', durationSeconds: 1, bitrateKbps: 3000.2 });
  t.true(sdp.includes(`m=video 0 RTP/AVP ${RTP_PAYLOAD_TYPE_MP2T}\r\nb=AS:3001\r\na=rtpmap:33 MP2T/90000\r\n`));
});

test('an IPv6 server address uses IP6 in o= and c=', (t) => {
  const sdp = buildSdp({ sessionId: 1, serverAddress: '::1', name: 'x', durationSeconds: 1 });
  t.true(sdp.includes('o=- 1 1 IN IP6 ::1\r\n'));
  t.true(sdp.includes('c=IN IP6 ::\r\n'));
});

test('a name with line breaks cannot inject SDP lines', (t) => {
  const sdp = buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: 'evil\r\na=control:rtsp://elsewhere/\n', durationSeconds: 1 });
  t.true(sdp.includes('s=evil a=control:rtsp://elsewhere/\r\n'));
  t.is(sdp.split('\r\n').filter((l) => l.startsWith('a=control:')).length, 2);
});

test('an empty name becomes the single space RFC 4566 asks for', (t) => {
  t.true(buildSdp({ sessionId: 1, serverAddress: '127.0.0.1', name: '', durationSeconds: 1 }).includes('s= \r\n'));
});

test('a custom track control and bigint session id are written as given', (t) => {
  const sdp = buildSdp({ sessionId: 2n ** 63n, sessionVersion: 7n, serverAddress: '127.0.0.1', name: 'x', trackControl: 'stream=0' });
  t.true(sdp.includes('o=- 9223372036854775808 7 IN IP4 127.0.0.1\r\n'));
  t.true(sdp.endsWith('a=control:stream=0\r\n'));
});

test('invalid parameters are refused', (t) => {
  const base = { sessionId: 1, serverAddress: '127.0.0.1', name: 'x' };
  t.throws(() => buildSdp({ ...base, sessionId: 'abc' }), { instanceOf: TypeError });
  t.throws(() => buildSdp({ ...base, sessionId: -1 }), { instanceOf: TypeError });
  t.throws(() => buildSdp({ ...base, serverAddress: '1.2.3.4\r\nx' }), { instanceOf: TypeError });
  t.throws(() => buildSdp({ ...base, durationSeconds: Number.NaN }), { instanceOf: TypeError });
  t.throws(() => buildSdp({ ...base, durationSeconds: -1 }), { instanceOf: TypeError });
  t.throws(() => buildSdp({ ...base, trackControl: 'a b' }), { instanceOf: TypeError });
  t.throws(() => buildSdp({ ...base, bitrateKbps: 0 }), { instanceOf: TypeError });
});
