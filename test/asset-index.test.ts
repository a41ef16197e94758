// Tests for building an asset index (src/catalog/asset-index.ts), its file
// format (src/index-format/index-format.ts, read and written by src/catalog/index-file.ts) and the worker's error envelope
// (src/catalog/index-worker.ts).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { TwinframeError, type ErrorCode } from '../src/errors.js';
import { buildAssetIndex } from './helpers/asset-index.js';
import { readIndexFile, readVerifiedIndexHead, writeIndexFile } from '../src/catalog/index-file.js';
import {
  INDEX_MAGIC,
  IndexHeader,
  pictureNptAt,
  picturesTableOffset,
  rangeEndPacket,
  randomAccessAtOrBefore,
  seekStartPacket,
  timeEntryOffset,
  timesTableOffset,
  type AssetIndex,
} from '../src/index-format/index-format.js';
import indexAsset, { deserializeError, serializeError } from '../src/catalog/index-worker.js';
import { PCR_WRAP, TS_PACKET_BYTES, encodePcr, packetPcr, packetPid, packetPusi, payloadOffset } from '../src/mpegts/packet.js';
import { crc32Mpeg2 } from '../src/mpegts/psi.js';
import { ASSET_OPEN_FLAGS } from '../src/shared/asset-file.js';
import { mkfifo, rescueFifoAfter } from './helpers/fifo.js';

const SAMPLE = fileURLToPath(new URL('../../assets/sample.ts', import.meta.url));
const SAMPLE_BYTES = fs.readFileSync(SAMPLE);
const VIDEO_PID = 0x100;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twinframe-index-'));
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `bytes` to a file in a fresh temp dir. */
async function assetFile(t: ExecutionContext, name: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(await tempDir(t), name);
  await fs.promises.writeFile(file, bytes);
  return file;
}

function refusal(t: ExecutionContext, file: string, code: ErrorCode): TwinframeError {
  const err = t.throws(() => buildAssetIndex(file), { instanceOf: TwinframeError });
  t.is(err?.code, code);
  t.true(err.message.includes(file), `message names the file: ${err?.message}`);
  return err;
}

/** Calls fn(offset) for every packet of buf on `pid`. */
function forEachPacket(buf: Uint8Array, fn: (off: number, index: number) => void, pid?: number): void {
  for (let off = 0, i = 0; off < buf.length; off += TS_PACKET_BYTES, i++) {
    if (pid === undefined || packetPid(buf, off) === pid) fn(off, i);
  }
}

// --- A synthetic TS builder for timeline edge cases -------------------------------

function section(tableId: number, idExtension: number, body: number[]): number[] {
  const len = 5 + body.length + 4;
  const bytes = [tableId, 0xb0 | (len >> 8), len & 0xff, idExtension >> 8, idExtension & 0xff, 0xc1, 0, 0, ...body];
  const crc = crc32Mpeg2(Uint8Array.from(bytes));
  return [...bytes, crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff];
}

function psiPacket(pid: number, sec: number[]): Uint8Array {
  const p = new Uint8Array(TS_PACKET_BYTES).fill(0xff);
  p.set([0x47, 0x40 | (pid >> 8), pid & 0xff, 0x10, 0, ...sec]);
  return p;
}

/**
 * A one-program TS: PAT, PMT (H.264 on 0x100, which carries the PCR), then
 * `count` video packets; packet k (0-based among them) carries the PCR pcrOf(k)
 * when it returns a value.
 */
function syntheticTs(count: number, pcrOf: (k: number) => { pcr: number; disc?: boolean } | undefined): Buffer {
  const out = Buffer.alloc((count + 2) * TS_PACKET_BYTES);
  out.set(psiPacket(0, section(0, 1, [0, 1, 0xe0 | 0x10, 0x00])), 0);
  out.set(psiPacket(0x1000, section(2, 1, [0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00])), TS_PACKET_BYTES);
  for (let k = 0; k < count; k++) {
    const o = (k + 2) * TS_PACKET_BYTES;
    const p = out.subarray(o, o + TS_PACKET_BYTES);
    p.fill(0xff);
    const pcr = pcrOf(k);
    p[0] = 0x47;
    p[1] = 0x01;
    p[2] = 0x00;
    if (pcr === undefined) {
      p[3] = 0x10 | (k & 0x0f);
    } else {
      p[3] = 0x30 | (k & 0x0f);
      p[4] = 7;
      p[5] = 0x10 | (pcr.disc ? 0x80 : 0);
      encodePcr(pcr.pcr, p, 6);
    }
  }
  return out;
}

