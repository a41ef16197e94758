// The RTSP/1.0 front end (RFC 2326) on the main thread: accepts TCP
// connections, frames requests (message.ts), answers OPTIONS, DESCRIBE, SETUP,
// PLAY, PAUSE, TEARDOWN, GET_PARAMETER and SET_PARAMETER, and turns them into
// calls on its backend (backend.ts: the engine and the catalog, behind an
// interface declared here). It never touches media: the engine's two data paths
// stream, and nothing this module does (a flood of connections, a stalled
// client, a malformed request) can reach them except through those calls.
//
//   TCP connection ── RtspRequestParser ── per-connection queue ── method handler
//        │  idle timeout, request timeout,            (in order)        │
//        │  connection cap, write bound                                 ▼
//        └──────────────────────────────────────── RtspSession ── backend: resolve/openSession/play/pause/closeSession
//                                                   (state, timeout, RTCP)
//
// Sessions belong to the server, not to a connection (RFC 2326 §3.4): a player
// may reconnect to send TEARDOWN, and a session whose player vanished is torn
// down by its inactivity timeout, which frees its data-path state.

import dns from 'node:dns';
import net from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { TwinframeError, isTwinframeError, type ErrorCode } from '../errors.js';
import { TICKS_HZ } from '../mpegts/packet.js';
import { silentLogger } from '../log.js';
import { monoNowMs } from '../shared/clock.js';
import { LogRateLimit } from '../log-rate-limit.js';
import { parseRange, resolveRange, serializeRange } from './headers/range.js';
import { formatScale, parseScale, playScale } from './headers/scale.js';
import { serializeRtpInfo } from './headers/rtp-info.js';
import { parseSession, serializeSession } from './headers/session.js';
import {
  chooseTransport, parseTransport, serializeTransportSpec, transportReply,
  type ChosenTransport, type InterleavedTransport, type UdpTransport,
} from './headers/transport.js';
import { OrderedConnection } from '../net/ordered-connection.js';
import { RtspRequestParser, serializeResponse, type HeaderValue, type RtspRequest } from './message.js';
import { RtcpSender } from './rtcp.js';
import { buildSdp, sdpSessionId } from './sdp.js';
import { RtspSession, type RtspSessionFacts, type RtspSessionRecord, type RtspSessionState } from './session.js';
import { TRACK_CONTROL, parseRtspUrl } from './url.js';
import type { RtspBackend, RtspBackendListener, RtspMedia, RtspSessionInfo } from './backend.js';
import { WireWriter } from './wire-writer.js';
import { createWire, limitSendBuffer, processLockSpace, wireAddon } from '../shared/wire.js';
import type { RtspAuthenticator } from './auth.js';
import type { BroadcastLookup } from '../broadcast/lookup.js';
import { BroadcastViewers } from './broadcast-viewers.js';

export interface RtspServerOptions {
  /** The engine and the catalog, as the RTSP server sees them. */
  readonly backend: RtspBackend;
  /** Listen address. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8554; 0 picks a free port (tests). */
  readonly port?: number;
  /** A session that receives no request for this long is torn down. Default 60 s. */
  readonly sessionTimeoutMs?: number;
  /** Let SETUP's destination= name an address other than the client's own. Default false. */
  readonly allowForeignDestination?: boolean;
  /**
   * Source address of every session's media (network.streamIp). Default: the
   * local address of the viewer's RTSP connection, the address it reached us
   * on, which the route back to it leaves from.
   */
  readonly streamAddress?: string;
  /** Largest request head, and largest body, accepted; bigger gets 413 and the connection closed. Default 16 KiB. */
  readonly maxRequestBytes?: number;
  /**
   * RTP on the RTSP connection: a session whose stream falls this far behind its
   * schedule (a viewer that reads too slowly) is torn down. Default 2000 ms.
   */
  readonly interleavedBacklogMs?: number;
  /** Connections from one client address beyond this many get 503 and are closed at once. Default 256. */
  readonly maxConnectionsPerAddress?: number;
  /** SETUPs beyond this many live sessions set up from one client address get 453. Default 256. */
  readonly maxSessionsPerAddress?: number;
  /** SETUPs beyond this many live sessions set up on one connection get 453. Default 16. */
  readonly maxSessionsPerConnection?: number;
  /** A session not played this long after its SETUP is torn down (it holds a stream's admission). Default 15 s. */
  readonly setupTimeoutMs?: number;
  /** Connections beyond this many get 503 and are closed at once. Default 1000. */
  readonly maxConnections?: number;
  /** Where interleaved sessions' wires live: a process pair's shared regions, which its standby maps. Default: this process's heap. */
  readonly wireMemory?: WireMemory;
  /**
   * A connection with no request for this long is closed (its sessions live on;
   * blank lines and stray interleaved frames do not count, a playing viewer's
   * RTCP on its connection does). Default session timeout + 10 s.
   */
  readonly idleTimeoutMs?: number;
  /** A request must be complete this long after its first byte arrived, else 408 and close. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Who may send requests (auth.ts); undefined: everybody. */
  readonly auth?: RtspAuthenticator;
  /** The broadcasts viewers join at rtsp://host/broadcast/<name> (broadcast-viewers.ts); undefined: none (404). */
  readonly broadcasts?: BroadcastLookup;
  readonly logger?: Logger;
  /** Called for every reply sent: the request's method (ours, 'other', or 'none' when no request was read) and the status. */
  readonly onReply?: (method: string, status: number) => void;
  /**
   * Refusals logged per second per client address and status, and for all clients together; the
   * rest is counted in one summary line per client and status. Default 10 and 100.
   */
  readonly refusalLogLimit?: { readonly perClient: number; readonly total: number };
}

/** Memory for wires that another process maps (a process pair, src/pair-process/shared-wires.ts). */
export interface WireMemory {
  /** A new zeroed region of `bytes`, and the name the other process maps it by. */
  create(bytes: number): { readonly sab: SharedArrayBuffer; readonly region: string };
  /** This process's writer is done with the region: its name goes (the memory lives while a process maps it). */
  remove(region: string): void;
  /** The other process writes on the region now (a role switch): its name is that one's to remove. */
  forget(region: string): void;
}

/** What a reload may change on a running server: each applies to what comes next (requests, connections, sessions). */
export type RtspLiveSettings = Required<Pick<RtspServerOptions,
  'sessionTimeoutMs' | 'allowForeignDestination' | 'maxRequestBytes' | 'maxConnections' | 'idleTimeoutMs' | 'requestTimeoutMs'
  | 'interleavedBacklogMs' | 'maxConnectionsPerAddress' | 'maxSessionsPerAddress' | 'maxSessionsPerConnection' | 'setupTimeoutMs'>>
  & Pick<RtspServerOptions, 'streamAddress'>;

/** Methods this server implements, as OPTIONS lists them. GET_PARAMETER tells ffmpeg to use it for keep-alive. */
const PUBLIC_METHODS = ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER'] as const;
type Method = (typeof PUBLIC_METHODS)[number];

/**
 * Session states in which each method that names a session is valid. SETUP on
 * an existing session would change its transport; with one track per asset
 * that is its only use, and RFC 2326 §10.4 lets a server refuse it with 455.
 */
const ALLOWED_STATES: Readonly<Record<'SETUP' | 'PLAY' | 'PAUSE', readonly RtspSessionState[]>> = {
  SETUP: [],
  PLAY: ['ready', 'playing'],
  PAUSE: ['ready', 'playing'],
};

