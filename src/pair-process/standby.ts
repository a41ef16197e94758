// The standby process's side of a process pair. It connects to the primary's
// private link (and keeps trying until it can), proves the shared secret, takes
// the synchronized parameters, and applies the session command stream to its
// own engine, which holds sending: its data paths follow every session and send
// nothing. When the link closes it asks the kernel whether the primary died; if
// so it takes over at once (every session from the primary's last cursor, from
// the same source ports), else it waits for the primary to come back or die.

import { createConnection } from 'node:net';
import type { Engine, ReplicaCursor, ReplicationEvent } from '../engine/engine.js';
import { monoNowMs } from '../shared/clock.js';
import type { Logger } from '../log.js';
import { LinkChannel, authenticatePrimary } from './link.js';
import type { LinkMessage } from './link-messages.js';
import type { PeerState, ProcessPairStatus, TakeoverRecord } from './pair-status.js';
import { processGone, waitExit } from './process-exit.js';

/** How often the standby tries the link again while it has no primary. */
const RECONNECT_MS = 200;
/** A closed link with the primary still running: how long its exit may take to show before the link counts as merely lost. */
const EXIT_CONFIRM_MS = 50;
/** While the link is lost and the primary runs, how often its exit is looked for. */
const LOST_POLL_MS = 5;

export interface PairStandbyOptions {
  readonly engine: Engine;
  readonly link: string;
  readonly secret: string;
  readonly logger: Logger;
  /** This process serves from now on (start listening for viewers). */
  readonly onTakeover: (record: TakeoverRecord) => void;
}

type StandbyPhase = 'connecting' | 'synchronizing' | 'following' | 'took-over' | 'closed';

export class PairStandby {
  private readonly log: Logger;
  private phase: StandbyPhase = 'connecting';
  private peer: PeerState = 'none';
  private primaryPid: number | null = null;
  private channel: LinkChannel | undefined;
  /** Steps are applied one after the other (an open is asynchronous). */
  private steps: Promise<void> = Promise.resolve();
  private pendingSteps = 0;
  private lastCursors: readonly ReplicaCursor[] = [];
  private takeover: TakeoverRecord | null = null;
  private retryTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: PairStandbyOptions) {
    this.log = options.logger.child({ component: 'pair-standby' });
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
    this.channel?.close();
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
    this.phase = 'synchronizing';
    this.peer = 'synchronizing';
    // Sessions followed over an earlier link may have changed meanwhile: the snapshot brings them back.
    this.enqueue(() => { for (const s of this.options.engine.listSessions()) this.options.engine.closeSession(s.id); });
    channel.onMessage((m) => this.receive(m));
    this.log.info({ primaryPid: pid }, 'process pair: joined the primary');
  }

  private receive(message: LinkMessage): void {
    const { engine } = this.options;
    switch (message.type) {
      case 'params': {
        const p = message.params;
        engine.setHeartbeat(p.heartbeatPeriodUs, p.maxMissedHeartbeats);
        engine.setLimits(p.limits);
        this.log.info({ params: p }, 'process pair: synchronized parameters from the primary');
        break;
      }
      case 'step': {
        const { step } = message;
        this.enqueue(() => this.apply(step));
        break;
      }
      case 'synced':
        this.enqueue(() => {
          this.phase = 'following';
          this.peer = 'linked';
          this.log.info({ sessions: engine.listSessions().length }, 'process pair: following every session of the primary');
        });
        break;
      case 'cursors':
        this.lastCursors = message.cursors;
        // Behind a step still being applied (an open), the next message will do.
        if (this.pendingSteps === 0) engine.followCursors(message.cursors);
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
        await engine.openSession({
          asset: s.asset, assetName: s.assetName, destination: s.destination, transport: s.transport, source: s.source.address,
          ...(s.multicast ? { multicast: s.multicast } : {}), ...(s.broadcast === undefined ? {} : { broadcast: s.broadcast }),
          ...(s.loop ? { loop: s.loop } : {}), replica: s,
        });
        break;
      }
      case 'segment':
        if (engine.getSession(step.id)) engine.adoptSegment(step.id, step.segment);
        break;
      case 'pause':
        if (engine.getSession(step.id)) engine.pause(step.id);
        break;
      case 'close':
        engine.closeSession(step.id);
        break;
    }
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
    const pid = this.primaryPid;
    if (pid !== null && await waitExit(pid, EXIT_CONFIRM_MS)) {
      this.takeOver(closedAtMs);
      return;
    }
    this.peer = 'lost';
    this.log.warn({ primaryPid: pid }, 'process pair: the link to the primary closed but it runs; waiting for it to come back or exit');
    this.phase = 'connecting';
    this.watchLostPrimary(pid);
    this.connect();
  }

  /** While the link is lost: the primary's exit still means a takeover. */
  private watchLostPrimary(pid: number | null): void {
    if (pid === null) return;
    const look = (): void => {
      if (this.phase !== 'connecting' || this.primaryPid !== pid) return;
      if (processGone(pid)) this.takeOver(monoNowMs());
      else setTimeout(look, LOST_POLL_MS);
    };
    setTimeout(look, LOST_POLL_MS);
  }

  private takeOver(closedAtMs: number): void {
    if (this.phase === 'closed' || this.phase === 'took-over') return;
    clearTimeout(this.retryTimer);
    const { engine } = this.options;
    const pairsSending = engine.takeOver(this.lastCursors);
    const switchMs = monoNowMs() - closedAtMs;
    this.phase = 'took-over';
    this.peer = 'dead';
    const record: TakeoverRecord = { at: new Date().toISOString(), switchMs, sessions: engine.listSessions().length, pairsSending };
    this.takeover = record;
    this.log.warn({ primaryPid: this.primaryPid, ...record }, 'process pair: the primary died; this process took every session over');
    this.options.onTakeover(record);
  }
}
