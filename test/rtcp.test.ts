// RTCP serialization (src/rtsp/rtcp.ts) against RFC 3550 §6.4.1, §6.5 and §6.6,
// byte by byte: the expected bytes are written out here, not rebuilt with the
// module's own helpers.

import test from 'ava';
import { RTCP_BYE, RTCP_SDES, RTCP_SR, buildBye, buildSdes, buildSenderReport, compound, ntpTimestamp, parseCompound } from '../src/rtsp/rtcp.js';

test('NTP timestamps count from 1900 with a 32-bit binary fraction', (t) => {
  t.deepEqual(ntpTimestamp(0), [2_208_988_800, 0]);
  t.deepEqual(ntpTimestamp(1500), [2_208_988_801, 0x8000_0000]);
  t.deepEqual(ntpTimestamp(250.5), [2_208_988_800, Math.floor(0.2505 * 2 ** 32)]);
  // 2036-02-07T06:28:16Z: the NTP era wraps, the seconds field is taken modulo 2^32.
  t.deepEqual(ntpTimestamp((2 ** 32 - 2_208_988_800) * 1000 + 1), [0, Math.floor(0.001 * 2 ** 32)]);
});

test('a sender report is 28 bytes: header, SSRC, NTP, RTP time, packet and octet counts', (t) => {
  const sr = buildSenderReport({ ssrc: 0xdeadbeef, wallMs: 1500, rtpTimestamp: 0x1234_5678, packetCount: 70_000, octetCount: 0x1_0000_0005 });
  t.deepEqual([...sr], [
    0x80, 200, 0, 6, // V=2, no padding, RC=0; PT=SR; length 7 words − 1
    0xde, 0xad, 0xbe, 0xef,
    0x83, 0xaa, 0x7e, 0x81, // 2208988801
    0x80, 0x00, 0x00, 0x00, // .5 s
    0x12, 0x34, 0x56, 0x78,
    0x00, 0x01, 0x11, 0x70, // 70000
    0x00, 0x00, 0x00, 0x05, // the octet count wraps modulo 2^32 (RFC 3550 §6.4.1)
  ]);
});

test('SDES carries one CNAME item, null-terminated and padded to 32 bits', (t) => {
  t.deepEqual([...buildSdes(1, 'ab')], [
    0x81, 202, 0, 3, // SC=1; PT=SDES; 4 words − 1
    0, 0, 0, 1,
    1, 2, 0x61, 0x62, // CNAME, length 2, 'ab'
    0, 0, 0, 0, // terminator and padding: a whole null word when the item ends on a boundary
  ]);
  t.deepEqual([...buildSdes(7, 'abc')], [0x81, 202, 0, 3, 0, 0, 0, 7, 1, 3, 0x61, 0x62, 0x63, 0, 0, 0]);
});

test('BYE names the source', (t) => {
  t.deepEqual([...buildBye(0x01020304)], [0x81, 203, 0, 1, 1, 2, 3, 4]);
});

test('a compound packet is SR then SDES (then BYE), and parses back into them', (t) => {
  const sr = { ssrc: 42, wallMs: 1_700_000_000_123, rtpTimestamp: 99, packetCount: 3, octetCount: 3948 };
  const plain = parseCompound(compound(sr, 'twinframe@host'));
  t.deepEqual(plain.map((p) => [p.type, p.ssrc]), [[RTCP_SR, 42], [RTCP_SDES, 42]]);
  const sdes = plain[1].body;
  t.is(sdes[8], 1, 'CNAME item');
  t.is(sdes.toString('utf8', 10, 10 + sdes[9]), 'twinframe@host');
  const withBye = parseCompound(compound(sr, 'x', true));
  t.deepEqual(withBye.map((p) => p.type), [RTCP_SR, RTCP_SDES, RTCP_BYE]);
  t.is(withBye[2].count, 1);
});

test('a CNAME longer than an SDES item can hold is cut at 255 bytes', (t) => {
  const sdes = buildSdes(1, 'x'.repeat(300));
  t.is(sdes[9], 255);
  t.is(sdes.length % 4, 0);
  t.is(parseCompound(sdes).length, 1);
});

test('malformed compound packets are refused', (t) => {
  t.throws(() => parseCompound(Buffer.from([0x80, 200, 0])), { message: /truncated/ });
  t.throws(() => parseCompound(Buffer.from([0x40, 200, 0, 1, 0, 0, 0, 0])), { message: /version/ });
  t.throws(() => parseCompound(Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 0])), { message: /beyond/ });
});