const SERVER_NAME = 'twinframe';
const LISTEN_BACKLOG = 1024;
/** Requests queued on one connection before the server stops reading from it. */
const MAX_PIPELINED = 32;
/** Response bytes a client may leave unread before the connection is dropped. */
const MAX_UNREAD_RESPONSE_BYTES = 1024 * 1024;
/** The smallest backlog of an interleaved connection, in its wire and in the kernel's send buffer each. */
const WIRE_MIN_BYTES = 64 * 1024;
/** After an error reply that ends a connection, how long the client gets to read it. */
const CLOSE_GRACE_MS = 1000;
/** The connection id of a session taken over from another process: none of this server's (they count from 1). */
const ADOPTED_CONNECTION = 0;
/** While a role switch waits for the requests read so far to be answered, how often it looks. */
const QUIESCE_POLL_MS = 2;

/** Asset refusals by content: there is no playable asset at that URL. */
const ASSET_VERDICTS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TF_ASSET_EMPTY', 'TF_ASSET_NOT_TS', 'TF_ASSET_TRUNCATED', 'TF_ASSET_NO_PAT', 'TF_ASSET_NO_PMT', 'TF_ASSET_NO_PCR', 'TF_INDEX_CORRUPT',
]);

interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, HeaderValue>>;
  readonly body?: string;
}

/**
 * A process pair's role switch, as this server does its part (quiesce): every
 * connection stopped at a request boundary, every request read so far answered.
 */
export interface RtspHandover {
  /**
   * The other process answers from now on: this one lets go of its listening
   * socket and of its copy of each connection (no FIN: the other process holds
   * them too), and its sessions go dormant. Returns each connection handed on
   * with the bytes received here and not yet answered (the start of its next
   * request); a connection not listed was closing here.
   */
  commit(): Array<{ readonly id: number; readonly pending: Buffer }>;
  /** The switch failed: answer on, starting with what arrived meanwhile. */
  resume(): void;
}

/** A process pair's primary, told of the listening socket and of each connection (watchConnections). */
export interface ConnectionWatcher {
  listening(server: net.Server): void;
  opened(id: number, socket: net.Socket): void;
  closed(id: number): void;
}

/** One client TCP connection: its reader, its in-order request queue (OrderedConnection), its timers. */
class Connection {
  readonly id: number;
  readonly socket: net.Socket;
  readonly ordered: OrderedConnection;
  readonly peer: string;
  readonly local: string;
  readonly parser: RtspRequestParser;
  readonly log: Logger;
  requestTimer: NodeJS.Timeout | undefined;
  /**
   * Set once a session has streamed RTP on this connection: from then on every
   * byte the server writes to it goes through this wire, between whole media frames.
   */
  wire: WireWriter | undefined;
  /** The session whose RTP this connection carries (one at a time). */
  interleaved: RtspSession | undefined;
  /** A role switch passed this connection to the other process of the pair: its close here is no close of the connection. */
  handedOver = false;
  /** The other process of the pair accepted it (a takeover): sessions of that process's records may name it. */
  adopted = false;

