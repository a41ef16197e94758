// The engine: the control plane's handle on the two data paths and the
// supervisor, as a façade over focused parts:
//
//   session-table.ts      the broadcast table: sessions, slots, admission
//   ports.ts              the server ports of a session
//   path-host.ts          one data-path worker's life: spawn, post, sync, restart
//   supervisor-host.ts    the supervisor thread's life
//   failover-executor.ts  carries out the state machine's actions
//   status.ts             the status projection and the 'failover' event
//
// It picks everything random once (SSRC, first sequence number and timestamp,
// ports) so both paths build identical datagrams, and carries out what a
// failure needs: terminate the failed worker, spawn its replacement, synchronize
// it mid-stream from the session table and the shared cursors, and bring the
// pair back to Primary + Secondary without the streams pausing.
//
//   main thread (this)          supervisor thread          data paths a, b
//   openSession/play/pause ──► SAB command queues ───────► open sockets, follow cursors
//   session control words ◄─────────────────────────────── advance cursors (CAS)
//   'path-failed' ◄──────────── switches ACTIVE (CAS) ◄─── heartbeats, critical words

import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { ControlBlock } from '../shared/control-block.js';
import type { InjectableFault, TransportKind } from '../shared/commands.js';
import { FailureCause, MAX_SESSIONS, PATH_COUNT, PATH_NAMES, partnerOf, type PathId, type PathName } from '../shared/layout.js';
import type { FailureReport, HandoverMessage, PathToMain } from '../shared/messages.js';
import { monoNowMs } from '../shared/clock.js';
import { failPath } from '../supervisor/fail-path.js';
import { TwinframeError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { bootstrapPair, type FailoverPair, type MachineEvent, type PairStates } from '../failover/state-machine.js';
import { probeRoute, reservePortPair, type PortPair } from './ports.js';
import { PathHost } from './path-host.js';
import { SupervisorHost } from './supervisor-host.js';
import { FailoverExecutor, type PathStateEvent } from './failover-executor.js';
import {
  SessionTable, currentPacket, openCommand, segmentFrom, sessionInfo,
  type EngineAsset, type Session, type SessionFailure, type SessionInfo, type StreamLimits,
} from './session-table.js';
import { engineStatus, failoverEvent, type EngineStatus, type FailoverEvent } from './status.js';

export type { EngineAsset, SessionFailure, SessionInfo, SessionState, StreamLimits } from './session-table.js';
export type { EngineStatus, FailoverEvent, PathStatus } from './status.js';
export type { PathStateEvent } from './failover-executor.js';

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

export interface OpenSessionOptions {
  readonly asset: EngineAsset;
  /** How operators see the asset (its URL path); defaults to the file path. */
  readonly assetName?: string;
  readonly destination: { readonly address: string; readonly port: number };
  readonly transport: TransportKind;
  /** Source address of the session's media (where its ports are bound); default: the engine's streamAddress. */
  readonly source?: string;
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

export interface PlayResult {
  /** RTP sequence number and timestamp of the first datagram of this play (for RTP-Info). */
  readonly seq: number;
  readonly rtptime: number;
  readonly startPacket: number;
  readonly startTimeMs: number;
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

/** A session, by id (closed by its owner, or played to its end). */
export interface SessionIdEvent {
  readonly id: string;
}

/** A destination error reported while the stream goes on (ICMP unreachable and the like). */
export interface SessionErrorEvent {
  readonly id: string;
  readonly message: string;
}

/** Every event the engine emits, with its payload. */
export interface EngineEvents {
  'session-opened': SessionInfo;
  'session-closed': SessionIdEvent;
  /** A playing session reached the end of its asset. */
  'session-ended': SessionIdEvent;
  'session-error': SessionErrorEvent;
  'session-failed': SessionFailedEvent;
  'asset-failed': AssetFailedEvent;
  'failover': FailoverEvent;
  'handover': HandoverEvent;
  'path-state': PathStateEvent;
}

/** EngineEvents as node:events wants it: each event's listener arguments. */
type EngineEventArgs = { [K in keyof EngineEvents]: [EngineEvents[K]] };

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
/** How long a play waits for the session's socket to be bound on the paths that may send it. */
const SESSION_BOUND_TIMEOUT_MS = 3000;

export class Engine extends EventEmitter<EngineEventArgs> {
  readonly cb: ControlBlock;
  private readonly log: Logger;
  private readonly options: Required<Omit<EngineOptions, 'logger'>>;
  private readonly hosts: readonly PathHost[];
  private supervisor: SupervisorHost | undefined;
  private readonly executor: FailoverExecutor;
  private readonly table: SessionTable;
  private closed = false;
  private lastFailover: FailoverEvent | undefined;

  private constructor(options: EngineOptions) {
    super();
    this.options = { ...DEFAULTS, faultInjection: false, ...stripUndefined(options) };
    if (this.options.maxSessions > MAX_SESSIONS) throw new TwinframeError('TF_CONFIG_INVALID', `maxSessions ${this.options.maxSessions} exceeds ${MAX_SESSIONS}`);
    this.log = (options.logger ?? silentLogger).child({ component: 'engine' });
    this.table = new SessionTable(this.options.maxSessions, this.options.limits);
    this.cb = ControlBlock.create(this.options.maxSessions);
    this.cb.setHeartbeatSettings(this.options.heartbeatPeriodUs, this.options.maxMissedHeartbeats);
    const handlers = {
      message: (host: PathHost, incarnation: number, msg: PathToMain) => this.onPathMessage(host, incarnation, msg),
      exit: (host: PathHost, incarnation: number, code: number) => this.onPathExit(host, incarnation, code),
    };
    this.hosts = Array.from({ length: PATH_COUNT }, (_, i) => new PathHost(i as PathId, this.cb, this.options, handlers, this.log));
    this.executor = new FailoverExecutor(this.cb, this.hosts, this.options, {
      restartPath: (host) => this.restartPath(host),
      rebasePlayingSessions: () => this.rebasePlayingSessions(),
      pathFailed: (report) => this.onPathFailed(report),
      pathState: (event) => this.emit('path-state', event),
    }, this.log);
  }

  /**
   * Start the supervisor and both data-path workers. With autoFailover (the
   * default) resolves when the pair is Primary + Secondary; without it, when both
   * workers run, Undefined, waiting for an operator.
   */
  static async start(options: EngineOptions = {}): Promise<Engine> {
    const engine = new Engine(options);
    engine.supervisor = new SupervisorHost(engine.cb, engine.options.maxSessions, (report) => engine.onPathFailed(report), engine.log);
    for (const host of engine.hosts) engine.spawnPath(host);
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
    const { admission, slot } = this.table.admit(options.asset.bitrate);
    let ports: PortPair | undefined;
    try {
      const source = options.source ?? this.options.streamAddress;
      await probeRoute(source, options.destination);
      ports = await reservePortPair(source, this.options.serverPortRange);
      this.assertOpen(); // closed while the ports were bound
    } catch (err) {
      ports?.release();
      this.table.refuse(admission, slot);
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
      boundOn: new Set(),
      boundWaiters: [],
    };
    this.cb.resetSession(slot);
    const command = openCommand(session);
    const queuedOn: PathHost[] = [];
    try {
      for (const host of this.liveHosts()) {
        host.post(command);
        queuedOn.push(host);
      }
    } catch (err) {
      ports.release();
      this.table.refuse(admission);
      this.closeOnPaths(slot, queuedOn);
      this.log.warn({ session: session.id, slot, source: ports.address, rtpPort: ports.rtpPort, err: (err as Error).message }, 'session refused: its command could not be queued on every data path');
      throw err;
    }
    this.table.add(session, admission);
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
    const session = this.table.require(sessionId);
    if (session.state === 'closed') throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${sessionId} is closed`);
    await this.waitSessionBound(session);
    this.assertNotFailed(session);
    if (session.state === 'playing') this.cb.pauseSession(session.slot);
    const startPacket = options.startPacket ?? this.currentPacket(session);
    if (!Number.isInteger(startPacket) || startPacket < 0 || startPacket >= session.asset.packetCount) {
      throw new TwinframeError('TF_RANGE_INVALID', `start packet ${startPacket} is outside the asset (0..${session.asset.packetCount - 1})`);
    }
    const segment = this.cb.startSegment(session.slot, () => segmentFrom(session, startPacket));
    session.segment = segment;
    session.state = 'playing';
    this.cb.wakePaths();
    return { seq: (session.initialSeq + segment.startCursor) & 0xffff, rtptime: segment.rtpTsBase, startPacket, startTimeMs: segment.startTimeMs };
  }

  pause(sessionId: string): void {
    const session = this.table.require(sessionId);
    if (session.state !== 'playing') return;
    this.cb.pauseSession(session.slot);
    session.state = 'paused';
  }

  /** Stop a session on both paths and free its slot and ports. */
  closeSession(sessionId: string): void {
    const session = this.table.get(sessionId);
    if (!session) return;
    this.cb.pauseSession(session.slot);
    session.state = 'closed';
    this.table.delete(sessionId);
    session.ports.release();
    this.closeOnPaths(session.slot, this.liveHosts());
    for (const resolve of session.boundWaiters) resolve();
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
    this.table.checkAdmission(bitrate, excludingSessionId);
  }

  getLimits(): StreamLimits {
    return this.table.limits;
  }

  /** New limits apply to sessions opened from now on; running ones are never cut. */
  setLimits(limits: StreamLimits): void {
    this.table.limits = { ...limits };
  }

  getSession(sessionId: string): SessionInfo | undefined {
    const session = this.table.get(sessionId);
    return session && this.info(session);
  }

  listSessions(): SessionInfo[] {
    return [...this.table.values()].map((s) => this.info(s));
  }

  // ── Failover ───────────────────────────────────────────────────────────────

  status(): EngineStatus {
    return engineStatus(this.cb, this.hosts, this.lastFailover, this.table.size);
  }

  /** Inject a fault into one path (only when enabled by configuration). */
  injectFault(path: PathName, kind: InjectableFault, delayMs?: number): void {
    if (!this.options.faultInjection) throw new TwinframeError('TF_FAULT_INJECTION_DISABLED');
    this.host(path).post({ type: 'inject-fault', kind, delayMs });
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
    return this.executor.command(event);
  }

  failoverPair(): FailoverPair {
    return this.executor.failoverPair;
  }

  setHeartbeat(periodUs: number, maxMissed: number): void {
    this.cb.setHeartbeatSettings(periodUs, maxMissed);
  }

  /** Resolves when one path sends and the other is online, ready to take over (the pair is protected). */
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
    return owner !== undefined && this.cb.isOnline(owner) && this.cb.isOnline(partnerOf(owner));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.table.values()].map((s) => s.id)) this.closeSession(id);
    for (const host of this.hosts) host.beginStop();
    this.cb.shutdown();
    await Promise.all([...this.hosts.map((h) => h.stop()), this.supervisor?.stop()]);
    this.removeAllListeners();
  }

  // ── Paths: spawn, fail, respawn ────────────────────────────────────────────

  /** Every live worker follows the broadcast table from birth, so synchronizing it (begin-sync) is only waiting for its sync marker. */
  private spawnPath(host: PathHost): void {
    host.spawn([...this.table.values()].map(openCommand));
  }

  /** Terminate a failed worker and spawn its replacement; the old incarnation's bookkeeping is dropped. */
  private async restartPath(host: PathHost): Promise<void> {
    const oldKey = host.key;
    const terminated = host.terminate();
    this.cb.clearOnline(host.id);
    this.table.forgetIncarnation(oldKey);
    await terminated;
    if (!this.closed) this.spawnPath(host);
  }

  private onPathMessage(host: PathHost, incarnation: number, msg: PathToMain): void {
    if (incarnation !== host.incarnation) return; // a message from a worker already replaced
    switch (msg.type) {
      case 'session-bound': {
        const session = this.table.inSlot(msg.slot, msg.sessionId);
        if (session) {
          session.boundOn.add(host.key);
          for (const resolve of session.boundWaiters.splice(0)) resolve();
        }
        break;
      }
      case 'session-closed': this.table.closeAcknowledged(msg.slot, host.key); break;
      case 'session-ended': {
        const session = this.table.inSlot(msg.slot, msg.sessionId);
        if (session?.state === 'playing') {
          session.state = 'ended';
          this.emit('session-ended', { id: session.id });
        }
        break;
      }
      case 'synced': host.synced(msg.token); break;
      case 'booted':
        if (msg.policy !== 'fifo') this.log.warn({ path: host.name, policy: msg.policy, reason: msg.priorityError }, 'data path runs without real-time priority');
        break;
      case 'handover': this.onHandover(msg); break;
      case 'session-error':
        this.log.warn({ path: host.name, session: msg.sessionId, message: msg.message }, 'destination error on a session');
        this.emit('session-error', { id: msg.sessionId, message: msg.message });
        break;
      case 'session-fault': {
        const session = this.table.inSlot(msg.slot, msg.sessionId);
        if (!session) break;
        if (msg.scope === 'asset') this.failAsset(session.asset, session.assetName, msg.reason, host.name);
        else this.failSession(session, { scope: 'session', reason: msg.reason }, host.name);
        break;
      }
    }
  }

  /**
   * A standby found the sender late on due work and took sending over (its own
   * CAS on ACTIVE): nobody failed. The roles swap, as in a manual switch.
   */
  private onHandover(msg: HandoverMessage): void {
    const handover: HandoverEvent = { from: PATH_NAMES[msg.from], to: PATH_NAMES[msg.to], lateMs: msg.lateMs, atMs: msg.atMs };
    this.log.info({ from: handover.from, to: handover.to, lateMs: Math.round(msg.lateMs * 100) / 100 }, 'sending handed over to the on-time path');
    this.emit('handover', handover);
    this.executor.handedOver(handover.to);
  }

  private onPathExit(host: PathHost, incarnation: number, code: number): void {
    if (host.stopping || this.closed || incarnation !== host.incarnation) return;
    // Backup detector: the worker died without the supervisor having handled it.
    const critical = this.cb.critical(host.id);
    const report = failPath(this.cb, host.id, incarnation, critical?.cause ?? FailureCause.EXIT, critical?.atMs ?? monoNowMs());
    this.log.warn({ path: host.name, code }, 'data path exited');
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
    const host = this.hosts[report.path];
    if (report.incarnation !== host.incarnation) return;
    const event = failoverEvent(report);
    this.lastFailover = event;
    this.log.warn({
      path: event.pathName, cause: event.cause, to: event.switchedToName, wasActive: event.wasActive,
      switchLatencyMs: event.switchLatencyMs, detectionMs: event.detectedAtMs - event.failedAtMs,
    }, 'data path failed');
    this.emit('failover', event);
    this.executor.pathFailed(host.name, report.cause);
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
    for (const resolve of session.boundWaiters.splice(0)) resolve();
    if (failure.scope === 'session') this.log.warn({ session: session.id, path, reason: failure.reason }, 'session ended by a fault of its own');
    this.emit('session-failed', { id: session.id, assetName: session.assetName, ...failure });
  }

  /** The asset's file is unusable on both paths: end every session of it, and say so once. */
  private failAsset(asset: EngineAsset, assetName: string, reason: string, path: PathName): void {
    const affected = [...this.table.values()].filter((s) => s.asset.assetPath === asset.assetPath && s.state !== 'failed');
    if (affected.length === 0) return; // the twin's report of the same fault
    this.log.warn({ asset: assetName, path, reason, sessions: affected.map((s) => s.id) }, 'asset unusable; its sessions ended');
    for (const s of affected) this.failSession(s, { scope: 'asset', reason }, path);
    this.emit('asset-failed', { assetPath: asset.assetPath, assetName, reason });
  }

  private assertNotFailed(session: Session): void {
    if (session.failure) throw new TwinframeError('TF_SESSION_FAILED', `session ${session.id} ended by a fault: ${session.failure.reason}`, { ...session.failure });
  }

  // ── Helpers ────────────────────────────────────────────────────────────────

  private currentPacket(session: Session): number {
    return currentPacket(session, ControlBlock.cursorOf(this.cb.ctrl(session.slot)));
  }

  /** After a time with no sender, restart every playing session's clock at its cursor, instead of bursting the backlog. */
  private rebasePlayingSessions(): void {
    for (const session of this.table.values()) {
      if (session.state !== 'playing') continue;
      const startPacket = this.currentPacket(session);
      session.segment = this.cb.startSegment(session.slot, () => segmentFrom(session, startPacket));
    }
  }

  /** Wait until the session's socket is bound on every path that may send it (the sender, and an online standby). */
  private async waitSessionBound(session: Session): Promise<void> {
    const deadline = Date.now() + SESSION_BOUND_TIMEOUT_MS;
    for (;;) {
      const owner = ControlBlock.ownerOf(this.cb.activeWord());
      const needed = this.liveHosts().filter((h) => this.cb.isOnline(h.id) || h.id === owner);
      if (needed.length > 0 && needed.every((h) => session.boundOn.has(h.key))) return;
      if (session.state === 'closed') throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${session.id} was closed`);
      this.assertNotFailed(session);
      const left = deadline - Date.now();
      if (left <= 0) {
        if (owner !== undefined && session.boundOn.has(this.hosts[owner].key)) return; // unprotected, but the sender has it
        throw new TwinframeError('TF_NO_DATA_PATH', `session ${session.id} is not open on any sending data path`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        session.boundWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /**
   * Tell `hosts` to close `slot`. The slot is free again once each has
   * acknowledged or been replaced: until then a path may still hold its socket.
   */
  private closeOnPaths(slot: number, hosts: readonly PathHost[]): void {
    const waiting = new Set<string>();
    for (const host of hosts) {
      try {
        host.post({ type: 'close-session', slot });
      } catch (err) {
        // The path keeps the session until it is replaced; the slot waits for that.
        this.log.error({ path: host.name, slot, err: (err as Error).message }, 'cannot queue a session close; its slot stays taken until the path is restarted');
      }
      waiting.add(host.key);
    }
    this.cb.wakePaths();
    this.table.closing(slot, waiting);
  }

  private liveHosts(): PathHost[] {
    return this.hosts.filter((h) => h.live);
  }

  private host(name: PathName): PathHost {
    const index = PATH_NAMES.indexOf(name);
    if (index < 0) throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `no path named ${name}`);
    return this.hosts[index];
  }

  private info(s: Session): SessionInfo {
    return sessionInfo(s, ControlBlock.cursorOf(this.cb.ctrl(s.slot)));
  }

  private assertOpen(): void {
    if (this.closed) throw new TwinframeError('TF_ENGINE_STOPPED');
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
