// The loop plan of an asset (src/mpegts/loop.ts), read from its files on the
// main thread without blocking it: the asset is read in chunks (async) to find
// every PID's first and last packet and the first PCR, and the index gives that
// PCR's send time, hence the PCR of packet 0. The whole asset is read once per
// file (its identity): a plan is kept for later starts, reloads and restarts.
// The file is opened as every reader opens an asset (no FIFO, no link) and must
// be the one the catalog indexed.

import { open } from 'node:fs/promises';
import { TwinframeError } from '../errors.js';
import { readPacketTicksAsync } from '../catalog/index-file.js';
import type { CatalogAsset } from '../catalog/catalog.js';
import { LoopScanner, type LoopPlan } from '../mpegts/loop.js';
import { PCR_PER_TICK, PCR_WRAP, TICKS_PER_MS, TS_PACKET_BYTES } from '../mpegts/packet.js';
import { ASSET_OPEN_FLAGS, inodeOf, type AssetIdentity } from '../shared/asset-file.js';

const CHUNK_BYTES = TS_PACKET_BYTES * 4096;
/** Plans kept, the most recently used (a few hundred bytes each, more for an asset with many PIDs). */
const MAX_PLANS = 64;
const plans = new Map<string, LoopPlan>();

function identityKey(identity: AssetIdentity): string {
  return `${identity.dev}:${identity.ino}:${identity.size}:${identity.mtimeMs}`;
}

function planKey(asset: CatalogAsset): string {
  return `${identityKey(asset.identity)}|${asset.indexPath}`;
}

/** Whether loopPlanOf(asset) answers from what is kept (no read of the asset). */
export function hasLoopPlan(asset: CatalogAsset): boolean {
  return plans.has(planKey(asset));
}

export async function loopPlanOf(asset: CatalogAsset): Promise<LoopPlan> {
  const key = planKey(asset);
  const known = plans.get(key);
  plans.delete(key);
  const plan = known ?? await scanLoopPlan(asset);
  plans.set(key, plan);
  if (plans.size > MAX_PLANS) plans.delete(plans.keys().next().value!);
  return plan;
}

async function scanLoopPlan(asset: CatalogAsset): Promise<LoopPlan> {
  const { meta } = asset;
  const scanner = new LoopScanner(meta.pcrPid);
  const fh = await open(asset.path, ASSET_OPEN_FLAGS);
  try {
    const st = await fh.stat({ bigint: true });
    const { dev, ino } = inodeOf(st);
    if (!st.isFile() || dev !== asset.identity.dev || ino !== asset.identity.ino || Number(st.size) !== asset.identity.size) {
      throw new TwinframeError('TF_ASSET_UNREADABLE', `${asset.path} is no longer the file that was indexed (changed since): try again`, { path: asset.path });
    }
    const buf = Buffer.alloc(CHUNK_BYTES);
    for (let pos = 0; pos < meta.packetCount * TS_PACKET_BYTES;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, pos);
      const whole = bytesRead - (bytesRead % TS_PACKET_BYTES);
      if (whole === 0) break;
      scanner.push(buf.subarray(0, whole));
      pos += whole;
    }
  } finally {
    await fh.close();
  }
  const { pcr27, packet } = scanner.firstPcr;
  const pcrTicks = packet < 0 ? 0 : await readPacketTicksAsync(asset.indexPath, asset.timesOffset, packet);
  const pcrAtPacket0 = pcr27 < 0 ? -1 : (((pcr27 - pcrTicks * PCR_PER_TICK) % PCR_WRAP) + PCR_WRAP) % PCR_WRAP;
  return { ...scanner.program(pcrAtPacket0), packetCount: meta.packetCount, periodTicks: Math.round(meta.durationMs * TICKS_PER_MS) };
}
