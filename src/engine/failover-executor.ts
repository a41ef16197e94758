// Carries out the failover state machine's decisions on the running threads.
// Events run one at a time, each with all its actions (begin-sync, start-path,
// switch-active, stop-path, restart-path); the machine's variables are published
// to the control block after every transition. With autoFailover, a restarted
// path is walked back online by the recovery policy.

import { ControlBlock } from '../shared/control-block.js';
import { FailureCause, PATH_NAMES, partnerOf, type PathName } from '../shared/layout.js';
import type { FailureReport } from '../shared/messages.js';
import { monoNowMs } from '../shared/clock.js';
import { failPath } from '../supervisor/fail-path.js';
import { TwinframeError } from '../errors.js';
import type { Logger } from '../log.js';
import { namedState, type NamedState } from '../failover/states.js';
import {
  describePair, initialPair, transition,
  type FailoverAction, type FailoverPair, type MachineEvent, type PairStates,
} from '../failover/state-machine.js';
import { MAX_RECOVERY_STEPS, nextRecoveryStep } from '../failover/recovery-policy.js';
import type { FailoverState, FailoverType } from '../shared/layout.js';
import type { PathHost } from './path-host.js';

/** Emitted as 'path-state' whenever a path's failover variables change. */
export interface PathStateEvent {
  readonly pair: number;
  readonly path: PathName;
  readonly named: NamedState;
  readonly type: FailoverType;
  readonly state: FailoverState;
}

/** What the executor needs from the engine around it. */
export interface ExecutorHooks {
  /** Terminate the path's failed worker and spawn its replacement (the engine also forgets the old incarnation). */
  restartPath(host: PathHost): Promise<void>;
  /** After a time with no sender, restart every playing session's clock at its cursor. */
  rebasePlayingSessions(): void;
  /** A failure found here (a path that did not synchronize in time) was claimed. */
  pathFailed(report: FailureReport): void;
  pathState(event: PathStateEvent): void;
  /** A standby process's engine: no path may be given sending (src/pair-process). */
  sendingHeld(): boolean;
}

export interface ExecutorOptions {
  readonly autoFailover: boolean;
  readonly syncTimeoutMs: number;
}

export class FailoverExecutor {
  /** The state machine's view of the pair; published to the control block on every change. */
  private pair: FailoverPair = initialPair();
  /** Failover events run one at a time, each with all its actions. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pairIndex: number,
    private readonly cb: ControlBlock,
    private readonly hosts: readonly PathHost[],
    private readonly options: ExecutorOptions,
    private readonly hooks: ExecutorHooks,
    private readonly log: Logger,
  ) {}

  get failoverPair(): FailoverPair {
    return this.pair;
  }

  /** Run one event and its actions after every event queued before it; resolves with the named states after. */
  command(event: MachineEvent): Promise<PairStates> {
    return this.enqueue(() => this.apply(event));
  }

  /**
   * A failure was claimed (by the supervisor, which has already moved ACTIVE, or
   * by the engine): let the machine mark the path Failed, promote its partner and
   * restart it. A failed worker must not stay, whatever the machine thinks.
   */
  pathFailed(path: PathName, cause: FailureCause): void {
    const event: MachineEvent = cause === FailureCause.HEARTBEAT
      ? { kind: 'heartbeat_missed', path }
      : { kind: 'critical_failure', path, cause };
    this.command(event).catch((err: Error) => {
      this.log.error({ path, err: err.message }, 'failure refused by the state machine; restarting the path anyway');
      void this.enqueue(() => this.carryOut({ kind: 'restart-path', path, cause }));
    });
  }

