// What a viewer notices besides the bytes: did the stream happen, and at its
// pace? Minimum datagram counts from the asset's bit rate and the time it
// played, and the largest gap between arrivals.

import { TS_PAYLOAD_BYTES } from '../../src/rtp/packetizer.js';
import type { SampleAsset } from './engine-fixture.js';
import type { ReceivedDatagram } from './rtsp-client.js';

/** Largest gap between a correct stream's arrivals that a loaded 2-core machine still stays well under (the asset's own gaps are ~4 ms). */
export const PACING_BOUND_MS = 250;

/** Datagrams a stream of `bitrate` bit/s sends in `ms` (full 7-packet datagrams). */
export function expectedDatagrams(bitrate: number, ms: number): number {
  return (bitrate * ms) / 1000 / (TS_PAYLOAD_BYTES * 8);
}

/**
 * The fewest datagrams a stream of the sample must deliver in `playedMs` of
 * playing: half of what its bitrate carries. A wide margin for a loaded
 * machine, and a stream that sent nothing always fails.
 */
export function minDatagrams(sample: SampleAsset, playedMs: number): number {
  return Math.max(1, Math.floor(0.5 * expectedDatagrams(sample.asset.bitrate, playedMs)));
}

/**
 * Pacing at the receiver over [fromMs, toMs] of the shared clock (ms, sorted
 * arrivals): the largest gap between consecutive arrivals, the window's edges
 * included, so a stream that stopped inside the window shows the silence.
 */
export function largestGap(arrivalsMs: readonly number[], fromMs: number, toMs: number): { maxMs: number; count: number } {
  let last = fromMs;
  let maxMs = 0;
  let count = 0;
  for (const at of arrivalsMs) {
    if (at < fromMs) continue;
    if (at > toMs) break;
    maxMs = Math.max(maxMs, at - last);
    last = at;
    count++;
  }
  return { maxMs: Math.max(maxMs, toMs - last), count };
}

/** Largest time between two consecutive arrivals of a whole stream, ms (0 with fewer than two). */
export function largestGapMs(datagrams: readonly ReceivedDatagram[]): number {
  if (datagrams.length < 2) return 0;
  const arrivals = datagrams.map((d) => Number(d.arrivalNs) / 1e6);
  return largestGap(arrivals, arrivals[0], arrivals[arrivals.length - 1]).maxMs;
}
