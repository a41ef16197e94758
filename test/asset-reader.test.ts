// Tests for a data path's asset reader (src/datapath/asset-reader.ts) and its
// read-ahead on a real reader thread: it opens the file the catalog approved or
// refuses with AssetError (the asset's fault, both paths see it) without ever
// blocking, answers NOT_READ instead of waiting for a read, and tells a
// truncated asset (AssetError) from a failed read of its own handle (DiskError).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { IndexPool } from '../src/catalog/index-pool.js';
import { readIndexFile } from '../src/catalog/index-file.js';
import { AssetError, AssetReader, DiskError, NOT_READ, type ReaderAsset } from '../src/datapath/asset-reader.js';
import { CHUNK_PACKETS, ChunkRing, RING_CHUNKS } from '../src/datapath/chunk-ring.js';
import { ReaderThread } from '../src/datapath/reader-thread.js';
import { ControlBlock } from '../src/shared/control-block.js';
import { TS_PACKET_BYTES, packetPid } from '../src/mpegts/packet.js';
import { TS_PAYLOAD_BYTES, TS_PACKETS_PER_DATAGRAM } from '../src/rtp/packetizer.js';
import { mkfifo, rescueFifoAfter } from './helpers/fifo.js';
import { leakCheck } from './helpers/leak-check.js';

const SAMPLE = fileURLToPath(new URL('../../assets/sample.ts', import.meta.url));
const SAMPLE_BYTES = fs.readFileSync(SAMPLE);
/** Packets the reader fetches per read. */
const CHUNK = CHUNK_PACKETS;

const pool = new IndexPool({ idleTimeout: 1000 });
test.after.always(() => pool.close());

interface Fixture {
  dir: string;
  asset: ReaderAsset;
  times: Uint32Array;
}

/** A copy of the sample, approved and indexed as the catalog does it. */
async function fixture(t: ExecutionContext): Promise<Fixture> {
  const dir = await fs.promises.realpath(await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twinframe-reader-')));
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'asset.ts');
  await fs.promises.copyFile(SAMPLE, file);
  const indexed = await pool.index(file, path.join(dir, 'cache'));
  const asset: ReaderAsset = {
    assetPath: indexed.assetPath,
    indexPath: indexed.indexPath,
    packetCount: indexed.meta.packetCount,
    timesOffset: indexed.timesOffset,
    assetIdentity: indexed.identity,
  };
  return { dir, asset, times: readIndexFile(indexed.indexPath).times };
}

/** A path's reader thread, as a data path starts it, stopped after the test. */
function startThread(t: ExecutionContext, cb = ControlBlock.create(4)): ReaderThread {
  const thread = new ReaderThread(cb, 'twinframe-test-reader');
  t.teardown(() => thread.stop());
  return thread;
}

function open(t: ExecutionContext, asset: ReaderAsset, thread = startThread(t)): AssetReader {
  const reader = new AssetReader(asset, thread);
  t.teardown(() => reader.close());
  return reader;
}

/** The path never waits for a read; a test may: poll until the reader thread has done it (or failed). */
function whenRead(read: () => number): Promise<number> {
  return whenDefined(() => {
    const value = read();
    return value === NOT_READ ? undefined : value;
  });
}