/** 27 MHz duration of n packets at `bitrate`. */
const packets27 = (n: number, bitrate: number): number => (n * TS_PACKET_BYTES * 8 * 27e6) / bitrate;

// --- The sample asset --------------------------------------------------------------

test('the sample asset is indexed with its program, PCR PID, duration and bitrate', (t) => {
  const { meta, times } = buildAssetIndex(SAMPLE);
  t.is(meta.version, 3);
  t.is(meta.sourcePath, SAMPLE);
  t.is(meta.sourceSize, SAMPLE_BYTES.length);
  t.is(meta.packetCount, SAMPLE_BYTES.length / TS_PACKET_BYTES);
  t.is(times.length, meta.packetCount);
  t.is(meta.programNumber, 1);
  t.is(meta.pmtPid, 0x1000);
  t.is(meta.pcrPid, 256);
  t.deepEqual(
    meta.streams.map((s) => [s.pid, s.kind, s.codec]),
    [
      [0x100, 'video', 'h264'],
      [0x101, 'audio', 'aac'],
    ],
  );
  t.true(Math.abs(meta.durationMs - 12_000) < 100, `duration ${meta.durationMs} ms`);
  t.true(Math.abs(meta.bitrate - 3_000_000) / 3_000_000 < 0.02, `bitrate ${meta.bitrate}`);
  t.true(meta.pcrCount >= 550, `pcrCount ${meta.pcrCount}`);
});

test('the sample asset indexes in well under a second', (t) => {
  buildAssetIndex(SAMPLE); // warm the page cache and the JIT
  const start = process.hrtime.bigint();
  buildAssetIndex(SAMPLE);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.log(`indexed in ${ms.toFixed(1)} ms`);
  t.true(ms < 500, `took ${ms} ms`);
});

test('packet send times start at 0 and never decrease', (t) => {
  const { times } = buildAssetIndex(SAMPLE);
  t.is(times[0], 0);
  for (let p = 1; p < times.length; p++) {
    if (times[p] < times[p - 1]) return t.fail(`times decrease at packet ${p}`);
  }
  t.pass();
});

test('interpolated times agree with the PCR of every PCR-bearing packet to within one tick', (t) => {
  const { meta, times } = buildAssetIndex(SAMPLE);
  let first: { pcr: number; packet: number } | undefined;
  let checked = 0;
  let worst = 0;
  forEachPacket(
    SAMPLE_BYTES,
    (off, p) => {
      const pcr = packetPcr(SAMPLE_BYTES, off);
      if (pcr < 0) return;
      first ??= { pcr, packet: p };
      const expected = times[first.packet] + (pcr - first.pcr) / 300;
      worst = Math.max(worst, Math.abs(times[p] - expected));
      checked++;
    },
    meta.pcrPid,
  );
  t.is(checked, meta.pcrCount);
  t.true(worst <= 1, `worst disagreement ${worst} ticks`);
});

