// One RTSP session (RFC 2326 §A.1, server side): its state, the guard every
// method passes through (checkState, after gortsplib's server_session.go), its
// inactivity timeout, and its RTCP sender. It holds no sockets of the media
// itself: the engine's two data paths send the datagrams, and the session only
// mirrors what it asked the engine to do.
//
//            SETUP              PLAY                 PAUSE / end of asset
//   (none) ────────► ready ─────────► playing ───────────────────────► ready
//                      ▲ TEARDOWN or timeout from any state: gone ▲
//
// The RTSP session id is the engine's session id, so that an operator's
// `twinframectl sessions` and the RTSP log lines name a session alike.

import type { Logger } from 'pino';
import { TwinframeError } from '../errors.js';
import { monoNowMs } from '../shared/clock.js';
import type { ChosenTransport } from './headers/transport.js';
import type { ReportSource, RtcpSender } from './rtcp.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import { TS_PACKETS_PER_DATAGRAM, TS_PAYLOAD_BYTES, rtpTimeAfter } from '../rtp/packetizer.js';
import type { RtspMedia, RtspPlayResult, RtspSessionInfo } from './backend.js';

export type RtspSessionState = 'ready' | 'playing';

/** What a session keeps of its backend session: its facts, not the backend's functions. */
export type RtspSessionFacts = Omit<RtspSessionInfo, 'wireHolderDead'>;

/**
 * A session as another process's RTSP server takes it over (a process pair,
 * src/pair-process/rtsp-*.ts): plain data, it crosses the private link as JSON.
 * Only UDP sessions: RTP on the RTSP connection is that connection's alone.
 */
export interface RtspSessionRecord {
  readonly info: RtspSessionFacts;
  /** The asset's URL path (RtspMedia.name): the standby resolves it in its own catalog. */
  readonly assetPath: string;
  readonly transport: ChosenTransport;
  /** RTP on the RTSP connection: that connection's id (the standby holds it under the same). */
  readonly connectionId?: number;
  readonly controlUrl: string;
  readonly timeoutMs: number;
  readonly peer: string;
  /** Where its RTCP reports go; absent without a client RTCP port (or when the port could not be bound). */
  readonly rtcpPeer?: { readonly address: string; readonly port: number };
  readonly state: RtspSessionState;
  readonly ended: boolean;
  readonly lastPlay?: RtspPlayResult;
  readonly shortfallBytes: number;
}

export interface RtspSessionOptions {
  readonly info: RtspSessionFacts;
  readonly asset: RtspMedia;
  readonly transport: ChosenTransport;
  /** The SETUP request URI: players match RTP-Info url= against it character for character. */
  readonly controlUrl: string;
  readonly timeoutMs: number;
  readonly onTimeout: (session: RtspSession) => void;
  /** The client address and connection (RtspServer's id) that set the session up: per-client limits count them. */
  readonly peer: string;
  readonly connectionId: number;
  /** A session never played within this long after its SETUP is given up (it holds a stream's admission): onNotPlayed. */
  readonly playWithinMs: number;
  readonly onNotPlayed: (session: RtspSession) => void;
  /** Datagrams sent so far (the engine's shared cursor), for sender reports. */
  readonly sent: () => number;
  readonly logger: Logger;
  /** Its state changed (PLAY, PAUSE, end of asset): a process pair's primary tells its standby. */
  readonly onChange?: (session: RtspSession) => void;
  /**
   * Another process's session, taken over: no timer runs until wake() (a standby
   * process answers for it only once it took over), and restore() sets its state.
   */
  readonly dormant?: boolean;
}

