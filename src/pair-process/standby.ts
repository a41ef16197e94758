// The standby process's side of a process pair. It connects to the primary's
// private link (and keeps trying until it can), proves the shared secret, takes
// the synchronized parameters, and applies the session command stream to its
// own engine, which holds sending: its data paths follow every session and send
// nothing. When the link closes it asks the kernel whether the primary died; if
// so it takes over at once (every session from the primary's last cursor, from
// the same source ports), else it waits for the primary to come back or die.

import { createConnection } from 'node:net';
import { TwinframeError } from '../errors.js';
import type { Engine, InterleavedOptions, ReplicaCursor, ReplicationEvent, SessionReplica } from '../engine/engine.js';
import { processLockSpace, setProcessLockSpace, type LockSpace } from '../shared/wire.js';
import { CLAIM_WAIT_MS, claimAll, writerThreads, writersGone } from './wire-claim.js';
import type { SharedWires } from './shared-wires.js';
import { ControlBlock, type SegmentParams } from '../shared/control-block.js';
import { monoNowMs } from '../shared/clock.js';
import type { Logger } from '../log.js';
import { LinkChannel, authenticatePrimary } from './link.js';
import type { LinkMessage, SharedBlocksInfo } from './link-messages.js';
import type { PeerState, ProcessPairStatus, TakeoverRecord } from './pair-status.js';
import { ProcessWatch } from './process-exit.js';
import { mapPeerBlocks } from './shared-blocks.js';
import { closeDescriptor, removeSharedRegion } from './native-pair.js';
import type { RtspAdoption } from './rtsp-sessions.js';
import type { HeldConnections } from './rtsp-handoff.js';
import type { BroadcastTableLink } from './broadcast-table.js';
import { mapLifeLock } from './native-life-lock.js';
import { TakeoverTable, TakeoverThread, takeoverWatch } from './native-takeover.js';
import type { TakeoverStep, TakeoverToMain } from '../shared/messages.js';

/** How often the standby tries the link again while it has no primary. */
const RECONNECT_MS = 200;
/** A closed link with the primary still running: how long its exit may take to show before the link counts as merely lost. */
const EXIT_CONFIRM_MS = 50;
/** While the link is lost and the primary runs, how often its exit is looked for. */
const LOST_POLL_MS = 5;
/** While sessions are followed, how often the primary's exit is looked for (its link closes only at the end of its teardown). */
const DEATH_POLL_MS = 2;
/** How long an operator's switch asked here may take. */
const SWITCH_TIMEOUT_MS = 5000;
/** How long an interleaved session's open step waits for its connection's descriptor (it crosses the channel beside the link). */
const HELD_WAIT_MS = 2000;

export interface PairStandbyOptions {
  readonly engine: Engine;
  readonly link: string;
  readonly secret: string;
  readonly logger: Logger;
  /** The primary's RTSP sessions, for this process's RTSP server (after each one's engine step). */
  readonly rtsp: RtspAdoption;
  /** The primary's RTSP listening socket and connections, held for a takeover. */
  readonly connections: HeldConnections;
  /** The primary's broadcast table, which this process runs once it sends. */
  readonly broadcasts: BroadcastTableLink;
  /** The primary's wires of RTP on RTSP connections, mapped here to follow those sessions. */
  readonly wires: SharedWires;
  /** This process serves from now on (start listening for viewers). */
  readonly onTakeover: (record: TakeoverRecord) => void;
  /**
   * This process was the primary until a role switch: its sessions are the
   * primary's already, playing the same segments. They are kept and matched to
   * the snapshot instead of being closed and opened again (role-switch.ts).
   */
  readonly keepOwnSessions?: boolean;
}

type StandbyPhase = 'connecting' | 'synchronizing' | 'following' | 'took-over' | 'closed';

