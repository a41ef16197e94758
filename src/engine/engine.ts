// The engine: the control plane's handle on the K pairs of data paths and the
// supervisor, as a façade over focused parts:
//
//   session-table.ts      the broadcast table: sessions, placement on a pair, slots, admission
//   ports.ts              the server ports of a session
//   pair.ts               one pair: its control block, two path hosts, failover executor
//   path-host.ts          one data-path worker's life: spawn, post, sync, restart
//   supervisor-host.ts    the supervisor thread's life (one thread watches every pair)
//   failover-executor.ts  carries out the state machine's actions (one per pair)
//   status.ts             the status projection and the 'failover' event
//   malloc-tuning.ts      malloc set up so that restarted paths give their memory back
//
// Each session lives on one pair for its whole life (the least loaded when it
// opened). The engine picks everything random once (SSRC, first sequence number
// and timestamp, ports) so both paths of the pair build identical datagrams, and
// carries out what a failure needs: terminate the failed worker, spawn its
// replacement, synchronize it mid-stream from the pair's sessions and the shared
// cursors, and bring that pair back to Primary + Secondary without the streams
// pausing. The other pairs are not touched.
//
//   main thread (this)          supervisor thread          data paths a, b (× K pairs)
//   openSession/play/pause ──► SAB command queues ───────► open sockets, follow cursors
//   session control words ◄─────────────────────────────── advance cursors (CAS)
//   'path-failed' ◄──────────── switches ACTIVE (CAS) ◄─── heartbeats, critical words

import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { ControlBlock, type SegmentParams } from '../shared/control-block.js';
import type { InjectableFault, MulticastOutput, TransportKind } from '../shared/commands.js';
import { FailureCause, MAX_SESSIONS, PATH_NAMES, type PathId, type PathName } from '../shared/layout.js';
import type { FailureReport, HandoverCause, HandoverMessage, PathToMain } from '../shared/messages.js';
import { monoNowMs } from '../shared/clock.js';
import { failPath } from '../supervisor/fail-path.js';
import { TwinframeError, isTwinframeError } from '../errors.js';
import { isTrickScale, TRICK_SCALES } from '../mpegts/trick.js';
import type { LoopPlan } from '../mpegts/loop.js';
import { silentLogger, type Logger } from '../log.js';
import { bootstrapPair, senderOf, type FailoverPair, type MachineEvent, type PairStates } from '../failover/state-machine.js';
import { adoptPortPair, probeRoute, reservePortPair, type PortPair } from './ports.js';
import { replicaOf, replicaSteps, replicates, type ReplicaCursor, type ReplicationEvent, type SessionReplica } from './replica.js';
import { processLockSpace, wireAddon } from '../shared/wire.js';
import type { PathHost } from './path-host.js';
import { SupervisorHost } from './supervisor-host.js';
import { DataPathPair } from './pair.js';
import {
  SessionTable, currentPacket, openCommand, segmentFrom, sessionInfo, wireMessage,
  type EngineAsset, type Session, type SessionFailure, type SessionInfo, type SessionInterleaved, type SharedInterleaved, type StreamLimits,
} from './session-table.js';
import { engineStatus, failoverEvent, type EngineStatus, type FailoverEvent } from './status.js';
import type { PathStateEvent } from './failover-executor.js';
import { MMAP_THRESHOLD_BYTES, releaseFreedMemory, tuneMallocForPathRestarts } from './malloc-tuning.js';

export type { EngineAsset, SessionFailure, SessionInfo, SessionState, StreamLimits } from './session-table.js';
export type { EngineStatus, FailoverEvent, PairStatus, PathStatus } from './status.js';
export type { PathStateEvent } from './failover-executor.js';
export type { ReplicaCursor, ReplicationEvent, SessionReplica } from './replica.js';

export interface EngineOptions {
  readonly logger?: Logger;
  /** How many pairs of data paths share the sessions (each with its own control block and failover). */
  readonly pairs?: number;
  /** Session slots of each pair's control block. */
  readonly maxSessions?: number;
  readonly heartbeatPeriodUs?: number;
  readonly maxMissedHeartbeats?: number;
  /** pacing.batchWindowUs: a data path sends what falls due within this window in one turn. */
  readonly batchWindowUs?: number;
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
  /** Where each pair's control block lives: shared memory a standby process maps (src/pair-process); absent: this process's own. */
  readonly controlBlockMemory?: (pair: number, bytes: number) => SharedArrayBuffer;
}

export interface OpenSessionOptions {
  readonly asset: EngineAsset;
  /** How operators see the asset (its URL path); defaults to the file path. */
  readonly assetName?: string;
  readonly destination: { readonly address: string; readonly port: number };
  readonly transport: TransportKind;
  /** Source address of the session's media (where its ports are bound); default: the engine's streamAddress. */
  readonly source?: string;
  /** RTP on the viewer's RTSP connection instead of UDP: no ports, no destination is used. */
  readonly interleaved?: InterleavedOptions;
  /** The destination is a multicast group (224.0.0.0/4), sent with this TTL from this interface (a broadcast). */
  readonly multicast?: MulticastOutput;
  /** The broadcast this session carries (no RTSP viewer owns it): its name. */
  readonly broadcast?: string;
  /** Play on past the asset's end, pass after pass (a looping broadcast). */
  readonly loop?: LoopPlan;
  /** A standby process opens the session its primary opened: that id, those random choices and ports. */
  readonly replica?: SessionReplica;
}