/** Poll until `value()` is defined (the path never waits; a test may). */
async function whenDefined<T>(value: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = value();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('not read within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Refused at open, at once (no open may block), with AssetError whose message names `file` and matches `found`. */
function refusedAtOpen(t: ExecutionContext, asset: ReaderAsset, file: string, found: RegExp): void {
  const thread = startThread(t);
  const started = Date.now();
  const err = t.throws(() => new AssetReader(asset, thread), { instanceOf: AssetError });
  t.true(Date.now() - started < 1000, `refused at once, not after ${Date.now() - started} ms`);
  t.true(err?.message.includes(file), `names ${file}: ${err?.message}`);
  t.regex(err?.message ?? '', found);
}

/** Puts a FIFO in place of `file`, with a thread that releases any open blocked on it after 3 s (a regression fails, not hangs). */
async function swapForFifo(t: ExecutionContext, file: string): Promise<void> {
  t.timeout(10_000);
  await fs.promises.rm(file);
  mkfifo(file);
  t.teardown(await rescueFifoAfter(file, 3000));
}

/** Reads the datagram starting at `packet` and checks it against the sample's bytes and send time. */
async function readDatagram(t: ExecutionContext, reader: AssetReader, f: Fixture, packet: number): Promise<void> {
  const out = Buffer.alloc(TS_PAYLOAD_BYTES);
  const ticks = await whenRead(() => reader.copyPackets(packet, TS_PACKETS_PER_DATAGRAM, out, 0));
  t.true(out.equals(SAMPLE_BYTES.subarray(packet * TS_PACKET_BYTES, (packet + TS_PACKETS_PER_DATAGRAM) * TS_PACKET_BYTES)), `packet ${packet}`);
  t.is(ticks, f.times[packet]);
}

test('the approved file opens and reads back the asset\'s packets and send times', async (t) => {
  const f = await fixture(t);
  const reader = open(t, f.asset);
  for (const packet of [0, 7, CHUNK, 10 * CHUNK + 21, 3 * CHUNK + 7]) await readDatagram(t, reader, f, packet);
  t.is(await whenRead(() => reader.timeOf(f.asset.packetCount - 1)), f.times[f.asset.packetCount - 1]);
  // Straight through, as a session plays: every datagram of the first windows, byte for byte.
  for (let packet = 0; packet < 3 * RING_CHUNKS * CHUNK; packet += TS_PACKETS_PER_DATAGRAM) await readDatagram(t, reader, f, packet);
});

test('a read not done yet answers NOT_READ at once; the reader wakes the paths when it is done', async (t) => {
  const f = await fixture(t);
  const cb = ControlBlock.create(4);
  const thread = startThread(t, cb);
  const reader = open(t, f.asset, thread);
  await readDatagram(t, reader, f, 0);
  thread.slowDisk(300);
  // Far outside the window: the window moves there, and its reads wait 300 ms each.
  const far = 20 * CHUNK;
  const bell = cb.pathDoorbell();
  const started = Date.now();
  const out = Buffer.alloc(TS_PAYLOAD_BYTES);
  t.is(reader.copyPackets(far, TS_PACKETS_PER_DATAGRAM, out, 0), NOT_READ);
  t.is(reader.timeOf(far + 1), NOT_READ);
  t.true(Date.now() - started < 100, `answered at once, not after ${Date.now() - started} ms`);
  await readDatagram(t, reader, f, far);
  t.true(Date.now() - started >= 250, `the delayed read took ${Date.now() - started} ms`);
  t.not(cb.pathDoorbell(), bell, 'the completed read rang the path doorbell');
});

test('a session\'s read-ahead holds at most RING_CHUNKS chunks in one ring of stated size', (t) => {
  const datagrams = RING_CHUNKS * CHUNK / TS_PACKETS_PER_DATAGRAM;
  t.true(datagrams >= 32 && datagrams <= 256, `${datagrams} datagrams ahead`);
  // Payload and send times, plus a header and an error message of at most 2 KB.
  const data = RING_CHUNKS * CHUNK * (TS_PACKET_BYTES + 4);
  t.true(ChunkRing.BYTES >= data && ChunkRing.BYTES <= data + 2048, `${ChunkRing.BYTES} bytes per session and path`);
});

test('an asset swapped for a FIFO after approval is refused at open with AssetError, without blocking', async (t) => {
  const f = await fixture(t);
  await swapForFifo(t, f.asset.assetPath);
  refusedAtOpen(t, f.asset, f.asset.assetPath, /is a FIFO now, not the regular file the catalog approved/);
});

test('another file under the approved name is refused at open with AssetError', async (t) => {
  const f = await fixture(t);
  const other = path.join(f.dir, 'other.ts');
  await fs.promises.copyFile(SAMPLE, other);
  await fs.promises.rename(other, f.asset.assetPath);
  // Same bytes, same name, other inode: not the file the catalog approved.
  refusedAtOpen(t, f.asset, f.asset.assetPath, /is another file now \(device \d+ inode \d+, \d+ bytes\); the catalog approved device \d+ inode \d+/);
});

test('a symlink put in place of the approved name is refused, even one to the approved file', async (t) => {
  const f = await fixture(t);
  const moved = path.join(f.dir, 'moved.ts');
  await fs.promises.rename(f.asset.assetPath, moved);
  await fs.promises.symlink(moved, f.asset.assetPath);
  refusedAtOpen(t, f.asset, f.asset.assetPath, /ELOOP/);
});

test('a removed asset is refused at open with AssetError', async (t) => {
  const f = await fixture(t);
  await fs.promises.rm(f.asset.assetPath);
  refusedAtOpen(t, f.asset, f.asset.assetPath, /ENOENT/);
});

test('an asset shorter than its index covers is refused at open with AssetError', async (t) => {
  const f = await fixture(t);
  await fs.promises.truncate(f.asset.assetPath, 100 * TS_PACKET_BYTES);
  refusedAtOpen(t, f.asset, f.asset.assetPath, new RegExp(`truncated: ${100 * TS_PACKET_BYTES} bytes now, its index covers ${SAMPLE_BYTES.length}`));
});

test('an index swapped for a FIFO is refused at open with AssetError, without blocking', async (t) => {
  const f = await fixture(t);
  await swapForFifo(t, f.asset.indexPath);
  refusedAtOpen(t, f.asset, f.asset.indexPath, /is a FIFO, not a regular file/);
});

test('an asset truncated while open gives AssetError at the read that crosses its new end', async (t) => {
  const f = await fixture(t);
  const reader = open(t, f.asset);
  await readDatagram(t, reader, f, 0);
  // Cut beyond what was read ahead, inside the second chunk after it: the first still reads, the second cannot.
  const cut = (RING_CHUNKS + 1) * CHUNK + 100;
  await fs.promises.truncate(f.asset.assetPath, cut * TS_PACKET_BYTES + 50);
  await readDatagram(t, reader, f, RING_CHUNKS * CHUNK);
  const err = await t.throwsAsync(whenRead(() => reader.copyPackets((RING_CHUNKS + 1) * CHUNK, TS_PACKETS_PER_DATAGRAM, Buffer.alloc(TS_PAYLOAD_BYTES), 0)), { instanceOf: AssetError });
  t.true(err?.message.includes(f.asset.assetPath), `names the asset: ${err?.message}`);
  t.regex(err?.message ?? '', new RegExp(`truncated: ${cut * TS_PACKET_BYTES + 50} bytes now, its index covers ${SAMPLE_BYTES.length}`));
  t.regex(err?.message ?? '', new RegExp(`a read ended at byte ${cut * TS_PACKET_BYTES + 50}`));
});

test('a broken handle (the disk fault) still gives DiskError, not AssetError', async (t) => {
  const f = await fixture(t);
  const reader = open(t, f.asset);
  await readDatagram(t, reader, f, 0);
  reader.breakDisk();
  // Even a chunk read before the fault: the fault forgets what was read ahead.
  const err = await t.throwsAsync(whenRead(() => reader.copyPackets(CHUNK, TS_PACKETS_PER_DATAGRAM, Buffer.alloc(TS_PAYLOAD_BYTES), 0)), { instanceOf: DiskError });
  t.true(err?.message.includes(`read of ${f.asset.assetPath} failed`), `names the asset: ${err?.message}`);
  await t.throwsAsync(whenRead(() => reader.timeOf(5 * CHUNK)), { instanceOf: DiskError });
});

test('trick play: the reader thread hands over the key-frame table; a key frame\'s k-th video packet is the file\'s', async (t) => {
  const f = await fixture(t);
  const reader = open(t, f.asset);
  const { meta } = readIndexFile(f.asset.indexPath);
  const table = await whenDefined(() => reader.trickTable());
  t.deepEqual(table.keys, meta.randomAccess, 'the index\'s key frames, in order');
  const video = meta.streams.find((s) => s.kind === 'video')!;
  t.deepEqual(table.program, { programNumber: meta.programNumber, pmtPid: meta.pmtPid, videoPid: video.pid, videoStreamType: video.streamType });
  // In reverse, as a rewind reads them: every video packet with a payload of the last two key frames.
  const out = Buffer.alloc(TS_PACKET_BYTES);
  for (const key of table.keys.slice(-2).reverse()) {
    const expected: number[] = [];
    for (let p = key.packet; expected.length < key.videoPackets; p++) {
      if (packetPid(SAMPLE_BYTES, p * TS_PACKET_BYTES) === video.pid && (SAMPLE_BYTES[p * TS_PACKET_BYTES + 3] & 0x10) !== 0) expected.push(p);
    }
    for (let k = 0; k < key.videoPackets; k++) {
      await whenDefined(() => (reader.copyVideoPacket(key, k, out, 0) ? true : undefined));
      t.true(out.equals(SAMPLE_BYTES.subarray(expected[k] * TS_PACKET_BYTES, (expected[k] + 1) * TS_PACKET_BYTES)), `key frame at ${key.packet}, video packet ${k}`);
    }
  }
});

leakCheck(test);
