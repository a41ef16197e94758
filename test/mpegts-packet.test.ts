// Tests for TS packet header and adaptation field parsing (src/mpegts/packet.ts).

import fs from 'node:fs';
import test from 'ava';
import {
  AFC_ADAPTATION_AND_PAYLOAD,
  AFC_ADAPTATION_ONLY,
  AFC_PAYLOAD_ONLY,
  PCR_WRAP,
  TS_PACKET_BYTES,
  TS_SYNC_BYTE,
  adaptationFieldLength,
  encodePcr,
  hasSyncByte,
  packetContinuityCounter,
  packetDiscontinuity,
  packetHasPcr,
  packetPcr,
  packetPid,
  packetPusi,
  packetRandomAccess,
  parsePacketHeader,
  payloadOffset,
} from '../src/mpegts/packet.js';

const SAMPLE = new URL('../../assets/sample.ts', import.meta.url);

/** A packet with an adaptation field carrying the given flags (and a PCR when given). */
function packetWithAf(opts: { pid: number; pusi?: boolean; cc?: number; flags: number; pcr?: number; payload?: boolean }): Uint8Array {
  const p = new Uint8Array(TS_PACKET_BYTES).fill(0xff);
  const payload = opts.payload ?? true;
  p[0] = TS_SYNC_BYTE;
  p[1] = (opts.pusi ? 0x40 : 0) | ((opts.pid >> 8) & 0x1f);
  p[2] = opts.pid & 0xff;
  p[3] = (payload ? 0x30 : 0x20) | ((opts.cc ?? 0) & 0x0f);
  const afLen = payload ? 7 : 183;
  p[4] = afLen;
  p[5] = opts.flags | (opts.pcr !== undefined ? 0x10 : 0);
  if (opts.pcr !== undefined) encodePcr(opts.pcr, p, 6);
  return p;
}

test('header fields are read from the four header bytes', (t) => {
  const p = new Uint8Array(TS_PACKET_BYTES);
  p.set([0x47, 0x41, 0x00, 0x1a]); // PUSI, PID 0x100, payload only, CC 10
  t.true(hasSyncByte(p, 0));
  t.true(packetPusi(p, 0));
  t.is(packetPid(p, 0), 0x100);
  t.is(packetContinuityCounter(p, 0), 10);
  t.is(payloadOffset(p, 0), 4);
  const h = parsePacketHeader(p);
  t.is(h.adaptationFieldControl, AFC_PAYLOAD_ONLY);
  t.is(h.adaptationField, undefined);
  t.false(h.transportError);
});

test('a PCR survives encoding and decoding, including the largest 33-bit base', (t) => {
  for (const pcr of [0, 1, 299, 300, 27_000_000 * 3600 + 123, PCR_WRAP - 1]) {
    const p = packetWithAf({ pid: 0x100, flags: 0, pcr });
    t.true(packetHasPcr(p, 0));
    t.is(packetPcr(p, 0), pcr, `pcr ${pcr}`);
  }
});

test('discontinuity and random-access flags are read from the adaptation field', (t) => {
  const p = packetWithAf({ pid: 0x101, pusi: true, flags: 0x80 | 0x40, pcr: 42 });
  t.true(packetDiscontinuity(p, 0));
  t.true(packetRandomAccess(p, 0));
  const h = parsePacketHeader(p);
  t.is(h.adaptationFieldControl, AFC_ADAPTATION_AND_PAYLOAD);
  t.deepEqual(h.adaptationField, { length: 7, discontinuity: true, randomAccess: true, esPriority: false, pcr: 42 });
  t.is(h.payloadOffset, 4 + 1 + 7);
  const plain = packetWithAf({ pid: 0x101, flags: 0 });
  t.false(packetDiscontinuity(plain, 0));
  t.false(packetRandomAccess(plain, 0));
  t.is(packetPcr(plain, 0), -1);
});

test('an adaptation-only packet has no payload', (t) => {
  const p = packetWithAf({ pid: 0x100, flags: 0, pcr: 1000, payload: false });
  t.is(parsePacketHeader(p).adaptationFieldControl, AFC_ADAPTATION_ONLY);
  t.is(payloadOffset(p, 0), -1);
  t.is(packetPcr(p, 0), 1000);
});

test('an adaptation field length that overruns the packet is reported, not followed', (t) => {
  const p = packetWithAf({ pid: 0x100, flags: 0, pcr: 1000 });
  p[4] = 200;
  t.is(adaptationFieldLength(p, 0), -1);
  t.false(packetHasPcr(p, 0));
  t.is(payloadOffset(p, 0), -1);
});

test('a PCR flag in a field too short to hold the PCR is ignored', (t) => {
  const p = packetWithAf({ pid: 0x100, flags: 0, pcr: 1000 });
  p[4] = 3;
  t.false(packetHasPcr(p, 0));
  t.is(packetPcr(p, 0), -1);
});

test('accessors read a packet at any offset in a larger buffer', (t) => {
  const buf = new Uint8Array(3 * TS_PACKET_BYTES);
  buf.set(packetWithAf({ pid: 0x1234 & 0x1fff, flags: 0, pcr: 5_400_000, cc: 7 }), 2 * TS_PACKET_BYTES);
  const off = 2 * TS_PACKET_BYTES;
  t.is(packetPid(buf, off), 0x1234 & 0x1fff);
  t.is(packetContinuityCounter(buf, off), 7);
  t.is(packetPcr(buf, off), 5_400_000);
  t.false(hasSyncByte(buf, 0));
});

test('the sample asset opens with SDT, PAT and PMT and carries PCRs on PID 0x100 every 20 ms', (t) => {
  const data = fs.readFileSync(SAMPLE);
  t.is(data.length % TS_PACKET_BYTES, 0);
  const heads = [0, 1, 2].map((i) => parsePacketHeader(data, i * TS_PACKET_BYTES));
  t.deepEqual(
    heads.map((h) => [h.sync, h.pid, h.payloadUnitStart]),
    [
      [true, 0x11, true],
      [true, 0x00, true],
      [true, 0x1000, true],
    ],
  );
  const pcrs: number[] = [];
  for (let off = 0; off < data.length && pcrs.length < 10; off += TS_PACKET_BYTES) {
    t.true(hasSyncByte(data, off));
    const pcr = packetPcr(data, off);
    if (pcr >= 0) {
      t.is(packetPid(data, off), 0x100);
      pcrs.push(pcr);
    }
  }
  t.is(pcrs.length, 10);
  for (let i = 1; i < pcrs.length; i++) {
    const ms = (pcrs[i] - pcrs[i - 1]) / 27_000;
    t.true(ms > 0 && ms <= 40, `PCR interval ${ms} ms`);
  }
});
