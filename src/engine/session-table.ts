// The session table (the patent's broadcast table): every open session with what
// both paths of its pair must agree on (pair, slot, ports, SSRC, first sequence
// number and RTP timestamp), its slot's life (a closed slot is free again only
// once every path of its pair has let go of it), admission against the stream
// limits (for the whole server, over every pair), and placement: a new session
// goes to the least-loaded pair and stays there.

import type { SegmentParams } from '../shared/control-block.js';
import type { MulticastOutput, OpenSessionCommand, TransportKind } from '../shared/commands.js';
import { monoNowMs } from '../shared/clock.js';
import type { WireMessage } from '../shared/messages.js';
import type { LockSpace } from '../shared/wire.js';
import { TwinframeError } from '../errors.js';
import type { AssetIdentity } from '../shared/asset-file.js';
import { planTrick, trickDatagramCount, trickGroupOf, type TrickKey } from '../mpegts/trick.js';
import { loopPacket, newLoopPlace, placeLoopDatagram, type LoopPlan } from '../mpegts/loop.js';
import { RTP_HEADER_BYTES, TS_PACKETS_PER_DATAGRAM, TS_PAYLOAD_BYTES, rtpTimeAfter } from '../rtp/packetizer.js';
import type { PortPair } from './ports.js';

export interface EngineAsset {
  readonly assetPath: string;
  readonly indexPath: string;
  readonly packetCount: number;
  /** Byte offset of the packet-time table in the index file. */
  readonly timesOffset: number;
  readonly bitrate: number;
  /** The file the catalog approved; the data paths refuse any other. */
  readonly identity: AssetIdentity;
  /** The key frames (trick play starts and resumes at one). */
  readonly randomAccess: readonly TrickKey[];
}

export interface StreamLimits {
  readonly maxStreams: number;
  /** Sum of the open sessions' MPEG bit rates. */
  readonly mpegBandwidthKbps: number;
  /** Everything sent: MPEG plus RTP/UDP/IP headers. */
  readonly serverBandwidthKbps: number;
}

/**
 * 'ready': open (its sockets bound), not playing. 'ended': played to the end of
 * its asset. 'failed': ended by a fault of its own or its asset's.
 */
export type SessionState = 'ready' | 'playing' | 'paused' | 'ended' | 'failed' | 'closed';

/** Why a session was ended by a fault: its own (destination, stream address) or its asset's. */
export interface SessionFailure {
  readonly scope: 'session' | 'asset';
  readonly reason: string;
}

export interface SessionInfo {
  readonly id: string;
  /** The pair of data paths that streams the session, for its whole life. */
  readonly pair: number;
  readonly slot: number;
  readonly transport: TransportKind;
  /** RTP on the viewer's RTSP connection (no UDP destination or ports). */
  readonly interleaved: boolean;
  /** The broadcast it carries (an operator's, no RTSP viewer), or undefined: a viewer's session. */
  readonly broadcast: string | undefined;
  readonly destination: { readonly address: string; readonly port: number };
  readonly source: { readonly address: string; readonly rtpPort: number; readonly rtcpPort: number };
  readonly ssrc: number;
  readonly initialSeq: number;
  readonly initialRtpTs: number;
  readonly assetPath: string;
  readonly assetName: string;
  readonly bitrate: number;
  readonly openedAt: Date;
  readonly state: SessionState;
  /** Set when a fault ended the session (state 'failed'). */
  readonly failure: SessionFailure | undefined;
  /** Datagrams sent so far (the shared cursor). */
  readonly sent: number;
  /** Where the session stands in its asset: the packet its next datagram starts with (a seek moves it, sending advances it). */
  readonly packet: number;
}

