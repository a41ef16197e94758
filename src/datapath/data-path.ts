// The data path's loop: one of two identical workers. Every turn it beats its
// heartbeat, takes commands from its SAB queue, and for each session either
// sends the datagrams that are due (when it owns ACTIVE) or prepares them and
// holds them (standby). It sleeps in Atomics.wait on the ACTIVE word until the
// next deadline, so a switch wakes the standby at once and it sends the very
// next datagram from the shared cursor.
//
// The loop leaves its synchronous run only to let Node's event loop finish
// socket setup and deliver socket events (a lost socket's 'close', errors):
// every few milliseconds when no datagram is imminent, every 20 ms at the latest.
// Nothing else waits on the event loop.

import { parentPort } from 'node:worker_threads';
import { ControlBlock, newCtrlState } from '../shared/control-block.js';
import { CommandReader } from '../shared/command-queue.js';
import type { PathCommand, PathEvent, FaultKind, OpenSessionCommand } from '../shared/commands.js';
import { FailureCause, type PathId } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import { PathSession, type PathSessionEvents } from './path-session.js';
import { scopeOf } from './error-scope.js';

/** Send what falls due within this margin now rather than sleep a few microseconds. */
const EARLY_MS = 0.05;
/**
 * The event loop delivers what the path needs to hear about its sockets (a lost
 * socket's 'close', errors) and reclaims finished sends. Yield to it every
 * YIELD_EVERY_MS when no datagram is due within YIELD_CLEARANCE_MS, and at the
 * latest every YIELD_FORCE_MS whatever is due (a busy path never has clearance).
 */
const YIELD_EVERY_MS = 5;
const YIELD_CLEARANCE_MS = 0.4;
const YIELD_FORCE_MS = 20;
/** Datagrams one session may send in one turn (catch-up after a switch); then the others get a turn. */
const MAX_BURST = 64;

/** A failure of this path with a known cause (injected or real); the worker entry reports it. */
export class PathFailure extends Error {
  override readonly name = 'PathFailure';
  constructor(readonly failureCause: FailureCause, message: string) {
    super(message);
  }
}

export class DataPath {
  private readonly cb: ControlBlock;
  private readonly path: PathId;
  private readonly commands: CommandReader;
  private readonly faultInjection: boolean;
  private readonly sessions = new Map<number, PathSession>();
  private sessionList: PathSession[] = [];
  /** Sync markers waiting for every session's socket. */
  private pendingSyncTokens: number[] = [];
  private socketsPending = 0;
  private lastYieldMs = monoNowMs();
  private socketFailure = false;
  /** Reused for every control-word read: the hot loop allocates nothing to decode it. */
  private readonly ctrlState = newCtrlState();

  constructor(options: { cb: ControlBlock; path: PathId; commands: CommandReader; faultInjection: boolean }) {
    this.cb = options.cb;
    this.path = options.path;
    this.commands = options.commands;
    this.faultInjection = options.faultInjection;
  }

  /**
   * Run until the event loop is needed or shutdown. Returns true to be called
   * again after a yield, false on shutdown.
   */
  runSlice(): boolean {
    const cb = this.cb;
    const path = this.path;
    cb.setInEventLoop(path, false);
    while (!cb.isShutdown()) {
      cb.beat(path);
      if (this.commands.hasCommand()) this.drainCommands();
      if (this.socketFailure) this.throwSocketFailure();

      const activeWord = cb.activeWord();
      const active = ControlBlock.ownerOf(activeWord) === path;
      const now = monoNowMs();
      const beatIntervalMs = cb.heartbeatPeriodUs() / 2000;
      let nextDue = Number.POSITIVE_INFINITY;
      for (let i = 0; i < this.sessionList.length; i++) {
        const s = this.sessionList[i]!;
        let next: number;
        try {
          next = this.service(s, now, active, activeWord, beatIntervalMs);
        } catch (err) {
          next = this.onSessionFault(s, err);
        }
        if (next < nextDue) nextDue = next;
        // A turn that catches up many sessions after a takeover must not look like a hang.
        cb.beat(path);
      }

      const after = monoNowMs();
      const sinceYield = after - this.lastYieldMs;
      if (this.socketsPending > 0 || sinceYield >= YIELD_FORCE_MS || (sinceYield >= YIELD_EVERY_MS && nextDue - after >= YIELD_CLEARANCE_MS)) {
        this.lastYieldMs = after;
        // V8 runs its GC tasks in the event loop: say so, or a long one looks like a hang.
        cb.setInEventLoop(path, true);
        return true;
      }
      // Sleep until the next datagram is due, but wake to beat at least twice a period.
      const timeout = Math.min(nextDue, now + beatIntervalMs) - after;
      if (timeout > 0) cb.waitOnActive(activeWord, timeout);
    }
    this.closeAll();
    return false;
  }

  /** Serve one session; returns when this path next needs to look at it. */
  private service(s: PathSession, now: number, active: boolean, activeWord: number, pollMs: number): number {
    const cb = this.cb;
    const word = this.ctrlState;
    for (let burst = 0; burst < MAX_BURST; burst++) {
      cb.readCtrl(s.slot, word);
      if (word.paused || word.ended) return Number.POSITIVE_INFINITY;
      if (!s.syncSegment(cb, word.segment)) return now + pollMs;
      if (!s.prepare(word.cursor)) {
        if (active && s.ready) {
          cb.markEnded(s.slot);
          this.post({ type: 'session-ended', slot: s.slot, sessionId: s.sessionId });
        }
        return Number.POSITIVE_INFINITY;
      }
      if (s.deadlineMs > now + EARLY_MS) return s.deadlineMs;
      // Due. The standby holds it and looks again soon: the active path should move the cursor.
      if (!active || !s.ready) return now + pollMs;
      // Fence: a deposed path must not send. Re-read ACTIVE right before the send.
      if (cb.activeWord() !== activeWord) return now;
      s.send();
      cb.countSent(this.path);
      cb.advanceCursorFrom(s.slot, word);
    }
    return now;
  }