/** Whether the PES starting at packet `start` of the video PID holds an IDR picture before any other picture. */
function pesStartsWithIdr(buf: Buffer, start: number): boolean {
  const off = start * TS_PACKET_BYTES;
  if (packetPid(buf, off) !== VIDEO_PID || !packetPusi(buf, off)) return false;
  const es: number[] = [];
  for (let o = off; o < buf.length && es.length < 64 * 1024; o += TS_PACKET_BYTES) {
    if (packetPid(buf, o) !== VIDEO_PID) continue;
    if (o !== off && packetPusi(buf, o)) break;
    const pay = payloadOffset(buf, o);
    if (pay >= 0) es.push(...buf.subarray(pay, o + TS_PACKET_BYTES));
  }
  if (es[0] !== 0 || es[1] !== 0 || es[2] !== 1 || (es[3] & 0xf0) !== 0xe0) return false; // video PES start code
  for (let i = 9 + es[8]; i + 3 < es.length; i++) {
    if (es[i] === 0 && es[i + 1] === 0 && es[i + 2] === 1) {
      const type = es[i + 3] & 0x1f;
      if (type === 5) return true;
      if (type >= 1 && type <= 4) return false;
    }
  }
  return false;
}

test('a seek to a key frame\'s time as npt carries it (milliseconds) starts at that key frame, not one GOP early', (t) => {
  const { meta } = buildAssetIndex(SAMPLE);
  const raps = meta.randomAccess;
  // The sample's key frames sit a fraction of a millisecond around each whole second (1.00016 s, 2.99998 s, …).
  t.true(raps.some((r) => r.ticks % 90_000 > 0 && r.ticks % 90_000 < 90), 'a key frame just after a whole second');
  t.is(seekStartPacket(meta, 0), 0, 'npt=0: the asset\'s start');
  for (let i = 1; i < raps.length; i++) {
    const asked = Math.round(raps[i].ticks / 90) * 90; // its time to the millisecond, as a PLAY reply names it
    t.is(seekStartPacket(meta, asked), raps[i].packet, `npt=${asked / 90_000} lands on key frame ${i} (${raps[i].ticks / 90_000} s)`);
    t.is(seekStartPacket(meta, Math.floor(raps[i].ticks / 90_000) * 90_000 + (raps[i].ticks % 90_000 < 90 ? 0 : 90_000)), raps[i].packet, `npt=<whole second> lands on key frame ${i}`);
    t.is(seekStartPacket(meta, raps[i].ticks - 180), raps[i - 1].packet, '2 ms before a key frame: the one before');
  }
});

test('the sample asset has a random-access point every second, each starting a PES with an IDR picture', (t) => {
  const { meta, times } = buildAssetIndex(SAMPLE);
  const raps = meta.randomAccess;
  t.true(raps.length >= 11 && raps.length <= 13, `${raps.length} random-access points`);
  for (let i = 0; i < raps.length; i++) {
    const rap = raps[i];
    t.is(rap.ticks, times[rap.packet]);
    t.true(pesStartsWithIdr(SAMPLE_BYTES, rap.packet), `packet ${rap.packet} starts an IDR PES`);
    if (i > 0) {
      const gap = (rap.ticks - raps[i - 1].ticks) / 90_000;
      t.true(Math.abs(gap - 1) < 0.1, `gap ${gap} s before RAP ${i}`);
    }
  }
});

test('without random_access_indicator, key frames are found from the H.264 NAL units', (t) => {
  const withRai = buildAssetIndex(SAMPLE).meta.randomAccess;
  const stripped = Buffer.from(SAMPLE_BYTES);
  forEachPacket(stripped, (off) => {
    if (stripped[off + 3] & 0x20 && stripped[off + 4] > 0) stripped[off + 5] &= ~0x40;
  });
  return assetFile(t, 'no-rai.ts', stripped).then((file) => {
    t.deepEqual(buildAssetIndex(file).meta.randomAccess, withRai);
  });
});

test('a few corrupt sync bytes are tolerated and the packets after them are read normally', async (t) => {
  const damaged = Buffer.from(SAMPLE_BYTES);
  damaged[500 * TS_PACKET_BYTES] = 0x00;
  damaged[9000 * TS_PACKET_BYTES] = 0x48;
  const { meta, times } = buildAssetIndex(await assetFile(t, 'damaged.ts', damaged));
  const clean = buildAssetIndex(SAMPLE);
  t.is(meta.packetCount, clean.meta.packetCount);
  t.true(Math.abs(meta.durationMs - clean.meta.durationMs) < 1);
  t.true(Math.abs(times[12_000] - clean.times[12_000]) <= 1);
});

