// RTCP serialization (src/rtsp/rtcp.ts) against RFC 3550 §6.4.1, §6.5 and §6.6,
// byte by byte: the expected bytes are written out here, not rebuilt with the
// module's own helpers. compound() is what the server sends: SR, SDES with the
// CNAME, and at the end BYE.

import test from 'ava';
import { RTCP_BYE, RTCP_SR, compound, type SenderReport } from '../src/rtsp/rtcp.js';
import { parseCompound } from './helpers/rtcp.js';

const RTCP_SDES = 202;
const NTP_1970 = 2_208_988_800;

function report(overrides: Partial<SenderReport> = {}): SenderReport {
  return { ssrc: 0xdeadbeef, wallMs: 1500, rtpTimestamp: 0x1234_5678, packetCount: 70_000, octetCount: 0x1_0000_0005, ...overrides };
}

test('the sender report is 28 bytes: header, SSRC, NTP, RTP time, packet and octet counts', (t) => {
  const sr = compound(report(), 'ab').subarray(0, 28);
  t.deepEqual([...sr], [
    0x80, 200, 0, 6, // V=2, no padding, RC=0; PT=SR; length 7 words − 1
    0xde, 0xad, 0xbe, 0xef,
    0x83, 0xaa, 0x7e, 0x81, // 2208988801: seconds since 1900
    0x80, 0x00, 0x00, 0x00, // .5 s as a 32-bit binary fraction
    0x12, 0x34, 0x56, 0x78,
    0x00, 0x01, 0x11, 0x70, // 70000
    0x00, 0x00, 0x00, 0x05, // the octet count wraps modulo 2^32 (RFC 3550 §6.4.1)
  ]);
});

test('NTP timestamps count from 1900 with a 32-bit fraction, and wrap with the NTP era', (t) => {
  const ntp = (wallMs: number): [number, number] => {
    const b = compound(report({ wallMs }), 'x');
    return [b.readUInt32BE(8), b.readUInt32BE(12)];
  };
  t.deepEqual(ntp(0), [NTP_1970, 0]);
  t.deepEqual(ntp(250.5), [NTP_1970, Math.floor(0.2505 * 2 ** 32)]);
  t.deepEqual(ntp(1_700_000_000_123), [NTP_1970 + 1_700_000_000, Math.floor(0.123 * 2 ** 32)]);
  // 2036-02-07T06:28:16Z: era 1 begins, the seconds field is taken modulo 2^32.
  t.deepEqual(ntp((2 ** 32 - NTP_1970) * 1000 + 1), [0, Math.floor(0.001 * 2 ** 32)]);
});

test('SDES follows with one CNAME item, null-terminated and padded to 32 bits', (t) => {
  t.deepEqual([...compound(report({ ssrc: 1 }), 'ab').subarray(28)], [
    0x81, 202, 0, 3, // SC=1; PT=SDES; 4 words − 1
    0, 0, 0, 1,
    1, 2, 0x61, 0x62, // CNAME, length 2, 'ab'
    0, 0, 0, 0, // terminator and padding: a whole null word when the item ends on a boundary
  ]);
  t.deepEqual([...compound(report({ ssrc: 7 }), 'abc').subarray(28)], [0x81, 202, 0, 3, 0, 0, 0, 7, 1, 3, 0x61, 0x62, 0x63, 0, 0, 0]);
});

test('with bye, a BYE naming the source ends the compound packet', (t) => {
  const bytes = compound(report({ ssrc: 0x01020304 }), 'ab', true);
  t.deepEqual([...bytes.subarray(-8)], [0x81, 203, 0, 1, 1, 2, 3, 4]);
  t.deepEqual(parseCompound(bytes).map((p) => [p.type, p.ssrc]), [[RTCP_SR, 0x01020304], [RTCP_SDES, 0x01020304], [RTCP_BYE, 0x01020304]]);
  t.deepEqual(parseCompound(compound(report(), 'ab')).map((p) => p.type), [RTCP_SR, RTCP_SDES], 'no BYE unless asked');
});

test('a CNAME longer than an SDES item can hold is cut at 255 bytes, the packet still whole words', (t) => {
  const [, sdes] = parseCompound(compound(report(), 'x'.repeat(300)));
  t.is(sdes.body[9], 255);
  t.is(sdes.body.length % 4, 0);
  t.is(sdes.body.toString('utf8', 10, 265), 'x'.repeat(255));
});
