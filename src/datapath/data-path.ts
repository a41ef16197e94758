// The data path's loop: one of two identical workers. Every turn it takes
// commands from its SAB queue, and for each session either sends the datagrams
// that are due (when it owns ACTIVE) or prepares them and holds them (standby).
// It sleeps in Atomics.wait on the ACTIVE word until the next deadline, so a
// switch wakes the standby at once and it sends the very next datagram from the
// shared cursor. With nothing due it sleeps in its event loop on the path
// doorbell, so an idle server costs no CPU.
//
// Sends are batched (README, "Batched sends"): a turn sends every datagram due
// within the batch window (pacing.batchWindowUs) from now, of all sessions, in
// one call (send-batch.ts). A datagram so leaves at most one window early, and
// the path wakes at most once per window: the next earliest deadline is past it.
//
// Liveness is judged against work that is due, not a fixed beat: before every
// sleep the path publishes when it next owes work, and bumps its heartbeat on
// every turn. The standby is a detector too (patent claim 11): a datagram still
// unsent one heartbeat period after its deadline, while the standby itself woke
// on time, makes it take sending over — a handover, nobody is failed. It looks
// at most once per batch window too, so it notices up to one window later.
//
// A send is claimed before it leaves (claim, re-check the cursor, stage the
// session's due datagrams; then re-check ACTIVE for the whole batch, send,
// advance each session's cursor past what left, release), so a path that takes
// over from a late sender waits for that sender's datagrams instead of
// repeating them. One claim covers a session's run of datagrams in the batch:
// while it is held nobody else sends that session, and the cursor moves on by
// exactly the datagrams that left, so nothing is lost or sent twice.
//
// The loop leaves its synchronous run to let Node's event loop deliver socket
// events (a lost socket's 'close', errors): every 10 ms when no datagram is
// imminent, every 20 ms at the latest.

import { parentPort } from 'node:worker_threads';
import { ControlBlock, newCtrlState } from '../shared/control-block.js';
import { CommandReader } from '../shared/command-queue.js';
import { SLOW_DISK_DEFAULT_MS, type PathCommand, type InjectableFault, type OpenSessionCommand } from '../shared/commands.js';
import type { PathToMain, WireMessage } from '../shared/messages.js';
import { FailureCause, PATH_NAMES, type PathId } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import { PathSession, WIRE_POLL_MS, type PathSessionEvents } from './path-session.js';
import { scopeOf } from './error-scope.js';
import { SendBatch } from './send-batch.js';
import { ReaderThread } from './reader-thread.js';
/**
 * The event loop delivers what the path needs to hear about its sockets (a lost
 * socket's 'close', errors) and reclaims finished sends. Yield to it every
 * YIELD_EVERY_MS when no datagram is due within YIELD_CLEARANCE_MS, and at the
 * latest every YIELD_FORCE_MS whatever is due (a busy path never has clearance).
 */
const YIELD_EVERY_MS = 10;
const YIELD_CLEARANCE_MS = 0.4;
const YIELD_FORCE_MS = 20;
/** Datagrams one session may send in one turn (catch-up after a switch); then the others get a turn. */
const MAX_BURST = 64;
/** Tries of a session whose cursor moved while it was being claimed, before the next turn. */
const MAX_RECLAIMS = 8;
/** How soon to look again at a session whose datagram a late sender still holds claimed. */
const CLAIM_POLL_MS = 0.1;
/** An idle path still looks at its queue this often (a bound, not a beat). */
export const IDLE_WAKE_MS = 1000;
/** How long the 'stall' test fault stops a path between a send and its cursor advance. */
const STALL_MS = 8;