// --- Refusals ------------------------------------------------------------------------

test('an empty file is refused as empty', async (t) => {
  refusal(t, await assetFile(t, 'empty.ts', new Uint8Array(0)), 'TF_ASSET_EMPTY');
});

test('random bytes are refused as not TS, naming the first bad packet', async (t) => {
  const bytes = new Uint8Array(188 * 1000);
  let seed = 12345;
  for (let i = 0; i < bytes.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  bytes[0] = 0x47; // one lucky sync byte does not make it TS
  const err = refusal(t, await assetFile(t, 'random.ts', bytes), 'TF_ASSET_NOT_TS');
  t.is(err.details.offset, 188);
  t.regex(err.message, /packet 1 \(byte 188\)/);
});

test('a TS whose second half lost packet alignment is refused as not TS', async (t) => {
  const shifted = Buffer.concat([SAMPLE_BYTES.subarray(0, 188 * 12_000), SAMPLE_BYTES.subarray(188 * 12_000 + 5)]);
  const cut = shifted.subarray(0, shifted.length - (shifted.length % 188));
  const err = refusal(t, await assetFile(t, 'shifted.ts', cut), 'TF_ASSET_NOT_TS');
  t.is(err.details.packet, 12_000);
});

test('192-byte M2TS packets are refused as not TS, with a hint', async (t) => {
  const n = 2000;
  const m2ts = Buffer.alloc(n * 192);
  for (let i = 0; i < n; i++) SAMPLE_BYTES.copy(m2ts, i * 192 + 4, i * 188, (i + 1) * 188);
  const err = refusal(t, await assetFile(t, 'bluray.m2ts.ts', m2ts.subarray(0, Math.floor(m2ts.length / 188) * 188)), 'TF_ASSET_NOT_TS');
  t.regex(err.message, /M2TS/);
});

test('a file cut in the middle of a packet is refused as truncated', async (t) => {
  const cut = SAMPLE_BYTES.subarray(0, 188 * 5000 + 100);
  const err = refusal(t, await assetFile(t, 'cut.ts', cut), 'TF_ASSET_TRUNCATED');
  t.is(err.details.offset, 188 * 5000);
  t.regex(err.message, /cut after 100 bytes/);
});

test('less than one packet is truncated when it starts with a sync byte, not TS otherwise', async (t) => {
  refusal(t, await assetFile(t, 'stub.ts', SAMPLE_BYTES.subarray(0, 100)), 'TF_ASSET_TRUNCATED');
  refusal(t, await assetFile(t, 'text.ts', Buffer.from('hello, world\n')), 'TF_ASSET_NOT_TS');
});

test('a TS with its PCR flags stripped is refused for lack of a PCR', async (t) => {
  const stripped = Buffer.from(SAMPLE_BYTES);
  forEachPacket(stripped, (off) => {
    if (stripped[off + 3] & 0x20 && stripped[off + 4] > 0) stripped[off + 5] &= ~0x10;
  });
  refusal(t, await assetFile(t, 'no-pcr.ts', stripped), 'TF_ASSET_NO_PCR');
});

test('a TS without PAT packets is refused for lack of a PAT', async (t) => {
  const noPat = Buffer.from(SAMPLE_BYTES);
  forEachPacket(noPat, (off) => {
    noPat[off + 1] = 0x1f;
    noPat[off + 2] = 0xff;
  }, 0);
  refusal(t, await assetFile(t, 'no-pat.ts', noPat), 'TF_ASSET_NO_PAT');
});

test('a TS without PMT packets is refused for lack of a PMT', async (t) => {
  const noPmt = Buffer.from(SAMPLE_BYTES);
  forEachPacket(noPmt, (off) => {
    noPmt[off + 1] = 0x1f;
    noPmt[off + 2] = 0xff;
  }, 0x1000);
  refusal(t, await assetFile(t, 'no-pmt.ts', noPmt), 'TF_ASSET_NO_PMT');
});

test('a missing file is refused as not found', async (t) => {
  const file = path.join(await tempDir(t), 'nothing-here.ts');
  refusal(t, file, 'TF_ASSET_NOT_FOUND');
});

test('a FIFO is refused as not a regular file, without waiting in open(2) for a writer', async (t) => {
  t.timeout(10_000);
  const fifo = path.join(await tempDir(t), 'fifo.ts');
  mkfifo(fifo);
  // Releases a blocked open after 3 s, so a regression fails here instead of hanging the run.
  t.teardown(await rescueFifoAfter(fifo, 3000));
  const started = Date.now();
  const err = refusal(t, fifo, 'TF_ASSET_UNREADABLE');
  t.true(Date.now() - started < 1000, `refused at once, not after ${Date.now() - started} ms`);
  t.regex(err.message, /is a FIFO, not a regular file/);
  t.is(err.details.kind, 'a FIFO');
});

test('a symlink as the last component is refused: assets are opened by their real path', async (t) => {
  const dir = await tempDir(t);
  const link = path.join(dir, 'link.ts');
  fs.symlinkSync(SAMPLE, link);
  const err = refusal(t, link, 'TF_ASSET_UNREADABLE');
  t.is(err.details.errno, 'ELOOP');
});

// --- The PCR timeline ----------------------------------------------------------------

test('a PCR that wraps past 2^33 continues the timeline without a jump', async (t) => {
  const bitrate = 1_000_000;
  const start = PCR_WRAP - packets27(50, bitrate); // wraps half way through
  const ts = syntheticTs(100, (k) => (k % 10 === 0 ? { pcr: (start + packets27(k, bitrate)) % PCR_WRAP } : undefined));
  const { meta, times } = buildAssetIndex(await assetFile(t, 'wrap.ts', ts));
  t.is(meta.pcrCount, 10);
  t.true(Math.abs(meta.bitrate - bitrate) < 10, `bitrate ${meta.bitrate}`);
  const perPacket = packets27(1, bitrate) / 300;
  for (let p = 1; p < times.length; p++) t.true(Math.abs(times[p] - p * perPacket) <= 1, `packet ${p}`);
});

test('a PCR discontinuity continues the timeline at the measured bitrate', async (t) => {
  const bitrate = 2_000_000;
  const ts = syntheticTs(200, (k) => {
    if (k % 10 !== 0) return undefined;
    // At k = 100 the clock restarts near zero, flagged as a discontinuity.
    return k < 100 ? { pcr: 5e9 + packets27(k, bitrate) } : { pcr: 1000 + packets27(k - 100, bitrate), disc: k === 100 };
  });
  const { times } = buildAssetIndex(await assetFile(t, 'disc.ts', ts));
  const perPacket = packets27(1, bitrate) / 300;
  for (let p = 1; p < times.length; p++) t.true(Math.abs(times[p] - p * perPacket) <= 1, `packet ${p}`);
});

test('an unflagged jump backwards or far ahead is bridged at the measured bitrate', async (t) => {
  const bitrate = 2_000_000;
  const ts = syntheticTs(300, (k) => {
    if (k % 10 !== 0) return undefined;
    const base = k < 100 ? 8e9 : k < 200 ? 1e9 : 9e11; // back by ~260 s, then ahead by ~8 hours
    return { pcr: base + packets27(k, bitrate) };
  });
  const { meta, times } = buildAssetIndex(await assetFile(t, 'jumps.ts', ts));
  t.true(Math.abs(meta.bitrate - bitrate) < 10, `bitrate ${meta.bitrate}`);
  const perPacket = packets27(1, bitrate) / 300;
  for (let p = 1; p < times.length; p++) t.true(Math.abs(times[p] - p * perPacket) <= 1, `packet ${p}`);
  t.true(Math.abs(meta.durationMs - (times.length * perPacket) / 90) < 0.1);
});

test('packets before the first and after the last PCR are extrapolated at the bitrate', async (t) => {
  const bitrate = 500_000;
  const ts = syntheticTs(100, (k) => (k === 30 || k === 60 ? { pcr: 1e9 + packets27(k, bitrate) } : undefined));
  const { meta, times } = buildAssetIndex(await assetFile(t, 'extrapolate.ts', ts));
  const perPacket = packets27(1, bitrate) / 300;
  for (let p = 0; p < times.length; p++) t.true(Math.abs(times[p] - p * perPacket) <= 1, `packet ${p}`);
  t.deepEqual(meta.randomAccess, []);
});

test('a single PCR is not enough to pace a stream', async (t) => {
  const ts = syntheticTs(100, (k) => (k === 10 ? { pcr: 1e9 } : undefined));
  const err = refusal(t, await assetFile(t, 'one-pcr.ts', ts), 'TF_ASSET_NO_PCR');
  t.is(err.details.pcrCount, 1);
});

// --- The index file ------------------------------------------------------------------

async function writtenIndex(t: ExecutionContext): Promise<{ file: string; index: AssetIndex }> {
  const index = buildAssetIndex(SAMPLE);
  const file = path.join(await tempDir(t), 'sample.tfidx');
  writeIndexFile(file, index);
  return { file, index };
}

test('an index file round-trips its metadata and times table', async (t) => {
  const { file, index } = await writtenIndex(t);
  const back = readIndexFile(file);
  t.deepEqual(back.meta, index.meta);
  t.deepEqual(back.times, index.times);
  t.deepEqual(back.pictures, index.pictures);
  t.deepEqual(readVerifiedIndexHead(file).meta, index.meta);
  t.deepEqual(fs.readdirSync(path.dirname(file)), ['sample.tfidx'], 'no temporary file is left behind');
});

test('the index file layout lets a reader pread packet times at timesOffset + 4p', async (t) => {
  const { file, index } = await writtenIndex(t);
  const raw = fs.readFileSync(file);
  t.is(raw.toString('latin1', 0, 4), INDEX_MAGIC);
  t.is(raw.readUInt32LE(IndexHeader.VERSION_OFFSET), 3);
  const jsonLength = raw.readUInt32LE(IndexHeader.JSON_LENGTH_OFFSET);
  const timesOffset = raw.readUInt32LE(IndexHeader.TIMES_OFFSET_OFFSET);
  t.is(timesOffset % 8, 0);
  t.is(timesOffset, timesTableOffset(jsonLength));
  t.is(raw.readUInt32LE(IndexHeader.PACKET_COUNT_OFFSET), index.meta.packetCount);
  t.is(raw.readUInt32LE(IndexHeader.PICTURE_COUNT_OFFSET), index.pictures.length / 2);
  t.true(raw.subarray(24, 32).every((b) => b === 0));
  t.deepEqual(JSON.parse(raw.toString('utf8', 32, 32 + jsonLength)), index.meta);
  t.true(raw.subarray(32 + jsonLength, timesOffset).every((b) => b === 0));
  t.is(raw.length, timesOffset + 4 * index.meta.packetCount + 4 * index.pictures.length);
  const picturesAt = picturesTableOffset(timesOffset, index.meta.packetCount);
  t.deepEqual(new Uint32Array(raw.buffer.slice(raw.byteOffset + picturesAt, raw.byteOffset + raw.length)), index.pictures);
  const fd = fs.openSync(file, 'r');
  try {
    for (const p of [0, 1, 777, index.meta.packetCount - 1]) {
      const b = Buffer.alloc(4);
      fs.readSync(fd, b, 0, 4, timeEntryOffset(timesOffset, p));
      t.is(b.readUInt32LE(0), index.times[p]);
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('corrupt index files are refused as corrupt', async (t) => {
  const { file } = await writtenIndex(t);
  const good = fs.readFileSync(file);
  const timesOffset = good.readUInt32LE(12);
  const damage: Array<[string, (b: Buffer) => Buffer]> = [
    ['bad magic', (b) => (b.write('XXXX', 0, 'latin1'), b)],
    ['unknown version', (b) => (b.writeUInt32LE(4, 4), b)],
    ['version 2, without a content check', (b) => (b.writeUInt32LE(2, 4), b)],
    ['version 1, without pictures', (b) => (b.writeUInt32LE(1, 4), b)],
    ['pictures table cut short', (b) => b.subarray(0, b.length - 8)],
    ['pictures out of order', (b) => (b.writeUInt32LE(0xffffffff, b.length - 16), b)],
    ['JSON length past the file', (b) => (b.writeUInt32LE(1 << 28, 8), b)],
    ['misaligned times offset', (b) => (b.writeUInt32LE(timesOffset + 4, 12), b)],
    ['packet count too large', (b) => (b.writeUInt32LE(b.readUInt32LE(16) + 1, 16), b)],
    ['reserved bytes set', (b) => ((b[25] = 1), b)],
    ['times table cut short', (b) => b.subarray(0, b.length - 4)],
    ['header only', (b) => b.subarray(0, 20)],
    ['JSON damaged', (b) => ((b[33] = 0x7b), (b[34] = 0x7b), b)],
    ['times decrease', (b) => (b.writeUInt32LE(0xffffffff, timesOffset + 4 * 100), b)],
  ];
  for (const [label, fn] of damage) {
    const bad = path.join(path.dirname(file), 'bad.tfidx');
    fs.writeFileSync(bad, fn(Buffer.from(good)));
    const err = t.throws(() => readIndexFile(bad), { instanceOf: TwinframeError }, label);
    t.is(err?.code, 'TF_INDEX_CORRUPT', label);
    t.true(err?.message.includes(bad), label);
  }
  t.is(t.throws(() => readVerifiedIndexHead(path.join(path.dirname(file), 'missing.tfidx')))?.constructor, TwinframeError);
});

test('a seek lands on the last random-access point at or before it', (t) => {
  const meta = {
    randomAccess: [
      { packet: 10, ticks: 1000 },
      { packet: 50, ticks: 91000 },
      { packet: 90, ticks: 181000 },
    ],
  };
  t.deepEqual(randomAccessAtOrBefore(meta, 0), { packet: 10, ticks: 1000 });
  t.deepEqual(randomAccessAtOrBefore(meta, 1000), { packet: 10, ticks: 1000 });
  t.deepEqual(randomAccessAtOrBefore(meta, 91000 - 1), { packet: 10, ticks: 1000 });
  t.deepEqual(randomAccessAtOrBefore(meta, 91000), { packet: 50, ticks: 91000 });
  t.deepEqual(randomAccessAtOrBefore(meta, 1e9), { packet: 90, ticks: 181000 });
  t.deepEqual(randomAccessAtOrBefore({ randomAccess: [] }, 5000), { packet: 0, ticks: 0 });
  const sample = buildAssetIndex(SAMPLE).meta;
  const fiveAndAHalf = randomAccessAtOrBefore(sample, 5.5 * 90_000);
  t.true(Math.abs(fiveAndAHalf.ticks / 90_000 - 5) < 0.1, `landed at ${fiveAndAHalf.ticks / 90_000} s`);
});

// --- The worker's error envelope ---------------------------------------------------------

/** Runs the index worker's task on `asset`, opened as the pool opens it. */
function runTask(assetPath: string, indexPath: string): ReturnType<typeof indexAsset> {
  const fd = fs.openSync(assetPath, ASSET_OPEN_FLAGS);
  try {
    return indexAsset({ assetPath, indexPath, fd });
  } finally {
    fs.closeSync(fd);
  }
}

test('the index worker returns refusals as data that rebuilds the same TwinframeError', async (t) => {
  const dir = await tempDir(t);
  const asset = path.join(dir, 'empty.ts');
  fs.writeFileSync(asset, '');
  const result = runTask(asset, path.join(dir, 'x.tfidx'));
  if (result.ok) return t.fail('an empty asset was indexed');
  const cloned = structuredClone(result.error);
  const err = deserializeError(cloned);
  t.true(err instanceof TwinframeError);
  t.is((err as TwinframeError).code, 'TF_ASSET_EMPTY');
  t.true(err.message.includes(asset));
  t.deepEqual((err as TwinframeError).details, { path: asset });
  const plain = deserializeError(serializeError(Object.assign(new Error('disk full'), { code: 'ENOSPC' })));
  t.false(plain instanceof TwinframeError);
  t.is((plain as NodeJS.ErrnoException).code, 'ENOSPC');
});

test('the index worker writes the index file and returns its metadata', async (t) => {
  const dir = await tempDir(t);
  const indexPath = path.join(dir, 'sample.tfidx');
  const result = runTask(SAMPLE, indexPath);
  if (!result.ok) return t.fail(result.error.message);
  t.deepEqual(readVerifiedIndexHead(indexPath).meta, result.meta);
});

test('the index worker indexes the file open on its descriptor, whatever the name means by then', async (t) => {
  const dir = await tempDir(t);
  const asset = path.join(dir, 'asset.ts');
  fs.copyFileSync(SAMPLE, asset);
  const fd = fs.openSync(asset, ASSET_OPEN_FLAGS);
  t.teardown(() => fs.closeSync(fd));
  // The name now means junk; the descriptor still holds the file that was opened and checked.
  const junk = path.join(dir, 'junk');
  fs.writeFileSync(junk, Buffer.alloc(188 * 50, 0xab));
  fs.renameSync(junk, asset);
  const result = indexAsset({ assetPath: asset, indexPath: path.join(dir, 'asset.tfidx'), fd });
  if (!result.ok) return t.fail(result.error.message);
  t.is(result.meta.packetCount, SAMPLE_BYTES.length / TS_PACKET_BYTES);
  t.is(result.meta.sourceSize, SAMPLE_BYTES.length);
});

test('the sample index records every picture with its npt, and a range end that covers the last frame', (t) => {
  const { meta, times, pictures } = buildAssetIndex(SAMPLE);
  // 12 s at 25 frames/s, one PES per picture; a key frame every second.
  t.is(pictures.length / 2, 300);
  const npts = [];
  for (let k = 0; k < pictures.length; k += 2) npts.push(pictures[k + 1]);
  npts.sort((a, b) => a - b);
  t.deepEqual(npts.map((n, i) => Math.abs(n - i * 3600) <= 2), npts.map(() => true), 'pictures every 40 ms of media time from 0');
  for (const rap of meta.randomAccess) {
    const npt = pictureNptAt(pictures, rap.packet);
    t.not(npt, undefined, `a picture starts at key frame packet ${rap.packet}`);
    t.true(Math.abs(npt! - rap.ticks) < 180, `a key frame's npt ${npt} is its send time ${rap.ticks} to within 2 ms`);
  }
  // ffmpeg's muxer presents ~0.78 s after sending: the last frame (sent by ~12.0 s) is shown until ~12.78 s.
  const lastSent = times[times.length - 1] / 90;
  t.true(meta.presentationEndMs > lastSent + 700, `range end ${meta.presentationEndMs} ms covers the last frame (last packet sent at ${lastSent} ms)`);
  t.true(meta.presentationEndMs < lastSent + 900);
});

test('a range end stops before the picture that follows the last one presented by then', (t) => {
  // Stream order I0 P3 B1 B2 P6 B4 B5 (npt in frames of 3600 ticks), one picture every 10 packets.
  const order = [0, 3, 1, 2, 6, 4, 5];
  const pictures = Uint32Array.from(order.flatMap((f, i) => [10 * i + 5, f * 3600]));
  t.is(rangeEndPacket(pictures, 100, 2 * 3600), 45, 'B2 is the last shown by frame 2: stop before P6');
  t.is(rangeEndPacket(pictures, 100, 2 * 3600 + 89), 45);
  t.is(rangeEndPacket(pictures, 100, 4 * 3600 - 60), 65, 'an end within 1 ms before B4 includes it, and P6 sent before it');
  t.is(rangeEndPacket(pictures, 100, 6 * 3600), 100, 'the last picture: to the end of the asset');
  t.is(rangeEndPacket(pictures, 100, 0), 15, 'the first picture only');
  t.is(pictureNptAt(pictures, 45), 6 * 3600);
  t.is(pictureNptAt(pictures, 44), undefined);
});