export class PairStandby {
  private readonly log: Logger;
  private phase: StandbyPhase = 'connecting';
  private peer: PeerState = 'none';
  private primaryPid: number | null = null;
  /** The primary process itself (a pidfd), from the handshake on. */
  private primary: ProcessWatch | undefined;
  /** The primary's control blocks, mapped (read at takeover), and their names. */
  private primaryBlocks: ControlBlock[] = [];
  private primaryBlockFiles: readonly string[] = [];
  /** The primary's life lock region (its name, for removing it once the primary died). */
  private primaryLifeLockFile: string | undefined;
  /** Each followed session's place in the primary's control blocks. */
  private readonly primarySlots = new Map<string, { readonly pair: number; readonly slot: number }>();
  /** Each followed interleaved session's wire region (this process's to remove once it took over). */
  private readonly followedWires = new Map<string, string>();
  private channel: LinkChannel | undefined;
  /** Steps are applied one after the other (an open is asynchronous). */
  private steps: Promise<void> = Promise.resolve();
  private pendingSteps = 0;
  private lastCursors: readonly ReplicaCursor[] = [];
  private takeover: TakeoverRecord | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  private deathPoll: NodeJS.Timeout | undefined;
  /** Which followed session is where in the primary's blocks, for the takeover step (native-takeover.ts). */
  private readonly takeoverTable: TakeoverTable;
  /** Waits on the primary's life lock and runs the takeover step itself (unless TWINFRAME_PAIR_WATCH=main). */
  private takeoverThread: TakeoverThread | undefined;
  /** The takeover thread waits on the primary's life lock (a role switch may hand over now). */
  private takeoverReady = false;
  /** A primary turned standby: its own sessions, kept until the first snapshot matched them (keepOwnSessions). */
  private ownSessions: Set<string> | undefined;
  /** An operator's switch asked of the primary: settled by the takeover it brings. */
  private switchWaiter: { resolve: (record: TakeoverRecord) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;

  private constructor(private readonly options: PairStandbyOptions) {
    this.log = options.logger.child({ component: 'pair-standby' });
    const { engine } = options;
    this.takeoverTable = TakeoverTable.create(engine.takeoverSenders().length, engine.controlBlock().layout.maxSessions);
    if (options.keepOwnSessions) this.ownSessions = new Set(engine.listSessions().map((s) => s.id));
  }

  /** Start following (in the background: the primary may not be up yet). The engine must hold sending. */
  static start(options: PairStandbyOptions): PairStandby {
    const standby = new PairStandby(options);
    standby.log.info({ link: options.link }, 'process pair: standby, connecting to the primary');
    standby.connect();
    return standby;
  }

  status(): ProcessPairStatus {
    const state = this.phase === 'took-over' ? 'Secondary_No_Primary' : this.phase === 'following' ? 'Secondary' : 'Secondary_Synchronizing';
    return {
      role: 'standby',
      state,
      sending: !this.options.engine.sendingHeld,
      peer: { state: this.peer, pid: this.primaryPid },
      link: this.options.link,
      takeover: this.takeover,
    };
  }

  /** Resolves once every step received so far is applied (tests, and the takeover's bookkeeping). */
  settled(): Promise<void> {
    return this.steps;
  }

  close(): void {
    this.phase = 'closed';
    clearTimeout(this.retryTimer);
    this.stopDeathPoll();
    this.stopTakeoverThread();
    this.channel?.close();
    this.primary?.close();
    if (this.switchWaiter) {
      clearTimeout(this.switchWaiter.timer);
      this.switchWaiter.reject(new TwinframeError('TF_PAIR_SWITCH', 'the standby closed'));
      this.switchWaiter = undefined;
    }
  }

  /** Look for the primary's exit every DEATH_POLL_MS while there are sessions to take over; an idle pair costs nothing. */
  private updateDeathPoll(): void {
    if (this.primarySlots.size === 0 || this.phase === 'closed' || this.phase === 'took-over' || this.takeoverThread) {
      this.stopDeathPoll();
      return;
    }
    const primary = this.primary;
    if (this.deathPoll || !primary) return;
    this.deathPoll = setInterval(() => {
      if (primary === this.primary && primary.dying()) this.takeOver(monoNowMs(), 'exiting');
    }, DEATH_POLL_MS);
  }

  private stopDeathPoll(): void {
    clearInterval(this.deathPoll);
    this.deathPoll = undefined;
  }

  private connect(): void {
    if (this.phase !== 'connecting') return;
    const socket = createConnection(this.options.link);
    const channel = new LinkChannel(socket);
    socket.once('connect', () => {
      this.peer = 'authenticating';
      authenticatePrimary(channel, this.options.secret).then((pid) => this.linked(channel, pid), (err: Error) => {
        this.log.error({ err: err.message }, 'process pair: cannot join the primary');
        channel.close();
      });
    });
    channel.whenClosed(() => {
      if (this.channel === channel) {
        this.channel = undefined;
        void this.linkClosed();
      } else if (this.phase === 'connecting') {
        this.retryTimer = setTimeout(() => this.connect(), RECONNECT_MS);
      }
    });
  }

  private linked(channel: LinkChannel, pid: number): void {
    if (this.phase !== 'connecting' || channel.isClosed) return;
    this.channel = channel;
    this.primaryPid = pid;
    this.primary?.close();
    try {
      this.primary = new ProcessWatch(pid);
    } catch (err) {
      this.log.error({ primaryPid: pid, err: (err as Error).message }, 'process pair: cannot watch the primary process');
      channel.close();
      return;
    }
    this.phase = 'synchronizing';
    this.peer = 'synchronizing';
    // Sessions followed over an earlier link may have changed meanwhile: the snapshot brings them back.
    this.stopDeathPoll();
    this.stopTakeoverThread();
    this.enqueue(() => {
      this.primarySlots.clear();
      this.followedWires.clear();
      this.takeoverTable.locked(() => this.takeoverTable.unfollowAll());
      for (const s of this.options.engine.listSessions()) if (!this.ownSessions?.has(s.id)) this.options.engine.closeSession(s.id);
    });
    channel.onMessage((m) => this.receive(m));
    this.options.connections.connect(this.options.link);
    this.log.info({ primaryPid: pid }, 'process pair: joined the primary');
  }

  private receive(message: LinkMessage): void {
    const { engine } = this.options;
    switch (message.type) {
      case 'params': {
        const p = message.params;
        engine.setHeartbeat(p.heartbeatPeriodUs, p.maxMissedHeartbeats);
        this.takeLockSpace(p.lockSpace);
        engine.setLimits(p.limits);
        this.mapPrimaryBlocks(message.controlBlocks);
        this.primaryLifeLockFile = message.lifeLock;
        this.startTakeoverThread(message.lifeLock);
        this.log.info({ params: p }, 'process pair: synchronized parameters from the primary');
        break;
      }
      case 'step': {
        const { step } = message;
        this.enqueue(() => this.apply(step));
        break;
      }
      case 'rtsp-session': {
        const { session } = message;
        this.enqueue(() => this.options.rtsp.receive(session));
        break;
      }
      case 'broadcast-table':
        this.options.broadcasts.received(message.table);
        break;
      case 'rtsp-release': {
        // After every record (the link is ordered) and once each is adopted, so a request for a session set up
        // just before the switch finds it. The descriptors themselves were passed before, on the channel.
        const released = new Map(message.connections.map((c) => [c.id, Buffer.from(c.pending, 'base64')]));
        this.enqueue(async () => {
          await this.options.rtsp.settled();
          this.options.connections.released(released);
        });
        break;
      }
      case 'synced':
        this.enqueue(() => {
          this.dropUnmatchedOwnSessions();
          this.arm();
          this.phase = 'following';
          this.peer = 'linked';
          this.log.info({ sessions: engine.listSessions().length }, 'process pair: following every session of the primary');
        });
        break;
      case 'cursors':
        this.lastCursors = message.cursors;
        // Behind a step still being applied (an open), the next message will do.
        if (this.pendingSteps === 0) engine.followCursors(this.primaryBlocks.length > 0 ? this.primaryCursors() : message.cursors);
        break;
      default:
        this.log.warn({ type: message.type }, 'process pair: unexpected message on the link');
    }
  }

  private async apply(step: ReplicationEvent): Promise<void> {
    const { engine } = this.options;
    switch (step.kind) {
      case 'open': {
        const s = step.session;
        this.primarySlots.set(s.id, s.primarySlot);
        this.updateDeathPoll();
        if (!this.ownSessions?.has(s.id)) {
          const interleaved = s.interleaved && await this.followedWire(s.interleaved);
          try {
            await engine.openSession({
              asset: s.asset, assetName: s.assetName, destination: s.destination, transport: s.transport, source: s.source.address,
              ...(s.multicast ? { multicast: s.multicast } : {}), ...(s.broadcast === undefined ? {} : { broadcast: s.broadcast }),
              ...(s.loop ? { loop: s.loop } : {}), replica: s, ...(interleaved ? { interleaved: interleaved.options } : {}),
            });
          } finally {
            interleaved?.close(); // the engine keeps its own duplicate of the connection
          }
        }
        // Its own session too (a primary turned standby keeps them): the same wire, claimed like the others after a death.
        const wire = s.interleaved && engine.interleavedWire(s.id)?.wire;
        if (s.interleaved && wire) {
          this.followedWires.set(s.id, s.interleaved.region);
          this.takeoverThread?.followWire(s.id, wire);
          // Applied after a death (it waited for its connection): the claim at the takeover did not know it.
          if (this.phase === 'took-over' && this.takeover?.cause === 'death') claimAll([wire], processLockSpace());
        }
        const here = engine.getSession(s.id);
        if (here) this.takeoverTable.locked(() => this.takeoverTable.follow(here.pair, here.slot, s.primarySlot.pair, s.primarySlot.slot, engine.replicaSegmentOf(s.id) ?? 0));
        break;
      }
      case 'segment': {
        const here = engine.getSession(step.id);
        const own = this.ownSessions?.has(step.id) === true;
        // Already adopted from the primary's block at the takeover: adopting it again would restart it behind.
        if (!here || (!own && engine.replicaSegmentOf(step.id) === step.segment.id)) break;
        this.takeoverTable.locked(() => {
          if (!own || !engine.adoptOwnSegment(step.id, step.segment)) engine.adoptSegment(step.id, step.segment);
          this.takeoverTable.setSegment(here.pair, here.slot, step.segment.id);
        });
        break;
      }
      case 'pause':
        if (engine.getSession(step.id)) engine.pause(step.id);
        break;
      case 'close': {
        this.primarySlots.delete(step.id);
        if (this.followedWires.delete(step.id)) this.takeoverThread?.unfollowWire(step.id);
        this.updateDeathPoll();
        const here = engine.getSession(step.id);
        if (here) this.takeoverTable.locked(() => this.takeoverTable.unfollow(here.pair, here.slot));
        engine.closeSession(step.id);
        break;
      }
    }
  }

  /**
   * An interleaved session of the primary, as this engine follows it: the same
   * connection (this process's copy of its descriptor) and the same wire (the
   * primary's region, mapped), so that at a takeover this process's data path
   * writes on where the primary's stopped.
   */
  private async followedWire(shared: NonNullable<SessionReplica['interleaved']>): Promise<{ options: InterleavedOptions; close: () => void }> {
    const connectionFd = await this.options.connections.whenHeld(shared.connection, HELD_WAIT_MS);
    const close = (): void => closeDescriptor(connectionFd);
    try {
      const wire = this.options.wires.map(shared.region, shared.bytes);
      const options: InterleavedOptions = {
        connectionFd, channel: shared.channel, wire, backlogMs: shared.backlogMs,
        shared: { connection: shared.connection, region: shared.region, bytes: shared.bytes },
      };
      return { options, close };
    } catch (err) {
      close();
      throw err;
    }
  }

  /**
   * After a death: the dead primary's wires are this process's to write once every
   * thread of it that wrote them (its main thread, its data paths) is past its
   * last system call (Wire.claim). The takeover thread claims them first (it
   * waits on the same condition, at its priority); this is for a takeover without
   * it, and for a wire it missed (a claimed one is left as it is).
   */
  private async claimWires(primary: ProcessWatch | undefined): Promise<void> {
    const { engine } = this.options;
    const wires = [...this.followedWires.keys()].flatMap((id) => engine.interleavedWire(id)?.wire ?? []);
    try {
      if (wires.length === 0) return;
      const started = monoNowMs();
      if (primary) {
        for (const tids = writerThreads(primary.pid, this.primaryBlocks); !writersGone(primary, tids);) {
          if (monoNowMs() - started > CLAIM_WAIT_MS) {
            this.log.error({ waitedMs: CLAIM_WAIT_MS }, 'process pair: the dead primary\'s threads still run; its wires of RTP on RTSP connections are taken anyway');
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }
      const unclaimed = claimAll(wires, processLockSpace());
      if (unclaimed > 0) this.log.error({ unclaimed }, 'process pair: cannot take the lock of a wire of RTP on an RTSP connection; those streams stop');
    } finally {
      primary?.close();
    }
  }

  /**
   * The primary's half of the wire lock's tags is given: this process takes the
   * other, before it follows any wire (a primary turned standby keeps its own,
   * which its new primary's differs from).
   */
  private takeLockSpace(primary: LockSpace): void {
    const own: LockSpace = primary === 0 ? 1 : 0;
    if (own === processLockSpace()) return;
    if (this.options.engine.listSessions().some((s) => s.interleaved)) {
      this.log.error({ primary }, 'process pair: this process holds RTP on RTSP connections in the primary\'s lock space; those sessions are not protected');
      return;
    }
    setProcessLockSpace(own);
  }

  private enqueue(job: () => void | Promise<void>): void {
    this.pendingSteps++;
    this.steps = this.steps.then(job).catch((err: Error) => {
      this.log.error({ err: err.message }, 'process pair: a step of the primary could not be applied; that session is unprotected');
    }).finally(() => { this.pendingSteps--; });
  }

  /** The link closed: a dead primary is taken over at once; a live one is waited for (it may come back, or die later). */
  private async linkClosed(): Promise<void> {
    if (this.phase === 'closed' || this.phase === 'took-over') return;
    const closedAtMs = monoNowMs();
    const primary = this.primary;
    if (primary && await primary.waitExit(EXIT_CONFIRM_MS)) {
      this.takeOver(closedAtMs, 'link');
      return;
    }
    this.peer = 'lost';
    this.log.warn({ primaryPid: this.primaryPid }, 'process pair: the link to the primary closed but it runs; waiting for it to come back or exit');
    this.phase = 'connecting';
    if (primary) this.watchLostPrimary(primary);
    this.connect();
  }

  /** While the link is lost: the primary's exit still means a takeover. */
  private watchLostPrimary(primary: ProcessWatch): void {
    const look = (): void => {
      if (this.phase !== 'connecting' || this.primary !== primary) return;
      if (primary.dying()) this.takeOver(monoNowMs(), 'exiting');
      else setTimeout(look, LOST_POLL_MS);
    };
    setTimeout(look, LOST_POLL_MS);
  }

  private mapPrimaryBlocks(info: SharedBlocksInfo): void {
    try {
      this.primaryBlocks = mapPeerBlocks(info.files, info.maxSessions);
      this.primaryBlockFiles = info.files;
    } catch (err) {
      // Still a standby, with the cursors the link carries (up to CURSOR_PERIOD_MS old: a takeover may repeat that much).
      this.log.error({ files: info.files, err: (err as Error).message }, 'process pair: cannot map the primary\'s control blocks');
    }
  }

  /**
   * Every followed session as the primary's control block holds it now. At
   * takeover, a segment or pause whose step never crossed the link is applied
   * from there first (its parameters are in the block too).
   */
  private primaryCursors(atTakeover = false): ReplicaCursor[] {
    const { engine } = this.options;
    const cursors: ReplicaCursor[] = [];
    const segment: SegmentParams = { id: 0, startCursor: 0, startPacket: 0, startTimeMs: 0, rtpTsBase: 0, endPacket: 0 };
    for (const [id, at] of this.primarySlots) {
      const block = this.primaryBlocks[at.pair];
      if (!block) continue;
      const word = block.ctrl(at.slot);
      const segmentId = ControlBlock.segmentOf(word);
      if (atTakeover && engine.getSession(id)) {
        if (segmentId !== 0 && segmentId !== engine.replicaSegmentOf(id) && block.readSegment(at.slot, segmentId, segment)) engine.adoptSegment(id, { ...segment });
        if (ControlBlock.isPaused(word)) engine.pause(id);
      }
      cursors.push({ id, segment: segmentId, cursor: ControlBlock.cursorOf(word) });
    }
    return cursors;
  }

  /**
   * The primary's life lock is in reach: a thread waits on it and takes over the
   * moment it changes hands. The main thread's death poll stops then (the link's
   * close is still confirmed by the process watch before it counts).
   */
  private startTakeoverThread(lockFile: string): void {
    if (takeoverWatch() === 'main' || this.primaryBlocks.length === 0) return;
    let lock: Int32Array;
    try {
      lock = mapLifeLock(lockFile);
    } catch (err) {
      this.log.error({ lockFile, err: (err as Error).message }, 'process pair: cannot map the primary\'s life lock; its death is looked for from the main thread');
      return;
    }
    const { engine } = this.options;
    this.takeoverTable.setSenders(engine.takeoverSenders());
    const thread: TakeoverThread = new TakeoverThread({
      lock, table: this.takeoverTable, primary: this.primaryBlocks,
      own: engine.takeoverSenders().map((_, pair) => engine.controlBlock(pair)),
      onReady: (priority) => {
        this.log.info({ priority: priority.policy, why: priority.error }, 'process pair: takeover thread waits on the primary\'s life lock');
        if (this.takeoverThread !== thread) return;
        this.takeoverReady = true;
        this.arm();
      },
      onTookOver: (message) => {
        if (this.takeoverThread === thread) this.takenOverByThread(message);
      },
      onWiresClaimed: ({ wires, unclaimed, waitedMs }) => {
        const fields = { wires, unclaimed, waitedMs: Math.round(waitedMs * 100) / 100 };
        if (unclaimed > 0) this.log.error(fields, 'process pair: some wires of RTP on RTSP connections of the dead primary could not be claimed; those streams stop');
        else this.log.info(fields, 'process pair: the dead primary\'s wires of RTP on RTSP connections are this process\'s (takeover thread)');
      },
      primaryPid: this.primaryPid ?? 0,
      onError: (err) => {
        this.log.error({ err: err.message }, 'process pair: the takeover thread failed; the primary\'s death is looked for from the main thread');
        if (this.takeoverThread !== thread) return;
        this.stopTakeoverThread();
        this.updateDeathPoll();
      },
    });
    this.takeoverThread = thread;
    for (const id of this.followedWires.keys()) {
      const wire = engine.interleavedWire(id)?.wire;
      if (wire) thread.followWire(id, wire);
    }
    this.stopDeathPoll();
  }

  /** Tell the primary once this standby can take over at once: it follows every session and its thread waits on the lock. */
  private arm(): void {
    if (this.phase === 'following' && this.takeoverReady) this.channel?.send({ type: 'armed' });
  }

  private stopTakeoverThread(): void {
    const thread = this.takeoverThread;
    this.takeoverThread = undefined;
    this.takeoverReady = false;
    thread?.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'process pair: stopping the takeover thread'));
  }

  /** The thread ran the step (or found it done): the main thread does the rest. */
  private takenOverByThread(message: Extract<TakeoverToMain, { type: 'took-over' }>): void {
    const switchMs = Number(message.switchedAt - message.at) / 1e6;
    const switchedAgoMs = Number(process.hrtime.bigint() - message.switchedAt) / 1e6;
    this.takeOver(monoNowMs(), 'life-lock', message.ran ? { switchMs, switchedAgoMs, step: message.step, died: message.died } : undefined);
  }

  /**
   * An operator's role switch asked here: the primary hands sending over
   * (role-switch.ts) and this process's takeover thread takes it. Resolves with
   * that takeover.
   */
  requestSwitch(timeoutMs = SWITCH_TIMEOUT_MS): Promise<TakeoverRecord> {
    if (this.phase !== 'following' || !this.channel || !this.takeoverThread || this.switchWaiter) {
      return Promise.reject(new TwinframeError('TF_PAIR_SWITCH', this.switchWaiter ? 'a switch is under way' : 'this standby does not follow a primary it can take over from without loss'));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.switchWaiter = undefined;
        reject(new TwinframeError('TF_PAIR_SWITCH', `the primary did not hand over in ${timeoutMs} ms`));
      }, timeoutMs);
      this.switchWaiter = { resolve, reject, timer };
      this.channel!.send({ type: 'switch-request' });
    });
  }

  private settleSwitch(record: TakeoverRecord): void {
    const waiter = this.switchWaiter;
    if (!waiter) return;
    this.switchWaiter = undefined;
    clearTimeout(waiter.timer);
    if (record.cause === 'switch') waiter.resolve(record);
    else waiter.reject(new TwinframeError('TF_PAIR_SWITCH', 'the primary died before it handed over; this process took over'));
  }

  /** A primary turned standby: its sessions the new primary does not have (none, unless one closed meanwhile) are closed. */
  private dropUnmatchedOwnSessions(): void {
    const own = this.ownSessions;
    if (!own) return;
    this.ownSessions = undefined;
    for (const id of own) if (!this.primarySlots.has(id)) this.options.engine.closeSession(id);
  }

  private takeOver(noticedAtMs: number, noticedBy: TakeoverRecord['noticedBy'], byThread?: { switchMs: number; switchedAgoMs: number; step: TakeoverStep; died: boolean }): void {
    if (this.phase === 'closed' || this.phase === 'took-over') return;
    clearTimeout(this.retryTimer);
    this.stopDeathPoll();
    this.stopTakeoverThread();
    const { engine } = this.options;
    const exact = this.primaryBlocks.length > 0;
    const table = this.takeoverTable;
    const own = engine.takeoverSenders().map((_, pair) => engine.controlBlock(pair));
    const step: TakeoverStep = { moved: 0, leftToMain: 0, pairsSwitched: 0 };
    table.locked(() => {
      if (!exact) engine.followCursors(this.lastCursors);
      table.setSenders(engine.takeoverSenders());
      table.switchSending(own, this.primaryBlocks, step);
      // The sessions the step left (paused by the primary, or a segment not adopted yet), and the engine's own bookkeeping.
      engine.takeOver(exact ? this.primaryCursors(true) : this.lastCursors);
    });
    const pairsSending = own.filter((cb) => ControlBlock.ownerOf(cb.activeWord()) !== undefined).length;
    const switchMs = byThread?.switchMs ?? monoNowMs() - noticedAtMs;
    const died = byThread?.died ?? true;
    // The dead primary cannot remove its regions' names any more (one that handed over keeps them: it maps them on).
    this.options.wires.own(this.followedWires.values());
    const primary = this.primary;
    this.primary = undefined;
    if (died) {
      for (const file of this.primaryBlockFiles) removeSharedRegion(file);
      if (this.primaryLifeLockFile !== undefined) removeSharedRegion(this.primaryLifeLockFile);
      void this.claimWires(primary);
      // Once every step that crossed the link is applied (an open still waiting maps its region): the wires no session here carries go.
      void this.settled().then(() => this.options.wires.removeUnused(this.followedWires.values()));
    } else {
      primary?.close();
    }
    this.phase = 'took-over';
    this.peer = died ? 'dead' : 'none';
    const record: TakeoverRecord = {
      at: new Date(Date.now() - (byThread?.switchedAgoMs ?? 0)).toISOString(), switchMs, sessions: engine.listSessions().length, pairsSending,
      cursors: exact ? 'shared-memory' : 'link', noticedBy, switchedBy: byThread ? 'takeover-thread' : 'main-thread', step: byThread?.step ?? step,
      cause: died ? 'death' : 'switch',
    };
    this.takeover = record;
    if (died) this.log.warn({ primaryPid: this.primaryPid, ...record }, 'process pair: the primary died; this process took every session over');
    else this.log.info({ primaryPid: this.primaryPid, ...record }, 'process pair: the primary handed sending over (role switch); this process sends every session');
    this.options.onTakeover(record);
    this.settleSwitch(record);
  }
}
