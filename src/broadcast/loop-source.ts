// The loop plan of an asset (src/mpegts/loop.ts), read from its files once per
// broadcast start on the main thread, without blocking it: the asset is read
// in chunks (async) to find every PID's first packet and the first PCR, and
// the index gives that PCR's send time, hence the PCR of packet 0.

import { open } from 'node:fs/promises';
import { readPacketTicksAsync } from '../catalog/index-file.js';
import type { CatalogAsset } from '../catalog/catalog.js';
import { LoopScanner, type LoopPlan } from '../mpegts/loop.js';
import { PCR_PER_TICK, PCR_WRAP, TICKS_PER_MS, TS_PACKET_BYTES } from '../mpegts/packet.js';

const CHUNK_BYTES = TS_PACKET_BYTES * 4096;

export async function loopPlanOf(asset: CatalogAsset): Promise<LoopPlan> {
  const { meta } = asset;
  const scanner = new LoopScanner(meta.pcrPid);
  const fh = await open(asset.path, 'r');
  try {
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
