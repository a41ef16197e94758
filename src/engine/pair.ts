// One pair of data paths: its control block, its two path hosts and its
// failover executor. K pairs run side by side (the `paths.pairs` setting); each
// is the same machinery as the single pair before, and fails over on its own:
// nothing of one pair (ACTIVE, failover variables, incarnations, counters) is
// in another's control block. The engine routes what a pair's threads report,
// tagged with the pair.

import { ControlBlock } from '../shared/control-block.js';
import { PATH_COUNT, PATH_NAMES, partnerOf, type PathId, type PathName } from '../shared/layout.js';
import type { FailureReport, PathToMain } from '../shared/messages.js';
import { TwinframeError } from '../errors.js';
import type { Logger } from '../log.js';
import { PathHost, type PathHostOptions } from './path-host.js';
import { FailoverExecutor, type ExecutorOptions, type PathStateEvent } from './failover-executor.js';
import { pairStatus, type FailoverEvent, type PairStatus } from './status.js';

/** What a pair needs from the engine around it; every call names the pair. */
export interface PairHooks {
  message(pair: DataPathPair, host: PathHost, incarnation: number, msg: PathToMain): void;
  exit(pair: DataPathPair, host: PathHost, incarnation: number, code: number): void;
  restartPath(pair: DataPathPair, host: PathHost): Promise<void>;
  rebasePlayingSessions(pair: DataPathPair): void;
  pathFailed(pair: DataPathPair, report: FailureReport): void;
  pathState(event: PathStateEvent): void;
  sendingHeld(): boolean;
}

export interface PairOptions extends PathHostOptions, ExecutorOptions {
  readonly heartbeatPeriodUs: number;
  readonly maxMissedHeartbeats: number;
  /** pacing.batchWindowUs, for this pair's data paths. */
  readonly batchWindowUs: number;
  /** Where pair `pair`'s control block lives (shared memory of a process pair); absent: a buffer of this process. */
  readonly controlBlockMemory?: (pair: number, bytes: number) => SharedArrayBuffer;
}

export class DataPathPair {
  readonly cb: ControlBlock;
  readonly hosts: readonly PathHost[];
  readonly executor: FailoverExecutor;
  /** This pair's failures: how many, and the last one, for status. */
  readonly failures: { count: number; last: FailoverEvent | undefined } = { count: 0, last: undefined };

  constructor(readonly index: number, options: PairOptions, hooks: PairHooks, log: Logger) {
    const pairLog = log.child({ pair: index });
    const memory = options.controlBlockMemory;
    this.cb = ControlBlock.create(options.maxSessions, memory && ((bytes) => memory(index, bytes)));
    this.cb.setHeartbeatSettings(options.heartbeatPeriodUs, options.maxMissedHeartbeats);
    this.cb.setBatchWindowUs(options.batchWindowUs);
    const handlers = {
      message: (host: PathHost, incarnation: number, msg: PathToMain) => hooks.message(this, host, incarnation, msg),
      exit: (host: PathHost, incarnation: number, code: number) => hooks.exit(this, host, incarnation, code),
    };
    this.hosts = Array.from({ length: PATH_COUNT }, (_, i) => new PathHost(index, i as PathId, this.cb, options, handlers, pairLog));
    this.executor = new FailoverExecutor(index, this.cb, this.hosts, options, {
      restartPath: (host) => hooks.restartPath(this, host),
      rebasePlayingSessions: () => hooks.rebasePlayingSessions(this),
      pathFailed: (report) => hooks.pathFailed(this, report),
      pathState: (event) => hooks.pathState(event),
      sendingHeld: () => hooks.sendingHeld(),
    }, pairLog);
  }

  host(name: PathName): PathHost {
    const index = PATH_NAMES.indexOf(name);
    if (index < 0) throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `no path named ${name}`);
    return this.hosts[index];
  }

  liveHosts(): PathHost[] {
    return this.hosts.filter((h) => h.live);
  }

  /** One of its paths sends (the pair streams, protected or not). */
  hasSender(): boolean {
    const owner = ControlBlock.ownerOf(this.cb.activeWord());
    return owner !== undefined && this.cb.isOnline(owner);
  }

  /** One path sends and the other is online, ready to take over. */
  isProtected(): boolean {
    const owner = ControlBlock.ownerOf(this.cb.activeWord());
    return owner !== undefined && this.cb.isOnline(owner) && this.cb.isOnline(partnerOf(owner));
  }

  status(sessions: number): PairStatus {
    return pairStatus(this.index, this.cb, this.hosts, this.failures, sessions);
  }

  /** Shutdown: no exit is a failure any more, and every thread of the pair leaves its loop. */
  beginStop(): void {
    for (const host of this.hosts) host.beginStop();
    this.cb.shutdown();
  }

  /** After beginStop: wait for both workers, each within its bound. */
  async stop(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.stop()));
  }
}
