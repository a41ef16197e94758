// The engine: the control plane's handle on the two data paths and the
// supervisor. It owns the session table (the patent's broadcast table), picks
// everything random once (SSRC, first sequence number and timestamp, ports) so
// both paths build identical datagrams, and carries out what a failure needs:
// terminate the failed worker, spawn its replacement, synchronize it mid-stream
// from the session table and the shared cursors, and bring the pair back to
// Primary + Secondary without the streams pausing.
//
//   main thread (this)          supervisor thread          data paths a, b
//   openSession/play/pause ──► SAB command queues ───────► open sockets, follow cursors
//   session control words ◄─────────────────────────────── advance cursors (CAS)
//   'path-failed' ◄──────────── switches ACTIVE (CAS) ◄─── heartbeats, critical words

import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { ControlBlock, type SegmentParams } from '../shared/control-block.js';
import { CommandWriter, createQueueStorage } from '../shared/command-queue.js';
import type { InjectableFault, OpenSessionCommand, PathCommand, PathEvent, TransportKind } from '../shared/commands.js';
import { FailureCause, MAX_SESSIONS, PATH_COUNT, PATH_NAMES, type PathId, type PathName } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import { spawnDataPathWorker } from '../datapath/index.js';
import { spawnSupervisorWorker } from '../supervisor/index.js';
import { failPath, type FailureReport } from '../supervisor/fail-path.js';
import { TwinframeError } from '../errors.js';
import type { AssetIdentity } from '../shared/asset-file.js';
import { silentLogger, type Logger } from '../log.js';
import { probeRoute, reservePortPair, type PortPair } from './ports.js';
import { stopWorker, terminateWithin } from './worker-stop.js';
import { FailoverState, FailoverType, namedState, type NamedState } from '../failover/states.js';
import {
  bootstrapPair, describePair, initialPair, partnerOf, transition,
  type FailoverAction, type FailoverEvent as MachineEvent, type FailoverPair, type PairStates,
} from '../failover/state-machine.js';
import { RTP_HEADER_BYTES, TS_PACKETS_PER_DATAGRAM, TS_PAYLOAD_BYTES, rtpTimeAfter } from '../rtp/packetizer.js';

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

export interface EngineOptions {
  readonly logger?: Logger;
  readonly maxSessions?: number;
  readonly heartbeatPeriodUs?: number;
  readonly maxMissedHeartbeats?: number;
  readonly faultInjection?: boolean;
  /** Source address of the media (the patent's stream IP) for sessions opened without one. */
  readonly streamAddress?: string;
  /** How long a path may take to open every session before its synchronization fails. */
  readonly syncTimeoutMs?: number;
  /**
   * Take both paths through the patent's walk-through at start (a Primary, b
   * Secondary) and bring every restarted path back to Secondary by itself.
   * Off: paths start Undefined and an operator drives every step (twinframectl).
   */
  readonly autoFailover?: boolean;
  /** UDP ports handed to sessions as server ports (RTP even, RTCP odd). */
  readonly serverPortRange?: { readonly first: number; readonly last: number };
  /** The patent's stream limits; a session that would exceed one is refused (RTSP 453). */
  readonly limits?: StreamLimits;
}

export interface StreamLimits {
  readonly maxStreams: number;
  /** Sum of the open sessions' MPEG bit rates. */
  readonly mpegBandwidthKbps: number;
  /** Everything sent: MPEG plus RTP/UDP/IP headers. */
  readonly serverBandwidthKbps: number;
}

export interface OpenSessionOptions {
  readonly asset: EngineAsset;
  /** How operators see the asset (its URL path); defaults to the file path. */
  readonly assetName?: string;
  readonly destination: { readonly address: string; readonly port: number };
  readonly transport: TransportKind;
  /** Source address of the session's media (where its ports are bound); default: the engine's streamAddress. */
  readonly source?: string;
}

export type SessionState = 'ready' | 'playing' | 'paused' | 'ended' | 'failed' | 'closed';

/** Why a session was ended by a fault: its own (destination, stream address) or its asset's. */
export interface SessionFailure {
  readonly scope: 'session' | 'asset';
  readonly reason: string;
}

/** Emitted as 'session-failed', once per session. */
export interface SessionFailedEvent extends SessionFailure {
  readonly id: string;
  readonly assetName: string;
}

/** Emitted as 'asset-failed', once per fault: the asset's sessions have ended; it should be refused until it changes. */
export interface AssetFailedEvent {
  readonly assetPath: string;
  readonly assetName: string;
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
}

export interface PlayResult {
  /** RTP sequence number and timestamp of the first datagram of this play (for RTP-Info). */
  readonly seq: number;
  readonly rtptime: number;
  readonly startPacket: number;
  readonly startTimeMs: number;
}

export interface PathStatus {
  readonly path: PathName;
  readonly incarnation: number;
  readonly named: NamedState;
  readonly failoverType: FailoverType;
  readonly failoverState: FailoverState;
  readonly ready: boolean;
  readonly active: boolean;
  readonly heartbeat: number;
  /** Datagrams this path has sent, over all its incarnations. */
  readonly sent: number;
  /** Linux thread id of the path's worker, null while none runs. */
  readonly threadId: number | null;
}

