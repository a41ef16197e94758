// Entry of a data path's reader thread (started by ./reader-thread.ts, imported
// by nothing). It serves the chunk requests of every session of its path, the
// oldest request of each session in turn, with blocking positioned reads: the
// only thread of the path that ever waits for the disk. A completed chunk wakes
// the path if it waits for one: once per pass over the sessions, or per
// WAKE_EVERY_MS while a pass lasts longer (a waiting path also looks again every
// heartbeat period by itself). Waking per chunk would cost a turn of both
// SCHED_FIFO paths, which preempt this thread, for every chunk read. A read that fails is recorded in the session's
// ring (DiskError or AssetError, as the synchronous reader judged it) and that
// ring is served no more: the path fails or ends the session. A read that ran
// while the path lost its handles is a disk failure, whatever it returned.

import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ControlBlock } from '../shared/control-block.js';
import type { PathToReader, ReadAsset, ReaderToPath, ReaderWorkerData } from '../shared/messages.js';
import { ChunkRing, CHUNK_PACKETS, FailureKind } from './chunk-ring.js';
import { READY_WORD } from './reader-thread.js';
import { nameThread } from '../shared/thread-priority.js';
import { AssetError, readChunk, readKeyTable } from './asset-reader.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';

/** With no request the thread still looks at its messages this often (a bound, not a beat). */
const IDLE_WAKE_MS = 1000;
/** A path waiting for a chunk done this long ago is woken even in the middle of a pass. */
const WAKE_EVERY_MS = 1;

interface Served {
  readonly ring: ChunkRing;
  readonly asset: ReadAsset;
  /** Views of the ring's slots for readChunk, made once. */
  readonly payloads: Buffer[];
  readonly times: Buffer[];
  failed: boolean;
}

const data = workerData as ReaderWorkerData;
nameThread(data.threadName);
const cb = ControlBlock.attach(data.controlBlock, data.maxSessions);
const doorbell = new Int32Array(data.doorbell);
const served = new Map<number, Served>();
/** The 'slow-disk' fault: each read first waits this long (on a word nobody notifies). */
let delayMs = 0;
const delayWord = new Int32Array(new SharedArrayBuffer(4));
/** A chunk a path waits for is done since `wakeOwedSinceMs`; NaN: no wake owed. */
let wakeOwedSinceMs = Number.NaN;

function wakeIfOwed(): void {
  if (Number.isNaN(wakeOwedSinceMs)) return;
  wakeOwedSinceMs = Number.NaN;
  cb.wakePaths();
}

function apply(message: PathToReader): void {
  switch (message.type) {
    case 'open': {
      const ring = new ChunkRing(message.ring);
      const payloads: Buffer[] = [];
      const times: Buffer[] = [];
      for (let slot = 0; slot * CHUNK_PACKETS < ring.times.length; slot++) {
        payloads.push(ring.payload.subarray(slot * CHUNK_PACKETS * TS_PACKET_BYTES, (slot + 1) * CHUNK_PACKETS * TS_PACKET_BYTES));
        times.push(Buffer.from(ring.times.buffer, ring.times.byteOffset + slot * CHUNK_PACKETS * 4, CHUNK_PACKETS * 4));
      }
      served.set(message.id, { ring, asset: message.asset, payloads, times, failed: false });
      break;
    }
    case 'close': served.delete(message.id); break;
    case 'keys': answerKeys(message.id); break;
    case 'slow-disk': delayMs = message.delayMs; break;
  }
}

/** Trick play: read a session's key-frame table and hand it to the path (then wake it). */
function answerKeys(id: number): void {
  const s = served.get(id);
  if (!s) return;
  let answer: ReaderToPath;
  const { indexFd } = s.ring.files();
  try {
    answer = { type: 'keys', id, table: readKeyTable(s.asset, indexFd) };
  } catch (err) {
    answer = { type: 'keys-failed', id, failure: err instanceof AssetError ? FailureKind.ASSET : FailureKind.DISK, message: (err as Error).message };
  }
  if (s.ring.files().indexFd !== indexFd) answer = { type: 'keys-failed', id, failure: FailureKind.DISK, message: lostDuringRead(s.asset) };
  data.port.postMessage(answer);
  cb.wakePaths();
}

/**
 * The path lost its handles (the disk fault, or its session closed) while a
 * read through them ran. It closes them at once, so their numbers may name
 * another file by then: whatever the read returned or threw is not the asset's.
 */
function lostDuringRead(asset: ReadAsset): string {
  return `read of ${asset.assetPath} failed: EBADF, this path lost its handles during the read`;
}

function drainMessages(): void {
  for (let m = receiveMessageOnPort(data.port); m; m = receiveMessageOnPort(data.port)) apply(m.message as PathToReader);
}

/** Read the oldest request of one session; false when it has none. */
function serveOne(s: Served): boolean {
  const slot = s.ring.oldestRequest();
  if (slot < 0 || !s.ring.take(slot)) return false;
  if (delayMs > 0) Atomics.wait(delayWord, 0, 0, delayMs);
  const { assetFd, indexFd } = s.ring.files();
  let failure: { kind: number; message: string } | undefined;
  try {
    readChunk(s.asset, assetFd, indexFd, s.ring.first(slot), s.ring.count(slot), s.payloads[slot], s.times[slot]);
  } catch (err) {
    failure = { kind: err instanceof AssetError ? FailureKind.ASSET : FailureKind.DISK, message: (err as Error).message };
  }
  if (s.ring.files().assetFd !== assetFd) failure = { kind: FailureKind.DISK, message: lostDuringRead(s.asset) };
  if (failure) {
    s.failed = true;
    s.ring.fail(slot, failure.kind, failure.message);
  } else {
    s.ring.complete(slot);
  }
  if (s.ring.takeWaiting() && Number.isNaN(wakeOwedSinceMs)) wakeOwedSinceMs = performance.now();
  if (performance.now() - wakeOwedSinceMs >= WAKE_EVERY_MS) wakeIfOwed();
  return true;
}

// Up: the path starts its loop once this is set (ReaderThread.ready).
Atomics.store(doorbell, READY_WORD, 1);
Atomics.notify(doorbell, READY_WORD);

for (;;) {
  const rung = Atomics.load(doorbell, 0);
  drainMessages();
  let busy = false;
  for (const s of served.values()) {
    if (!s.failed && serveOne(s)) busy = true;
  }
  wakeIfOwed();
  if (!busy) Atomics.wait(doorbell, 0, rung, IDLE_WAKE_MS);
}