export interface InterleavedOptions {
  /** The RTSP connection's socket descriptor (the engine keeps its own duplicate while paths may write). */
  readonly connectionFd: number;
  /** RTP's interleaved channel. */
  readonly channel: number;
  /** The connection's wire (src/shared/wire.ts). */
  readonly wire: SharedArrayBuffer;
  /** The session ends when its stream falls this far behind (a client that reads too slowly). */
  readonly backlogMs: number;
  /** A process pair: where the standby finds the connection and the wire (the wire must be that shared region). */
  readonly shared?: SharedInterleaved;
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

/** What play() started: where the datagrams begin (PlayResult) and where they stop. */
export interface PlayStarted extends PlayResult {
  /** The packet the play stops before (the asset's packet count: its end). */
  readonly endPacket: number;
}

/** A standby found the sender late on due work and took sending over; nobody failed. */
export interface HandoverEvent {
  readonly pair: number;
  readonly from: PathName;
  readonly to: PathName;
  /** How late the sender was on its oldest due datagram, ms. */
  readonly lateMs: number;
  /** When sending moved, on the shared clock (monoNowMs). */
  readonly atMs: number;
  /** Why the standby took over: the sender stood still ('late') or waited for its disk ('read-wait'). */
  readonly cause: HandoverCause;
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
  /** A step of the session command stream, for a standby process (src/pair-process). */
  'replicate': ReplicationEvent;
}

/** EngineEvents as node:events wants it: each event's listener arguments. */
type EngineEventArgs = { [K in keyof EngineEvents]: [EngineEvents[K]] };

const DEFAULTS = {
  pairs: 1,
  maxSessions: 64,
  heartbeatPeriodUs: 2000, // the configuration's defaults
  maxMissedHeartbeats: 5,
  batchWindowUs: 500, // the configuration's default
  streamAddress: '127.0.0.1',
  syncTimeoutMs: 5000,
  autoFailover: true,
  serverPortRange: { first: 30000, last: 30999 }, // the configuration's default
  limits: { maxStreams: 100, mpegBandwidthKbps: 500_000, serverBandwidthKbps: 1_000_000 },
};
/** How long a play waits for the session's socket to be bound on the paths that may send it. */
const SESSION_BOUND_TIMEOUT_MS = 3000;

export class Engine extends EventEmitter<EngineEventArgs> {
  private readonly log: Logger;
  private readonly options: Required<Omit<EngineOptions, 'logger' | 'controlBlockMemory'>>;
  private readonly pairs: readonly DataPathPair[];
  private supervisor: SupervisorHost | undefined;
  private readonly table: SessionTable;
  private closed = false;
  /** A standby process's engine: no path of any pair may send (see holdSending). */
  private held = false;
  /** A standby process's engine: the primary's id of the segment each session plays, by session id. */
  private readonly replicaSegments = new Map<string, number>();

  private constructor(options: EngineOptions) {
    super();
    const { controlBlockMemory, ...rest } = options;
    this.options = { ...DEFAULTS, faultInjection: false, ...stripUndefined(rest) };
    if (this.options.maxSessions > MAX_SESSIONS) throw new TwinframeError('TF_CONFIG_INVALID', `maxSessions ${this.options.maxSessions} exceeds ${MAX_SESSIONS}`);
    if (!Number.isInteger(this.options.pairs) || this.options.pairs < 1) throw new TwinframeError('TF_CONFIG_INVALID', `pairs must be an integer ≥ 1 (got ${this.options.pairs})`);
    this.log = (options.logger ?? silentLogger).child({ component: 'engine' });
    this.table = new SessionTable(this.options.maxSessions, this.options.pairs, this.options.limits);
    const hooks = {
      message: (pair: DataPathPair, host: PathHost, incarnation: number, msg: PathToMain) => this.onPathMessage(pair, host, incarnation, msg),
      exit: (pair: DataPathPair, host: PathHost, incarnation: number, code: number) => this.onPathExit(pair, host, incarnation, code),
      restartPath: (pair: DataPathPair, host: PathHost) => this.restartPath(pair, host),
      rebasePlayingSessions: (pair: DataPathPair) => this.rebasePlayingSessions(pair),
      pathFailed: (pair: DataPathPair, report: FailureReport) => this.onPathFailed(pair, report),
      pathState: (event: PathStateEvent) => this.emit('path-state', event),
      sendingHeld: () => this.held,
    };
    this.pairs = Array.from({ length: this.options.pairs }, (_, i) => new DataPathPair(i, { ...this.options, controlBlockMemory }, hooks, this.log));
  }

