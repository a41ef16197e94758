// The control plane's side of one data path: the worker thread that occupies the
// path now (one incarnation after another), its command queue, and the wait for
// its sync marker. Like piscina's WorkerInfo: spawn, post, restart, stop.
// What the worker reports goes to the engine's handlers, tagged with the
// incarnation that sent it, so a message from a replaced worker can be ignored.

import type { Worker } from 'node:worker_threads';
import type { ControlBlock } from '../shared/control-block.js';
import { CommandWriter, createQueueStorage, queueCapacityFor } from '../shared/command-queue.js';
import type { PathCommand } from '../shared/commands.js';
import { PATH_NAMES, type PathId, type PathName } from '../shared/layout.js';
import type { PathToMain, WireMessage } from '../shared/messages.js';
import { monoNowMs } from '../shared/clock.js';
import { spawnDataPathWorker } from '../datapath/index.js';
import type { Logger } from '../log.js';
import { STOP_TIMEOUT_MS, TERMINATE_TIMEOUT_MS, stopWorker, terminateWithin } from './worker-stop.js';

export interface PathHostHandlers {
  message(host: PathHost, incarnation: number, msg: PathToMain): void;
  exit(host: PathHost, incarnation: number, code: number): void;
}

export interface PathHostOptions {
  readonly maxSessions: number;
  readonly faultInjection: boolean;
}

export class PathHost {
  /** The pair this path belongs to (the index of its control block). */
  readonly pair: number;
  readonly id: PathId;
  readonly name: PathName;
  private worker: Worker | undefined;
  private exited: Promise<void> = Promise.resolve();
  private writer: CommandWriter | undefined;
  private currentIncarnation = 0;
  /** The worker is being stopped on purpose: its exit is not a failure. */
  private stoppingWorker = false;
  /** Token of the sync marker queued after the session table; 0 once echoed. */
  private pendingSyncToken = 0;
  private syncWaiters: Array<() => void> = [];
  private nextSyncToken = 1;

  constructor(
    pair: number,
    id: PathId,
    private readonly cb: ControlBlock,
    private readonly options: PathHostOptions,
    private readonly handlers: PathHostHandlers,
    private readonly log: Logger,
  ) {
    this.pair = pair;
    this.id = id;
    this.name = PATH_NAMES[id];
  }

  get incarnation(): number {
    return this.currentIncarnation;
  }

  /** Names the incarnation (pair, path and incarnation number), for bookkeeping that must forget a replaced worker. */
  get key(): string {
    return `${this.pair}:${this.id}:${this.currentIncarnation}`;
  }

  /** A worker runs and is not being stopped: commands posted now reach it. */
  get live(): boolean {
    return this.worker !== undefined && !this.stoppingWorker;
  }

  get hasWorker(): boolean {
    return this.worker !== undefined;
  }

  get stopping(): boolean {
    return this.stoppingWorker;
  }

  /**
   * Start a new incarnation. `table` (the open sessions) is queued first, then a
   * sync marker: the path is synchronized once it echoes the marker.
   */
  spawn(table: readonly PathCommand[], wires: readonly WireMessage[] = []): void {
    const incarnation = this.cb.beginIncarnation(this.id);
    // Room for the whole session table at once (a respawned path is sent every open session).
    const queue = createQueueStorage(queueCapacityFor(this.cb.layout.maxSessions));
    this.currentIncarnation = incarnation;
    this.writer = new CommandWriter(queue);
    this.stoppingWorker = false;
    const worker = spawnDataPathWorker({
      pair: this.pair, path: this.id, incarnation, controlBlock: this.cb.sab, maxSessions: this.options.maxSessions,
      commandQueue: queue, faultInjection: this.options.faultInjection,
    });
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    const log = this.log.child({ path: this.name, incarnation });
    worker.on('message', (msg: PathToMain) => this.handlers.message(this, incarnation, msg));
    worker.on('error', (err) => log.warn({ err: err.message }, 'data path threw'));
    worker.on('exit', (code) => this.handlers.exit(this, incarnation, code));
    for (const wire of wires) this.postWire(wire);
    for (const command of table) this.post(command);
    this.pendingSyncToken = this.nextSyncToken++;
    this.post({ type: 'sync-marker', token: this.pendingSyncToken });
    log.info({ sessions: table.length }, 'data path spawned');
  }

  /** Queue a command; it is due from now on (the supervisor judges the path on it). Callers then wake the paths. */
  post(command: PathCommand): void {
    if (!this.writer) return;
    this.writer.push(command);
    this.cb.markCommandQueued(this.id, monoNowMs());
  }

  /** Hand the worker an interleaved session's wire (before its open-session command). */
  postWire(message: WireMessage): void {
    this.worker?.postMessage(message);
  }

  /** The worker echoed a sync marker. */
  synced(token: number): void {
    if (token !== this.pendingSyncToken) return;
    this.pendingSyncToken = 0;
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  /** True once the worker has opened every session queued before its sync marker; false after `timeoutMs`. */
  waitSynced(timeoutMs: number): Promise<boolean> {
    if (this.worker && this.pendingSyncToken === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.syncWaiters.push(() => { clearTimeout(timer); resolve(true); });
    });
  }

  /**
   * Take the failed worker out (terminate it: a hung one must not keep burning a
   * core). Bounded: a worker blocked in a system call never ends, and failure
   * handling must go on. The caller then spawns the replacement.
   */
  async terminate(): Promise<void> {
    const old = this.worker;
    this.worker = undefined;
    this.stoppingWorker = true;
    if (old && !(await terminateWithin(old, TERMINATE_TIMEOUT_MS))) {
      this.log.error({ path: this.name, incarnation: this.currentIncarnation, waitedMs: TERMINATE_TIMEOUT_MS }, 'failed data path did not end when terminated (blocked in a system call?); starting its replacement anyway');
    }
  }

  /** Shutdown begins: the worker's exit is no failure, and nobody waits for its sync any more. */
  beginStop(): void {
    this.stoppingWorker = true;
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  /** Shutdown (after beginStop and the control block's shutdown flag): wait for the worker within bounds. */
  async stop(): Promise<void> {
    if (!this.worker || await stopWorker(this.worker, this.exited, STOP_TIMEOUT_MS, TERMINATE_TIMEOUT_MS)) return;
    this.log.error({ thread: `data path ${this.name} of pair ${this.pair}`, waitedMs: STOP_TIMEOUT_MS + TERMINATE_TIMEOUT_MS }, 'thread did not end when stopped (blocked in a system call?); leaving it');
  }
}
