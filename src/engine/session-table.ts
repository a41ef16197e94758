// The session table (the patent's broadcast table): every open session with what
// both paths must agree on (slot, ports, SSRC, first sequence number and RTP
// timestamp), its slot's life (a closed slot is free again only once every path
// has let go of it), and admission against the stream limits.

import type { SegmentParams } from '../shared/control-block.js';
import type { OpenSessionCommand, TransportKind } from '../shared/commands.js';
import { monoNowMs } from '../shared/clock.js';
import { TwinframeError } from '../errors.js';
import type { AssetIdentity } from '../shared/asset-file.js';
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
  readonly slot: number;
  readonly transport: TransportKind;
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
  readonly slot: number;
  readonly asset: EngineAsset;
  readonly assetName: string;
  readonly openedAt: Date;
  readonly transport: TransportKind;
  readonly destination: { readonly address: string; readonly port: number };
  readonly ports: PortPair;
  readonly ssrc: number;
  readonly initialSeq: number;
  readonly initialRtpTs: number;
  state: SessionState;
  failure: SessionFailure | undefined;
  segment: SegmentParams | undefined;
  /** When the first play's first datagram was due: RTP time 0 of the session's clock. */
  firstStartMs: number | undefined;
  /** Path incarnations (PathHost.key) on which the session's socket is bound. */
  readonly boundOn: Set<string>;
  boundWaiters: Array<() => void>;
}

/** A session admitted but still being opened: it counts against the limits like an open one. */
export interface Admission {
  readonly bitrate: number;
}

/** IPv4 + UDP + RTP headers per datagram payload, for the server-bandwidth limit. */
const HEADER_OVERHEAD = (20 + 8 + RTP_HEADER_BYTES) / TS_PAYLOAD_BYTES;
/** How far ahead of now a play is scheduled: time for both paths to see it. */
const PLAY_LEAD_MS = 2;

export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private readonly admissions = new Set<Admission>();
  private readonly freeSlots: number[];
  /** Slots closed but not yet let go by every path: slot → path incarnations still to acknowledge. */
  private readonly closingSlots = new Map<number, Set<string>>();

  constructor(private readonly maxSessions: number, public limits: StreamLimits) {
    this.freeSlots = Array.from({ length: maxSessions }, (_, i) => maxSessions - 1 - i);
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

  /** The open session in `slot` with this id, if it is still the one there. */
  inSlot(slot: number, id: string): Session | undefined {
    for (const s of this.sessions.values()) if (s.slot === slot) return s.id === id ? s : undefined;
    return undefined;
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
   * Admit a session of this bit rate and take a slot for it, holding both until
   * it is added or `refuse`d (synchronous: no open can slip in between).
   */
  admit(bitrate: number): { admission: Admission; slot: number } {
    this.checkAdmission(bitrate);
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new TwinframeError('TF_SESSION_LIMIT', `all ${this.maxSessions} session slots are in use`);
    const admission = { bitrate };
    this.admissions.add(admission);
    return { admission, slot };
  }

  /** Undo an admission whose session never opened; `slot` too unless its closing is under way. */
  refuse(admission: Admission, slot?: number): void {
    this.admissions.delete(admission);
    if (slot !== undefined) this.freeSlots.push(slot);
  }

  /** The slot is free again once each of these path incarnations has let go of it (acknowledged or been replaced). */
  closing(slot: number, waiting: Set<string>): void {
    if (waiting.size === 0) this.freeSlots.push(slot);
    else this.closingSlots.set(slot, waiting);
  }

  closeAcknowledged(slot: number, key: string): void {
    const waiting = this.closingSlots.get(slot);
    if (waiting && waiting.delete(key) && waiting.size === 0) this.releaseSlot(slot);
  }

  /** A path incarnation is gone: it will never acknowledge a close, and holds no socket. */
  forgetIncarnation(key: string): void {
    for (const [slot, waiting] of this.closingSlots) {
      if (waiting.delete(key) && waiting.size === 0) this.releaseSlot(slot);
    }
    for (const session of this.sessions.values()) session.boundOn.delete(key);
  }

  private releaseSlot(slot: number): void {
    this.closingSlots.delete(slot);
    this.freeSlots.push(slot);
  }
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
  };
}

/** Where a session stands in its asset: the packet its next datagram starts with, given its cursor. */
export function currentPacket(session: Session, cursor: number): number {
  if (!session.segment) return 0;
  const packet = session.segment.startPacket + TS_PACKETS_PER_DATAGRAM * (cursor - session.segment.startCursor);
  return Math.min(packet, session.asset.packetCount - 1);
}

/**
 * A new segment from `startPacket`, due PLAY_LEAD_MS from now. Its RTP timestamp
 * continues the session's clock: the time since the first play, from the
 * session's random initial timestamp.
 */
export function segmentFrom(session: Session, startPacket: number): Omit<SegmentParams, 'id' | 'startCursor'> {
  const startTimeMs = monoNowMs() + PLAY_LEAD_MS;
  session.firstStartMs ??= startTimeMs;
  return { startPacket, startTimeMs, rtpTsBase: rtpTimeAfter(session.initialRtpTs, startTimeMs - session.firstStartMs) };
}

export function sessionInfo(s: Session, sent: number): SessionInfo {
  return {
    id: s.id, slot: s.slot, transport: s.transport, destination: s.destination,
    source: { address: s.ports.address, rtpPort: s.ports.rtpPort, rtcpPort: s.ports.rtcpPort },
    ssrc: s.ssrc, initialSeq: s.initialSeq, initialRtpTs: s.initialRtpTs, assetPath: s.asset.assetPath,
    assetName: s.assetName, bitrate: s.asset.bitrate, openedAt: s.openedAt, state: s.state, failure: s.failure, sent,
    packet: currentPacket(s, sent),
  };
}
