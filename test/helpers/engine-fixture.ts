// Shared set-up for engine tests: the bundled sample asset indexed into a
// temporary cache, an engine with fault injection, and a checker that holds
// every received datagram against the asset itself.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IndexPool } from '../../src/catalog/index-pool.js';
import { readIndexFile } from '../../src/catalog/index-file.js';
import { toEngineAsset } from '../../src/engine/asset.js';
import { Engine, type EngineAsset, type EngineOptions, type PlayResult, type SessionInfo } from '../../src/engine/engine.js';
import type { RtpPacket } from './rtsp-client.js';
import { sequenceStats, type SequenceStats } from './rtsp-client.js';

export const SAMPLE_ASSET = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets/sample.ts');

export interface SampleAsset {
  readonly asset: EngineAsset;
  readonly bytes: Buffer;
  readonly times: Uint32Array;
  readonly randomAccess: ReadonlyArray<{ packet: number; ticks: number }>;
  readonly durationMs: number;
  /** The end of the npt range DESCRIBE and PLAY announce (covers the last frame). */
  readonly presentationEndMs: number;
  /** The index's pictures table: (packet, npt ticks) per video picture. */
  readonly pictures: Uint32Array;
  cleanup(): Promise<void>;
}

export async function loadSample(file = SAMPLE_ASSET): Promise<SampleAsset> {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'twinframe-test-'));
  const pool = new IndexPool();
  try {
    const indexed = await pool.index(file, cacheDir);
    const index = readIndexFile(indexed.indexPath);
    return {
      asset: toEngineAsset(indexed),
      bytes: await readFile(file),
      times: index.times,
      randomAccess: index.meta.randomAccess,
      durationMs: index.meta.durationMs,
      presentationEndMs: index.meta.presentationEndMs,
      pictures: index.pictures,
      cleanup: () => rm(cacheDir, { recursive: true, force: true }),
    };
  } finally {
    await pool.close();
  }
}

export function startEngine(options: EngineOptions = {}): Promise<Engine> {
  return Engine.start({ faultInjection: true, ...options });
}

export interface StreamCheck extends SequenceStats {
  /** Datagrams whose payload or RTP header differ from what the asset dictates for their position. */
  readonly mismatched: number;
  readonly firstMismatch: string | undefined;
}

/**
 * Holds an RTP stream against the asset: every datagram's sequence number
 * places it (cursor = seq - initial seq), its payload must be the asset's 7
 * packets at that place, its timestamp the segment's base plus the packets'
 * send time, and nothing may be missing from the first datagram of `play` on.
 */
export function checkRtpStream(packets: readonly RtpPacket[], session: SessionInfo, play: PlayResult, sample: SampleAsset): StreamCheck {
  const stats = sequenceStats(packets.map((p) => p.sequence), { firstSeq: play.seq });
  let mismatched = 0;
  let firstMismatch: string | undefined;
  const startTicks = sample.times[play.startPacket];
  const firstCursor = (play.seq - session.initialSeq) & 0xffff;
  for (const p of packets) {
    const cursor = (p.sequence - session.initialSeq) & 0xffff;
    const packet = play.startPacket + 7 * (cursor - firstCursor);
    const expected = sample.bytes.subarray(packet * 188, Math.min(sample.bytes.length, (packet + 7) * 188));
    const expectedTs = (play.rtptime + sample.times[packet] - startTicks) >>> 0;
    const problem = p.payloadType !== 33 ? `payload type ${p.payloadType}`
      : p.ssrc !== session.ssrc ? `ssrc ${p.ssrc}`
      : !p.payload.equals(expected) ? `payload of seq ${p.sequence} (packet ${packet}) differs from the asset`
      : p.timestamp !== expectedTs ? `timestamp of seq ${p.sequence}: ${p.timestamp} != ${expectedTs}`
      : undefined;
    if (problem) {
      mismatched++;
      firstMismatch ??= problem;
    }
  }
  return { ...stats, mismatched, firstMismatch };
}

/** Milliseconds on the clock every twinframe thread and the receivers share (process.hrtime). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait until `done()` holds, polling; throws naming `what` after the timeout. */
export async function until(done: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Wait until the engine's pair is protected again after a failure (respawned path synchronized). */
export async function waitForRecovery(engine: Engine, failoversBefore: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (engine.status().switches > failoversBefore && engine.isProtected()) return;
    await sleep(5);
  }
  throw new Error(`engine did not recover: ${JSON.stringify(engine.status().paths.map((p) => p.named))}`);
}