  /**
   * Start the supervisor and every pair's two data-path workers. With
   * autoFailover (the default) resolves when every pair is Primary + Secondary,
   * or, on a machine too busy for a standby to synchronize within
   * syncTimeoutMs, once every pair has a sending path (its standby goes on
   * synchronizing, as after any failure: a warning says so); without it, when
   * the workers run, Undefined, waiting for an operator.
   */
  static async start(options: EngineOptions = {}): Promise<Engine> {
    const engine = new Engine(options);
    // Before any worker runs: their buffers then already go by the threshold.
    if (!tuneMallocForPathRestarts()) engine.log.info({ mmapThresholdBytes: MMAP_THRESHOLD_BYTES }, 'malloc not tuned (no native addon, or not glibc): path restarts may leave memory in malloc arenas');
    engine.supervisor = new SupervisorHost(engine.pairs.map((p) => p.cb), engine.options.maxSessions, (pair, report) => engine.onPathFailed(engine.pairs[pair], report), engine.log);
    for (const pair of engine.pairs) for (const host of pair.hosts) engine.spawnPath(pair, host);
    try {
      if (engine.options.autoFailover) {
        await Promise.all(engine.pairs.map(async (pair) => {
          for (const event of bootstrapPair('a')) {
            if (event.kind !== 'sync_complete') await engine.command(event, pair.index); // begin-sync reports its own outcome
          }
        }));
        try {
          await engine.waitUntilProtected(engine.options.syncTimeoutMs);
        } catch (err) {
          if (!isTwinframeError(err, 'TF_FAILOVER_NO_STANDBY') || !engine.pairs.every((p) => p.hasSender())) throw err;
          engine.log.warn({ waitedMs: engine.options.syncTimeoutMs, err: (err as Error).message }, 'started with a sending path in every pair, but not every pair is protected yet: the standby goes on synchronizing');
        }
      }
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  // ── Sessions ───────────────────────────────────────────────────────────────

  /**
   * Create a session on both paths of the least-loaded pair (sockets opened,
   * nothing sent until play); it stays on that pair. Its admission (against
   * limits for the whole server) and its pair are reserved before the first
   * await, so concurrent opens cannot pass a limit together. The session enters
   * the table only once its command is queued on every live path of its pair;
   * whatever fails on the way is undone (admission, slot, ports, and the command
   * on a path that already took it).
   */
  async openSession(options: OpenSessionOptions): Promise<SessionInfo> {
    this.assertOpen();
    if (options.interleaved && options.multicast) throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', 'a session is either interleaved or multicast');
    const { admission, slot } = this.table.admit(options.asset.bitrate);
    let ports: PortPair | undefined;
    let interleaved: SessionInterleaved | undefined;
    try {
      const source = options.source ?? this.options.streamAddress;
      if (options.interleaved) {
        interleaved = duplicateConnection(options.interleaved);
        ports = noPorts(source);
      } else {
        await probeRoute(source, options.destination, options.multicast);
        ports = options.replica ? await adoptPortPair(options.replica.source.address, options.replica.source.rtpPort) : await reservePortPair(source, this.options.serverPortRange);
      }
      this.assertOpen(); // closed while the ports were bound
    } catch (err) {
      ports?.release();
      if (interleaved) wireAddon?.closeFd(interleaved.fd);
      this.table.refuse(admission, slot);
      throw err;
    }
    const pair = this.pairs[admission.pair];
    const session: Session = {
      id: options.replica?.id ?? randomBytes(8).toString('hex'),
      pair: pair.index,
      slot,
      asset: options.asset,
      assetName: options.assetName ?? options.asset.assetPath,
      openedAt: new Date(),
      transport: options.transport,
      destination: { ...options.destination },
      ports,
      interleaved,
      multicast: options.multicast === undefined ? undefined : { ...options.multicast },
      broadcast: options.broadcast,
      loop: options.loop,
      ssrc: options.replica?.ssrc ?? randomInt(1, 2 ** 32 - 1),
      initialSeq: options.replica?.initialSeq ?? randomInt(0, 0x10000),
      initialRtpTs: options.replica?.initialRtpTs ?? randomInt(0, 2 ** 32 - 1),
      state: 'ready',
      failure: undefined,
      segment: undefined,
      firstStartMs: options.replica?.firstStartMs,
      boundOn: new Set(),
      boundWaiters: [],
    };
    pair.cb.resetSession(slot);
    const command = openCommand(session);
    const wire = wireMessage(session);
    const queuedOn: PathHost[] = [];
    try {
      for (const host of pair.liveHosts()) {
        if (wire) host.postWire(wire);
        host.post(command);
        queuedOn.push(host);
      }
    } catch (err) {
      ports.release();
      this.table.refuse(admission);
      this.closeOnPaths(pair, session, queuedOn);
      this.log.warn({ session: session.id, pair: pair.index, slot, source: ports.address, rtpPort: ports.rtpPort, err: (err as Error).message }, 'session refused: its command could not be queued on every data path');
      throw err;
    }
    this.table.add(session, admission);
    pair.cb.wakePaths();
    this.log.info({ session: session.id, pair: pair.index, slot, transport: session.transport, source: ports.address, rtpPort: ports.rtpPort }, 'session opened');
    this.emit('session-opened', this.info(session));
    const replica = replicaOf(session);
    if (replica) this.replicate({ kind: 'open', session: replica });
    return this.info(session);
  }

  /**
   * Start (or resume, or seek) streaming at `startPacket` (default: where it
   * paused), to before `endPacket` (default: a resume keeps the end it had, a
   * seek goes to the asset's end). Resolves once the datagrams are scheduled,
   * with the RTP-Info values.
   */
  async play(sessionId: string, options: { startPacket?: number; endPacket?: number; scale?: number } = {}): Promise<PlayStarted> {
    const scale = options.scale ?? 1;
    if (scale !== 1 && !isTrickScale(scale)) throw new TwinframeError('TF_RTSP_HEADER_NOT_VALID', `Scale ${scale} is not served (1, ${TRICK_SCALES.join(', ')})`);
    const session = this.table.require(sessionId);
    if (session.state === 'closed') throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${sessionId} is closed`);
    await this.waitSessionBound(session);
    this.assertNotFailed(session);
    const { cb } = this.pairs[session.pair];
    if (session.state === 'playing') cb.pauseSession(session.slot);
    const startPacket = options.startPacket ?? this.currentPacket(session);
    if (!Number.isInteger(startPacket) || startPacket < 0 || startPacket >= session.asset.packetCount) {
      throw new TwinframeError('TF_RANGE_INVALID', `start packet ${startPacket} is outside the asset (0..${session.asset.packetCount - 1})`);
    }
    const endPacket = options.endPacket ?? (options.startPacket === undefined ? session.segment?.endPacket : undefined) ?? session.asset.packetCount;
    if (!Number.isInteger(endPacket) || endPacket <= startPacket || endPacket > session.asset.packetCount) {
      throw new TwinframeError('TF_RANGE_INVALID', `end packet ${endPacket} is not after start packet ${startPacket} inside the asset (..${session.asset.packetCount})`);
    }
    const segment = cb.startSegment(session.slot, () => ({ ...segmentFrom(session, startPacket, endPacket), scale }));
    session.segment = segment;
    session.state = 'playing';
    cb.wakePaths();
    this.replicateSegment(session);
    return { seq: (session.initialSeq + segment.startCursor) & 0xffff, rtptime: segment.rtpTsBase, startPacket, endPacket, startTimeMs: segment.startTimeMs };
  }

  /** A send claim's (or wire lock's) holder on `pair` is gone for good: it may be taken over. */
  claimHolderDead(pair: number, tag: number): boolean {
    return this.pairs[pair]?.cb.claimHolderDead(tag) ?? true;
  }

  pause(sessionId: string): void {
    const session = this.table.require(sessionId);
    if (session.state !== 'playing') return;
    this.pairs[session.pair].cb.pauseSession(session.slot);
    session.state = 'paused';
    this.replicate({ kind: 'pause', id: sessionId });
  }

  /** Stop a session on both paths of its pair and free its slot and ports. */
  closeSession(sessionId: string): void {
    const session = this.table.get(sessionId);
    if (!session) return;
    const pair = this.pairs[session.pair];
    pair.cb.pauseSession(session.slot);
    session.state = 'closed';
    this.table.delete(sessionId);
    session.ports.release();
    this.closeOnPaths(pair, session, pair.liveHosts());
    for (const resolve of session.boundWaiters) resolve();
    this.replicaSegments.delete(sessionId);
    this.log.info({ session: sessionId }, 'session closed');
    this.emit('session-closed', { id: sessionId });
    this.replicate({ kind: 'close', id: sessionId });
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

  /** The play the session's datagrams follow now (a process pair's survivor: the primary's, adopted), undefined before one. */
  currentPlay(sessionId: string): PlayResult | undefined {
    const session = this.table.get(sessionId);
    const segment = session?.segment;
    if (!session || !segment) return undefined;
    return { seq: (session.initialSeq + segment.startCursor) & 0xffff, rtptime: segment.rtpTsBase, startPacket: segment.startPacket, startTimeMs: segment.startTimeMs };
  }

  getSession(sessionId: string): SessionInfo | undefined {
    const session = this.table.get(sessionId);
    return session && this.info(session);
  }

  listSessions(): SessionInfo[] {
    return [...this.table.values()].map((s) => this.info(s));
  }

  // ── Failover ───────────────────────────────────────────────────────────────

  /** How many pairs of data paths run (numbered 0 … pairCount − 1). */
  get pairCount(): number {
    return this.pairs.length;
  }

  /** Pair 0's control block (the only one with one pair). */
  get cb(): ControlBlock {
    return this.pairs[0].cb;
  }

  controlBlock(pair = 0): ControlBlock {
    return this.pair(pair).cb;
  }

  status(): EngineStatus {
    return engineStatus(this.pairs.map((p) => p.status(this.table.ofPair(p.index).length)), this.pairs[0].cb.heartbeatSettings());
  }

  /** Inject a fault into one path of a pair (only when enabled by configuration); `delayMs` for 'slow-disk'. */
  injectFault(path: PathName, kind: InjectableFault, pair = 0, delayMs?: number): void {
    if (!this.options.faultInjection) throw new TwinframeError('TF_FAULT_INJECTION_DISABLED');
    const p = this.pair(pair);
    p.host(path).post({ type: 'inject-fault', kind, delayMs });
    p.cb.wakePaths();
  }

  /** Operator-requested switch to the pair's standby: the same CAS as a failover, so just as lossless. */
  async switchover(pair = 0): Promise<{ pair: number; from: PathName; to: PathName }> {
    const { cb } = this.pair(pair);
    const from = ControlBlock.ownerOf(cb.activeWord());
    await this.command({ kind: 'manual_switch' }, pair);
    const to = ControlBlock.ownerOf(cb.activeWord());
    if (from === undefined || to === undefined || to === from) throw new TwinframeError('TF_FAILOVER_NO_STANDBY', 'the switch did not take place');
    this.log.info({ pair, from: PATH_NAMES[from], to: PATH_NAMES[to] }, 'manual switchover');
    return { pair, from: PATH_NAMES[from], to: PATH_NAMES[to] };
  }

  /**
   * Run one event of a pair's failover state machine (an operator command, or a
   * system event) and carry out its actions. Resolves with the pair's named
   * states after; a command not allowed in the current state rejects with
   * TF_FAILOVER_ILLEGAL_COMMAND.
   */
  async command(event: MachineEvent, pair = 0): Promise<PairStates> {
    if (this.closed) throw new TwinframeError('TF_ENGINE_STOPPED');
    return this.pair(pair).executor.command(event);
  }

  failoverPair(pair = 0): FailoverPair {
    return this.pair(pair).executor.failoverPair;
  }

  /** The heartbeat settings of every pair (they share them). */
  setHeartbeat(periodUs: number, maxMissed: number): void {
    for (const p of this.pairs) p.cb.setHeartbeatSettings(periodUs, maxMissed);
  }

  /** Resolves when `pair` (default: every pair) is protected: one path sends and the other is online, ready to take over. */
  async waitUntilProtected(timeoutMs = 10_000, pair?: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isProtected(pair)) {
      if (this.closed) throw new TwinframeError('TF_ENGINE_STOPPED');
      if (Date.now() > deadline) {
        const named = this.status().pairs.map((p) => ({ pair: p.pair, states: p.paths.map((x) => x.named) }));
        throw new TwinframeError('TF_FAILOVER_NO_STANDBY', `pair not protected after ${timeoutMs} ms: ${JSON.stringify(named)}`);
      }
      await sleep(5);
    }
  }

  /** `pair` (default: every pair) has one path sending and the other online. */
  isProtected(pair?: number): boolean {
    return pair === undefined ? this.pairs.every((p) => p.isProtected()) : this.pair(pair).isProtected();
  }

  /** Stop every worker of every pair and the supervisor, each wait bounded. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.table.values()].map((s) => s.id)) this.closeSession(id);
    for (const pair of this.pairs) pair.beginStop();
    await Promise.all([...this.pairs.map((p) => p.stop()), this.supervisor?.stop()]);
    this.table.releaseAllClosing(); // no path runs any more: what waited for them is let go
    this.removeAllListeners();
  }

  // ── Paths: spawn, fail, respawn ────────────────────────────────────────────

  /** Every live worker follows its pair's sessions from birth, so synchronizing it (begin-sync) is only waiting for its sync marker. */
  private spawnPath(pair: DataPathPair, host: PathHost): void {
    const sessions = this.table.ofPair(pair.index);
    host.spawn(sessions.map(openCommand), sessions.map(wireMessage).filter((m) => m !== undefined));
  }

  /** Terminate a failed worker and spawn its replacement; the old incarnation's bookkeeping is dropped. */
  private async restartPath(pair: DataPathPair, host: PathHost): Promise<void> {
    const oldKey = host.key;
    const terminated = host.terminate();
    pair.cb.clearOnline(host.id);
    this.table.forgetIncarnation(pair.index, oldKey);
    await terminated;
    if (this.closed) return;
    this.spawnPath(pair, host);
    // The old thread has ended (terminate resolved): what it freed is in the arenas now.
    releaseFreedMemory();
  }

  private onPathMessage(pair: DataPathPair, host: PathHost, incarnation: number, msg: PathToMain): void {
    if (incarnation !== host.incarnation) return; // a message from a worker already replaced
    switch (msg.type) {
      case 'session-bound': {
        const session = this.table.inSlot(pair.index, msg.slot, msg.sessionId);
        if (session) {
          session.boundOn.add(host.key);
          for (const resolve of session.boundWaiters.splice(0)) resolve();
        }
        break;
      }
      case 'session-closed': this.table.closeAcknowledged(pair.index, msg.slot, host.key); break;
      case 'session-ended': {
        const session = this.table.inSlot(pair.index, msg.slot, msg.sessionId);
        if (session?.state === 'playing') {
          session.state = 'ended';
          this.emit('session-ended', { id: session.id });
        }
        break;
      }
      case 'synced': host.synced(msg.token); break;
      case 'booted':
        if (msg.policy !== 'fifo') this.log.warn({ pair: pair.index, path: host.name, policy: msg.policy, reason: msg.priorityError }, 'data path runs without real-time priority');
        break;
      case 'handover': this.onHandover(pair, msg); break;
      case 'session-error':
        this.log.warn({ pair: pair.index, path: host.name, session: msg.sessionId, message: msg.message }, 'destination error on a session');
        this.emit('session-error', { id: msg.sessionId, message: msg.message });
        break;
      case 'session-fault': {
        const session = this.table.inSlot(pair.index, msg.slot, msg.sessionId);
        if (!session) break;
        if (msg.scope === 'asset') this.failAsset(session.asset, session.assetName, msg.reason, host.name);
        else this.failSession(session, { scope: 'session', reason: msg.reason }, host.name);
        break;
      }
    }
  }

  /**
   * A standby found the sender late on due work and took sending over (its own
   * CAS on its pair's ACTIVE): nobody failed. The roles swap, as in a manual switch.
   */
  private onHandover(pair: DataPathPair, msg: HandoverMessage): void {
    const handover: HandoverEvent = { pair: pair.index, from: PATH_NAMES[msg.from], to: PATH_NAMES[msg.to], lateMs: msg.lateMs, atMs: msg.atMs, cause: msg.cause };
    this.log.info({ pair: pair.index, from: handover.from, to: handover.to, cause: handover.cause, lateMs: Math.round(msg.lateMs * 100) / 100 }, 'sending handed over to the on-time path');
    this.emit('handover', handover);
    pair.executor.handedOver(handover.to);
  }

  private onPathExit(pair: DataPathPair, host: PathHost, incarnation: number, code: number): void {
    if (host.stopping || this.closed || incarnation !== host.incarnation) return;
    // Backup detector: the worker died without the supervisor having handled it.
    const critical = pair.cb.critical(host.id);
    const report = failPath(pair.cb, host.id, incarnation, critical?.cause ?? FailureCause.EXIT, critical?.atMs ?? monoNowMs());
    this.log.warn({ pair: pair.index, path: host.name, code }, 'data path exited');
    // Not claimed here: the supervisor claimed it and its report is on the way.
    if (report) this.onPathFailed(pair, report);
  }

  /**
   * A failure was claimed (by the supervisor, which has already moved the pair's
   * ACTIVE, or here). Record it, then let the pair's state machine mark the path
   * Failed, promote its partner and restart it.
   */
  private onPathFailed(pair: DataPathPair, report: FailureReport): void {
    if (this.closed) return;
    const host = pair.hosts[report.path];
    if (report.incarnation !== host.incarnation) return;
    const event = failoverEvent(pair.index, report);
    pair.failures.count++;
    pair.failures.last = event;
    this.log.warn({
      pair: pair.index, path: event.pathName, cause: event.cause, to: event.switchedToName, wasActive: event.wasActive,
      switchLatencyMs: event.switchLatencyMs, detectionMs: event.detectedAtMs - event.failedAtMs, stall: report.stall,
    }, 'data path failed');
    this.emit('failover', event);
    pair.executor.pathFailed(host.name, report.cause);
  }

  // ── Process pair: a standby process's engine follows its primary's ─────────

  /** An interleaved session's wire, its shared region (a process pair) and its pair; undefined for any other session. */
  interleavedWire(sessionId: string): { wire: SharedArrayBuffer; region: string | undefined; pair: number } | undefined {
    const session = this.table.get(sessionId);
    const interleaved = session?.interleaved;
    return interleaved && { wire: interleaved.wire, region: interleaved.shared?.region, pair: session.pair };
  }

  /** Every open session as the steps that bring a fresh standby process to it (a snapshot). */
  replicaSnapshot(): ReplicationEvent[] {
    return [...this.table.values()].flatMap(replicaSteps);
  }

  /** Where every open session stands (its segment and cursor), for a standby process. */
  replicaCursors(): ReplicaCursor[] {
    return [...this.table.values()].filter(replicates).map((s) => {
      const word = this.pairs[s.pair].cb.ctrl(s.slot);
      return { id: s.id, segment: ControlBlock.segmentOf(word), cursor: ControlBlock.cursorOf(word) };
    });
  }

  /**
   * A standby process's engine: no path of any pair sends (ACTIVE names nobody)
   * until takeOver. Both paths of each pair stay online and follow every session
   * as a standby does; the pairs' state machines are not told (their paths are
   * ready to send), only kept from giving sending to a path meanwhile.
   */
  holdSending(): void {
    this.held = true;
    for (const pair of this.pairs) {
      for (;;) {
        const word = pair.cb.activeWord();
        if (ControlBlock.ownerOf(word) === undefined || pair.cb.switchActive(word, undefined)) break;
      }
    }
  }

  /** No path may send (a standby process's engine before its takeover). */
  get sendingHeld(): boolean {
    return this.held;
  }

  /**
   * A standby process's engine: play the segment the primary started (its exact
   * parameters, at its start cursor), so this engine's paths build the same datagrams.
   */
  adoptSegment(sessionId: string, primary: SegmentParams): void {
    const session = this.table.require(sessionId);
    if (session.state === 'failed' || session.state === 'closed') return;
    const { cb } = this.pairs[session.pair];
    if (session.state === 'playing') cb.pauseSession(session.slot);
    this.moveCursorTo(session, primary.startCursor);
    const { startPacket, startTimeMs, rtpTsBase, endPacket, scale } = primary;
    const segment = cb.startSegment(session.slot, () => ({ startPacket, startTimeMs, rtpTsBase, endPacket, scale }));
    if (segment.startCursor !== primary.startCursor) {
      this.log.error({ session: sessionId, cursor: segment.startCursor, primary: primary.startCursor }, 'standby session ahead of its primary: its datagrams will differ');
    }
    session.segment = segment;
    session.state = 'playing';
    this.replicaSegments.set(sessionId, primary.id);
    cb.wakePaths();
  }

  /**
   * A primary turned standby (an operator's role switch): the session here already
   * plays the new primary's segment (the same parameters, its id aside), so take it
   * as that segment without restarting it. False when it plays something else.
   */
  adoptOwnSegment(sessionId: string, primary: SegmentParams): boolean {
    const own = this.table.require(sessionId).segment;
    if (!own || own.startCursor !== primary.startCursor || own.startPacket !== primary.startPacket || own.startTimeMs !== primary.startTimeMs
      || own.rtpTsBase !== primary.rtpTsBase || own.endPacket !== primary.endPacket || (own.scale ?? 1) !== (primary.scale ?? 1)) return false;
    this.replicaSegments.set(sessionId, primary.id);
    return true;
  }

  /** A standby process's engine: the primary's id of the segment the session plays here (undefined: none yet). */
  replicaSegmentOf(sessionId: string): number | undefined {
    return this.replicaSegments.get(sessionId);
  }

  /** A standby process's engine: move each session's cursor on to the primary's (same segment only, never back). */
  followCursors(cursors: readonly ReplicaCursor[]): void {
    for (const c of cursors) {
      const session = this.table.get(c.id);
      if (session && this.replicaSegments.get(c.id) === c.segment) this.moveCursorTo(session, c.cursor);
    }
  }

  /**
   * A standby process takes over: every session's cursor moves to the primary's
   * last, and each pair's in-process primary path becomes the sender; it sends
   * everything already due from there at once. Returns how many pairs send.
   */
  takeOver(cursors: readonly ReplicaCursor[]): number {
    this.followCursors(cursors);
    this.held = false;
    const senders = this.takeoverSenders();
    let sending = 0;
    for (const pair of this.pairs) {
      const target = senders[pair.index];
      const word = pair.cb.activeWord();
      if (target !== undefined && ControlBlock.ownerOf(word) === undefined && pair.cb.switchActive(word, target)) sending++;
    }
    return sending;
  }

  /** A standby process's engine: the path of each pair that a takeover makes the sender (its in-process primary, if online), by pair. */
  takeoverSenders(): (PathId | undefined)[] {
    return this.pairs.map((pair) => {
      const sender = senderOf(pair.executor.failoverPair);
      const target = sender === null ? undefined : pair.host(sender).id;
      return target !== undefined && pair.cb.isOnline(target) ? target : undefined;
    });
  }

  /** Move a session's cursor forward to `target` (within its segment); true when it is there. */
  private moveCursorTo(session: Session, target: number): boolean {
    const { cb } = this.pairs[session.pair];
    for (;;) {
      const word = cb.ctrl(session.slot);
      const cursor = ControlBlock.cursorOf(word);
      if (cursor >= target) return cursor === target;
      if (cb.advanceCursor(session.slot, word, target - cursor)) return true;
    }
  }

  private replicate(step: ReplicationEvent): void {
    if (this.listenerCount('replicate') > 0) this.emit('replicate', step);
  }

  private replicateSegment(session: Session): void {
    if (session.segment && replicates(session)) this.replicate({ kind: 'segment', id: session.id, segment: { ...session.segment } });
  }

  // ── Faults of a session or an asset: the paths stay healthy ────────────────

  /**
   * End a session that a fault outside the paths makes unservable (both paths
   * see it, or would): it stops on both paths and keeps its slot until its owner
   * closes it. Reported once, whichever path saw it first.
   */
  private failSession(session: Session, failure: SessionFailure, path: PathName): void {
    if (session.state === 'failed' || session.state === 'closed') return;
    const { cb } = this.pairs[session.pair];
    cb.pauseSession(session.slot);
    cb.wakePaths();
    session.state = 'failed';
    session.failure = failure;
    this.replicate({ kind: 'pause', id: session.id });
    for (const resolve of session.boundWaiters.splice(0)) resolve();
    if (failure.scope === 'session') this.log.warn({ session: session.id, path, reason: failure.reason }, 'session ended by a fault of its own');
    this.emit('session-failed', { id: session.id, assetName: session.assetName, ...failure });
  }

  /**
   * The asset's file is unusable on both paths of a pair: end every session of
   * it (on every pair: they read the same file), and say so once.
   */
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

  private pair(index: number): DataPathPair {
    const pair = this.pairs[index];
    if (!Number.isInteger(index) || !pair) throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `no pair ${index}: pairs are 0-${this.pairs.length - 1}`);
    return pair;
  }

  private cursor(session: Session): number {
    return ControlBlock.cursorOf(this.pairs[session.pair].cb.ctrl(session.slot));
  }

  private currentPacket(session: Session): number {
    return currentPacket(session, this.cursor(session));
  }

  /** After a time with no sender on a pair, restart its playing sessions' clocks at their cursors, instead of bursting the backlog. */
  private rebasePlayingSessions(pair: DataPathPair): void {
    for (const session of this.table.ofPair(pair.index)) {
      if (session.state !== 'playing') continue;
      const startPacket = this.currentPacket(session);
      const endPacket = session.segment?.endPacket ?? session.asset.packetCount;
      const scale = session.segment?.scale ?? 1;
      session.segment = pair.cb.startSegment(session.slot, () => ({ ...segmentFrom(session, startPacket, endPacket), scale }));
      this.replicateSegment(session);
    }
  }

  /** Wait until the session's socket is bound on every path of its pair that may send it (the sender, and an online standby). */
  private async waitSessionBound(session: Session): Promise<void> {
    const deadline = Date.now() + SESSION_BOUND_TIMEOUT_MS;
    const pair = this.pairs[session.pair];
    for (;;) {
      const owner = ControlBlock.ownerOf(pair.cb.activeWord());
      const needed = pair.liveHosts().filter((h) => pair.cb.isOnline(h.id) || h.id === owner);
      if (needed.length > 0 && needed.every((h) => session.boundOn.has(h.key))) return;
      if (session.state === 'closed') throw new TwinframeError('TF_SESSION_NOT_FOUND', `session ${session.id} was closed`);
      this.assertNotFailed(session);
      const left = deadline - Date.now();
      if (left <= 0) {
        if (owner !== undefined && session.boundOn.has(pair.hosts[owner].key)) return; // unprotected, but the sender has it
        throw new TwinframeError('TF_NO_DATA_PATH', `session ${session.id} is not open on any sending data path`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        session.boundWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /**
   * Tell `hosts` (of `pair`) to close `slot`. The slot is free again once each
   * has acknowledged or been replaced: until then a path may still hold its socket.
   */
  private closeOnPaths(pair: DataPathPair, session: Session, hosts: readonly PathHost[]): void {
    const { slot, interleaved } = session;
    const waiting = new Set<string>();
    for (const host of hosts) {
      try {
        host.post({ type: 'close-session', slot });
      } catch (err) {
        // The path keeps the session until it is replaced; the slot waits for that.
        this.log.error({ pair: pair.index, path: host.name, slot, err: (err as Error).message }, 'cannot queue a session close; its slot stays taken until the path is restarted');
      }
      waiting.add(host.key);
    }
    pair.cb.wakePaths();
    // The connection's duplicate descriptor lives until no path can write to it any more.
    this.table.closing(pair.index, slot, waiting, interleaved ? () => wireAddon?.closeFd(interleaved.fd) : undefined);
  }

  private info(s: Session): SessionInfo {
    return sessionInfo(s, this.cursor(s));
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

/** An interleaved session's own duplicate of its connection's descriptor (TF_RTSP_UNSUPPORTED_TRANSPORT without the addon). */
function duplicateConnection(options: InterleavedOptions): SessionInterleaved {
  const fd = wireAddon ? wireAddon.dupFd(options.connectionFd) : -1;
  if (fd < 0) {
    throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', wireAddon ? `cannot share the connection with the data paths (dup: ${-fd})` : 'RTP over the RTSP connection needs the native addon');
  }
  return {
    fd, channel: options.channel, wire: options.wire, backlogMs: options.backlogMs, lockSpace: processLockSpace(),
    ...(options.shared ? { shared: { ...options.shared } } : {}),
  };
}

/** An interleaved session has no UDP ports: its media goes on the RTSP connection. */
function noPorts(address: string): PortPair {
  return { address, rtpPort: 0, rtcpPort: 0, release() {} };
}
