// Holds a broadcast's RTP stream against its asset, through loop points: every
// datagram's sequence number places it (cursor = seq − initial seq), and its
// payload must be what src/mpegts/loop.ts places there (the asset's packets,
// or a loop header datagram), its timestamp the first one's plus the send-time
// difference, counting whole passes; nothing may be missing.

import { buildLoopHeaderDatagram, newLoopPlace, placeLoopDatagram, type LoopPlan } from '../../src/mpegts/loop.js';
import type { SessionInfo } from '../../src/engine/engine.js';
import type { RtpPacket } from './rtsp-client.js';
import { sequenceStats, type SequenceStats } from './rtsp-client.js';
import type { SampleAsset } from './engine-fixture.js';

export interface BroadcastCheck extends SequenceStats {
  /** Where the broadcast started in the asset (found from its first datagram). */
  readonly startPacket: number;
  readonly mismatched: number;
  readonly firstMismatch: string | undefined;
  /** Loop header datagrams received (one per pass after the first with the sample's two PIDs). */
  readonly headers: number;
}

/**
 * The asset packet whose packets a payload starts with (-1: none); where the
 * same bytes occur more than once, the one sent nearest `nearTicks`.
 */
export function packetOfPayload(sample: SampleAsset, payload: Buffer, nearTicks = 0): number {
  let best = -1;
  const head = payload.subarray(0, 188);
  for (let at = sample.bytes.indexOf(head); at >= 0; at = sample.bytes.indexOf(head, at + 1)) {
    if (at % 188 !== 0 || !sample.bytes.subarray(at, at + payload.length).equals(payload)) continue;
    const packet = at / 188;
    if (best < 0 || Math.abs(sample.times[packet] - nearTicks) < Math.abs(sample.times[best] - nearTicks)) best = packet;
  }
  return best;
}

/**
 * `plan`: the session's loop plan, or undefined (no loop: the asset once).
 * The first received datagram must be the session's first (cursor 0), sent
 * near `nearTicks` of the asset (its schedule's offset).
 */
export function checkBroadcastStream(packets: readonly RtpPacket[], session: SessionInfo, sample: SampleAsset, plan: LoopPlan | undefined, nearTicks = 0): BroadcastCheck {
  const first = packets[0];
  const stats = sequenceStats(packets.map((p) => p.sequence), { firstSeq: session.initialSeq });
  const startPacket = first === undefined ? -1 : packetOfPayload(sample, first.payload, nearTicks);
  const periodTicks = plan?.periodTicks ?? 0;
  const onePass: LoopPlan = plan ?? { pids: [], headerCc: [], pcrPid: -1, pcr27: -1, packetCount: sample.asset.packetCount, periodTicks: 0 };
  const place = newLoopPlace();
  const header = Buffer.alloc(7 * 188);
  let mismatched = 0;
  let headers = 0;
  let firstMismatch: string | undefined;
  for (const p of packets) {
    const cursor = (p.sequence - session.initialSeq) & 0xffff;
    placeLoopDatagram(onePass, startPacket, cursor, place);
    let expected: Buffer;
    let ticks: number;
    if (place.header >= 0) {
      buildLoopHeaderDatagram(onePass, place.header, header, 0);
      expected = header;
      ticks = 0;
      headers++;
    } else {
      expected = sample.bytes.subarray(place.first * 188, (place.first + place.count) * 188);
      ticks = sample.times[place.first];
    }
    const expectedTs = (first.timestamp + place.pass * periodTicks + ticks - sample.times[startPacket]) >>> 0;
    const problem = p.payloadType !== 33 ? `payload type ${p.payloadType}`
      : p.ssrc !== session.ssrc ? `ssrc ${p.ssrc}`
      : plan === undefined && place.pass > 0 ? `seq ${p.sequence} is past the asset's end`
      : !p.payload.equals(expected) ? `payload of seq ${p.sequence} (pass ${place.pass}, ${place.header >= 0 ? `header ${place.header}` : `packet ${place.first}`}) differs`
      : p.timestamp !== expectedTs ? `timestamp of seq ${p.sequence}: ${p.timestamp} != ${expectedTs}`
      : undefined;
    if (problem) {
      mismatched++;
      firstMismatch ??= problem;
    }
  }
  return { ...stats, startPacket, mismatched, firstMismatch, headers };
}