  constructor(id: number, socket: net.Socket, maxRequestBytes: number, log: Logger) {
    this.id = id;
    this.socket = socket;
    this.peer = plainAddress(socket.remoteAddress ?? '');
    this.local = plainAddress(socket.localAddress ?? '127.0.0.1');
    // Interleaved frames from the viewer (RTCP receiver reports) keep its session alive.
    this.parser = new RtspRequestParser({ maxHeadBytes: maxRequestBytes, maxBodyBytes: maxRequestBytes }, () => this.#frameReceived());
    this.log = log.child({ conn: id, peer: this.peer });
    this.ordered = new OrderedConnection(socket, {
      pauseAt: MAX_PIPELINED,
      resumeAt: MAX_PIPELINED / 2 - 1,
      closeGraceMs: CLOSE_GRACE_MS,
      maxUnreadBytes: MAX_UNREAD_RESPONSE_BYTES,
      onUnreadLimit: (unread) => this.log.warn({ unread }, 'client does not read its responses; connection dropped'),
      onTaskError: (err) => {
        this.log.error({ err: (err as Error).message }, 'request handling failed');
        socket.destroy();
      },
    });
  }

  #idle: { timer: NodeJS.Timeout | undefined; ms: number; onIdle: () => void } | undefined;

  /** Call `onIdle` once the connection has been idle for `ms` (see active()). */
  onIdle(ms: number, onIdle: () => void): void {
    this.#idle = { timer: undefined, ms, onIdle };
    this.active();
    this.socket.once('close', () => clearTimeout(this.#idle?.timer));
  }

  /**
   * A complete request arrived (or its viewer's RTCP): the idle time starts over.
   * Blank lines and stray interleaved frames do not count: they would keep an
   * otherwise idle connection, and its slot, forever.
   */
  active(): void {
    const idle = this.#idle;
    if (!idle || this.socket.destroyed) return;
    clearTimeout(idle.timer);
    idle.timer = setTimeout(idle.onIdle, idle.ms);
    idle.timer.unref();
  }

  /** An interleaved frame from the viewer: its RTCP keeps its session, and this connection, alive. */
  #frameReceived(): void {
    const session = this.interleaved;
    if (!session || session.disposed) return;
    session.touch();
    this.active();
  }

  /** No more requests are read: an error reply is the last thing it gets. */
  get ending(): boolean {
    return this.ordered.ending;
  }

  write(bytes: Buffer): void {
    if (this.wire) this.wire.write(bytes);
    else this.ordered.writeBounded(bytes);
  }

  /** Send what is written, then close; destroy if the client does not let go. */
  end(): void {
    this.clearRequestTimer();
    if (!this.wire) {
      this.ordered.end();
      return;
    }
    this.ordered.stopReading();
    void this.wire.whenDrained(CLOSE_GRACE_MS).then(() => this.socket.destroy());
  }

  /** The socket's descriptor (the data paths write interleaved RTP to it); -1 once closed. */
  get fd(): number {
    if (this.socket.destroyed) return -1;
    return (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
  }

  clearRequestTimer(): void {
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
  }
}

export class RtspServer {
  readonly #backend: RtspBackend;
  #unsubscribe: (() => void) | undefined;
  readonly #host: string;
  readonly #port: number;
  #sessionTimeoutMs: number;
  #allowForeignDestination: boolean;
  #streamAddress: string | undefined;
  #maxRequestBytes: number;
  #maxConnections: number;
  #maxConnectionsPerAddress: number;
  #maxSessionsPerAddress: number;
  #maxSessionsPerConnection: number;
  #setupTimeoutMs: number;
  /** Open connections by client address. */
  readonly #connectionsByAddress = new Map<string, number>();
  /** Addresses refused at their connection cap since they last fell below it (one log line each). */
  readonly #addressesAtCap = new Set<string>();
  #idleTimeoutMs: number;
  #requestTimeoutMs: number;
  #interleavedBacklogMs: number;
  readonly #auth: RtspAuthenticator | undefined;
  readonly #wireMemory: WireMemory | undefined;
  readonly #log: Logger;
  readonly #onReply: ((method: string, status: number) => void) | undefined;
  readonly #refusalLog: LogRateLimit;
  readonly #server: net.Server;
  readonly #connections = new Set<Connection>();
  readonly #sessions = new Map<string, RtspSession>();
  /** A process pair's primary: told of every session's SETUP and change of state (watchSessions). */
  readonly #sessionWatchers = new Set<(record: RtspSessionRecord) => void>();
  readonly #broadcastViewers: BroadcastViewers;
  readonly #cname = `twinframe@${hostname()}`;
  #nextConnectionId = 1;
  #atCapacity = false;
  #acceptedConnections = 0;
  #refusedConnections = 0;
  #closed = false;
  #listening = false;
  #listenOnce: Promise<{ address: string; port: number }> | undefined;
  /** A process pair's role switch under way (quiesce): what each connection at a request boundary received since, unparsed. */
  #held: Map<Connection, Buffer[]> | undefined;
  /** A process pair's primary: told of the listening socket and of every connection opened and closed (watchConnections). */
  readonly #connectionWatchers = new Set<ConnectionWatcher>();

  constructor(options: RtspServerOptions) {
    this.#backend = options.backend;
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 8554;
    this.#sessionTimeoutMs = options.sessionTimeoutMs ?? 60_000;
    this.#allowForeignDestination = options.allowForeignDestination ?? false;
    this.#streamAddress = options.streamAddress;
    this.#maxRequestBytes = options.maxRequestBytes ?? 16 * 1024;
    this.#maxConnections = options.maxConnections ?? 1000;
    this.#maxConnectionsPerAddress = options.maxConnectionsPerAddress ?? 256;
    this.#maxSessionsPerAddress = options.maxSessionsPerAddress ?? 256;
    this.#maxSessionsPerConnection = options.maxSessionsPerConnection ?? 16;
    this.#setupTimeoutMs = options.setupTimeoutMs ?? 15_000;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? this.#sessionTimeoutMs + 10_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#interleavedBacklogMs = options.interleavedBacklogMs ?? 2000;
    this.#auth = options.auth;
    this.#wireMemory = options.wireMemory;
    this.#log = (options.logger ?? silentLogger).child({ component: 'rtsp' });
    this.#onReply = options.onReply;
    this.#refusalLog = new LogRateLimit({
      perKey: options.refusalLogLimit?.perClient ?? 10,
      total: options.refusalLogLimit?.total ?? 100,
      windowMs: 1000,
      onSuppressed: (peer, status, suppressed, windowMs) => {
        this.#log.warn({ peer, status: Number(status), suppressed, windowMs }, `${suppressed} more refusal(s) with status ${status} from ${peer} not logged`);
      },
    });
    this.#server = net.createServer((socket) => this.#accept(socket));
    this.#server.on('error', (err) => this.#log.error({ err: err.message }, 'RTSP listener error'));
    this.#unsubscribe = this.#backend.subscribe(this.#events);
    this.#broadcastViewers = new BroadcastViewers({
      lookup: options.broadcasts,
      resolve: (assetPath) => this.#backend.resolve(assetPath),
      publicMethods: PUBLIC_METHODS,
      settings: () => ({ sessionTimeoutMs: this.#sessionTimeoutMs, maxPerAddress: this.#maxSessionsPerAddress }),
      logger: this.#log,
      allowLog: (peer, status) => this.#refusalLog.allow(peer, status),
    });
  }

  /**
   * Start listening; resolves with the bound address (port 0 becomes the real
   * port). `fd`: on a listening socket a process pair's primary passed. While it
   * listens, or is about to, a call returns the same; after a failure it tries again.
   */
  listen(fd?: number): Promise<{ address: string; port: number }> {
    const listening = this.#listenOnce ??= this.#startListening(fd);
    listening.catch(() => {
      if (this.#listenOnce === listening) this.#listenOnce = undefined;
    });
    return listening;
  }

  async #startListening(fd: number | undefined): Promise<{ address: string; port: number }> {
    if (this.#closed) throw new TwinframeError('TF_ENGINE_STOPPED', 'RTSP server is closed');
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      // A deep accept queue: in a connection storm the cap answers 503 at once instead of
      // the kernel silently dropping handshakes the server never sees.
      this.#server.listen(fd === undefined ? { host: this.#host, port: this.#port, backlog: LISTEN_BACKLOG } : { fd, backlog: LISTEN_BACKLOG }, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    this.#listening = true;
    for (const watcher of this.#connectionWatchers) watcher.listening(this.#server);
    // A process pair's standby that took over: it answers for its primary's sessions from now on.
    for (const session of this.#sessions.values()) this.#wakeAdopted(session);
    const address = this.address();
    this.#log.info({ host: address.address, port: address.port }, 'RTSP server listening');
    return address;
  }

  address(): { address: string; port: number } {
    const a = this.#server.address();
    if (a === null || typeof a === 'string') return { address: this.#host, port: this.#port };
    return { address: a.address, port: a.port };
  }

  get port(): number {
    return this.address().port;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Connections taken in (under the cap), since start. */
  get acceptedConnections(): number {
    return this.#acceptedConnections;
  }

  /** Connections refused because the cap was reached, since start. */
  get refusedConnections(): number {
    return this.#refusedConnections;
  }

  /** Viewers holding a handle to a multicast broadcast (no data-path work each), for operators and tests. */
  broadcastViewers(): ReadonlyArray<{ id: string; broadcast: string; peer: string }> {
    return this.#broadcastViewers.viewers();
  }

  /** The live sessions, for operators and tests. */
  sessions(): ReadonlyArray<{ id: string; state: RtspSessionState; asset: string; transport: 'rtp' | 'udp' }> {
    return [...this.#sessions.values()].map((s) => ({ id: s.id, state: s.state, asset: s.asset.name, transport: s.transport.kind }));
  }

  /**
   * A reload: the new values apply from now on — to the next request, connection or
   * session, and the idle timeout to the open connections too. Nothing open is dropped.
   */
  reconfigure(settings: RtspLiveSettings): void {
    this.#sessionTimeoutMs = settings.sessionTimeoutMs;
    this.#allowForeignDestination = settings.allowForeignDestination;
    this.#streamAddress = settings.streamAddress;
    this.#maxRequestBytes = settings.maxRequestBytes;
    this.#maxConnections = settings.maxConnections;
    this.#requestTimeoutMs = settings.requestTimeoutMs;
    this.#interleavedBacklogMs = settings.interleavedBacklogMs;
    this.#maxConnectionsPerAddress = settings.maxConnectionsPerAddress;
    this.#maxSessionsPerAddress = settings.maxSessionsPerAddress;
    this.#maxSessionsPerConnection = settings.maxSessionsPerConnection;
    this.#setupTimeoutMs = settings.setupTimeoutMs;
    if (settings.idleTimeoutMs !== this.#idleTimeoutMs) {
      this.#idleTimeoutMs = settings.idleTimeoutMs;
      for (const conn of this.#connections) conn.socket.setTimeout(settings.idleTimeoutMs);
    }
  }

  /**
   * Stop accepting viewers (a process pair's role switch: the other process
   * listens on the port now, on the same socket); listen() again later.
   */
  stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    this.#listenOnce = undefined; // a later switch back listens again
    this.#server.close();
    this.#log.info('RTSP server stopped listening (the other process of the pair listens)');
  }

  /** Stop listening, drop every connection, tear down every session (BYE to each player). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#broadcastViewers.close();
    const stopped = this.#listening ? new Promise<void>((resolve) => this.#server.close(() => resolve())) : Promise.resolve();
    for (const conn of this.#connections) {
      conn.clearRequestTimer();
      conn.socket.destroy();
    }
    await Promise.all([...this.#sessions.values()].map((s) => this.#teardown(s, 'server closing')));
    await stopped;
    this.#refusalLog.close();
    this.#log.info('RTSP server closed');
  }

  // ── Connections ────────────────────────────────────────────────────────────

  /** `adoptedId`: the id the other process of a pair gave the connection (its sessions' records name it). */
  #accept(socket: net.Socket, adoptedId?: number): Connection | undefined {
    socket.on('error', () => {}); // resets and the like end in 'close'; nothing to report to anyone
    if (this.#closed) {
      socket.destroy();
      return undefined;
    }
    if (this.#connections.size >= this.#maxConnections) {
      this.#refusedConnections++;
      if (!this.#atCapacity) {
        this.#atCapacity = true;
        this.#log.warn({ status: 503, code: 'TF_RTSP_TOO_MANY_CONNECTIONS', limit: this.#maxConnections }, 'connection limit reached; refusing new connections with 503');
      }
      this.#refuseConnection(socket);
      return undefined;
    }
    // One address must not take every slot: a flood from it leaves room for everyone else.
    const address = plainAddress(socket.remoteAddress ?? '');
    const fromAddress = this.#connectionsByAddress.get(address) ?? 0;
    if (fromAddress >= this.#maxConnectionsPerAddress) {
      this.#refusedConnections++;
      if (!this.#addressesAtCap.has(address)) {
        this.#addressesAtCap.add(address);
        this.#log.warn({ status: 503, code: 'TF_RTSP_TOO_MANY_CONNECTIONS', peer: address, limit: this.#maxConnectionsPerAddress }, 'connection limit of a client address reached; refusing its new connections with 503');
      }
      this.#refuseConnection(socket);
      return undefined;
    }
    this.#connectionsByAddress.set(address, fromAddress + 1);
    this.#acceptedConnections++;
    const id = adoptedId ?? this.#nextConnectionId;
    this.#nextConnectionId = Math.max(this.#nextConnectionId, id + 1);
    const conn = new Connection(id, socket, this.#maxRequestBytes, this.#log);
    this.#connections.add(conn);
    for (const watcher of this.#connectionWatchers) watcher.opened(conn.id, socket);
    socket.setNoDelay(true);
    conn.onIdle(this.#idleTimeoutMs, () => {
      // debug, not info: a flood of idle connections must not become a flood of log lines.
      conn.log.debug({ idleMs: this.#idleTimeoutMs }, 'idle connection closed');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk));
    socket.on('close', () => {
      conn.clearRequestTimer();
      conn.wire?.close();
      // RTP on this connection has nowhere to go any more: a reset ends its session (unless it was handed on).
      const interleaved = conn.interleaved;
      if (interleaved && !conn.handedOver) {
        this.#teardown(interleaved, 'connection closed').catch((err: Error) => interleaved.log.error({ err: err.message }, 'teardown failed'));
      }
      this.#connections.delete(conn);
      if (!conn.handedOver) for (const watcher of this.#connectionWatchers) watcher.closed(conn.id);
      const left = (this.#connectionsByAddress.get(conn.peer) ?? 1) - 1;
      if (left > 0) this.#connectionsByAddress.set(conn.peer, left);
      else this.#connectionsByAddress.delete(conn.peer);
      if (left < this.#maxConnectionsPerAddress) this.#addressesAtCap.delete(conn.peer);
      if (this.#atCapacity && this.#connections.size < this.#maxConnections) {
        this.#atCapacity = false;
        this.#log.info({ refused: this.#refusedConnections }, 'below the connection limit again');
      }
      conn.log.debug('connection closed');
    });
    conn.log.debug('connection opened');
    return conn;
  }

  /** Over a connection limit: 503 without CSeq (no request was read), better than a silent reset for a player's error message. */
  #refuseConnection(socket: net.Socket): void {
    socket.end(serializeResponse({ status: 503, headers: { Server: SERVER_NAME } }));
    this.#replied(undefined, 503);
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  #onData(conn: Connection, chunk: Buffer): void {
    if (conn.ending) return;
    const held = this.#held;
    if (held && conn.parser.atBoundary) {
      // A role switch under way: the process that answers next gets these bytes. Past a request's
      // worth, reading stops: the rest waits in the kernel, where the other process reads it.
      const chunks = held.get(conn) ?? [];
      held.set(conn, chunks);
      chunks.push(chunk);
      if (chunks.reduce((n, c) => n + c.length, 0) > this.#maxRequestBytes) conn.socket.pause();
      return;
    }
    const { messages, error } = conn.parser.push(chunk);
    if (messages.length > 0) conn.active();
    for (const request of messages) conn.ordered.enqueue(() => this.#handle(conn, request));
    if (error) {
      conn.ordered.stopReading();
      conn.clearRequestTimer();
      conn.ordered.enqueue(() => this.#refuseFraming(conn, error));
      return;
    }
    // A slow client (slowloris) must finish each request within the request timeout, counted from its first byte.
    if (messages.length > 0) conn.clearRequestTimer();
    if (conn.parser.bufferedBytes > 0 && conn.requestTimer === undefined) {
      conn.requestTimer = setTimeout(() => {
        conn.requestTimer = undefined;
        if (conn.ending) return;
        if (this.#refusalLog.allow(conn.peer, 408)) {
          conn.log.info({ status: 408, code: 'TF_RTSP_REQUEST_TIMEOUT', buffered: conn.parser.bufferedBytes, timeoutMs: this.#requestTimeoutMs }, 'incomplete request timed out');
        }
        conn.ordered.stopReading();
        conn.ordered.enqueue(() => {
          conn.write(serializeResponse({ status: 408, headers: { Server: SERVER_NAME } }));
          this.#replied(undefined, 408);
          conn.end();
        });
      }, this.#requestTimeoutMs);
      conn.requestTimer.unref();
    } else if (conn.parser.bufferedBytes === 0) {
      conn.clearRequestTimer();
    }
  }

  /** The framing is lost (malformed, oversized, wrong version): answer once and close. */
  #refuseFraming(conn: Connection, error: TwinframeError): void {
    const status = error.rtspStatus ?? 400;
    const cseq = typeof error.details.cseq === 'number' ? error.details.cseq : undefined;
    if (this.#refusalLog.allow(conn.peer, status)) conn.log.warn({ status, code: error.code, reason: error.message }, 'malformed request; closing the connection');
    conn.write(serializeResponse({ status, headers: { CSeq: cseq, Server: SERVER_NAME } }));
    this.#replied(undefined, status);
    conn.end();
  }

  // ── Requests ───────────────────────────────────────────────────────────────

  async #handle(conn: Connection, request: RtspRequest): Promise<void> {
    const started = performance.now();
    // A PLAY's reply must reach the player before the first media frame on its connection
    // (players drop frames that come first): no data path writes to the wire meanwhile.
    const wire = request.method === 'PLAY' ? conn.wire : undefined;
    await wire?.hold();
    let reply: Reply;
    try {
      reply = (await this.#authorize(conn, request)) ?? await this.#dispatch(conn, request);
    } catch (err) {
      reply = this.#errorReply(conn, request, err);
    }
    const headers: Record<string, HeaderValue> = { CSeq: request.cseq, Server: SERVER_NAME, ...reply.headers };
    conn.write(serializeResponse({ status: reply.status, headers, ...(reply.body !== undefined ? { body: reply.body } : {}) }));
    wire?.release();
    this.#replied(request.method, reply.status);
    if (reply.status < 400) {
      conn.log.debug({ method: request.method, cseq: request.cseq, status: reply.status, ms: round(performance.now() - started) }, 'request');
    }
  }

  /** Authentication and access (auth.ts): undefined lets the request through, else the refusal to send. */
  async #authorize(conn: Connection, request: RtspRequest): Promise<Reply | undefined> {
    if (this.#auth === undefined || !this.#auth.enabled) return undefined;
    const url = parseRtspUrl(request.uri);
    const authorization = request.headers.get('authorization');
    const verdict = await this.#auth.check({
      connection: conn, peer: conn.peer, method: request.method, uri: request.uri, authorization,
      assetPath: url.kind === 'absolute' ? url.assetPath : undefined,
    });
    if (verdict.ok) return undefined;
    // A challenge to a request without credentials is how every login starts: not news.
    const log = authorization === undefined ? conn.log.debug.bind(conn.log) : conn.log.info.bind(conn.log);
    if (this.#refusalLog.allow(conn.peer, verdict.status)) {
      log({ method: loggableMethod(request.method), cseq: request.cseq, status: verdict.status, reason: verdict.reason }, 'request refused: authentication');
    }
    return { status: verdict.status, headers: { 'WWW-Authenticate': verdict.challenges } };
  }

  #errorReply(conn: Connection, request: RtspRequest, err: unknown): Reply {
    const method = loggableMethod(request.method);
    if (isTwinframeError(err)) {
      const status = err.rtspStatus ?? (ASSET_VERDICTS.has(err.code) ? 404 : 500);
      const log = status >= 500 ? conn.log.error.bind(conn.log) : conn.log.info.bind(conn.log);
      if (this.#refusalLog.allow(conn.peer, status)) log({ method, cseq: request.cseq, status, code: err.code, reason: err.message }, 'request refused');
      const headers: Record<string, HeaderValue> = {};
      if (status === 501 || status === 405) headers.Public = PUBLIC_METHODS.join(', ');
      if (status === 551 && typeof err.details.unsupported === 'string') headers.Unsupported = err.details.unsupported;
      return { status, headers };
    }
    if (this.#refusalLog.allow(conn.peer, 500)) conn.log.error({ method, cseq: request.cseq, status: 500, err: (err as Error)?.message ?? String(err) }, 'request failed');
    return { status: 500 };
  }

  /** Tell onReply about a reply: `method` undefined when no request was read. */
  #replied(method: string | undefined, status: number): void {
    if (this.#onReply === undefined) return;
    const label = method === undefined ? 'none' : (PUBLIC_METHODS as readonly string[]).includes(method) ? method : 'other';
    this.#onReply(label, status);
  }

  #dispatch(conn: Connection, request: RtspRequest): Promise<Reply> | Reply {
    const require = request.headers.get('require');
    if (require !== undefined) {
      // RFC 2326 §12.32: we support no extension, so every required one is unsupported.
      throw new TwinframeError('TF_RTSP_OPTION_NOT_SUPPORTED', 'Require names an option this server lacks', { unsupported: require.slice(0, 200) });
    }
    if (this.#closed) throw new TwinframeError('TF_ENGINE_STOPPED', 'the server is shutting down');
    // Broadcasts are checked before the mounts (their viewers hold no session of the backend).
    if (this.#broadcastViewers.owns(request)) return this.#broadcastViewers.handle(conn.peer, conn.local, request);
    switch (request.method as Method) {
      case 'OPTIONS': return this.#options(request);
      case 'DESCRIBE': return this.#describe(conn, request);
      case 'SETUP': return this.#setup(conn, request);
      case 'PLAY': return this.#play(request);
      case 'PAUSE': return this.#pause(request);
      case 'TEARDOWN': return this.#teardownRequest(request);
      case 'GET_PARAMETER':
      case 'SET_PARAMETER': return this.#parameter(request);
      default:
        throw new TwinframeError('TF_RTSP_NOT_IMPLEMENTED', `method ${loggableMethod(request.method)} is not implemented`);
    }
  }

  #options(request: RtspRequest): Reply {
    if (request.uri !== '*') parseRtspUrl(request.uri);
    const session = this.#optionalSession(request);
    return { status: 200, headers: { Public: PUBLIC_METHODS.join(', '), ...this.#sessionHeader(session) } };
  }

  async #describe(conn: Connection, request: RtspRequest): Promise<Reply> {
    const url = absoluteUrl(request.uri);
    const accept = request.headers.get('accept');
    if (accept !== undefined && !/(^|,)\s*(application\/sdp|application\/\*|\*\/\*)\s*(;|,|$)/i.test(accept)) {
      throw new TwinframeError('TF_RTSP_NOT_ACCEPTABLE', 'Accept does not include application/sdp');
    }
    const asset = await this.#backend.resolve(url.assetPath);
    const sdp = buildSdp({
      sessionId: sdpSessionId(asset.name),
      sessionVersion: Math.max(1, Math.floor(asset.sourceMtimeMs)),
      serverAddress: conn.local,
      name: asset.name,
      durationSeconds: asset.durationMs / 1000,
      bitrateKbps: asset.bitrate / 1000,
    });
    // Players resolve the SDP's relative a=control against this; the trailing '/' keeps RFC 3986 resolvers inside the asset.
    let base = request.uri.replace(/[?#].*$/, '');
    if (url.track !== undefined) base = base.replace(/\/track[0-9]{1,3}\/?$/, ''); // DESCRIBE of the track URL: describe its asset
    return {
      status: 200,
      headers: { 'Content-Base': base.endsWith('/') ? base : `${base}/`, 'Content-Type': 'application/sdp' },
      body: sdp,
    };
  }

  async #setup(conn: Connection, request: RtspRequest): Promise<Reply> {
    const url = absoluteUrl(request.uri);
    const existing = this.#optionalSession(request);
    if (existing) existing.checkState('SETUP', ALLOWED_STATES.SETUP);
    if (url.track !== undefined && url.track !== TRACK_CONTROL) {
      throw new TwinframeError('TF_RTSP_NOT_FOUND', `no track ${url.track} (the asset has one, ${TRACK_CONTROL})`);
    }
    const transportHeader = request.headers.get('transport');
    if (transportHeader === undefined) throw new TwinframeError('TF_RTSP_BAD_REQUEST', 'SETUP without a Transport header');
    this.#checkClientLimits(conn);
    const chosen = chooseTransport(parseTransport(transportHeader), wireAddon ? undefined : 'RTP/AVP/TCP (interleaved) needs the native addon');
    if (chosen.lower === 'tcp') return this.#setupInterleaved(conn, request, chosen, url.assetPath);
    const destination = await this.#destination(conn, chosen);
    const asset = await this.#backend.resolve(url.assetPath);
    const info = await asset.openSession({
      destination: { address: destination, port: chosen.clientRtpPort },
      transport: chosen.kind,
      source: this.#streamAddress ?? conn.local,
    });
    const session = this.#addSession(conn, request, info, asset, chosen);
    if (chosen.kind === 'rtp' && chosen.clientRtcpPort !== undefined) {
      try {
        session.attachRtcp(await RtcpSender.open(
          { address: info.source.address, port: info.source.rtcpPort },
          { address: destination, port: chosen.clientRtcpPort },
          info.ssrc,
          this.#cname,
          () => session.touch(),
        ), { address: destination, port: chosen.clientRtcpPort });
      } catch (err) {
        // Sender reports are advisory: stream without them rather than refuse the viewer.
        session.log.warn({ err: (err as Error).message, port: info.source.rtcpPort }, 'cannot bind the RTCP port; no sender reports');
      }
    }
    session.log.info({
      asset: asset.name, transport: chosen.kind, destination, clientPort: chosen.clientRtpPort,
      serverPort: info.source.rtpPort, ssrc: info.ssrc,
    }, 'session set up');
    this.#sessionChanged(session);
    const reply = transportReply(chosen, {
      serverRtpPort: info.source.rtpPort,
      ...(chosen.kind === 'rtp' ? { serverRtcpPort: info.source.rtcpPort, ssrc: info.ssrc } : {}),
    });
    return { status: 200, headers: { Transport: serializeTransportSpec(reply), ...this.#sessionHeader(session) } };
  }

  /**
   * SETUP of RTP on this very connection (RFC 2326 §10.12). The connection gets
   * a new wire for the session (one interleaved session per connection at a
   * time), after whatever the last one left in its wire has gone out.
   */
  async #setupInterleaved(conn: Connection, request: RtspRequest, chosen: InterleavedTransport, assetPath: string): Promise<Reply> {
    if (conn.interleaved && this.#sessions.get(conn.interleaved.id) === conn.interleaved) {
      throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', 'this connection already carries an interleaved session');
    }
    const asset = await this.#backend.resolve(assetPath);
    const { writer: wire, region } = await this.#newWire(conn, asset.bitrate);
    const info = await asset.openSession({
      destination: { address: conn.peer, port: 0 },
      transport: 'rtp',
      source: this.#streamAddress ?? conn.local,
      interleaved: {
        connectionFd: conn.fd, channel: chosen.channels.rtp, wire: wire.wire.sab, backlogMs: this.#interleavedBacklogMs,
        ...(region === undefined ? {} : { shared: { connection: conn.id, region, bytes: wire.wire.sab.byteLength } }),
      },
    });
    const session = this.#addSession(conn, request, info, asset, chosen);
    wire.holderDead = (tag) => info.wireHolderDead(tag);
    conn.interleaved = session;
    session.attachRtcp(this.#interleavedRtcp(wire, chosen, info.ssrc));
    this.#sessionChanged(session);
    session.log.info({ asset: asset.name, transport: 'rtp/tcp', channels: `${chosen.channels.rtp}-${chosen.channels.rtcp}`, ssrc: info.ssrc }, 'session set up');
    const reply = transportReply(chosen, { serverRtpPort: 0, ssrc: info.ssrc });
    return { status: 200, headers: { Transport: serializeTransportSpec(reply), ...this.#sessionHeader(session) } };
  }

  /** RTCP of an interleaved session: frames on its channel, through the connection's wire. */
  #interleavedRtcp(wire: WireWriter, transport: InterleavedTransport, ssrc: number): RtcpSender {
    return new RtcpSender({
      send: (packet) => {
        wire.writeFrame(transport.channels.rtcp, packet);
        return Promise.resolve();
      },
      close: () => {},
    }, ssrc, this.#cname);
  }

  /**
   * The connection's wire for a new interleaved session: everything written to
   * the connection so far has left first (Node's own buffer, the last wire).
   * `region`: the shared region it lives in (a process pair).
   */
  async #newWire(conn: Connection, bitrate: number): Promise<{ writer: WireWriter; region: string | undefined }> {
    await conn.ordered.drained(0);
    const last = conn.wire;
    if (last && !(await last.retire(CLOSE_GRACE_MS))) {
      conn.socket.destroy();
      throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', 'the connection still holds unread data of its last session');
    }
    // The wire, and the kernel's queue behind it, hold a backlog's worth of the stream each.
    const backlogBytes = Math.max(WIRE_MIN_BYTES, Math.ceil((bitrate / 8) * (this.#interleavedBacklogMs / 1000)));
    limitSendBuffer(conn.fd, backlogBytes);
    let region: string | undefined;
    const memory = this.#wireMemory;
    const sab = createWire(backlogBytes, conn.fd, memory && ((bytes) => {
      const shared = memory.create(bytes);
      region = shared.region;
      return shared.sab;
    }));
    return { writer: this.#attachWire(conn, sab, region), region };
  }

  /** Every byte written to `conn` from now on goes through the wire in `sab`. */
  #attachWire(conn: Connection, sab: SharedArrayBuffer, region: string | undefined): WireWriter {
    const memory = this.#wireMemory;
    const wire = new WireWriter(sab, {
      fd: () => conn.fd,
      maxQueuedBytes: MAX_UNREAD_RESPONSE_BYTES,
      lockSpace: processLockSpace(),
      onFailure: (reason, peerGone) => {
        if (peerGone) conn.log.debug({ reason }, 'interleaved connection closed by the viewer');
        else conn.log.warn({ reason }, 'interleaved connection dropped');
        conn.socket.destroy();
      },
      ...(memory && region !== undefined ? { release: (handedOver: boolean) => (handedOver ? memory.forget(region) : memory.remove(region)) } : {}),
    });
    conn.wire = wire;
    return wire;
  }

  /**
   * Per-client limits, checked before a SETUP does any work: one address, or one
   * connection, must not take every stream (TF_SESSION_LIMIT, 453).
   */
  #checkClientLimits(conn: Connection): void {
    let fromAddress = 0;
    let onConnection = 0;
    for (const s of this.#sessions.values()) {
      if (s.peer === conn.peer) fromAddress++;
      if (s.connectionId === conn.id) onConnection++;
    }
    if (onConnection >= this.#maxSessionsPerConnection) {
      throw new TwinframeError('TF_SESSION_LIMIT', `this connection already has ${onConnection} sessions (limit ${this.#maxSessionsPerConnection})`, { limit: this.#maxSessionsPerConnection });
    }
    if (fromAddress >= this.#maxSessionsPerAddress) {
      throw new TwinframeError('TF_SESSION_LIMIT', `this client address already has ${fromAddress} sessions (limit ${this.#maxSessionsPerAddress})`, { limit: this.#maxSessionsPerAddress });
    }
  }

  /** A new session set up by `request` on `conn`, in the server's table, with its inactivity and PLAY timeouts. */
  #addSession(conn: Connection, request: RtspRequest, info: RtspSessionInfo, asset: RtspMedia, transport: ChosenTransport): RtspSession {
    if (this.#closed) {
      this.#backend.closeSession(info.id);
      throw new TwinframeError('TF_ENGINE_STOPPED', 'the server is shutting down');
    }
    const session = this.#newSession({
      info, asset, transport, controlUrl: request.uri, timeoutMs: this.#sessionTimeoutMs, peer: conn.peer, connectionId: conn.id,
    });
    this.#sessions.set(session.id, session);
    return session;
  }

  #newSession(fields: {
    info: RtspSessionFacts; asset: RtspMedia; transport: ChosenTransport; controlUrl: string; timeoutMs: number;
    peer: string; connectionId: number; dormant?: boolean;
  }): RtspSession {
    return new RtspSession({
      ...fields,
      onTimeout: (s) => {
        s.log.info({ timeoutMs: s.timeoutMs }, 'session timed out: no request from the client');
        this.#teardown(s, 'timeout').catch((err: Error) => s.log.error({ err: err.message }, 'timeout teardown failed'));
      },
      playWithinMs: this.#setupTimeoutMs,
      onNotPlayed: (s) => {
        s.log.info({ setupTimeoutMs: this.#setupTimeoutMs }, 'session never played: torn down');
        this.#teardown(s, 'not played after SETUP').catch((err: Error) => s.log.error({ err: err.message }, 'teardown failed'));
      },
      sent: () => this.#backend.sent(fields.info.id) ?? 0,
      onChange: (s) => this.#sessionChanged(s),
      logger: this.#log,
    });
  }

  // ── Process pair: sessions another process takes over ──────────────────────

  /** Every session as a standby process takes it over (src/pair-process/rtsp-sessions.ts). */
  sessionRecords(): RtspSessionRecord[] {
    return [...this.#sessions.values()].map((s) => s.record());
  }

  /** `listener` hears of every session's SETUP and change of state (not of its end: the engine's close step says that). */
  watchSessions(listener: (record: RtspSessionRecord) => void): () => void {
    this.#sessionWatchers.add(listener);
    return () => this.#sessionWatchers.delete(listener);
  }

  #sessionChanged(session: RtspSession): void {
    if (this.#sessionWatchers.size === 0) return;
    const record = session.record();
    for (const listener of this.#sessionWatchers) listener(record);
  }

  /**
   * Answer for a session of the primary process this standby follows. It is
   * dormant (no timer, no RTCP) until this server listens, at the takeover; then
   * a request naming it on any connection works as on the primary (RFC 2326
   * sessions are not tied to a connection). A UDP one belongs to no connection
   * here: per-address limits count it, per-connection limits do not; one with RTP
   * on its connection belongs to that one, served here under the same id once the
   * takeover adopts it (adoptConnection). Adopting it again
   * takes the primary's newer state.
   */
  async adoptSession(record: RtspSessionRecord): Promise<void> {
    const known = this.#sessions.get(record.info.id);
    if (known) {
      known.restore(record);
      return;
    }
    const asset = await this.#backend.resolve(record.assetPath);
    // Closed meanwhile (the primary's close step reached the engine first), or taken already.
    if (this.#closed || this.#sessions.has(record.info.id) || this.#backend.sent(record.info.id) === undefined) return;
    const session = this.#newSession({
      info: record.info, asset, transport: record.transport, controlUrl: record.controlUrl, timeoutMs: record.timeoutMs,
      peer: record.peer, connectionId: record.connectionId ?? ADOPTED_CONNECTION, dormant: true,
    });
    session.restore(record);
    this.#sessions.set(session.id, session);
    session.log.info({ state: session.state, peer: session.peer }, 'session of the primary process adopted');
    // Its connection served here already (a takeover before this record was adopted); not a new one that reuses its id.
    const conn = record.connectionId === undefined ? undefined : [...this.#connections].find((c) => c.adopted && c.id === record.connectionId);
    if (conn && session.transport.lower === 'tcp') this.#adoptInterleaved(conn, session);
    if (this.#listening) this.#wakeAdopted(session);
  }

  /**
   * The listening socket (while it listens), every open connection, and from now
   * on the listening socket once it listens and each connection opened and
   * closed: a process pair's primary passes them to its standby
   * (src/pair-process/rtsp-handoff.ts).
   */
  watchConnections(watcher: ConnectionWatcher): {
    listening: net.Server | undefined; open: Array<{ id: number; socket: net.Socket }>; stop(): void;
  } {
    this.#connectionWatchers.add(watcher);
    return {
      listening: this.#listening ? this.#server : undefined,
      open: [...this.#connections].map((c) => ({ id: c.id, socket: c.socket })),
      stop: () => this.#connectionWatchers.delete(watcher),
    };
  }

  /**
   * A connection the primary process had accepted (its descriptor, passed):
   * served as one accepted here, `pending` first (what the primary had received
   * on it and not answered, at a role switch).
   */
  adoptConnection(fd: number, pending: Buffer | undefined, id: number): void {
    const conn = this.#accept(new net.Socket({ fd, readable: true, writable: true }), id);
    if (!conn) return;
    conn.adopted = true;
    for (const session of this.#sessions.values()) {
      if (session.connectionId === conn.id && session.dormant && session.transport.lower === 'tcp') this.#adoptInterleaved(conn, session);
    }
    if (pending && pending.length > 0) this.#onData(conn, pending);
  }

  /**
   * The connection carries RTP of a session taken over: this process's data paths
   * stream on it through the same wire (mapped from the other process), so its
   * responses go through the wire too, between whole media frames.
   */
  #adoptInterleaved(conn: Connection, session: RtspSession): void {
    const shared = this.#backend.interleavedWire(session.id);
    if (!shared) {
      session.log.warn('its RTP on the connection is not followed here; its stream ended with the other process');
      return;
    }
    if (shared.retired) return; // an older session of the connection, whose close has not crossed the link yet
    const wire = this.#attachWire(conn, shared.wire, shared.region);
    wire.holderDead = (tag) => shared.holderDead(tag);
    conn.interleaved = session;
  }

  /**
   * A process pair's role switch, this server's first half: stop answering at a
   * request boundary on every connection (what arrives meanwhile is held
   * unparsed) and wait until every request read so far is answered and its
   * reply written. Then commit() (the other process answers) or resume().
   * Refused (TF_PAIR_SWITCH, and answering goes on) when a request is still
   * being answered after `timeoutMs`. A reply on a connection that carries RTP
   * counts as written once in its wire (the other process flushes the wire on).
   */
  async quiesce(timeoutMs: number): Promise<RtspHandover> {
    if (this.#held) throw new TwinframeError('TF_PAIR_SWITCH', 'a switch is under way');
    const held = new Map<Connection, Buffer[]>();
    this.#held = held;
    const resume = (): void => {
      if (this.#held !== held) return;
      this.#held = undefined;
      for (const [conn, chunks] of held) {
        conn.socket.resume();
        for (const chunk of chunks) this.#onData(conn, chunk);
      }
    };
    const deadline = monoNowMs() + timeoutMs;
    for (;;) {
      let busy = 0;
      for (const conn of this.#connections) {
        if (conn.ending || conn.socket.destroyed) continue;
        // A reply on an interleaved connection is written once its wire holds it (the other process flushes it on).
        if (conn.ordered.waiting > 0 || conn.socket.writableLength > 0 || (conn.wire?.queuedBytes ?? 0) > 0 || !conn.parser.atBoundary) busy++;
      }
      if (busy === 0) break;
      if (monoNowMs() > deadline) {
        resume();
        throw new TwinframeError('TF_PAIR_SWITCH', `${busy} RTSP connection(s) still had a request being answered after ${timeoutMs} ms; this process answers on`);
      }
      await new Promise((r) => setTimeout(r, QUIESCE_POLL_MS));
    }
    return {
      commit: () => {
        if (this.#held !== held) throw new TwinframeError('TF_PAIR_SWITCH', 'the switch was given up');
        // What a socket paused at the cap had read already: each read() emits 'data', which holds it.
        for (const conn of this.#connections) if (held.has(conn) && conn.socket.isPaused()) while (conn.socket.read() !== null);
        this.#held = undefined;
        const handed: Array<{ id: number; pending: Buffer }> = [];
        for (const conn of this.#connections) {
          if (conn.ending || conn.socket.destroyed) continue; // closing here: the other process closes its copy
          handed.push({ id: conn.id, pending: Buffer.concat([conn.parser.takeBuffered(), ...(held.get(conn) ?? [])]) });
          conn.handedOver = true;
          conn.clearRequestTimer();
          conn.wire?.close(true); // its RTP goes on from the other process, in the same wire
          conn.socket.destroy(); // this process's descriptor only: no FIN, no reset
        }
        this.stopListening();
        for (const session of this.#sessions.values()) session.sleep();
        this.#log.info({ connections: handed.length, sessions: this.#sessions.size }, 'RTSP connections and sessions handed to the other process of the pair');
        return handed;
      },
      resume,
    };
  }

  /** A taken-over session's timeouts start, and its RTCP reports go on (from the same server port, or on its connection). */
  #wakeAdopted(session: RtspSession): void {
    if (!session.wake()) return;
    session.log.info({ state: session.state, peer: session.peer }, 'session taken over from the primary process');
    if (session.transport.lower === 'tcp') {
      const wire = [...this.#connections].find((c) => c.interleaved === session)?.wire;
      if (wire) session.attachRtcp(this.#interleavedRtcp(wire, session.transport, session.info.ssrc));
      return;
    }
    const peer = session.rtcpPeer;
    if (session.transport.kind !== 'rtp' || peer === undefined) return;
    const { source, ssrc } = session.info;
    RtcpSender.open({ address: source.address, port: source.rtcpPort }, peer, ssrc, this.#cname, () => session.touch()).then(
      (rtcp) => session.attachRtcp(rtcp, peer),
      (err: Error) => session.log.warn({ err: err.message, port: source.rtcpPort }, 'cannot bind the RTCP port; no sender reports'),
    );
  }

  async #play(request: RtspRequest): Promise<Reply> {
    absoluteUrl(request.uri);
    const session = this.#requiredSession(request, 'PLAY');
    session.checkState('PLAY', ALLOWED_STATES.PLAY);
    const asset = session.asset;
    const durationS = asset.durationMs / 1000;
    const rangeHeader = request.headers.get('range');
    const range = rangeHeader === undefined ? undefined : parseRange(rangeHeader);
    if (range?.time !== undefined) throw new TwinframeError('TF_RTSP_NOT_IMPLEMENTED', 'Range: scheduled play (time=) is not implemented');
    const scaleHeader = request.headers.get('scale');
    const scale = scaleHeader === undefined ? 1 : playScale(parseScale(scaleHeader));
    let startPacket: number | undefined;
    // A range sets the end too (its own, or the asset's); without one a resume keeps the end it had.
    let endPacket: number | undefined;
    if (range !== undefined) {
      const wanted = resolveRange(range, { duration: durationS });
      if (typeof range.start === 'number') startPacket = asset.startPacketAt(Math.floor(wanted.start * TICKS_HZ));
      endPacket = wanted.end < durationS ? await asset.endPacketAt(Math.floor(wanted.end * TICKS_HZ)) : asset.packetCount;
    }
    if (startPacket === undefined && (session.lastPlay === undefined || session.ended)) {
      // First PLAY, or again after the end of the asset (or of a range): from the start (rewind: from the end).
      startPacket = scale < 0 ? asset.packetCount - 1 : 0;
    }
    this.#admitPlay(session);
    const play = await this.#backend.play(session.id, { startPacket, endPacket, scale });
    if (session.disposed) throw new TwinframeError('TF_SESSION_NOT_FOUND', 'session was torn down during PLAY');
    session.played(play);
    session.touch();
    // Streaming has begun: a failure to read the times only costs the reply its Range.
    const [startS, endS] = await Promise.all([asset.packetTicks(play.startPacket), asset.endTicks(play.endPacket)]).then(
      ([start, end]) => [start / TICKS_HZ, end / TICKS_HZ],
      (err: Error) => { session.log.warn({ err: err.message }, 'cannot read the start and end times from the index'); return [undefined, undefined]; },
    );
    session.log.info({ startPacket: play.startPacket, endPacket: play.endPacket, npt: startS === undefined ? undefined : round(startS), seq: play.seq, rtptime: play.rtptime }, 'play');
    const headers: Record<string, HeaderValue> = {
      Range: startS === undefined || endS === undefined ? undefined : serializeRange({ unit: 'npt', start: startS, end: endS }),
      Scale: scaleHeader === undefined ? undefined : formatScale(scale),
      ...this.#sessionHeader(session),
    };
    if (session.transport.kind === 'rtp') {
      headers['RTP-Info'] = serializeRtpInfo([{ url: session.controlUrl, seq: play.seq, rtptime: play.rtptime }]);
    }
    return { status: 200, headers };
  }

  #pause(request: RtspRequest): Reply {
    absoluteUrl(request.uri);
    const session = this.#requiredSession(request, 'PAUSE');
    session.checkState('PAUSE', ALLOWED_STATES.PAUSE);
    if (session.state === 'playing') {
      this.#backend.pause(session.id);
      session.paused();
      session.log.info('pause');
    }
    return { status: 200, headers: this.#sessionHeader(session) };
  }

  async #teardownRequest(request: RtspRequest): Promise<Reply> {
    absoluteUrl(request.uri);
    const session = this.#requiredSession(request, 'TEARDOWN');
    await this.#teardown(session, 'teardown');
    return { status: 200 };
  }

  /** GET_PARAMETER / SET_PARAMETER: keep-alives. No parameters are defined, so a body naming any is 451. */
  #parameter(request: RtspRequest): Reply {
    if (request.uri !== '*') parseRtspUrl(request.uri);
    const session = this.#optionalSession(request);
    if (request.body.toString('latin1').trim() !== '') {
      throw new TwinframeError('TF_RTSP_PARAMETER_NOT_UNDERSTOOD', `${request.method} names parameters; this server has none`);
    }
    return { status: 200, headers: this.#sessionHeader(session) };
  }

  // ── Sessions ───────────────────────────────────────────────────────────────

  /** The session a Session header names (touched), or undefined without the header; 454 if unknown. */
  #optionalSession(request: RtspRequest): RtspSession | undefined {
    const header = request.headers.get('session');
    if (header === undefined) return undefined;
    const { id } = parseSession(header);
    const session = this.#sessions.get(id);
    if (!session) throw new TwinframeError('TF_SESSION_NOT_FOUND', 'no session with that id');
    session.touch();
    return session;
  }

  #requiredSession(request: RtspRequest, method: string): RtspSession {
    const session = this.#optionalSession(request);
    if (!session) throw new TwinframeError('TF_SESSION_NOT_FOUND', `${method} without a Session header`);
    return session;
  }

  #sessionHeader(session: RtspSession | undefined): Record<string, HeaderValue> {
    if (!session) return {};
    // The session's own timeout: a reload changes it for new sessions only.
    return { Session: serializeSession({ id: session.id, timeout: Math.max(1, Math.floor(session.timeoutMs / 1000)) }) };
  }

  /**
   * Stop the datagrams, say BYE from the RTCP port, then free the session on
   * both data paths. Safe to call twice; the second call does nothing.
   */
  async #teardown(session: RtspSession, reason: string): Promise<void> {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    // Pause first so no datagram follows the BYE. (Gone already if the engine closed it meanwhile.)
    if (this.#backend.sent(session.id) !== undefined) this.#backend.pause(session.id);
    await session.dispose(session.lastPlay !== undefined);
    this.#backend.closeSession(session.id);
    session.log.info({ reason }, 'session torn down');
  }

  /**
   * A PLAY is admitted again against the limits as they are now: an operator may
   * have lowered them since the SETUP. Nothing already streaming is touched.
   */
  #admitPlay(session: RtspSession): void {
    this.#backend.checkAdmission(session.info.bitrate, session.id);
  }

  readonly #events: RtspBackendListener = {
    sessionEnded: (id) => {
      const session = this.#sessions.get(id);
      if (!session) return;
      session.log.info('end of asset; BYE sent');
      session.endOfAsset();
    },
    /**
     * A fault of its destination or its asset ended the session (the engine logged
     * why): BYE, as at the end of an asset, then free it; later requests get 454.
     */
    sessionFailed: (id, reason) => {
      const session = this.#sessions.get(id);
      // A standby process acts on nothing itself: its primary's steps say what happens to the session.
      if (!session || session.dormant) return;
      // Interleaved, the fault is its connection's (gone, or its viewer reads too slowly): it ends too.
      const conn = [...this.#connections].find((c) => c.interleaved === session);
      this.#teardown(session, reason).then(
        () => conn?.end(),
        (err: Error) => session.log.error({ err: err.message }, 'teardown failed'),
      );
    },
    /** Closed by someone else (an operator): forget it here too. */
    sessionClosed: (id) => {
      const session = this.#sessions.get(id);
      if (!session) return;
      this.#sessions.delete(id);
      session.log.info('session closed by the engine');
      session.dispose(session.lastPlay !== undefined).catch((err: Error) => session.log.error({ err: err.message }, 'dispose failed'));
    },
  };

  /**
   * Where the media goes: the client's own address unless configuration lets
   * destination= name another. Only unicast IPv4 (the data paths' sockets are udp4).
   */
  async #destination(conn: Connection, chosen: UdpTransport): Promise<string> {
    let address = conn.peer;
    if (chosen.destination !== undefined) {
      let named = plainAddress(chosen.destination.replace(/^\[(.*)\]$/, '$1'));
      if (named !== conn.peer) {
        if (!this.#allowForeignDestination) {
          throw new TwinframeError('TF_RTSP_FORBIDDEN', 'destination is not the address of the requesting client');
        }
        if (net.isIP(named) === 0) {
          try {
            named = (await dns.promises.lookup(named, { family: 4 })).address;
          } catch {
            throw new TwinframeError('TF_RTSP_DESTINATION_UNREACHABLE', 'destination does not resolve to an IPv4 address');
          }
        }
      }
      address = named;
    }
    if (!net.isIPv4(address)) throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', 'only IPv4 destinations are supported');
    const first = Number(address.split('.')[0]);
    if (first === 0 || first >= 224 || address === '255.255.255.255') {
      throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', 'destination is not a unicast address');
    }
    return address;
  }
}

// ── Helpers ──────────────────────────────────────────────────────────────────


function absoluteUrl(uri: string): Extract<ReturnType<typeof parseRtspUrl>, { kind: 'absolute' }> {
  const url = parseRtspUrl(uri);
  if (url.kind !== 'absolute') throw new TwinframeError('TF_RTSP_BAD_REQUEST', 'this method needs an absolute rtsp:// URL');
  return url;
}

/** '::ffff:1.2.3.4' (an IPv4 peer on a dual-stack socket) → '1.2.3.4'. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** A method name fit for a log line: ours as they are, anything else shortened. */
function loggableMethod(method: string): string {
  return (PUBLIC_METHODS as readonly string[]).includes(method) ? method : method.slice(0, 32);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
