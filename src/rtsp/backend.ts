// What the RTSP server needs from the rest of twinframe, declared on the RTSP
// side so the protocol code imports nothing from the control plane (the way
// gortsplib's Server calls a ServerHandler, and live555's RTSPServer asks a
// ServerMediaSession for its streams). The composition root implements it over
// the engine and the asset catalog (src/rtsp-backend.ts).
//
//   RtspServer ──resolve(url)──► RtspMedia ──openSession()──► RtspSessionInfo
//        │                        (one asset: SDP facts, seeks, start times)
//        └──play/pause/closeSession/sent/checkAdmission, subscribe──► RtspBackend

/** Where a session's media leaves from: the server's address and ports (SETUP's reply). */
export interface RtspSessionInfo {
  /** The session id: the RTSP Session header carries it, so operators and players name a session alike. */
  readonly id: string;
  readonly ssrc: number;
  /** Bits per second of the asset, for admission of a later PLAY. */
  readonly bitrate: number;
  readonly source: { readonly address: string; readonly rtpPort: number; readonly rtcpPort: number };
  /** Whether a data path that holds the session's wire lock (by its tag) is dead: the lock may be taken over. */
  wireHolderDead(tag: number): boolean;
}

/** What a PLAY started: RTP-Info values and when datagram 0 of it is due. */
export interface RtspPlayResult {
  readonly seq: number;
  readonly rtptime: number;
  readonly startPacket: number;
  /** The packet it stops before (RtspMedia.packetCount: the asset's end). */
  readonly endPacket: number;
  /** Monotonic ms (shared/clock) at which the first datagram is sent. */
  readonly startTimeMs: number;
}

export interface RtspOpenOptions {
  /** Where the datagrams go. */
  readonly destination: { readonly address: string; readonly port: number };
  /** 'rtp': RTP/AVP; 'udp': raw MPEG-TS over UDP. */
  readonly transport: 'rtp' | 'udp';
  /** Source address of the session's media. */
  readonly source: string;
  /** RTP on the viewer's RTSP connection (RFC 2326 §10.12) instead of UDP: `destination` is unused. */
  readonly interleaved?: {
    /** The connection's socket descriptor. */
    readonly connectionFd: number;
    /** RTP's channel (RTCP's is the next). */
    readonly channel: number;
    /** The connection's wire (src/shared/wire.ts). */
    readonly wire: SharedArrayBuffer;
    /** The session ends when its stream falls this far behind (a viewer that reads too slowly). */
    readonly backlogMs: number;
    /** A process pair: the connection's id and the wire's shared region, for the standby to follow the session. */
    readonly shared?: { readonly connection: number; readonly region: string; readonly bytes: number };
  };
}

/** The wire of an interleaved session this process follows (a process pair's standby took it over). */
export interface RtspSharedWire {
  readonly wire: SharedArrayBuffer;
  /** Its shared region, whose name this process removes once done with it. */
  readonly region: string | undefined;
  /** A new wire replaced it on the connection: nobody writes it any more. */
  readonly retired: boolean;
  /** As RtspSessionInfo.wireHolderDead. */
  holderDead(tag: number): boolean;
}

/** One playable asset, as the catalog found it at DESCRIBE or SETUP time. */
export interface RtspMedia {
  /** Canonical URL path, e.g. '/sample.ts'. */
  readonly name: string;
  /** mtime of the asset file (ms): the SDP's session version. */
  readonly sourceMtimeMs: number;
  /** The end of its npt range: covers the last frame's presentation. */
  readonly durationMs: number;
  /** Bits per second. */
  readonly bitrate: number;
  /** 188-byte TS packets in the asset (a play's last datagram may carry fewer than 7). */
  readonly packetCount: number;
  /**
   * The packet a PLAY asked to start at `ticks` (90 kHz from the asset's start)
   * begins with: a decoder can only start at a key frame.
   */
  startPacketAt(ticks: number): number;
  /** A packet's send time, 90 kHz ticks from packet 0 (the Range a PLAY reply names). */
  packetTicks(packet: number): Promise<number>;
  /**
   * The packet a PLAY asked to stop at `ticks` stops before: the datagrams up to
   * the last picture presented at or before it are sent.
   */
  endPacketAt(ticks: number): Promise<number>;
  /** The npt (90 kHz ticks) where a play stopping before `endPacket` ends: the presentation of the picture there. */
  endTicks(endPacket: number): Promise<number>;
  /** Reserve the data paths' state and ports for one session of this asset. */
  openSession(options: RtspOpenOptions): Promise<RtspSessionInfo>;
}

/** Session events the server reacts to (BYE, teardown). */
export interface RtspBackendListener {
  /** The data paths sent the asset's last datagram. */
  sessionEnded(id: string): void;
  /** A fault ended the session; `reason` is for the log. */
  sessionFailed(id: string, reason: string): void;
  /** Someone else (an operator) closed it. */
  sessionClosed(id: string): void;
}

export interface RtspBackend {
  /** The asset at a URL path; a TwinframeError (TF_ASSET_*, TF_RTSP_NOT_FOUND, …) when there is none. */
  resolve(urlPath: string): Promise<RtspMedia>;
  /**
   * Start (or resume, without startPacket) streaming; to before endPacket (a resume without it keeps its end);
   * at `scale` (1 by default; trick play: TRICK_SCALES, else TF_RTSP_HEADER_NOT_VALID).
   */
  play(sessionId: string, options: { startPacket?: number; endPacket?: number; scale?: number }): Promise<RtspPlayResult>;
  pause(sessionId: string): void;
  /** Free the session on the data paths. */
  closeSession(sessionId: string): void;
  /** An interleaved session's wire, as the data paths write it; undefined for any other session. */
  interleavedWire(sessionId: string): RtspSharedWire | undefined;
  /** Datagrams sent so far; undefined once the backend no longer has the session. */
  sent(sessionId: string): number | undefined;
  /** Throws (TF_SESSION_LIMIT, TF_BANDWIDTH_LIMIT) if a session of this bitrate would exceed the limits as they are now. */
  checkAdmission(bitrate: number, excludingSessionId: string): void;
  /** Listen to session events; returns the function that stops listening. */
  subscribe(listener: RtspBackendListener): () => void;
}