/** One row of the table. */
export interface Session {
  readonly id: string;
  readonly pair: number;
  /** The session's slot in its pair's control block. */
  readonly slot: number;
  readonly asset: EngineAsset;
  readonly assetName: string;
  readonly openedAt: Date;
  readonly transport: TransportKind;
  readonly destination: { readonly address: string; readonly port: number };
  readonly ports: PortPair;
  /** RTP on the viewer's RTSP connection: the engine's descriptor of it, the channel and the wire. */
  readonly interleaved: SessionInterleaved | undefined;
  /** Sent to a multicast group (a broadcast). */
  readonly multicast: MulticastOutput | undefined;
  /** The broadcast it carries, by name; undefined for a viewer's session. */
  readonly broadcast: string | undefined;
  /** A looping broadcast's plan: it never ends. */
  readonly loop: LoopPlan | undefined;
  readonly ssrc: number;
  readonly initialSeq: number;
  readonly initialRtpTs: number;
  state: SessionState;
  failure: SessionFailure | undefined;
  segment: SegmentParams | undefined;
  /** When the first play's first datagram was due: RTP time 0 of the session's clock. */
  firstStartMs: number | undefined;
  /** Path incarnations of its pair (PathHost.key) on which the session's socket is bound. */
  readonly boundOn: Set<string>;
  boundWaiters: Array<() => void>;
}

export interface SessionInterleaved {
  /** dupFd of the connection's socket: closed once no path of the pair can write to it any more. */
  readonly fd: number;
  readonly channel: number;
  readonly wire: SharedArrayBuffer;
  readonly backlogMs: number;
  /** This process's half of the wire lock's tags when the session opened (src/shared/wire.ts). */
  readonly lockSpace: LockSpace;
  /** A process pair: the RTSP connection's id and the wire's shared region, for the standby (replica.ts). */
  readonly shared?: SharedInterleaved;
}

/** Where a standby process finds an interleaved session's connection and wire. */
export interface SharedInterleaved {
  /** The RTSP server's id of the connection (the standby holds its descriptor under it). */
  readonly connection: number;
  /** The wire's shared region (src/pair-process/shared-wires.ts), and its size. */
  readonly region: string;
  readonly bytes: number;
}

/** A session admitted but still being opened: it counts against the limits (and its pair's load) like an open one. */
export interface Admission {
  readonly bitrate: number;
  readonly pair: number;
}

/** IPv4 + UDP + RTP headers per datagram payload, for the server-bandwidth limit. */
const HEADER_OVERHEAD = (20 + 8 + RTP_HEADER_BYTES) / TS_PAYLOAD_BYTES;
/** How far ahead of now a play is scheduled: time for both paths to see it. */
const PLAY_LEAD_MS = 2;

