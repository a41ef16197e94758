// What a standby process needs to follow this engine's sessions (issue 17, the
// process pair): each session as it was opened, with every random choice made,
// and each change of what it plays. The engine emits these as 'replicate' events
// and lists them for a standby that joins mid-stream (a snapshot); the standby's
// engine applies them to sessions of its own that build the same datagrams.
// Plain data: they cross the private link as JSON.

import type { SegmentParams } from '../shared/control-block.js';
import type { MulticastOutput, TransportKind } from '../shared/commands.js';
import type { LoopPlan } from '../mpegts/loop.js';
import type { EngineAsset, Session, SharedInterleaved } from './session-table.js';

/** A session as the standby opens it: the same id, choices, source and destination. */
export interface SessionReplica {
  readonly id: string;
  readonly asset: EngineAsset;
  readonly assetName: string;
  readonly transport: TransportKind;
  readonly destination: { readonly address: string; readonly port: number };
  /** The source address and RTP port the primary sends from (RTCP is the port above). */
  readonly source: { readonly address: string; readonly rtpPort: number };
  readonly multicast?: MulticastOutput;
  readonly broadcast?: string;
  readonly loop?: LoopPlan;
  readonly ssrc: number;
  readonly initialSeq: number;
  readonly initialRtpTs: number;
  /** RTP time 0 of the session's clock (the first play's start), if it played. */
  readonly firstStartMs?: number;
  /** Where the primary keeps it: its pair and its slot in that pair's control block. */
  readonly primarySlot: { readonly pair: number; readonly slot: number };
  /** RTP on the viewer's RTSP connection: that connection, the wire's shared region, the channel and the backlog bound. */
  readonly interleaved?: SharedInterleaved & { readonly channel: number; readonly backlogMs: number };
}

/** One step of the session command stream (patent [0087]); `segment` ids are the primary's. */
export type ReplicationEvent =
  | { readonly kind: 'open'; readonly session: SessionReplica }
  | { readonly kind: 'segment'; readonly id: string; readonly segment: SegmentParams }
  | { readonly kind: 'pause'; readonly id: string }
  | { readonly kind: 'close'; readonly id: string };

/** Where a session stands on the primary: its segment (the primary's id) and its cursor. */
export interface ReplicaCursor {
  readonly id: string;
  readonly segment: number;
  readonly cursor: number;
}

/** Whether a standby process can follow the session: an interleaved one only with its wire in a shared region. */
export function replicates(s: Session): boolean {
  return !s.interleaved || s.interleaved.shared !== undefined;
}

/** A session's open step; undefined for one a standby cannot follow (replicates). */
export function replicaOf(s: Session): SessionReplica | undefined {
  if (!replicates(s)) return undefined;
  const shared = s.interleaved?.shared;
  return {
    id: s.id,
    asset: s.asset,
    assetName: s.assetName,
    transport: s.transport,
    destination: s.destination,
    source: { address: s.ports.address, rtpPort: s.ports.rtpPort },
    ...(s.multicast ? { multicast: s.multicast } : {}),
    ...(s.broadcast === undefined ? {} : { broadcast: s.broadcast }),
    ...(s.loop ? { loop: s.loop } : {}),
    ssrc: s.ssrc,
    initialSeq: s.initialSeq,
    initialRtpTs: s.initialRtpTs,
    ...(s.firstStartMs === undefined ? {} : { firstStartMs: s.firstStartMs }),
    primarySlot: { pair: s.pair, slot: s.slot },
    ...(shared ? { interleaved: { ...shared, channel: s.interleaved.channel, backlogMs: s.interleaved.backlogMs } } : {}),
  };
}

/** The steps that bring a fresh standby to where a session is now (a snapshot). */
export function replicaSteps(s: Session): ReplicationEvent[] {
  const session = replicaOf(s);
  if (!session) return [];
  const steps: ReplicationEvent[] = [{ kind: 'open', session }];
  if (s.segment) steps.push({ kind: 'segment', id: s.id, segment: { ...s.segment } });
  if (s.state !== 'playing' && s.segment) steps.push({ kind: 'pause', id: s.id });
  return steps;
}
