// A looping broadcast's read-ahead wraps at its loop point (src/datapath/read-ahead.ts):
// the chunk holding packet 0 of the next pass is requested while the cursor is
// still in the last chunk of this pass, so the datagram after the loop point is
// read already, not waited for on both paths. On a real reader thread over a
// copy of the sample indexed as the catalog does it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { IndexPool } from '../src/catalog/index-pool.js';
import { ChunkState, CHUNK_PACKETS, RING_CHUNKS } from '../src/datapath/chunk-ring.js';
import { NOT_READ, ReadAhead } from '../src/datapath/read-ahead.js';
import { ReaderThread } from '../src/datapath/reader-thread.js';
import { TS_PACKET_BYTES } from '../src/mpegts/packet.js';
import { TS_PACKETS_PER_DATAGRAM } from '../src/rtp/packetizer.js';
import { ControlBlock } from '../src/shared/control-block.js';
import { SAMPLE_ASSET } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

const SAMPLE_BYTES = fs.readFileSync(SAMPLE_ASSET);
const pool = new IndexPool({ idleTimeout: 1000 });
test.after.always(() => pool.close());

/** A read-ahead over a copy of the sample, as a data path opens one. */
async function readAhead(t: ExecutionContext, loop: boolean): Promise<{ ahead: ReadAhead; packetCount: number }> {
  const dir = await fs.promises.realpath(await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twinframe-bloop-')));
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'asset.ts');
  await fs.promises.copyFile(SAMPLE_ASSET, file);
  const indexed = await pool.index(file, path.join(dir, 'cache'));
  const asset = { assetPath: indexed.assetPath, indexPath: indexed.indexPath, packetCount: indexed.meta.packetCount, timesOffset: indexed.timesOffset, assetIdentity: indexed.identity };
  const thread = new ReaderThread(ControlBlock.create(4), 'twinframe-test-reader');
  t.teardown(() => thread.stop());
  const assetFd = fs.openSync(file, 'r');
  const indexFd = fs.openSync(indexed.indexPath, 'r');
  const ahead = new ReadAhead(thread, asset, assetFd, indexFd, loop);
  t.teardown(() => {
    ahead.close();
    fs.closeSync(assetFd);
    fs.closeSync(indexFd);
  });
  return { ahead, packetCount: asset.packetCount };
}

/** Poll (a path never waits; a test may) until `read()` is not NOT_READ. */
async function whenRead(read: () => number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = read();
    if (v !== NOT_READ) return v;
    if (Date.now() > deadline) throw new Error('not read within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** The ring's slot whose chunk starts at packet 0 and is requested, being read or read; -1 if none. */
function slotOfPacket0(ahead: ReadAhead): number {
  for (let slot = 0; slot < RING_CHUNKS; slot++) {
    const state = ahead.ring.state(slot);
    if (ahead.ring.first(slot) === 0 && (state === ChunkState.REQUESTED || state === ChunkState.READING || state === ChunkState.DONE)) return slot;
  }
  return -1;
}

/** Read the datagrams of [from, to) as a session plays them, checking each against the sample. */
async function play(t: ExecutionContext, ahead: ReadAhead, from: number, to: number): Promise<void> {
  for (let first = from; first < to; first += TS_PACKETS_PER_DATAGRAM) {
    const count = Math.min(TS_PACKETS_PER_DATAGRAM, to - first);
    const slot = await whenRead(() => ahead.locate(first, count));
    const at = (slot * CHUNK_PACKETS + first - ahead.ring.first(slot)) * TS_PACKET_BYTES;
    t.true(ahead.ring.payload.subarray(at, at + count * TS_PACKET_BYTES).equals(SAMPLE_BYTES.subarray(first * TS_PACKET_BYTES, (first + count) * TS_PACKET_BYTES)), `packet ${first}`);
  }
}

test('a looping session\'s window wraps: packet 0 of the next pass is read before the loop point, and the next pass reads on', async (t) => {
  const { ahead, packetCount } = await readAhead(t, true);
  // The session starts two windows before the end (datagrams aligned from there, as its segment's are).
  const start = packetCount - 2 * RING_CHUNKS * CHUNK_PACKETS - 3;
  await play(t, ahead, start, packetCount);
  const slot = slotOfPacket0(ahead);
  t.true(slot >= 0, 'the chunk of packet 0 is in the window while the cursor is still in the last pass');
  await whenRead(() => (ahead.ring.state(slot) === ChunkState.DONE ? slot : NOT_READ)); // read by the reader thread alone
  t.is(ahead.locate(0, TS_PACKETS_PER_DATAGRAM), slot, 'the first datagram after the loop point is there at once');
  // The next pass goes on from there, chunk after chunk, and wraps again at its end.
  await play(t, ahead, 0, 3 * RING_CHUNKS * CHUNK_PACKETS);
});

test('a session that does not loop reads nothing past the asset\'s end', async (t) => {
  const { ahead, packetCount } = await readAhead(t, false);
  await play(t, ahead, packetCount - RING_CHUNKS * CHUNK_PACKETS - 3, packetCount);
  t.is(slotOfPacket0(ahead), -1);
});
