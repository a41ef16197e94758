// Tests for a data path's asset reader (src/datapath/asset-reader.ts): it opens
// the file the catalog approved or refuses with AssetError (the asset's fault,
// both paths see it) without ever blocking, and tells a truncated asset
// (AssetError) from a failed read of its own handle (DiskError).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { IndexPool } from '../src/catalog/index-pool.js';
import { readIndexFile } from '../src/catalog/index-file.js';
import { AssetError, AssetReader, DiskError, type ReaderAsset } from '../src/datapath/asset-reader.js';
import { TS_PACKET_BYTES } from '../src/mpegts/packet.js';
import { TS_PAYLOAD_BYTES, TS_PACKETS_PER_DATAGRAM } from '../src/rtp/packetizer.js';
import { mkfifo, rescueFifoAfter } from './helpers/fifo.js';
import { leakCheck } from './helpers/leak-check.js';

const SAMPLE = fileURLToPath(new URL('../../assets/sample.ts', import.meta.url));
const SAMPLE_BYTES = fs.readFileSync(SAMPLE);
/** Packets the reader fetches per read (64 datagrams). */
const CHUNK = TS_PACKETS_PER_DATAGRAM * 64;

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

function open(t: ExecutionContext, asset: ReaderAsset): AssetReader {
  const reader = new AssetReader(asset);
  t.teardown(() => reader.close());
  return reader;
}

/** Refused at open, at once (no open may block), with AssetError whose message names `file` and matches `found`. */
function refusedAtOpen(t: ExecutionContext, asset: ReaderAsset, file: string, found: RegExp): void {
  const started = Date.now();
  const err = t.throws(() => new AssetReader(asset), { instanceOf: AssetError });
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
function readDatagram(t: ExecutionContext, reader: AssetReader, f: Fixture, packet: number): void {
  const out = Buffer.alloc(TS_PAYLOAD_BYTES);
  const ticks = reader.copyPackets(packet, TS_PACKETS_PER_DATAGRAM, out, 0);
  t.true(out.equals(SAMPLE_BYTES.subarray(packet * TS_PACKET_BYTES, (packet + TS_PACKETS_PER_DATAGRAM) * TS_PACKET_BYTES)), `packet ${packet}`);
  t.is(ticks, f.times[packet]);
}

test('the approved file opens and reads back the asset\'s packets and send times', async (t) => {
  const f = await fixture(t);
  const reader = open(t, f.asset);
  for (const packet of [0, 7, CHUNK, 10 * CHUNK + 21]) readDatagram(t, reader, f, packet);
  t.is(reader.timeOf(f.asset.packetCount - 1), f.times[f.asset.packetCount - 1]);
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
  readDatagram(t, reader, f, 0);
  // Cut inside the third chunk: the second chunk still reads, the third cannot.
  const cut = 2 * CHUNK + 100;
  await fs.promises.truncate(f.asset.assetPath, cut * TS_PACKET_BYTES + 50);
  readDatagram(t, reader, f, CHUNK);
  const err = t.throws(() => reader.copyPackets(2 * CHUNK, TS_PACKETS_PER_DATAGRAM, Buffer.alloc(TS_PAYLOAD_BYTES), 0), { instanceOf: AssetError });
  t.true(err?.message.includes(f.asset.assetPath), `names the asset: ${err?.message}`);
  t.regex(err?.message ?? '', new RegExp(`truncated: ${cut * TS_PACKET_BYTES + 50} bytes now, its index covers ${SAMPLE_BYTES.length}`));
  t.regex(err?.message ?? '', new RegExp(`a read ended at byte ${cut * TS_PACKET_BYTES + 50}`));
});

test('a broken handle (the disk fault) still gives DiskError, not AssetError', async (t) => {
  const f = await fixture(t);
  const reader = open(t, f.asset);
  readDatagram(t, reader, f, 0);
  reader.breakDisk();
  const err = t.throws(() => reader.copyPackets(CHUNK, TS_PACKETS_PER_DATAGRAM, Buffer.alloc(TS_PAYLOAD_BYTES), 0), { instanceOf: DiskError });
  t.true(err?.message.includes(`read of ${f.asset.assetPath} failed`), `names the asset: ${err?.message}`);
  t.throws(() => reader.timeOf(5 * CHUNK), { instanceOf: DiskError });
});

leakCheck(test);
