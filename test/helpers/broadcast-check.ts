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
import { runToString } from './run.js';

export interface BroadcastCheck extends SequenceStats {
  /** Where the broadcast started in the asset (found from its first datagram). */
  readonly startPacket: number;
  readonly mismatched: number;
  readonly firstMismatch: string | undefined;
  /** Loop header datagrams received (one per pass after the first with the sample's two PIDs). */
  readonly headers: number;
}

/** Every asset packet whose packets a payload starts with (the sample repeats some stretches byte for byte). */
export function packetsOfPayload(sample: SampleAsset, payload: Buffer): number[] {
  const found: number[] = [];
  const head = payload.subarray(0, 188);
  for (let at = sample.bytes.indexOf(head); at >= 0; at = sample.bytes.indexOf(head, at + 1)) {
    if (at % 188 === 0 && sample.bytes.subarray(at, at + payload.length).equals(payload)) found.push(at / 188);
  }
  return found;
}

/** Of those, the one sent nearest `nearTicks` (-1: none). */
export function packetOfPayload(sample: SampleAsset, payload: Buffer, nearTicks: number): number {
  let best = -1;
  for (const packet of packetsOfPayload(sample, payload)) {
    if (best < 0 || Math.abs(sample.times[packet] - nearTicks) < Math.abs(sample.times[best] - nearTicks)) best = packet;
  }
  return best;
}

/**
 * `plan`: the session's loop plan, or undefined (no loop: the asset once).
 * The first received datagram must be the session's first (cursor 0).
 */
export function checkBroadcastStream(packets: readonly RtpPacket[], session: SessionInfo, sample: SampleAsset, plan: LoopPlan | undefined): BroadcastCheck {
  const first = packets[0];
  if (first === undefined) return checkFrom(packets, session, sample, plan, -1);
  // The start is where the first datagram's bytes are; where they occur more than once, the place the whole stream fits.
  const checks = packetsOfPayload(sample, first.payload).map((start) => checkFrom(packets, session, sample, plan, start));
  return checks.reduce((a, b) => (b.mismatched < a.mismatched ? b : a), checks[0] ?? checkFrom(packets, session, sample, plan, -1));
}

function checkFrom(packets: readonly RtpPacket[], session: SessionInfo, sample: SampleAsset, plan: LoopPlan | undefined, startPacket: number): BroadcastCheck {
  const first = packets[0];
  const stats = sequenceStats(packets.map((p) => p.sequence), { firstSeq: session.initialSeq });
  if (startPacket < 0) return { ...stats, startPacket, mismatched: packets.length, firstMismatch: 'the first datagram is not in the asset', headers: 0 };
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

/** ffmpeg's debug log of demuxing and decoding a file: it checks every PID's continuity counter at debug level. */
export function ffmpegDebugLog(file: string): Promise<string> {
  return runToString(['sh', '-c', `ffmpeg -nostdin -hide_banner -v debug -i '${file}' -f null - 2>&1; true`], 60_000);
}

/** What GStreamer's tsdemux and H.264 decoder say playing a file through (it ends "Got EOS" when they do). */
export function gstreamerLog(file: string): Promise<string> {
  return runToString(['sh', '-c', `gst-launch-1.0 filesrc location='${file}' ! tsdemux ! h264parse ! avdec_h264 ! fakesink 2>&1; true`], 60_000);
}