  private drainCommands(): void {
    for (let command = this.commands.pop(); command; command = this.commands.pop()) this.apply(command);
  }

  private apply(command: PathCommand): void {
    switch (command.type) {
      case 'open-session': this.openSession(command); break;
      case 'close-session':
        this.closeSession(command.slot);
        // Acknowledged even when the session never opened here (its asset could not be).
        this.post({ type: 'session-closed', slot: command.slot });
        break;
      case 'sync-marker': this.pendingSyncTokens.push(command.token); this.checkSynced(); break;
      case 'inject-fault': this.injectFault(command.kind); break;
    }
  }

  private openSession(command: OpenSessionCommand): void {
    this.closeSession(command.slot);
    let session: PathSession;
    try {
      session = new PathSession(command, this.cb, this.path, this.sessionEvents);
    } catch (err) {
      // Its asset could not be opened: judged like a failed read.
      const scope = scopeOf(err, this.cb, this.path, command.slot);
      if (scope === 'path') throw err;
      this.post({ type: 'session-fault', slot: command.slot, sessionId: command.sessionId, scope, reason: (err as Error).message });
      return;
    }
    this.socketsPending++;
    this.sessions.set(command.slot, session);
    this.relist();
  }

  private readonly sessionEvents: PathSessionEvents = {
    ready: (s) => {
      this.socketsPending--;
      this.post({ type: 'session-ready', slot: s.slot, sessionId: s.sessionId });
      this.checkSynced();
    },
    setupFailed: (s, err) => this.endSessionHere(s, 'session', err.message),
    socketLost: () => { this.socketFailure = true; },
    destinationError: (s, err) => this.reportDestinationError(s, err),
  };

  /**
   * Serving session `s` threw. An error of this path's own fails the path (thrown
   * on); one of the session's or its asset's ends that session only.
   */
  private onSessionFault(s: PathSession, err: unknown): number {
    const scope = scopeOf(err, this.cb, this.path, s.slot);
    if (scope === 'path') throw err;
    this.endSessionHere(s, scope, (err as Error).message);
    return Number.POSITIVE_INFINITY;
  }

  /** Stop serving a session this path cannot serve through no fault of its own, and say why (the control plane ends it). */
  private endSessionHere(s: PathSession, scope: 'session' | 'asset', reason: string): void {
    if (s.settingUp) this.socketsPending--;
    s.fault();
    this.relist();
    this.post({ type: 'session-fault', slot: s.slot, sessionId: s.sessionId, scope, reason });
    this.checkSynced();
  }

  /** Tell the control plane once per session and error code; the stream goes on. */
  private reportDestinationError(s: PathSession, err: NodeJS.ErrnoException): void {
    if (!s.firstReportOf(err.code ?? 'unknown')) return;
    this.post({ type: 'session-error', slot: s.slot, sessionId: s.sessionId, message: `${err.code}: ${err.message}` });
  }

  private closeSession(slot: number): void {
    const session = this.sessions.get(slot);
    if (!session) return;
    if (session.settingUp) this.socketsPending--;
    session.close();
    this.sessions.delete(slot);
    this.relist();
  }

  /** The sessions the loop serves: every open one but those ended here by a fault. */
  private relist(): void {
    this.sessionList = [...this.sessions.values()].filter((s) => !s.faulted);
  }

  /** Once every session's socket is up, the path could take over: tell the control plane. */
  private checkSynced(): void {
    if (this.socketsPending > 0 || this.pendingSyncTokens.length === 0) return;
    for (const token of this.pendingSyncTokens) this.post({ type: 'synced', token });
    this.pendingSyncTokens = [];
  }

  private throwSocketFailure(): never {
    const failed = this.sessionList.find((s) => s.socketFailure);
    throw new PathFailure(FailureCause.SOCKET, `socket failure: ${failed?.socketFailure?.message ?? 'unknown'}`);
  }

  private injectFault(kind: FaultKind): void {
    if (!this.faultInjection) return;
    this.cb.recordFaultStart(this.path, monoNowMs());
    switch (kind) {
      case 'crash':
        process.exit(70);
        break;
      case 'exception':
        throw new PathFailure(FailureCause.EXCEPTION, 'injected uncaught exception');
      case 'hang':
        // A busy loop that never beats: only the heartbeat monitor can find it.
        // Bounded by shutdown; the control plane terminates the worker long before.
        while (!this.cb.isShutdown()) { /* spin */ }
        break;
      case 'socket':
        for (const s of this.sessionList) s.breakSocket();
        break;
      case 'disk':
        for (const s of this.sessionList) s.breakDisk();
        break;
      case 'temperature':
        throw new PathFailure(FailureCause.TEMPERATURE, 'temperature sensor over limit');
    }
  }

  private closeAll(): void {
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    this.sessionList = [];
  }

  private post(event: PathEvent): void {
    parentPort?.postMessage(event);
  }
}
