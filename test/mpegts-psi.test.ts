// Tests for PSI section reassembly and PAT/PMT parsing (src/mpegts/psi.ts).

import fs from 'node:fs';
import test from 'ava';
import { TS_PACKET_BYTES, packetPid } from '../src/mpegts/packet.js';
import {
  SectionAssembler,
  classifyStream,
  crc32Mpeg2,
  isPsiError,
  parsePat,
  parsePmt,
  type PatSection,
  type PmtSection,
} from '../src/mpegts/psi.js';

const SAMPLE = new URL('../../assets/sample.ts', import.meta.url);

/** A long-form section: header, body, CRC-32/MPEG-2. */
function section(tableId: number, idExtension: number, body: number[]): Uint8Array {
  const sectionLength = 5 + body.length + 4;
  const bytes = [
    tableId,
    0xb0 | (sectionLength >> 8),
    sectionLength & 0xff,
    idExtension >> 8,
    idExtension & 0xff,
    0xc1, // version 0, current_next 1
    0,
    0,
    ...body,
  ];
  const crc = crc32Mpeg2(Uint8Array.from(bytes));
  return Uint8Array.from([...bytes, crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff]);
}

function patSection(programs: Array<[number, number]>): Uint8Array {
  return section(
    0x00,
    1,
    programs.flatMap(([program, pid]) => [program >> 8, program & 0xff, 0xe0 | (pid >> 8), pid & 0xff]),
  );
}

function pmtSection(programNumber: number, pcrPid: number, streams: Array<{ type: number; pid: number; desc?: number[] }>): Uint8Array {
  const body = [0xe0 | (pcrPid >> 8), pcrPid & 0xff, 0xf0, 0x00];
  for (const s of streams) {
    const desc = s.desc ?? [];
    body.push(s.type, 0xe0 | (s.pid >> 8), s.pid & 0xff, 0xf0 | (desc.length >> 8), desc.length & 0xff, ...desc);
  }
  return section(0x02, programNumber, body);
}

/** Splits a payload (pointer field included by the caller) into TS packets of one PID. */
function packetize(pid: number, payload: Uint8Array, firstIsStart = true): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let pos = 0, cc = 0; pos < payload.length; cc++) {
    const p = new Uint8Array(TS_PACKET_BYTES).fill(0xff);
    p[0] = 0x47;
    p[1] = (pos === 0 && firstIsStart ? 0x40 : 0) | (pid >> 8);
    p[2] = pid & 0xff;
    p[3] = 0x10 | (cc & 0x0f);
    const n = Math.min(184, payload.length - pos);
    p.set(payload.subarray(pos, pos + n), 4);
    pos += n;
    out.push(p);
  }
  return out;
}

function collect(packets: Uint8Array[]): Uint8Array[] {
  const asm = new SectionAssembler();
  const sections: Uint8Array[] = [];
  for (const p of packets) asm.push(p, 0, (s) => sections.push(s));
  return sections;
}

test('CRC-32/MPEG-2 matches the standard check value', (t) => {
  t.is(crc32Mpeg2(new TextEncoder().encode('123456789')), 0x0376e6e7);
  // A section with its CRC appended checks to zero.
  t.is(crc32Mpeg2(patSection([[1, 0x1000]])), 0);
});

test('a PAT lists its programs and keeps the network PID apart', (t) => {
  const pat = parsePat(patSection([[0, 0x10], [1, 0x1000], [2, 0x1001]]));
  if (isPsiError(pat)) return t.fail(pat.error);
  t.deepEqual(pat.programs, [
    { programNumber: 1, pid: 0x1000 },
    { programNumber: 2, pid: 0x1001 },
  ]);
  t.is(pat.networkPid, 0x10);
  t.is(pat.transportStreamId, 1);
  t.true(pat.currentNext);
});

test('a PMT gives the PCR PID and each stream with its kind and codec', (t) => {
  const pmt = parsePmt(
    pmtSection(1, 0x100, [
      { type: 0x1b, pid: 0x100 },
      { type: 0x0f, pid: 0x101, desc: [0x0a, 4, 0x65, 0x6e, 0x67, 0] },
      { type: 0x06, pid: 0x102, desc: [0x6a, 1, 0] },
    ]),
  );
  if (isPsiError(pmt)) return t.fail(pmt.error);
  t.is(pmt.programNumber, 1);
  t.is(pmt.pcrPid, 0x100);
  t.deepEqual(
    pmt.streams.map((s) => [s.pid, s.streamType, s.kind, s.codec]),
    [
      [0x100, 0x1b, 'video', 'h264'],
      [0x101, 0x0f, 'audio', 'aac'],
      [0x102, 0x06, 'audio', 'ac3'],
    ],
  );
  t.is(pmt.streams[1].descriptors[0].tag, 0x0a);
});

