// What a viewer notices besides the bytes: did the stream happen at its pace?
// Minimum datagram counts from the asset's bit rate and the time it played,
// and the largest gap between arrivals.

import { TS_PAYLOAD_BYTES } from '../../src/rtp/packetizer.js';
import type { ReceivedDatagram } from './rtsp-client.js';

/** Datagrams a stream of `bitrate` bit/s sends in `ms` (full 7-packet datagrams). */
export function expectedDatagrams(bitrate: number, ms: number): number {
  return (bitrate * ms) / 1000 / (TS_PAYLOAD_BYTES * 8);
}

/** Largest time between two consecutive arrivals, ms (0 with fewer than two). */
export function largestGapMs(datagrams: readonly ReceivedDatagram[]): number {
  let max = 0;
  for (let i = 1; i < datagrams.length; i++) max = Math.max(max, Number(datagrams[i].arrivalNs - datagrams[i - 1].arrivalNs) / 1e6);
  return max;
}

/** One thread's scheduling as /proc shows it (proc(5), /proc/<pid>/task/<tid>/stat). */
export interface ThreadSched {
  /** 0 SCHED_OTHER, 1 SCHED_FIFO, 2 SCHED_RR. */
  readonly policy: number;
  readonly rtPriority: number;
  readonly nice: number;
}

/** Parse a task's stat line: fields counted after the parenthesized command name. */
export function parseTaskStat(stat: string): ThreadSched {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): field n is fields[n - 3].
  return { nice: Number(fields[19 - 3]), rtPriority: Number(fields[40 - 3]), policy: Number(fields[41 - 3]) };
}
