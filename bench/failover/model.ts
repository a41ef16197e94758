// The failover benchmark's shared vocabulary: its settings, what the receiver
// and the bench say to each other, and what a phase records. No behaviour
// beyond segmentLength().

import type { EngineAsset, PlayResult, SessionInfo } from '../../src/engine/engine.js';
import type { FailureFaultKind } from '../../src/shared/commands.js';
import { TS_PACKETS_PER_DATAGRAM } from '../../src/rtp/packetizer.js';

export const EXPECTED_CAUSE: Record<FailureFaultKind, string> = {
  crash: 'exit', exception: 'exception', hang: 'heartbeat', socket: 'socket', disk: 'disk', temperature: 'temperature',
};
/** A victim synchronized less than this long before its fault is reported apart as young (one rule judges every age; the earlier design had a 3 s warm-up). */
export const YOUNG_VICTIM_MS = 3000;
export const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
export const GAP_BEFORE_MS = 50;
export const GAP_AFTER_MS = 100;
export const TARGET_LATE_P50_MS = 1;
export const TARGET_LATE_P99_MS = 33;
export const RECEIVER_FIFO_PRIORITY = 5;

export interface Options {
  faults: number;
  sessions: number[];
  kinds: FailureFaultKind[];
  standbyShare: number;
  baselineS: number;
  warmupMs: number;
  settleMinMs: number;
  settleMaxMs: number;
  recoveryTimeoutMs: number;
  muxrate: number;
  asset: string | undefined;
  seed: number;
  out: string;
  receiverRt: boolean;
  receiver: 'process' | 'thread';
  log: string | undefined;
  deadlineMin: number;
  quick: boolean;
  strict: boolean;
}

/** What the receiver needs to check payloads: the asset, its PCR times, and whether to ask for SCHED_FIFO. */
export interface ReceiverInit {
  readonly asset: EngineAsset;
  readonly times: Uint32Array;
  readonly rt: boolean;
}

export interface Segment {
  /** Session cursor (datagram index since the session opened) of the segment's first datagram. */
  readonly startCursor: number;
  readonly play: PlayResult;
  /** first / ended: play() results of the bench; stall: a restarted stalled session; rebase: inferred from RTP timestamps (engine-internal restart of the clock). */
  readonly reason: 'first' | 'ended' | 'stall' | 'rebase';
}

export type ToReceiver =
  | { type: 'add'; count: number }
  | { type: 'session'; sock: number; info: SessionInfo }
  | { type: 'segment'; sock: number; segment: Segment }
  | { type: 'collect' }
  | { type: 'init'; init: ReceiverInit };

export interface SocketData {
  readonly sock: number;
  readonly port: number;
  readonly count: number;
  readonly seq: Uint16Array;
  readonly at: Float64Array;
  readonly mismatched: number;
  readonly firstMismatch: string | undefined;
  readonly checked: number;
  readonly unplaced: number;
  readonly malformed: number;
  /** Segments as the receiver knows them: the play() results plus the inferred engine rebases. */
  readonly segments: Segment[];
  readonly inferredRebases: number;
}

export type FromReceiver =
  | { type: 'booted'; policy: string; policyError: string | undefined }
  | { type: 'added'; first: number; ports: number[]; recvBuffer: number[] }
  /** Every 50 ms: last arrival (ms) and datagram count per socket, for the stall watchdog and the end-of-phase quiet wait. */
  | { type: 'live'; last: number[]; counts: number[] }
  | { type: 'data'; sockets: SocketData[] };


/** Datagrams of a segment that plays to the end of the asset. */
export function segmentLength(seg: Segment, packetCount: number): number {
  return Math.ceil((packetCount - seg.play.startPacket) / TS_PACKETS_PER_DATAGRAM);
}

/** What the analysis needs of the asset: its TS packet count and each packet's PCR time (90 kHz). */
export interface AssetTiming {
  readonly packetCount: number;
  readonly times: Uint32Array;
}

export interface BenchAsset {
  readonly asset: EngineAsset;
  readonly times: Uint32Array;
  readonly durationMs: number;
  readonly source: string;
  readonly note: string | undefined;
  readonly bitrate: number;
}

export interface EventRecord {
  readonly pathName: string;
  readonly cause: string;
  readonly wasActive: boolean;
  readonly switchedToName: string | undefined;
  readonly failedAtMs: number;
  readonly detectedAtMs: number;
  readonly switchedAtMs: number | undefined;
  readonly switchLatencyMs: number | undefined;
  readonly receivedAtMs: number;
  readonly gen: number;
}

/** An engine 'handover' event (HandoverEvent; declared here so the bench also builds against an engine without it). */
export interface HandoverRecord {
  readonly from: string;
  readonly to: string;
  readonly lateMs: number;
  /** When sending moved, on the shared clock. */
  readonly atMs: number;
  readonly receivedAtMs: number;
  readonly gen: number;
}

export interface FaultRecord {
  readonly i: number;
  readonly gen: number;
  readonly kind: FailureFaultKind;
  readonly target: 'active' | 'standby';
  readonly victim: string;
  readonly expectedCause: string;
  readonly injectedAtMs: number;
  /** How long the victim, and its partner, had been synchronized when the fault came. */
  readonly victimAgeMs: number | undefined;
  readonly partnerAgeMs: number | undefined;
  readonly events: EventRecord[];
  /** Handovers from this fault's injection until the next fault. */
  readonly handovers: HandoverRecord[];
  matched: EventRecord | undefined;
  protectedAtMs: number | undefined;
  failure: string | undefined;
}

export interface StreamRec {
  readonly sock: number;
  readonly gen: number;
  /** What the analysis and the report need of the session. */
  readonly info: Pick<SessionInfo, 'id' | 'ssrc' | 'initialSeq'>;
  readonly segments: Segment[];
  finalSent: number;
}

export interface PhaseRun {
  sessions: number;
  streams: StreamRec[];
  data: SocketData[];
  faults: FaultRecord[];
  baselineEvents: EventRecord[];
  strayEvents: EventRecord[];
  baselineHandovers: HandoverRecord[];
  strayHandovers: HandoverRecord[];
  /** Sum of engine.status().handovers over the generations; undefined when the engine does not count handovers. */
  engineHandovers: number | undefined;
  baselineFromMs: number;
  baselineToMs: number;
  stalls: Array<{ sock: number; gen: number; atMs: number; state: string | undefined; sent: number | undefined }>;
  replayErrors: string[];
  problems: string[];
  restarts: Array<{ atMs: number; reason: string }>;
  snmpBefore: Record<string, number>;
  snmpAfter: Record<string, number>;
  stealMs: number;
  socketDrops: { drops: number; found: number };
  receiver: { kind: string; policy: string; policyError: string | undefined; recvBuffer: number[] };
  enginePolicies: Array<{ comm: string; policy: string; rtPriority: number }>;
  engineSentByPaths: number;
  heartbeat: { periodUs: number; maxMissed: number } | undefined;
  deadlineHit: boolean;
}