export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private readonly admissions = new Set<Admission>();
  /** Per pair: its control block's free slots. */
  private readonly freeSlots: number[][];
  /** Per pair: slots closed but not yet let go by every path of the pair: slot → path incarnations still to acknowledge. */
  private readonly closingSlots: Array<Map<number, ClosingSlot>>;

  /** `maxSessions`: the slots of each pair's control block. */
  constructor(private readonly maxSessions: number, pairs: number, public limits: StreamLimits) {
    this.freeSlots = Array.from({ length: pairs }, () => Array.from({ length: maxSessions }, (_, i) => maxSessions - 1 - i));
    this.closingSlots = Array.from({ length: pairs }, () => new Map<number, ClosingSlot>());
  }

  get size(): number {
    return this.sessions.size;
  }

  values(): IterableIterator<Session> {
    return this.sessions.values();
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  require(id: string): Session {
    const session = this.sessions.get(id);
    if (!session) throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${id} not found`);
    return session;
  }

  /** The open session in `slot` of `pair` with this id, if it is still the one there. */
  inSlot(pair: number, slot: number, id: string): Session | undefined {
    for (const s of this.sessions.values()) if (s.pair === pair && s.slot === slot) return s.id === id ? s : undefined;
    return undefined;
  }

  /** The open sessions of one pair. */
  ofPair(pair: number): Session[] {
    return [...this.sessions.values()].filter((s) => s.pair === pair);
  }

  /** From here the session counts itself against the limits: its admission is dropped in the same step. */
  add(session: Session, admission: Admission): void {
    this.admissions.delete(admission);
    this.sessions.set(session.id, session);
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /**
   * Refuse (TF_SESSION_LIMIT / TF_BANDWIDTH_LIMIT, RTSP 453) a session of this bit
   * rate that would break a stream limit next to the others open now.
   * `excludingSessionId` re-checks a session already open.
   */
  checkAdmission(bitrate: number, excludingSessionId?: string): void {
    const counted = [...this.sessions.values()].filter((s) => s.id !== excludingSessionId).map((s) => s.asset.bitrate);
    for (const admission of this.admissions) counted.push(admission.bitrate);
    const { maxStreams, mpegBandwidthKbps, serverBandwidthKbps } = this.limits;
    if (counted.length + 1 > maxStreams) {
      throw new TwinframeError('TF_SESSION_LIMIT', `stream count limit of ${maxStreams} reached`, { limit: maxStreams });
    }
    const mpegKbps = (counted.reduce((sum, b) => sum + b, 0) + bitrate) / 1000;
    if (mpegKbps > mpegBandwidthKbps) {
      throw new TwinframeError('TF_BANDWIDTH_LIMIT', `MPEG bandwidth would reach ${Math.ceil(mpegKbps)} kbit/s, over the ${mpegBandwidthKbps} kbit/s limit`, { limit: mpegBandwidthKbps });
    }
    if (mpegKbps * (1 + HEADER_OVERHEAD) > serverBandwidthKbps) {
      throw new TwinframeError('TF_BANDWIDTH_LIMIT', `server bandwidth would reach ${Math.ceil(mpegKbps * (1 + HEADER_OVERHEAD))} kbit/s, over the ${serverBandwidthKbps} kbit/s limit`, { limit: serverBandwidthKbps });
    }
  }

  /**
   * Admit a session of this bit rate, place it on the least-loaded pair and
   * take a slot there, holding both until it is added or `refuse`d
   * (synchronous: no open can slip in between).
   */
  admit(bitrate: number): { admission: Admission; slot: number } {
    this.checkAdmission(bitrate);
    const pair = this.leastLoadedPair();
    const slot = pair === undefined ? undefined : this.freeSlots[pair].pop();
    if (pair === undefined || slot === undefined) {
      throw new TwinframeError('TF_SESSION_LIMIT', `all ${this.maxSessions} session slots of each of the ${this.freeSlots.length} pair(s) are in use`);
    }
    const admission = { bitrate, pair };
    this.admissions.add(admission);
    return { admission, slot };
  }

  /**
   * Placement: the pair with a free slot that carries the least bit rate (open
   * and admitted sessions), then the fewest sessions, then the lowest index.
   * Bit rate first: a pair's sending work grows with its datagrams per second.
   */
  private leastLoadedPair(): number | undefined {
    const load = this.freeSlots.map(() => ({ bitrate: 0, sessions: 0 }));
    for (const s of this.sessions.values()) {
      load[s.pair].bitrate += s.asset.bitrate;
      load[s.pair].sessions++;
    }
    for (const a of this.admissions) {
      load[a.pair].bitrate += a.bitrate;
      load[a.pair].sessions++;
    }
    let best: number | undefined;
    for (let pair = 0; pair < load.length; pair++) {
      if (this.freeSlots[pair].length === 0) continue;
      if (best === undefined || load[pair].bitrate < load[best].bitrate
        || (load[pair].bitrate === load[best].bitrate && load[pair].sessions < load[best].sessions)) best = pair;
    }
    return best;
  }

  /** Undo an admission whose session never opened; its `slot` too unless its closing is under way. */
  refuse(admission: Admission, slot?: number): void {
    this.admissions.delete(admission);
    if (slot !== undefined) this.freeSlots[admission.pair].push(slot);
  }

  /**
   * The slot is free again once each of these path incarnations has let go of it
   * (acknowledged or been replaced); then `onFree` runs (what no path may use any more).
   */
  closing(pair: number, slot: number, waiting: Set<string>, onFree?: () => void): void {
    this.closingSlots[pair].set(slot, { waiting, onFree });
    if (waiting.size === 0) this.releaseSlot(pair, slot);
  }

  closeAcknowledged(pair: number, slot: number, key: string): void {
    const closing = this.closingSlots[pair].get(slot);
    if (closing && closing.waiting.delete(key) && closing.waiting.size === 0) this.releaseSlot(pair, slot);
  }

  /** A path incarnation of `pair` is gone: it will never acknowledge a close, and holds no socket. */
  forgetIncarnation(pair: number, key: string): void {
    for (const [slot, closing] of this.closingSlots[pair]) {
      if (closing.waiting.delete(key) && closing.waiting.size === 0) this.releaseSlot(pair, slot);
    }
    for (const session of this.sessions.values()) session.boundOn.delete(key);
  }

  /** Every slot still closing, freed as if acknowledged (the engine is stopping: no path runs). */
  releaseAllClosing(): void {
    this.closingSlots.forEach((slots, pair) => { for (const slot of [...slots.keys()]) this.releaseSlot(pair, slot); });
  }

  private releaseSlot(pair: number, slot: number): void {
    const closing = this.closingSlots[pair].get(slot);
    this.closingSlots[pair].delete(slot);
    this.freeSlots[pair].push(slot);
    closing?.onFree?.();
  }
}

interface ClosingSlot {
  readonly waiting: Set<string>;
  readonly onFree: (() => void) | undefined;
}

/** What a data path needs to open the session: identical on both paths, so both build identical datagrams. */
export function openCommand(session: Session): OpenSessionCommand {
  return {
    type: 'open-session',
    slot: session.slot,
    sessionId: session.id,
    assetPath: session.asset.assetPath,
    indexPath: session.asset.indexPath,
    packetCount: session.asset.packetCount,
    timesOffset: session.asset.timesOffset,
    assetIdentity: session.asset.identity,
    transport: session.transport,
    destination: session.destination,
    source: { address: session.ports.address, port: session.ports.rtpPort },
    ssrc: session.ssrc,
    initialSeq: session.initialSeq,
    ...(session.loop ? { loop: session.loop } : {}),
    ...(session.interleaved ? { interleaved: { fd: session.interleaved.fd, channel: session.interleaved.channel, backlogMs: session.interleaved.backlogMs } } : {}),
    ...(session.multicast ? { multicast: session.multicast } : {}),
  };
}

/** The wire message an interleaved session's paths get before its open command. */
export function wireMessage(session: Session): WireMessage | undefined {
  return session.interleaved ? { type: 'wire', slot: session.slot, sessionId: session.id, wire: session.interleaved.wire, lockSpace: session.interleaved.lockSpace } : undefined;
}

const loopPlace = newLoopPlace();

/** Where a session stands in its asset: the packet its next datagram starts with, given its cursor. */
export function currentPacket(session: Session, cursor: number): number {
  if (!session.segment) return 0;
  const scale = session.segment.scale ?? 1;
  if (scale !== 1) {
    // Trick play: the key frame the cursor's datagram shows (a resume, or Scale 1, starts there).
    const plan = planTrick(session.asset.randomAccess, session.segment.startPacket, scale);
    const d = cursor - session.segment.startCursor;
    if (plan.keys.length === 0) return session.segment.startPacket;
    return plan.keys[trickGroupOf(plan, Math.min(d, trickDatagramCount(plan) - 1))].packet;
  }
  if (session.loop) {
    placeLoopDatagram(session.loop, session.segment.startPacket, cursor - session.segment.startCursor, loopPlace);
    return loopPacket(loopPlace);
  }
  const packet = session.segment.startPacket + TS_PACKETS_PER_DATAGRAM * (cursor - session.segment.startCursor);
  return Math.min(packet, session.asset.packetCount - 1);
}

/**
 * A new segment from `startPacket` to before `endPacket`, due PLAY_LEAD_MS from now. Its RTP timestamp
 * continues the session's clock: the time since the first play, from the
 * session's random initial timestamp.
 */
export function segmentFrom(session: Session, startPacket: number, endPacket: number): Omit<SegmentParams, 'id' | 'startCursor'> {
  const startTimeMs = monoNowMs() + PLAY_LEAD_MS;
  session.firstStartMs ??= startTimeMs;
  return { startPacket, startTimeMs, rtpTsBase: rtpTimeAfter(session.initialRtpTs, startTimeMs - session.firstStartMs), endPacket };
}

export function sessionInfo(s: Session, sent: number): SessionInfo {
  return {
    id: s.id, pair: s.pair, slot: s.slot, transport: s.transport, interleaved: s.interleaved !== undefined, broadcast: s.broadcast, destination: s.destination,
    source: { address: s.ports.address, rtpPort: s.ports.rtpPort, rtcpPort: s.ports.rtcpPort },
    ssrc: s.ssrc, initialSeq: s.initialSeq, initialRtpTs: s.initialRtpTs, assetPath: s.asset.assetPath,
    assetName: s.assetName, bitrate: s.asset.bitrate, openedAt: s.openedAt, state: s.state, failure: s.failure, sent,
    packet: currentPacket(s, sent),
  };
}