export interface FailoverEvent extends FailureReport {
  readonly pathName: PathName;
  readonly switchedToName: PathName | undefined;
  /** Failure to ACTIVE switch, ms (undefined when the failed path was not sending). */
  readonly switchLatencyMs: number | undefined;
}

/** A standby found the sender late on due work and took sending over; nobody failed. */
export interface HandoverEvent {
  readonly from: PathName;
  readonly to: PathName;
  /** How late the sender was on its oldest due datagram, ms. */
  readonly lateMs: number;
  /** When sending moved, on the shared clock (monoNowMs). */
  readonly atMs: number;
}

interface PathRecord {
  readonly id: PathId;
  worker: Worker | undefined;
  exited: Promise<void>;
  incarnation: number;
  writer: CommandWriter | undefined;
  /** The worker is being stopped on purpose: its exit is not a failure. */
  stopping: boolean;
  /** Token of the sync marker sent after the session table; set to 0 once acknowledged. */
  pendingSyncToken: number;
  syncWaiters: Array<() => void>;
}

interface Session {
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
  firstStartMs: number | undefined;
  /** Path incarnations whose socket for this session is up. */
  readonly readyOn: Set<string>;
  readyWaiters: Array<() => void>;
}

const DEFAULTS = {
  maxSessions: 64,
  heartbeatPeriodUs: 2000, // the configuration's defaults
  maxMissedHeartbeats: 5,
  streamAddress: '127.0.0.1',
  syncTimeoutMs: 5000,
  autoFailover: true,
  serverPortRange: { first: 30000, last: 30999 }, // the configuration's default
  limits: { maxStreams: 100, mpegBandwidthKbps: 500_000, serverBandwidthKbps: 1_000_000 },
};
/** IPv4 + UDP + RTP headers per datagram payload, for the server-bandwidth limit. */
const HEADER_OVERHEAD = (20 + 8 + RTP_HEADER_BYTES) / TS_PAYLOAD_BYTES;
/** How far ahead of now a play is scheduled: time for both paths to see it. */
const PLAY_LEAD_MS = 2;
const SESSION_READY_TIMEOUT_MS = 3000;
/** How long a worker told to stop may take to leave its loop by itself before it is terminated. */
const STOP_TIMEOUT_MS = 2000;
/** How long a terminated worker may take to end; one blocked in a system call may never end. */
const TERMINATE_TIMEOUT_MS = 1500;

export class Engine extends EventEmitter {
  readonly cb: ControlBlock;
  private readonly log: Logger;
  private readonly options: Required<Omit<EngineOptions, 'logger'>>;
  private limits: StreamLimits;
  private readonly paths: PathRecord[];
  private supervisor: Worker | undefined;
  private supervisorExited: Promise<void> = Promise.resolve();
  private readonly sessions = new Map<string, Session>();
  /** Admissions of sessions still being opened: they count against the limits like open ones. */
  private readonly admissions = new Set<{ readonly bitrate: number }>();
  private readonly freeSlots: number[];
  /** Slots closed but not yet acknowledged by every path: slot → path incarnations still to ack. */
  private readonly closingSlots = new Map<number, Set<string>>();
  private closed = false;
  private lastFailover: FailoverEvent | undefined;
  private nextSyncToken = 1;
  /** The failover state machine's view of the pair; published to the control block on every change. */
  private pair: FailoverPair = initialPair();
  /** Failover events run one at a time, each with all its actions. */
  private machineQueue: Promise<unknown> = Promise.resolve();

  private constructor(options: EngineOptions) {
    super();
    this.options = { ...DEFAULTS, faultInjection: false, ...stripUndefined(options) };
    if (this.options.maxSessions > MAX_SESSIONS) throw new TwinframeError('TF_CONFIG_INVALID', `maxSessions ${this.options.maxSessions} exceeds ${MAX_SESSIONS}`);
    this.log = (options.logger ?? silentLogger).child({ component: 'engine' });
    this.limits = this.options.limits;
    this.cb = ControlBlock.create(this.options.maxSessions);
    this.cb.setHeartbeatSettings(this.options.heartbeatPeriodUs, this.options.maxMissedHeartbeats);
    this.freeSlots = Array.from({ length: this.options.maxSessions }, (_, i) => this.options.maxSessions - 1 - i);
    this.paths = Array.from({ length: PATH_COUNT }, (_, i) => ({
      id: i as PathId, worker: undefined, exited: Promise.resolve(), incarnation: 0, writer: undefined, stopping: false, pendingSyncToken: 0, syncWaiters: [],
    }));
  }