export class RtspSession {
  readonly id: string;
  readonly info: RtspSessionFacts;
  readonly asset: RtspMedia;
  readonly transport: ChosenTransport;
  readonly controlUrl: string;
  readonly log: Logger;
  readonly timeoutMs: number;
  readonly peer: string;
  readonly connectionId: number;
  #state: RtspSessionState = 'ready';
  /** Runs until the first PLAY. */
  #setupTimer: NodeJS.Timeout | undefined;
  /** The last PLAY's RTP-Info values and schedule; undefined before the first PLAY. */
  #play: RtspPlayResult | undefined;
  /** The data paths reached the end of the asset; a PLAY without Range starts over. */
  #ended = false;
  /** Bytes the asset's short last datagrams lacked of full ones, each time the end was reached. */
  #shortfallBytes = 0;
  #rtcp: RtcpSender | undefined;
  #rtcpPeer: { readonly address: string; readonly port: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onTimeout: (session: RtspSession) => void;
  readonly #sent: () => number;
  readonly #onChange: ((session: RtspSession) => void) | undefined;
  readonly #playWithinMs: number;
  readonly #onNotPlayed: (session: RtspSession) => void;
  #dormant: boolean;
  #disposed = false;

  constructor(options: RtspSessionOptions) {
    this.id = options.info.id;
    this.info = options.info;
    this.asset = options.asset;
    this.transport = options.transport;
    this.controlUrl = options.controlUrl;
    this.timeoutMs = options.timeoutMs;
    this.#onTimeout = options.onTimeout;
    this.#sent = options.sent;
    this.log = options.logger.child({ session: this.id });
    this.peer = options.peer;
    this.connectionId = options.connectionId;
    this.#onChange = options.onChange;
    this.#playWithinMs = options.playWithinMs;
    this.#onNotPlayed = options.onNotPlayed;
    this.#dormant = options.dormant ?? false;
    if (!this.#dormant) this.#startTimers();
  }

  /** The inactivity timeout, and the PLAY timeout of a session never played. */
  #startTimers(): void {
    this.touch();
    if (this.#play) return;
    this.#setupTimer = setTimeout(() => {
      this.#setupTimer = undefined;
      if (!this.#disposed) this.#onNotPlayed(this);
    }, this.#playWithinMs);
    this.#setupTimer.unref();
  }

  /** Taken over from another process and not yet answered for (see RtspSessionOptions.dormant). */
  get dormant(): boolean {
    return this.#dormant;
  }

  /** Where RTCP reports go (the viewer's RTCP port), once a UDP sender is attached. */
  get rtcpPeer(): { readonly address: string; readonly port: number } | undefined {
    return this.#rtcpPeer;
  }

  /** This process answers for the taken-over session from now on: its timeouts start over. False if it was not dormant. */
  wake(): boolean {
    if (!this.#dormant || this.#disposed) return false;
    this.#dormant = false;
    this.#startTimers();
    return true;
  }

  /**
   * The other process answers for the session from now on (a process pair's
   * role switch): its timers stop and its RTCP socket is let go (the other
   * process binds the same port), as for a session adopted dormant.
   */
  sleep(): void {
    if (this.#dormant || this.#disposed) return;
    this.#dormant = true;
    this.#stopTimersAndRtcp()?.close();
  }

  /** Both timers stopped; the RTCP sender is detached and returned, for the caller to end. */
  #stopTimersAndRtcp(): RtcpSender | undefined {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#setupTimer);
    this.#setupTimer = undefined;
    const rtcp = this.#rtcp;
    this.#rtcp = undefined;
    return rtcp;
  }

  /** A dormant session takes the other process's state (its SETUP, PLAY, PAUSE or end of asset). */
  restore(record: RtspSessionRecord): void {
    if (!this.#dormant) return;
    this.#state = record.state;
    this.#ended = record.ended;
    this.#play = record.lastPlay;
    this.#shortfallBytes = record.shortfallBytes;
    this.#rtcpPeer = record.rtcpPeer;
  }

  /** What another process needs to take the session over. */
  record(): RtspSessionRecord {
    return {
      info: {
        id: this.info.id, ssrc: this.info.ssrc, bitrate: this.info.bitrate,
        source: { address: this.info.source.address, rtpPort: this.info.source.rtpPort, rtcpPort: this.info.source.rtcpPort },
      },
      assetPath: this.asset.name,
      transport: this.transport,
      ...(this.transport.lower === 'tcp' ? { connectionId: this.connectionId } : {}),
      controlUrl: this.controlUrl,
      timeoutMs: this.timeoutMs,
      peer: this.peer,
      ...(this.#rtcpPeer ? { rtcpPeer: this.#rtcpPeer } : {}),
      state: this.#state,
      ended: this.#ended,
      ...(this.#play ? { lastPlay: this.#play } : {}),
      shortfallBytes: this.#shortfallBytes,
    };
  }

  get state(): RtspSessionState {
    return this.#state;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get lastPlay(): RtspPlayResult | undefined {
    return this.#play;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The guard every method that names a session passes (gortsplib's
   * checkState): TF_SESSION_INVALID_STATE, answered 455 Method Not Valid in This
   * State, unless the session is in one of `allowed`.
   */
  checkState(method: string, allowed: readonly RtspSessionState[]): void {
    if (!allowed.includes(this.#state)) {
      throw new TwinframeError('TF_SESSION_INVALID_STATE', `${method} is not valid while the session is ${this.#state}`, {
        state: this.#state,
        allowed,
      });
    }
  }

  /** Any request naming the session keeps it alive (RFC 2326 §12.37). */
  touch(): void {
    if (this.#disposed || this.#dormant) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#disposed) this.#onTimeout(this);
    }, this.timeoutMs);
    this.#timer.unref();
  }

  /** `peer`: the viewer's RTCP address and port, for a UDP sender (a process pair's standby binds its own). */
  attachRtcp(rtcp: RtcpSender, peer?: { readonly address: string; readonly port: number }): void {
    // Disposed, or handed to the other process (sleep), while its RTCP socket was being opened: close it.
    if (this.#disposed || this.#dormant) {
      rtcp.close();
      return;
    }
    this.#rtcp = rtcp;
    this.#rtcpPeer = peer;
    // Taken over while playing: reports go on.
    if (this.#state === 'playing') rtcp.start(this.reportSource);
  }

  played(play: RtspPlayResult): void {
    clearTimeout(this.#setupTimer);
    this.#setupTimer = undefined;
    this.#play = play;
    this.#state = 'playing';
    this.#ended = false;
    this.#rtcp?.start(this.reportSource);
    this.#onChange?.(this);
  }

  paused(): void {
    this.#state = 'ready';
    this.#rtcp?.stop();
    this.#onChange?.(this);
  }

  /** The data paths sent the asset's last datagram: say BYE, so players end cleanly. */
  endOfAsset(): void {
    if (this.#state !== 'playing') return;
    this.#state = 'ready';
    this.#ended = true;
    // Datagrams hold 7 packets counted from the play's start packet: the last holds the rest.
    const tail = this.#play ? (this.asset.packetCount - this.#play.startPacket) % TS_PACKETS_PER_DATAGRAM : 0;
    if (tail !== 0) this.#shortfallBytes += (TS_PACKETS_PER_DATAGRAM - tail) * TS_PACKET_BYTES;
    this.#onChange?.(this);
    this.#rtcp?.bye(this.reportSource).catch((err: Error) => this.log.warn({ err: err.message }, 'RTCP BYE failed'));
  }

  /**
   * What an RTCP sender report says now: the RTP timestamp the stream's clock
   * shows at this instant (the data paths stamp datagram k with
   * rtptime + (its send time − the segment's start) in 90 kHz ticks, and send
   * it at startTimeMs + that same offset), and what has been sent so far.
   */
  readonly reportSource: ReportSource = () => {
    const play = this.#play;
    if (!play) return undefined;
    const mono = monoNowMs();
    const wallMs = Date.now();
    if (mono < play.startTimeMs) return undefined;
    const packets = this.#sent();
    return {
      wallMs,
      rtpTimestamp: rtpTimeAfter(play.rtptime, mono - play.startTimeMs),
      packetCount: packets,
      // Every datagram but an asset's last carries 7 whole TS packets.
      octetCount: packets * TS_PAYLOAD_BYTES - this.#shortfallBytes,
    };
  };

  /** Stop the timer and RTCP; `bye` first tells the player the stream is over. */
  async dispose(bye: boolean): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const rtcp = this.#stopTimersAndRtcp();
    if (!rtcp) return;
    if (bye) await rtcp.bye(this.reportSource);
    rtcp.close();
  }
}