test('a section whose CRC does not match is refused', (t) => {
  const s = patSection([[1, 0x1000]]);
  s[9] ^= 0x01;
  const r = parsePat(s);
  t.true(isPsiError(r));
  t.regex((r as { error: string }).error, /CRC/);
});

test('a section with the wrong table_id or a length past its buffer is refused', (t) => {
  t.true(isPsiError(parsePmt(patSection([[1, 0x1000]]))));
  const s = patSection([[1, 0x1000]]);
  t.true(isPsiError(parsePat(s.subarray(0, s.length - 2))));
});

test('stream types and descriptors map to codecs', (t) => {
  t.deepEqual(classifyStream(0x24), { kind: 'video', codec: 'hevc' });
  t.deepEqual(classifyStream(0x02), { kind: 'video', codec: 'mpeg2video' });
  t.deepEqual(classifyStream(0x03), { kind: 'audio', codec: 'mp2' });
  t.deepEqual(classifyStream(0x81), { kind: 'audio', codec: 'ac3' });
  t.deepEqual(classifyStream(0x86), { kind: 'other', codec: 'scte35' });
  t.deepEqual(classifyStream(0x06, [{ tag: 0x59, data: new Uint8Array(8) }]), { kind: 'other', codec: 'dvb-subtitle' });
  t.deepEqual(classifyStream(0x06, [{ tag: 0x05, data: new TextEncoder().encode('Opus') }]), { kind: 'audio', codec: 'opus' });
  t.deepEqual(classifyStream(0x99), { kind: 'other', codec: 'unknown' });
});

test('the section assembler honours the pointer field and stops at stuffing', (t) => {
  const pat = patSection([[1, 0x1000]]);
  // pointer_field = 3: three bytes of a previous section's tail come first.
  const payload = Uint8Array.from([3, 0xaa, 0xbb, 0xcc, ...pat]);
  const sections = collect(packetize(0, payload));
  t.is(sections.length, 1);
  t.deepEqual(sections[0], pat);
});

test('the section assembler joins a section that spans several packets', (t) => {
  const streams = Array.from({ length: 40 }, (_, i) => ({ type: 0x06, pid: 0x200 + i, desc: [0x0a, 4, 0x65, 0x6e, 0x67, 0] }));
  const pmt = pmtSection(7, 0x200, streams);
  t.true(pmt.length > 2 * 184);
  const packets = packetize(0x1000, Uint8Array.from([0, ...pmt]));
  t.true(packets.length >= 3);
  const sections = collect(packets);
  t.is(sections.length, 1);
  const parsed = parsePmt(sections[0]);
  if (isPsiError(parsed)) return t.fail(parsed.error);
  t.is(parsed.streams.length, 40);
  t.is(parsed.programNumber, 7);
});

test('the section assembler returns several sections packed into one packet', (t) => {
  const a = pmtSection(1, 0x100, [{ type: 0x1b, pid: 0x100 }]);
  const b = pmtSection(2, 0x200, [{ type: 0x0f, pid: 0x201 }]);
  const sections = collect(packetize(0x1000, Uint8Array.from([0, ...a, ...b])));
  t.is(sections.length, 2);
  t.deepEqual(sections[0], a);
  t.deepEqual(sections[1], b);
});

test('a continuation packet without a section in progress is ignored', (t) => {
  const pat = patSection([[1, 0x1000]]);
  t.deepEqual(collect(packetize(0, Uint8Array.from([0, ...pat]), false)), []);
});

test('the sample asset has program 1 with PMT PID 0x1000, H.264 on 0x100 and AAC on 0x101', (t) => {
  const data = fs.readFileSync(SAMPLE);
  const patAsm = new SectionAssembler();
  const pmtAsm = new SectionAssembler();
  let pat: PatSection | undefined;
  let pmt: PmtSection | undefined;
  for (let off = 0; off < data.length && pmt === undefined; off += TS_PACKET_BYTES) {
    const pid = packetPid(data, off);
    if (pid === 0) {
      patAsm.push(data, off, (s) => {
        const r = parsePat(s);
        if (!isPsiError(r)) pat = r;
      });
    } else if (pat !== undefined && pid === pat.programs[0].pid) {
      pmtAsm.push(data, off, (s) => {
        const r = parsePmt(s);
        if (!isPsiError(r)) pmt = r;
      });
    }
  }
  t.deepEqual(pat?.programs, [{ programNumber: 1, pid: 0x1000 }]);
  t.is(pmt?.pcrPid, 0x100);
  t.deepEqual(
    pmt?.streams.map((s) => [s.pid, s.codec]),
    [
      [0x100, 'h264'],
      [0x101, 'aac'],
    ],
  );
});