  /**
   * Start the supervisor and both data-path workers. With autoFailover (the
   * default) resolves when the pair is Primary + Secondary; without it, when both
   * workers run, Undefined, waiting for an operator.
   */
  static async start(options: EngineOptions = {}): Promise<Engine> {
    const engine = new Engine(options);
    engine.startSupervisor();
    for (const p of engine.paths) engine.spawnPath(p);
    try {
      if (engine.options.autoFailover) {
        for (const event of bootstrapPair('a')) {
          if (event.kind !== 'sync_complete') await engine.command(event); // begin-sync reports its own outcome
        }
        await engine.waitUntilProtected(engine.options.syncTimeoutMs);
      }
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  // ── Sessions ───────────────────────────────────────────────────────────────

  /**
   * Create a session on both paths (sockets opened, nothing sent until play).
   * Its admission is reserved before the first await, so concurrent opens cannot
   * pass a limit together. The session enters the table only once its command is
   * queued on every live path; whatever fails on the way is undone (admission,
   * slot, ports, and the command on a path that already took it).
   */
  async openSession(options: OpenSessionOptions): Promise<SessionInfo> {
    this.assertOpen();
    const admission = this.reserveAdmission(options.asset.bitrate);
    const slot = this.freeSlots.pop();
    if (slot === undefined) {
      this.admissions.delete(admission);
      throw new TwinframeError('TF_SESSION_LIMIT', `all ${this.options.maxSessions} session slots are in use`);
    }
    let ports: PortPair | undefined;
    try {
      const source = options.source ?? this.options.streamAddress;
      await probeRoute(source, options.destination);
      ports = await reservePortPair(source, this.options.serverPortRange);
      this.assertOpen(); // closed while the ports were bound
    } catch (err) {
      ports?.release();
      this.admissions.delete(admission);
      this.freeSlots.push(slot);
      throw err;
    }
    const session: Session = {
      id: randomBytes(8).toString('hex'),
      slot,
      asset: options.asset,
      assetName: options.assetName ?? options.asset.assetPath,
      openedAt: new Date(),
      transport: options.transport,
      destination: { ...options.destination },
      ports,
      ssrc: randomInt(1, 2 ** 32 - 1),
      initialSeq: randomInt(0, 0x10000),
      initialRtpTs: randomInt(0, 2 ** 32 - 1),
      state: 'ready',
      failure: undefined,
      segment: undefined,
      firstStartMs: undefined,
      readyOn: new Set(),
      readyWaiters: [],
    };
    this.cb.resetSession(slot);
    const command = this.openCommand(session);
    const queuedOn: PathRecord[] = [];
    try {
      for (const p of this.livePaths()) {
        this.send(p, command);
        queuedOn.push(p);
      }
    } catch (err) {
      ports.release();
      this.admissions.delete(admission);
      this.closeOnPaths(slot, queuedOn);
      this.log.warn({ session: session.id, slot, source: ports.address, rtpPort: ports.rtpPort, err: (err as Error).message }, 'session refused: its command could not be queued on every data path');
      throw err;
    }
    // One synchronous step: from here the session counts itself against the limits.
    this.admissions.delete(admission);
    this.sessions.set(session.id, session);
    this.cb.wakePaths();
    this.log.info({ session: session.id, slot, transport: session.transport, source: ports.address, rtpPort: ports.rtpPort }, 'session opened');
    this.emit('session-opened', this.info(session));
    return this.info(session);
  }

  /**
   * Start (or resume, or seek) streaming at `startPacket` (default: where it
   * paused). Resolves once the datagrams are scheduled, with the RTP-Info values.
   */
  async play(sessionId: string, options: { startPacket?: number } = {}): Promise<PlayResult> {
    const session = this.session(sessionId);
    if (session.state === 'closed') throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${sessionId} is closed`);
    await this.waitSessionReady(session);
    this.assertNotFailed(session);
    if (session.state === 'playing') this.cb.pauseSession(session.slot);
    const startPacket = options.startPacket ?? this.currentPacket(session);
    if (!Number.isInteger(startPacket) || startPacket < 0 || startPacket >= session.asset.packetCount) {
      throw new TwinframeError('TF_RANGE_INVALID', `start packet ${startPacket} is outside the asset (0..${session.asset.packetCount - 1})`);
    }
    const startTimeMs = monoNowMs() + PLAY_LEAD_MS;
    session.firstStartMs ??= startTimeMs;
    const rtpTsBase = rtpTimeAfter(session.initialRtpTs, startTimeMs - session.firstStartMs);
    const segment = this.cb.startSegment(session.slot, () => ({ startPacket, startTimeMs, rtpTsBase }));
    session.segment = segment;
    session.state = 'playing';
    this.cb.wakePaths();
    return { seq: (session.initialSeq + segment.startCursor) & 0xffff, rtptime: rtpTsBase, startPacket, startTimeMs };
  }

  pause(sessionId: string): void {
    const session = this.session(sessionId);
    if (session.state !== 'playing') return;
    this.cb.pauseSession(session.slot);
    session.state = 'paused';
  }

  /** Stop a session on both paths and free its slot and ports. */
  closeSession(sessionId: string): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    this.cb.pauseSession(session.slot);
    session.state = 'closed';
    this.sessions.delete(sessionId);
    session.ports.release();
    this.closeOnPaths(session.slot, this.livePaths());
    for (const resolve of session.readyWaiters) resolve();
    this.log.info({ session: sessionId }, 'session closed');
    this.emit('session-closed', { id: sessionId });
  }

  /**
   * Refuse (TF_SESSION_LIMIT / TF_BANDWIDTH_LIMIT, RTSP 453) a session of this bit
   * rate that would break a stream limit next to the others open now; nothing
   * running is touched. `excludingSessionId` re-checks a session already open (an
   * RTSP PLAY after the operator lowered a limit).
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

  /** Admit a session of this bit rate and hold its place until it is open or refused (synchronous: no open can slip in between). */
  private reserveAdmission(bitrate: number): { readonly bitrate: number } {
    this.checkAdmission(bitrate);
    const admission = { bitrate };
    this.admissions.add(admission);
    return admission;
  }

  getLimits(): StreamLimits {
    return this.limits;
  }

  /** New limits apply to sessions opened from now on; running ones are never cut. */
  setLimits(limits: StreamLimits): void {
    this.limits = { ...limits };
  }

  getSession(sessionId: string): SessionInfo | undefined {
    const session = this.sessions.get(sessionId);
    return session && this.info(session);
  }

  listSessions(): SessionInfo[] {
    return [...this.sessions.values()].map((s) => this.info(s));
  }

  // ── Failover ───────────────────────────────────────────────────────────────

  status(): { active: PathName | undefined; epoch: number; switches: number; sigfailover: number; paths: PathStatus[]; heartbeat: { periodUs: number; maxMissed: number }; handovers: number; lastFailover: FailoverEvent | undefined; sessions: number } {
    const word = this.cb.activeWord();
    const owner = ControlBlock.ownerOf(word);
    return {
      active: owner === undefined ? undefined : PATH_NAMES[owner],
      epoch: ControlBlock.epochOf(word),
      switches: this.cb.switchCount(),
      sigfailover: this.cb.sigfailover(),
      paths: this.paths.map((p) => {
        const v = this.cb.failoverVariables(p.id);
        return {
          path: PATH_NAMES[p.id], incarnation: p.incarnation, named: namedState(v.type, v.state),
          failoverType: v.type, failoverState: v.state, ready: this.cb.isReady(p.id), active: owner === p.id, heartbeat: this.cb.heartbeat(p.id), sent: this.cb.sentCount(p.id),
          threadId: p.worker ? this.cb.threadId(p.id) || null : null,
        };
      }),
      heartbeat: this.cb.heartbeatSettings(),
      handovers: this.cb.handoverCount(),
      lastFailover: this.lastFailover,
      sessions: this.sessions.size,
    };
  }

  /** Inject a fault into one path (only when enabled by configuration). */
  injectFault(path: PathName, kind: InjectableFault): void {
    if (!this.options.faultInjection) throw new TwinframeError('TF_FAULT_INJECTION_DISABLED');
    this.send(this.pathRecord(path), { type: 'inject-fault', kind });
    this.cb.wakePaths();
  }

  /** Operator-requested switch to the standby: the same CAS as a failover, so just as lossless. */
  async switchover(): Promise<{ from: PathName; to: PathName }> {
    const from = ControlBlock.ownerOf(this.cb.activeWord());
    await this.command({ kind: 'manual_switch' });
    const to = ControlBlock.ownerOf(this.cb.activeWord());
    if (from === undefined || to === undefined || to === from) throw new TwinframeError('TF_FAILOVER_NO_STANDBY', 'the switch did not take place');
    this.log.info({ from: PATH_NAMES[from], to: PATH_NAMES[to] }, 'manual switchover');
    return { from: PATH_NAMES[from], to: PATH_NAMES[to] };
  }

  /**
   * Run one event of the failover state machine (an operator command, or a system
   * event) and carry out its actions. Resolves with the named states after; a
   * command not allowed in the current state rejects with TF_FAILOVER_ILLEGAL_COMMAND.
   */
  command(event: MachineEvent): Promise<PairStates> {
    if (this.closed) return Promise.reject(new TwinframeError('TF_ENGINE_STOPPED'));
    return this.enqueue(() => this.applyEvent(event));
  }

  failoverPair(): FailoverPair {
    return this.pair;
  }

  setHeartbeat(periodUs: number, maxMissed: number): void {
    this.cb.setHeartbeatSettings(periodUs, maxMissed);
  }

  /** Resolves when one path sends and the other is synchronized and ready to take over. */
  async waitUntilProtected(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isProtected()) {
      if (this.closed) throw new TwinframeError('TF_ENGINE_STOPPED');
      if (Date.now() > deadline) throw new TwinframeError('TF_FAILOVER_NO_STANDBY', `pair not protected after ${timeoutMs} ms: ${JSON.stringify(this.status().paths.map((p) => p.named))}`);
      await sleep(5);
    }
  }

  isProtected(): boolean {
    const owner = ControlBlock.ownerOf(this.cb.activeWord());
    return owner !== undefined && this.cb.isReady(owner) && this.cb.isReady((1 - owner) as PathId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.sessions.keys()]) this.closeSession(id);
    for (const p of this.paths) {
      p.stopping = true;
      for (const resolve of p.syncWaiters.splice(0)) resolve();
    }
    this.cb.shutdown();
    await Promise.all([
      ...this.paths.map((p) => this.stopThread(p.worker, p.exited, `data path ${PATH_NAMES[p.id]}`)),
      this.stopThread(this.supervisor, this.supervisorExited, 'supervisor'),
    ]);
    this.removeAllListeners();
  }

  // ── Paths: spawn, sync, fail, respawn ──────────────────────────────────────

  private startSupervisor(): void {
    const worker = spawnSupervisorWorker({ controlBlock: this.cb.sab, maxSessions: this.options.maxSessions });
    worker.on('message', (msg: { type: 'path-failed'; report: FailureReport } | { type: 'booted'; policy: string; priorityError?: string }) => {
      if (msg.type === 'path-failed') this.onPathFailed(msg.report);
      else if (msg.policy !== 'fifo') this.log.warn({ thread: 'supervisor', policy: msg.policy, reason: msg.priorityError }, 'supervisor runs without real-time priority');
    });
    worker.on('error', (err) => this.log.error({ err }, 'supervisor thread failed'));
    this.supervisorExited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.supervisor = worker;
  }

  private spawnPath(p: PathRecord): void {
    const incarnation = this.cb.beginIncarnation(p.id);
    const queue = createQueueStorage();
    p.incarnation = incarnation;
    p.writer = new CommandWriter(queue);
    p.stopping = false;
    const worker = spawnDataPathWorker({
      path: p.id, incarnation, controlBlock: this.cb.sab, maxSessions: this.options.maxSessions,
      commandQueue: queue, faultInjection: this.options.faultInjection,
    });
    p.worker = worker;
    p.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    const log = this.log.child({ path: PATH_NAMES[p.id], incarnation });
    worker.on('message', (event: PathEvent) => this.onPathEvent(p, incarnation, event));
    worker.on('error', (err) => log.warn({ err: err.message }, 'data path threw'));
    worker.on('exit', (code) => this.onPathExit(p, incarnation, code));
    // Every live worker follows the broadcast table from birth, so that
    // synchronizing it (begin-sync) is only waiting for this marker's echo.
    for (const session of this.sessions.values()) this.send(p, this.openCommand(session));
    p.pendingSyncToken = this.nextSyncToken++;
    this.send(p, { type: 'sync-marker', token: p.pendingSyncToken });
    log.info({ sessions: this.sessions.size }, 'data path spawned');
  }

  private onPathEvent(p: PathRecord, incarnation: number, event: PathEvent): void {
    if (incarnation !== p.incarnation) return; // a message from a worker already replaced
    switch (event.type) {
      case 'session-ready': {
        const session = this.sessionBySlot(event.slot);
        if (session && session.id === event.sessionId) {
          session.readyOn.add(incarnationKey(p));
          for (const resolve of session.readyWaiters.splice(0)) resolve();
        }
        break;
      }
      case 'session-closed': this.ackClose(event.slot, incarnationKey(p)); break;
      case 'session-ended': {
        const session = this.sessionBySlot(event.slot);
        if (session && session.id === event.sessionId && session.state === 'playing') {
          session.state = 'ended';
          this.emit('session-ended', { id: session.id });
        }
        break;
      }
      case 'synced':
        if (event.token === p.pendingSyncToken) {
          p.pendingSyncToken = 0;
          for (const resolve of p.syncWaiters.splice(0)) resolve();
        }
        break;
      case 'booted':
        if (event.policy !== 'fifo') this.log.warn({ path: PATH_NAMES[p.id], policy: event.policy, reason: event.priorityError }, 'data path runs without real-time priority');
        break;
      case 'handover': this.onHandover(event); break;
      case 'session-error':
        this.log.warn({ path: PATH_NAMES[p.id], session: event.sessionId, message: event.message }, 'destination error on a session');
        this.emit('session-error', { id: event.sessionId, message: event.message });
        break;
      case 'session-fault': {
        const session = this.sessionBySlot(event.slot);
        if (!session || session.id !== event.sessionId) break;
        if (event.scope === 'asset') this.failAsset(session.asset, session.assetName, event.reason, PATH_NAMES[p.id]);
        else this.failSession(session, { scope: 'session', reason: event.reason }, PATH_NAMES[p.id]);
        break;
      }
    }
  }

  /**
   * A standby found the sender late on due work and took sending over (its own
   * CAS on ACTIVE): nobody failed. The roles swap, as in a manual switch.
   */
  private onHandover(event: Extract<PathEvent, { type: 'handover' }>): void {
    const handover: HandoverEvent = { from: PATH_NAMES[event.from], to: PATH_NAMES[event.to], lateMs: event.lateMs, atMs: event.atMs };
    this.log.info({ from: handover.from, to: handover.to, lateMs: Math.round(event.lateMs * 100) / 100 }, 'sending handed over to the on-time path');
    this.emit('handover', handover);
    void this.enqueue(async () => {
      const owner = ControlBlock.ownerOf(this.cb.activeWord());
      const primary = PATH_NAMES.find((name) => namedState(this.pair[name].type, this.pair[name].state) === 'Primary');
      // Settled otherwise since (a handover back, a switch, a failure), or the machine agrees.
      if (owner === undefined || PATH_NAMES[owner] !== handover.to || handover.to === primary) return;
      await this.applyEvent({ kind: 'manual_switch' }).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'the state machine did not follow a handover');
      });
    });
  }

  // ── Faults of a session or an asset: the paths stay healthy ────────────────

  /**
   * End a session that a fault outside the paths makes unservable (both paths
   * see it, or would): it stops on both paths and keeps its slot until its owner
   * closes it. Reported once, whichever path saw it first.
   */
  private failSession(session: Session, failure: SessionFailure, path: PathName): void {
    if (session.state === 'failed' || session.state === 'closed') return;
    this.cb.pauseSession(session.slot);
    this.cb.wakePaths();
    session.state = 'failed';
    session.failure = failure;
    for (const resolve of session.readyWaiters.splice(0)) resolve();
    if (failure.scope === 'session') this.log.warn({ session: session.id, path, reason: failure.reason }, 'session ended by a fault of its own');
    const event: SessionFailedEvent = { id: session.id, assetName: session.assetName, ...failure };
    this.emit('session-failed', event);
  }

  /** The asset's file is unusable on both paths: end every session of it, and say so once. */
  private failAsset(asset: EngineAsset, assetName: string, reason: string, path: PathName): void {
    const affected = [...this.sessions.values()].filter((s) => s.asset.assetPath === asset.assetPath && s.state !== 'failed');
    if (affected.length === 0) return; // the twin's report of the same fault
    this.log.warn({ asset: assetName, path, reason, sessions: affected.map((s) => s.id) }, 'asset unusable; its sessions ended');
    for (const s of affected) this.failSession(s, { scope: 'asset', reason }, path);
    const event: AssetFailedEvent = { assetPath: asset.assetPath, assetName, reason };
    this.emit('asset-failed', event);
  }

  private assertNotFailed(session: Session): void {
    if (session.failure) throw new TwinframeError('TF_SESSION_FAILED', `session ${session.id} ended by a fault: ${session.failure.reason}`, { ...session.failure });
  }

  private onPathExit(p: PathRecord, incarnation: number, code: number): void {
    if (p.stopping || this.closed || incarnation !== p.incarnation) return;
    // Backup detector: the worker died without the supervisor having handled it.
    const critical = this.cb.critical(p.id);
    const report = failPath(this.cb, p.id, incarnation, critical?.cause ?? FailureCause.EXIT, critical?.atMs ?? monoNowMs());
    this.log.warn({ path: PATH_NAMES[p.id], code }, 'data path exited');
    // Not claimed here: the supervisor claimed it and its report is on the way.
    if (report) this.onPathFailed(report);
  }

  /**
   * A failure was claimed (by the supervisor, which has already moved ACTIVE, or
   * here). Record it, then let the state machine mark the path Failed, promote its
   * partner and restart it.
   */
  private onPathFailed(report: FailureReport): void {
    if (this.closed) return;
    const p = this.paths[report.path];
    if (report.incarnation !== p.incarnation) return;
    const event: FailoverEvent = {
      ...report,
      pathName: PATH_NAMES[report.path],
      switchedToName: report.switchedTo === undefined ? undefined : PATH_NAMES[report.switchedTo],
      switchLatencyMs: report.switchedAtMs === undefined ? undefined : report.switchedAtMs - report.failedAtMs,
    };
    this.lastFailover = event;
    this.log.warn({
      path: event.pathName, cause: event.cause, to: event.switchedToName, wasActive: event.wasActive,
      switchLatencyMs: event.switchLatencyMs, detectionMs: event.detectedAtMs - event.failedAtMs,
    }, 'data path failed');
    this.emit('failover', event);
    const path = PATH_NAMES[p.id];
    const machineEvent: MachineEvent = report.cause === 'heartbeat'
      ? { kind: 'heartbeat_missed', path }
      : { kind: 'critical_failure', path, cause: report.cause };
    this.command(machineEvent).catch((err: Error) => {
      // Whatever the machine thought, a failed worker must not stay: restart it.
      this.log.error({ path, err: err.message }, 'failure refused by the state machine; restarting the path anyway');
      void this.enqueue(() => this.carryOut({ kind: 'restart-path', path, cause: report.cause }));
    });
  }

  /** Run `job` after every failover event queued before it. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.machineQueue.then(job);
    this.machineQueue = run.catch(() => undefined);
    return run;
  }

  // ── The state machine's actions ────────────────────────────────────────────

  private async applyEvent(event: MachineEvent): Promise<PairStates> {
    const { pair, actions } = transition(this.pair, event);
    this.pair = pair;
    this.publishPair();
    for (const action of actions) await this.carryOut(action);
    return describePair(this.pair);
  }

  private async carryOut(action: FailoverAction): Promise<void> {
    switch (action.kind) {
      case 'begin-sync': {
        const p = this.pathRecord(action.path);
        const synced = await this.waitSynced(p);
        await this.applyEvent(synced
          ? { kind: 'sync_complete', path: action.path }
          : { kind: 'sync_failed', path: action.path, reason: `not synchronized within ${this.options.syncTimeoutMs} ms` });
        if (!synced && this.options.autoFailover) {
          const report = failPath(this.cb, p.id, p.incarnation, FailureCause.SYNC, monoNowMs());
          if (report) this.onPathFailed(report);
        }
        break;
      }
      case 'start-path': {
        const p = this.pathRecord(action.path);
        if (!(await this.waitSynced(p))) throw new TwinframeError('TF_FAILOVER_NO_STANDBY', `path ${action.path} has not opened every session`);
        this.cb.setReady(p.id, p.incarnation);
        break;
      }
      case 'switch-active':
        this.switchActiveTo(action.to);
        break;
      case 'stop-path':
        this.cb.clearReady(this.pathRecord(action.path).id);
        break;
      case 'restart-path':
        await this.restartPath(this.pathRecord(action.path));
        await this.applyEvent({ kind: 'repaired', path: action.path }).catch((err: Error) => {
          this.log.warn({ path: action.path, err: err.message }, 'repaired refused by the state machine');
        });
        if (this.options.autoFailover) {
          await this.heal(action.path);
          await this.heal(partnerOf(action.path)); // a double failure can leave the partner offline too
        }
        break;
    }
  }

  /**
   * autoFailover: walk a path from whatever offline state it is in (a double
   * failure can leave it Primary_Offline, or Undefined) to online: the operator's
   * steps, one at a time. A failed path is left alone (its restart is under way);
   * a refused step ends the walk and the operator can take over from there.
   */
  private async heal(path: PathName): Promise<void> {
    if (!this.pathRecord(path).worker) return;
    for (let step = 0; step < 6; step++) {
      const partner = this.pair[partnerOf(path)];
      const { type, state } = this.pair[path];
      let event: MachineEvent | undefined;
      if (type === FailoverType.UNDEF) {
        event = { kind: 'set_config_type', path, type: partner.type === FailoverType.MASTER ? 'secondary' : 'primary' };
      } else if (state === FailoverState.NONE && type === FailoverType.SLAVE) {
        event = { kind: 'failover_sync', path };
      } else if (state === FailoverState.NONE || state === FailoverState.SYNCED) {
        event = { kind: 'start_streaming', path };
      }
      if (!event) return;
      try {
        await this.applyEvent(event);
      } catch (err) {
        this.log.warn({ path, step: event.kind, err: (err as Error).message }, 'automatic recovery stopped');
        return;
      }
    }
  }

  /**
   * Make `to` the sender (or nobody). A no-op when the supervisor already did it.
   * If `to` failed too before this ran (its own failure event is queued), nobody
   * sends until that event restarts it: never a switch to a path that is not ready.
   */
  private switchActiveTo(to: PathName | null): void {
    let target = to === null ? undefined : this.pathRecord(to).id;
    if (target !== undefined && !this.cb.isReady(target)) {
      this.log.warn({ to }, 'switch target is no longer ready; no path sends until it recovers');
      target = undefined;
    }
    for (;;) {
      const word = this.cb.activeWord();
      const owner = ControlBlock.ownerOf(word);
      if (owner === target) return;
      // After a time with no sender, restart the clocks rather than burst the backlog.
      if (owner === undefined) this.rebasePlayingSessions();
      if (this.cb.switchActive(word, target)) return;
    }
  }

  private waitSynced(p: PathRecord): Promise<boolean> {
    if (p.worker && p.pendingSyncToken === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.options.syncTimeoutMs);
      timer.unref();
      p.syncWaiters.push(() => { clearTimeout(timer); resolve(true); });
    });
  }

  /** Terminate a failed worker (a hung one must not keep burning a core) and spawn its replacement. */
  private async restartPath(p: PathRecord): Promise<void> {
    const old = p.worker;
    p.worker = undefined;
    p.stopping = true;
    this.cb.clearReady(p.id);
    const oldKey = incarnationKey(p);
    // The dead incarnation will never acknowledge closes or report sockets.
    for (const [slot, waiting] of this.closingSlots) {
      if (waiting.delete(oldKey) && waiting.size === 0) this.releaseSlot(slot);
    }
    for (const session of this.sessions.values()) session.readyOn.delete(oldKey);
    // Bounded: a worker blocked in a system call never ends, and failure handling must go on.
    if (old && !(await terminateWithin(old, TERMINATE_TIMEOUT_MS))) {
      this.log.error({ path: PATH_NAMES[p.id], incarnation: p.incarnation, waitedMs: TERMINATE_TIMEOUT_MS }, 'failed data path did not end when terminated (blocked in a system call?); starting its replacement anyway');
    }
    if (!this.closed) this.spawnPath(p);
  }

  /** Stop a worker thread at shutdown, waiting for it within bounds; one that does not end is reported and left. */
  private async stopThread(worker: Worker | undefined, exited: Promise<void>, name: string): Promise<void> {
    if (!worker || await stopWorker(worker, exited, STOP_TIMEOUT_MS, TERMINATE_TIMEOUT_MS)) return;
    this.log.error({ thread: name, waitedMs: STOP_TIMEOUT_MS + TERMINATE_TIMEOUT_MS }, 'thread did not end when stopped (blocked in a system call?); leaving it');
  }

  /** Publish the machine's variables to the control block (bumping SIGFAILOVER) and announce changes. */
  private publishPair(): void {
    for (const p of this.paths) {
      const { type, state } = this.pair[PATH_NAMES[p.id]];
      const before = this.cb.failoverVariables(p.id);
      if (before.type === type && before.state === state) continue;
      this.cb.setFailoverVariables(p.id, type, state);
      const named = namedState(type, state);
      this.log.info({ path: PATH_NAMES[p.id], state: named }, 'failover state');
      this.emit('path-state', { path: PATH_NAMES[p.id], named, type, state });
    }
  }

  // ── Helpers ────────────────────────────────────────────────────────────────

  private openCommand(session: Session): OpenSessionCommand {
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

  /** Where a session stands in its asset: the packet its next datagram starts with. */
  private currentPacket(session: Session): number {
    if (!session.segment) return 0;
    const cursor = ControlBlock.cursorOf(this.cb.ctrl(session.slot));
    const packet = session.segment.startPacket + TS_PACKETS_PER_DATAGRAM * (cursor - session.segment.startCursor);
    return Math.min(packet, session.asset.packetCount - 1);
  }

  /** After a time with no sender, restart every playing session's clock at its cursor, instead of bursting the backlog. */
  private rebasePlayingSessions(): void {
    for (const session of this.sessions.values()) {
      if (session.state !== 'playing') continue;
      const startPacket = this.currentPacket(session);
      const startTimeMs = monoNowMs() + PLAY_LEAD_MS;
      const rtpTsBase = rtpTimeAfter(session.initialRtpTs, startTimeMs - (session.firstStartMs ?? startTimeMs));
      session.segment = this.cb.startSegment(session.slot, () => ({ startPacket, startTimeMs, rtpTsBase }));
    }
  }

  private async waitSessionReady(session: Session): Promise<void> {
    const deadline = Date.now() + SESSION_READY_TIMEOUT_MS;
    for (;;) {
      const owner = ControlBlock.ownerOf(this.cb.activeWord());
      const needed = this.livePaths().filter((p) => this.cb.isReady(p.id) || p.id === owner);
      if (needed.length > 0 && needed.every((p) => session.readyOn.has(incarnationKey(p)))) return;
      if (session.state === 'closed') throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${session.id} was closed`);
      this.assertNotFailed(session);
      const left = deadline - Date.now();
      if (left <= 0) {
        if (owner !== undefined && session.readyOn.has(incarnationKey(this.paths[owner]))) return; // unprotected, but the sender is ready
        throw new TwinframeError('TF_NO_DATA_PATH', `session ${session.id} is not open on any sending data path`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        session.readyWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /**
   * Tell `paths` to close `slot`. The slot is free again once each has
   * acknowledged or been replaced: until then a path may still hold its socket.
   */
  private closeOnPaths(slot: number, paths: readonly PathRecord[]): void {
    const waiting = new Set<string>();
    for (const p of paths) {
      try {
        this.send(p, { type: 'close-session', slot });
      } catch (err) {
        // The path keeps the session until it is replaced; the slot waits for that.
        this.log.error({ path: PATH_NAMES[p.id], slot, err: (err as Error).message }, 'cannot queue a session close; its slot stays taken until the path is restarted');
      }
      waiting.add(incarnationKey(p));
    }
    this.cb.wakePaths();
    if (waiting.size === 0) this.freeSlots.push(slot);
    else this.closingSlots.set(slot, waiting);
  }

  private ackClose(slot: number, key: string): void {
    const waiting = this.closingSlots.get(slot);
    if (waiting && waiting.delete(key) && waiting.size === 0) this.releaseSlot(slot);
  }

  private releaseSlot(slot: number): void {
    this.closingSlots.delete(slot);
    this.freeSlots.push(slot);
  }

  /** Queue a command; it is due from now on (the supervisor judges the path on it). Callers then wake the paths. */
  private send(p: PathRecord, command: PathCommand): void {
    if (!p.writer) return;
    p.writer.push(command);
    this.cb.markCommandQueued(p.id, monoNowMs());
  }

  private livePaths(): PathRecord[] {
    return this.paths.filter((p) => p.worker !== undefined && !p.stopping);
  }

  private pathRecord(name: PathName): PathRecord {
    const index = PATH_NAMES.indexOf(name);
    if (index < 0) throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `no path named ${name}`);
    return this.paths[index];
  }

  private session(sessionId: string): Session {
    const session = this.sessions.get(sessionId);
    if (!session) throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${sessionId} not found`);
    return session;
  }

  private sessionBySlot(slot: number): Session | undefined {
    for (const s of this.sessions.values()) if (s.slot === slot) return s;
    return undefined;
  }

  private info(s: Session): SessionInfo {
    return {
      id: s.id, slot: s.slot, transport: s.transport, destination: s.destination,
      source: { address: s.ports.address, rtpPort: s.ports.rtpPort, rtcpPort: s.ports.rtcpPort },
      ssrc: s.ssrc, initialSeq: s.initialSeq, initialRtpTs: s.initialRtpTs, assetPath: s.asset.assetPath,
      assetName: s.assetName, bitrate: s.asset.bitrate, openedAt: s.openedAt, state: s.state, failure: s.failure, sent: ControlBlock.cursorOf(this.cb.ctrl(s.slot)),
    };
  }

  private assertOpen(): void {
    if (this.closed) throw new TwinframeError('TF_ENGINE_STOPPED');
  }
}

function incarnationKey(p: PathRecord): string {
  return `${p.id}:${p.incarnation}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