/** What runSlice asks of its caller. */
export type SliceEnd = 'yield' | 'idle' | 'stop';

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
  private readonly incarnation: number;
  /** This incarnation's send-claim tag. */
  private readonly claimTag: number;
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
  private readonly claimedState = newCtrlState();
  /** When this path asked to wake: a standby that wakes late is no witness of its sender's lateness. */
  private plannedWakeMs = Number.POSITIVE_INFINITY;
  /** What this path last published as its next due time. */
  private publishedDueMs = Number.POSITIVE_INFINITY;
  /** Standby, this turn: a due datagram is still unsent one period past its deadline. */
  private senderLateMs = 0;
  /** The sender's heartbeat as this path last saw it change, and when: a sender busy with other sessions is not stalled. */
  private senderBeat = 0;
  private senderBeatSeenMs = 0;
  /** Doorbell value at the start of the turn: an idle sleep waits for it to move. */
  private doorbell = 0;
  /**
   * When each session of sessionList asked to be looked at again. A sender's
   * turn visits only the sessions due by the end of its window, so a turn costs
   * what is due, not what is open; a full pass when something may have made a
   * session due sooner than it said (a command, a wake, a change of who sends).
   * The standby always looks at every session: a full pass moves each one on to
   * the datagram it owes now, so it sleeps until the earliest one could be late
   * (about a period), where stale looks would wake it every window.
   */
  private nextLook = new Float64Array(0);
  private passDoorbell = 0;
  private passActiveWord = 0;
  /** The next turn looks at every session (the list changed, or a refused send is due again). */
  private fullPassDue = true;
  /** The list changed during this turn's loop. */
  private relisted = false;
  /** Test hook ('stall' fault): stop this long after the next send, before its cursor advance. */
  private stallAfterSendMs = 0;
  private readonly stallWord = new Int32Array(new SharedArrayBuffer(4));
  /** This turn's datagrams (active path). */
  private readonly batch = new SendBatch<PathSession>();
  /** This path's own reader thread: the only thread of the path that waits for the disk. */
  private readonly readerThread: ReaderThread;
  /** Standby, this turn: such a datagram, ready here, is one the sender still waits to read. */
  private senderWaitsOnRead = false;
  /** Wires of interleaved sessions that arrived before their open-session command, by slot. */
  private readonly waitingWires = new Map<number, WireMessage>();

  constructor(options: { cb: ControlBlock; pair: number; path: PathId; incarnation: number; commands: CommandReader; faultInjection: boolean }) {
    this.cb = options.cb;
    this.path = options.path;
    this.incarnation = options.incarnation;
    this.claimTag = ControlBlock.claimTag(options.path, options.incarnation);
    this.commands = options.commands;
    this.faultInjection = options.faultInjection;
    this.readerThread = new ReaderThread(options.cb, `${options.pair}${PATH_NAMES[options.path]}`);
  }

  /** Resolves once this path's reader thread runs (bounded). */
  readerReady(): Promise<void> {
    return this.readerThread.ready();
  }

  /** The doorbell value to wait on when runSlice returned 'idle'. */
  idleDoorbell(): number {
    return this.doorbell;
  }

  /**
   * Run until the event loop is needed, nothing is due, or shutdown.
   */
  runSlice(): SliceEnd {
    const cb = this.cb;
    const path = this.path;
    while (!cb.isShutdown()) {
      const woke = monoNowMs();
      // Woken more than a period after it asked: this thread was late itself.
      const graceMs = cb.heartbeatPeriodUs() / 1000;
      const windowMs = cb.batchWindowUs() / 1000;
      const onTime = woke - this.plannedWakeMs < graceMs;
      this.plannedWakeMs = Number.POSITIVE_INFINITY;
      this.doorbell = cb.pathDoorbell();
      cb.beat(path);
      if (this.commands.hasCommand()) this.drainCommands();
      if (this.socketFailure) this.throwSocketFailure();

      const activeWord = cb.activeWord();
      const owner = ControlBlock.ownerOf(activeWord);
      const active = owner === path;
      const now = monoNowMs();
      if (!active && owner !== undefined) this.watchSender(owner, now);
      this.senderLateMs = 0;
      this.senderWaitsOnRead = false;
      let nextDue = Number.POSITIVE_INFINITY;
      const fullPass = !active || this.fullPassDue || this.doorbell !== this.passDoorbell || activeWord !== this.passActiveWord;
      this.passDoorbell = this.doorbell;
      this.passActiveWord = activeWord;
      this.fullPassDue = false;
      this.relisted = false;
      // The list and its look times as the turn starts: a session ended in the loop relists.
      const list = this.sessionList;
      const nextLook = this.nextLook;
      const lookBy = now + windowMs;
      for (let i = 0; i < list.length; i++) {
        if (!fullPass && nextLook[i] > lookBy) {
          if (nextLook[i] < nextDue) nextDue = nextLook[i];
          continue;
        }
        const s = list[i];
        if (s.faulted) continue; // ended earlier in this turn
        let next: number;
        try {
          next = active ? this.stageDue(s, now, windowMs, graceMs) : this.watch(s, now, graceMs);
        } catch (err) {
          next = this.onSessionFault(s, err);
        }
        nextLook[i] = next;
        if (next < nextDue) nextDue = next;
        // A turn that catches up many sessions after a takeover is progress, not a hang.
        cb.beat(path);
      }
      if (this.batch.runs > 0) {
        const next = this.flush(activeWord, now, windowMs);
        if (next < nextDue) nextDue = next;
        cb.beat(path);
      }
      // Relisted during this turn (a session ended): the next turn is a full pass, at once.
      if (this.relisted) nextDue = now;
      // The standby looks at most once per window: a late datagram is noticed up to a window later.
      if (!active && nextDue < now + windowMs) nextDue = now + windowMs;
      // Late on a due datagram and no progress for half a period: stalled, not merely busy
      // with many sessions due at once (taking over from a busy sender would not send sooner).
      // A sender that waits for its own read of a datagram this path holds ready is stalled
      // on it however often it beats: taking over sends it now.
      if (this.senderLateMs > 0 && onTime && owner !== undefined && (this.senderWaitsOnRead || now - this.senderBeatSeenMs >= graceMs / 2)
        && cb.isOnline(path) && cb.handOver(activeWord, path)) {
        this.post({ type: 'handover', from: owner, to: path, lateMs: this.senderLateMs, atMs: monoNowMs(), cause: this.senderWaitsOnRead ? 'read-wait' : 'late' });
        continue; // send what is due at once
      }

      const after = monoNowMs();
      const sinceYield = after - this.lastYieldMs;
      if (nextDue === Number.POSITIVE_INFINITY && this.socketsPending === 0) {
        this.publishDue(Number.POSITIVE_INFINITY);
        this.lastYieldMs = after;
        return 'idle';
      }
      if (this.socketsPending > 0 || sinceYield >= YIELD_FORCE_MS || (sinceYield >= YIELD_EVERY_MS && nextDue - after >= YIELD_CLEARANCE_MS)) {
        this.lastYieldMs = after;
        this.plannedWakeMs = after; // back as soon as the event loop has run
        this.publishDue(after);
        return 'yield';
      }
      this.publishDue(nextDue);
      const timeout = nextDue - after;
      if (timeout > 0) {
        this.plannedWakeMs = nextDue;
        cb.waitOnActive(activeWord, timeout);
      }
    }
    this.closeAll();
    return 'stop';
  }

  /** Standby: note when the sender's heartbeat (bumped per session it serves) last moved. */
  private watchSender(sender: PathId, now: number): void {
    const beat = this.cb.heartbeat(sender);
    if (beat === this.senderBeat) return;
    this.senderBeat = beat;
    this.senderBeatSeenMs = now;
  }

  /** Say when this path next owes work; wake the supervisor when it starts to owe any. */
  private publishDue(atMs: number): void {
    this.cb.publishNextDue(this.path, atMs);
    if (this.publishedDueMs === Number.POSITIVE_INFINITY && atMs !== Number.POSITIVE_INFINITY) this.cb.ringSupervisor();
    this.publishedDueMs = atMs;
  }

  /**
   * Standby: look at one session's due datagram; returns when to look again. It
   * looks once, one period after the sender could have sent the datagram: unsent
   * by then is evidence that the sender is late.
   */
  private watch(s: PathSession, now: number, graceMs: number): number {
    const word = this.ctrlState;
    this.cb.readCtrl(s.slot, word);
    if (word.paused || word.ended) return Number.POSITIVE_INFINITY;
    if (!s.syncSegment(this.cb, word.segment)) return now + CLAIM_POLL_MS;
    const prepared = s.prepare(word.cursor);
    if (prepared === 'end') return Number.POSITIVE_INFINITY;
    // Not read yet: the reader thread wakes this path when it is; look again in a period at the latest.
    if (prepared === 'not-read') return now + graceMs;
    // A viewer whose socket is full holds its stream back: no evidence against the sender.
    if (s.wireBacklogged) return now + graceMs;
    const owedSince = s.owedSince(word.segment, word.cursor, now);
    const lateMs = now - owedSince;
    if (lateMs < graceMs) return owedSince + graceMs;
    if (!s.bound) return now + graceMs; // cannot take this session over: no evidence to give
    if (lateMs > this.senderLateMs) this.senderLateMs = lateMs;
    const sender = ControlBlock.ownerOf(this.cb.activeWord());
    if (sender !== undefined && this.cb.readWaits(s.slot, sender)) this.senderWaitsOnRead = true;
    return now + graceMs;
  }

  /**
   * Sender: claim one session and stage its datagrams due within the window in
   * this turn's batch (flush sends them); returns when this path next needs to
   * look at the session.
   */
  private stageDue(s: PathSession, now: number, windowMs: number, graceMs: number): number {
    if (!s.interleaved) return this.stageDatagrams(s, now, windowMs, graceMs);
    // Interleaved: what the viewer's socket did not take last time goes first, due or not (paused too);
    // a viewer gone, or behind for longer than its backlog bound, ends the session here.
    const backlogged = s.flushPending();
    s.checkViewer(now);
    const next = this.stageDatagrams(s, now, windowMs, graceMs);
    return backlogged ? Math.min(next, now + WIRE_POLL_MS) : next;
  }

  private stageDatagrams(s: PathSession, now: number, windowMs: number, graceMs: number): number {
    const cb = this.cb;
    const word = this.ctrlState;
    const dueBy = now + windowMs;
    for (let tries = 0; tries < MAX_RECLAIMS; tries++) {
      cb.readCtrl(s.slot, word);
      if (word.paused || word.ended) return Number.POSITIVE_INFINITY;
      if (!s.syncSegment(cb, word.segment)) return now + CLAIM_POLL_MS;
      const prepared = s.prepare(word.cursor);
      if (prepared === 'not-read') return now + graceMs; // the reader thread wakes this path when it is read
      if (prepared === 'end') {
        if (s.bound) {
          cb.markEnded(s.slot);
          this.post({ type: 'session-ended', slot: s.slot, sessionId: s.sessionId });
        }
        return Number.POSITIVE_INFINITY;
      }
      if (s.deadlineMs > dueBy) return s.deadlineMs;
      if (!s.bound) return now + graceMs;
      const room = Math.min(MAX_BURST, s.sendRoom());
      if (!this.claim(s.slot)) return now + CLAIM_POLL_MS;
      // Claimed: the cursor must still be where we read it.
      cb.readCtrl(s.slot, this.claimedState);
      if (this.claimedState.hi !== word.hi || this.claimedState.lo !== word.lo) {
        cb.releaseClaim(s.slot, this.claimTag);
        continue;
      }
      this.batch.openRun(s, word.hi, word.lo, s.deadlineMs);
      s.stage(this.batch);
      for (let staged = 1; staged < room; staged++) {
        // Past the asset's end: the next turn ends the session, once the cursor is there.
        // Not read yet: the next turn waits for it.
        if (s.prepare(word.cursor + staged) !== 'ready') return now;
        if (s.deadlineMs > dueBy) return s.deadlineMs;
        s.stage(this.batch);
      }
      return now; // more is due: the next turn goes on
    }
    return now;
  }

  /**
   * Send the turn's batch and settle every run: advance the session's cursor past
   * the datagrams that left (or were dropped by a destination error), release its
   * claim, act on refusals. Returns when a refused session should be tried again.
   */
  private flush(activeWord: number, now: number, windowMs: number): number {
    const cb = this.cb;
    const batch = this.batch;
    let next = Number.POSITIVE_INFINITY;
    try {
      // A path failed meanwhile may have lost its claims to a stealer: it must not send (the fence).
      if (cb.activeWord() !== activeWord || cb.failureClaimedFor(this.path, this.incarnation)) {
        for (let r = 0; r < batch.runs; r++) cb.releaseClaim(batch.runSession[r].slot, this.claimTag);
        return now;
      }
      cb.countBatchLateness(this.path, monoNowMs() - batch.earliestDueMs);
      batch.send();
      if (this.stallAfterSendMs > 0) this.stall();
      // Every run is settled (its cursor past what left, its claim released) before a
      // failure of this path is thrown on: a run left unsettled would be sent again by the twin.
      let pathFailure: Error | undefined;
      for (let r = 0; r < batch.runs; r++) {
        const s = batch.runSession[r];
        try {
          if (this.settle(r, now)) {
            next = Math.min(next, now + windowMs);
            this.fullPassDue = true; // the refused datagrams are due now, not at the session's next deadline
          }
        } catch (err) {
          try {
            this.onSessionFault(s, err);
          } catch (thrown) {
            pathFailure ??= thrown instanceof Error ? thrown : new Error(String(thrown));
          }
        }
      }
      if (pathFailure) throw pathFailure;
    } finally {
      batch.clear();
    }
    return next;
  }

  /** Settle run r of the batch (see flush); true when the session should be tried again soon. */
  private settle(r: number, now: number): boolean {
    const batch = this.batch;
    const s = batch.runSession[r];
    const first = batch.runStart[r];
    const end = batch.runEnd(r);
    let done = 0;
    let sent = 0;
    let sentBytes = 0;
    let retry = false;
    try {
      for (let i = first; i < end; i++) {
        const code = batch.results[i];
        if (code === 0) {
          done++;
          sent++;
          sentBytes += batch.lengths[i];
          continue;
        }
        if (s.closed) break; // closed since it was staged: nothing left
        const outcome = s.refused(code, now, this.hangWindowMs);
        if (outcome !== 'dropped') {
          retry = outcome === 'retry';
          break;
        }
        done++;
      }
    } finally {
      if (sent > 0) {
        s.sent();
        this.cb.countSent(this.path, sent, sentBytes);
      }
      if (done > 0) this.cb.advanceCursorFrom(s.slot, batch.runHi[r], batch.runLo[r], done);
      this.cb.releaseClaim(s.slot, this.claimTag);
    }
    return retry;
  }

  /** How long a send may stay refused before it is a stalled send: as long as a path may run without progress. */
  private readonly hangWindowMs = (): number => {
    const { periodUs, maxMissed } = this.cb.heartbeatSettings();
    return (periodUs * maxMissed) / 1000;
  };

  /**
   * Take the send claim of a session. A live holder is a late sender in the
   * middle of its send: wait for it. A dead holder's claim is taken over; its
   * datagram is sent again only if it died inside its own send.
   */
  private claim(slot: number): boolean {
    const holder = this.cb.claimSend(slot, this.claimTag);
    if (holder === 0) return true;
    return this.cb.claimHolderDead(holder) && this.cb.stealClaim(slot, holder, this.claimTag);
  }

  /** The 'stall' test fault: asleep, as a descheduled thread would be, between a send and its advance. */
  private stall(): void {
    const ms = this.stallAfterSendMs;
    this.stallAfterSendMs = 0;
    Atomics.wait(this.stallWord, 0, 0, ms);
  }

  private drainCommands(): void {
    for (let command = this.commands.pop(); command; command = this.commands.pop()) {
      this.apply(command);
      this.cb.commandTaken(this.path);
      this.cb.beat(this.path); // a burst of opens is progress, not a hang
    }
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
      case 'inject-fault': this.injectFault(command.kind, command.delayMs); break;
    }
  }

  private openSession(command: OpenSessionCommand): void {
    this.closeSession(command.slot);
    let session: PathSession;
    try {
      session = new PathSession(command, this.cb, this.path, this.claimTag, this.sessionEvents, this.readerThread);
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
    if (command.interleaved) {
      const wire = this.waitingWires.get(command.slot);
      this.waitingWires.delete(command.slot);
      if (wire?.sessionId === command.sessionId) session.attachWire(wire.wire, wire.lockSpace);
    }
  }

  /** An interleaved session's wire (posted before its open command, but delivered by the event loop, maybe after it). */
  wireArrived(message: WireMessage): void {
    const session = this.sessions.get(message.slot);
    if (session?.sessionId === message.sessionId) session.attachWire(message.wire, message.lockSpace);
    else this.waitingWires.set(message.slot, message);
  }

  private readonly sessionEvents: PathSessionEvents = {
    bound: (s) => {
      this.socketsPending--;
      this.post({ type: 'session-bound', slot: s.slot, sessionId: s.sessionId });
      this.checkSynced();
      this.cb.wakePaths(); // the session may be due: an idle loop must look
    },
    addressUnusable: (s, err) => this.endSessionHere(s, 'session', err.message),
    socketLost: () => { this.socketFailure = true; this.cb.wakePaths(); },
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
    this.nextLook = new Float64Array(this.sessionList.length);
    this.fullPassDue = true;
    this.relisted = true;
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

  private injectFault(kind: InjectableFault, delayMs = SLOW_DISK_DEFAULT_MS): void {
    if (!this.faultInjection) return;
    if (kind === 'slow-disk') {
      // Not a failure by itself (only a read that then misses its deadline moves sending):
      // no fault start to stamp, which would date a later, unrelated failure.
      this.readerThread.slowDisk(delayMs);
      return;
    }
    this.cb.recordFaultStart(this.path, monoNowMs());
    switch (kind) {
      case 'crash':
        process.exit(70);
        break;
      case 'exception':
        throw new PathFailure(FailureCause.EXCEPTION, 'injected uncaught exception');
      case 'hang':
        // A busy loop that never makes progress: only the supervisor can find it.
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
      case 'stall':
        this.stallAfterSendMs = STALL_MS;
        break;
    }
  }

  private closeAll(): void {
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    this.sessionList = [];
    void this.readerThread.stop();
  }

  private post(event: PathToMain): void {
    parentPort?.postMessage(event);
  }
}