  /**
   * A standby took sending over from a late sender (its own CAS on ACTIVE):
   * nobody failed. The roles swap, as in a manual switch, unless things have
   * settled otherwise since (a handover back, a switch, a failure).
   */
  handedOver(to: PathName): void {
    void this.enqueue(async () => {
      const owner = ControlBlock.ownerOf(this.cb.activeWord());
      const primary = PATH_NAMES.find((name) => namedState(this.pair[name].type, this.pair[name].state) === 'Primary');
      if (owner === undefined || PATH_NAMES[owner] !== to || to === primary) return;
      await this.apply({ kind: 'manual_switch' }).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'the state machine did not follow a handover');
      });
    });
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async apply(event: MachineEvent): Promise<PairStates> {
    const { pair, actions } = transition(this.pair, event);
    this.pair = pair;
    this.publishPair();
    for (const action of actions) await this.carryOut(action);
    return describePair(this.pair);
  }

  private async carryOut(action: FailoverAction): Promise<void> {
    switch (action.kind) {
      case 'begin-sync': {
        const host = this.host(action.path);
        const synced = await host.waitSynced(this.options.syncTimeoutMs);
        await this.apply(synced
          ? { kind: 'sync_complete', path: action.path }
          : { kind: 'sync_failed', path: action.path, reason: `not synchronized within ${this.options.syncTimeoutMs} ms` });
        if (!synced && this.options.autoFailover) {
          const report = failPath(this.cb, host.id, host.incarnation, FailureCause.SYNC, monoNowMs());
          if (report) this.hooks.pathFailed(report);
        }
        break;
      }
      case 'start-path': {
        const host = this.host(action.path);
        if (!(await host.waitSynced(this.options.syncTimeoutMs))) throw new TwinframeError('TF_FAILOVER_NO_STANDBY', `path ${action.path} has not opened every session`);
        this.cb.setOnline(host.id, host.incarnation);
        break;
      }
      case 'switch-active':
        this.switchActiveTo(action.to);
        break;
      case 'stop-path':
        this.cb.clearOnline(this.host(action.path).id);
        break;
      case 'restart-path':
        await this.hooks.restartPath(this.host(action.path));
        await this.apply({ kind: 'repaired', path: action.path }).catch((err: Error) => {
          this.log.warn({ path: action.path, err: err.message }, 'repaired refused by the state machine');
        });
        if (this.options.autoFailover) {
          await this.recover(action.path);
          await this.recover(partnerOf(action.path)); // a double failure can leave the partner offline too
        }
        break;
    }
  }

  /**
   * autoFailover: walk a path from whatever offline state it is in to online,
   * one operator step at a time (src/failover/recovery-policy.ts). A refused
   * step ends the walk and the operator can take over from there.
   */
  private async recover(path: PathName): Promise<void> {
    if (!this.host(path).hasWorker) return;
    for (let step = 0; step < MAX_RECOVERY_STEPS; step++) {
      const event = nextRecoveryStep(this.pair, path);
      if (!event) return;
      try {
        await this.apply(event);
      } catch (err) {
        this.log.warn({ path, step: event.kind, err: (err as Error).message }, 'automatic recovery stopped');
        return;
      }
    }
  }

  /**
   * Make `to` the sender (or nobody). A no-op when the supervisor already did it.
   * If `to` failed too before this ran (its own failure event is queued), nobody
   * sends until that event restarts it: never a switch to a path that is not online.
   */
  private switchActiveTo(to: PathName | null): void {
    if (this.hooks.sendingHeld()) return; // a standby process's engine: ACTIVE stays nobody's until its takeover
    let target = to === null ? undefined : this.host(to).id;
    if (target !== undefined && !this.cb.isOnline(target)) {
      this.log.warn({ to }, 'switch target is no longer online; no path sends until it recovers');
      target = undefined;
    }
    for (;;) {
      const word = this.cb.activeWord();
      const owner = ControlBlock.ownerOf(word);
      if (owner === target) return;
      // After a time with no sender, restart the clocks rather than burst the backlog.
      if (owner === undefined) this.hooks.rebasePlayingSessions();
      if (this.cb.switchActive(word, target)) return;
    }
  }

  /** Publish the machine's variables to the control block (bumping SIGFAILOVER) and announce changes. */
  private publishPair(): void {
    for (const host of this.hosts) {
      const { type, state } = this.pair[host.name];
      const before = this.cb.failoverVariables(host.id);
      if (before.type === type && before.state === state) continue;
      this.cb.setFailoverVariables(host.id, type, state);
      const named = namedState(type, state);
      this.log.info({ path: host.name, state: named }, 'failover state');
      this.hooks.pathState({ pair: this.pairIndex, path: host.name, named, type, state });
    }
  }

  private host(name: PathName): PathHost {
    const index = PATH_NAMES.indexOf(name);
    if (index < 0) throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `no path named ${name}`);
    return this.hosts[index];
  }
}
