// Every Atomics call on the shared control block lives here. Other modules ask
// for what they mean ("beat", "switch active from epoch e to B") and never index
// the buffer themselves. The layout is declared in ./layout.ts.

import {
  ACTIVE_OWNER_BITS, ACTIVE_OWNER_MASK, ACTIVE_OWNER_NONE, CTRL, I32, PATH_COUNT, PATH_F64, PATH_I32, SEGMENT_F64, SESSION_I32,
  FAILURE_CAUSE_CODES, LATENESS_BUCKETS_MS, computeLayout, failureCauseCode, partnerOf, pathF64Index, pathI32Index, segmentF64Index, sessionFaultBit, sessionI32Index, sessionReadWaitBit,
  type FailoverState, type FailoverType, type FailureCause, type Layout, type PathId, type SessionIo,
} from './layout.js';

export interface SegmentParams {
  id: number;
  startCursor: number;
  startPacket: number;
  startTimeMs: number;
  rtpTsBase: number;
  /** The packet the segment ends before: its last datagram is the one that reaches it. */
  endPacket: number;
  /** Trick play's Scale; 1 (or absent): normal play. */
  scale?: number;
}

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** A session's control word, decoded without allocating (see ControlBlock.readCtrl). */
export interface CtrlState {
  cursor: number;
  segment: number;
  paused: boolean;
  ended: boolean;
  /** The word's two halves as read, for the compare-and-swap after a send. */
  hi: number;
  lo: number;
}

export function newCtrlState(): CtrlState {
  return { cursor: 0, segment: 0, paused: false, ended: false, hi: 0, lo: 0 };
}

// readCtrl reads the 64-bit control word as two Int32 halves: low half first in memory.
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('twinframe needs a little-endian machine');
const CTRL_HI_CURSOR_MASK = 0xff; // cursor bits 32-39
const CTRL_HI_PAUSED = Number(CTRL.PAUSED >> 32n);
const CTRL_HI_ENDED = Number(CTRL.ENDED >> 32n);
const CTRL_HI_SEGMENT_SHIFT = Number(CTRL.SEGMENT_SHIFT) - 32;

export class ControlBlock {
  readonly sab: SharedArrayBuffer;
  readonly layout: Layout;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly u64: BigUint64Array;
  /** The same per-session words as Int32 halves, for reads that allocate nothing. */
  private readonly ctrl32: Int32Array;

  private constructor(sab: SharedArrayBuffer, layout: Layout) {
    this.sab = sab;
    this.layout = layout;
    this.i32 = new Int32Array(sab, 0, layout.i32Words);
    this.f64 = new Float64Array(sab, layout.f64Offset, layout.f64Words);
    this.u64 = new BigUint64Array(sab, layout.u64Offset, layout.u64Words);
    this.ctrl32 = new Int32Array(sab, layout.u64Offset, layout.u64Words * 2);
  }

  /** A new block; in `memory` (zeroed, of the size asked) when given: shared memory another process maps too (a process pair). */
  static create(maxSessions?: number, memory?: (bytes: number) => SharedArrayBuffer): ControlBlock {
    const layout = computeLayout(maxSessions);
    const block = new ControlBlock(memory ? memory(layout.byteLength) : new SharedArrayBuffer(layout.byteLength), layout);
    block.i32[I32.ACTIVE] = ACTIVE_OWNER_NONE;
    for (let path = 0; path < PATH_COUNT; path++) block.f64[pathF64Index(path as PathId, PATH_F64.NEXT_DUE_MS)] = Number.POSITIVE_INFINITY;
    return block;
  }

  /** Attach to a buffer created by another thread. */
  static attach(sab: SharedArrayBuffer, maxSessions: number): ControlBlock {
    const layout = computeLayout(maxSessions);
    if (sab.byteLength !== layout.byteLength) throw new Error(`control block is ${sab.byteLength} bytes, layout needs ${layout.byteLength}`);
    return new ControlBlock(sab, layout);
  }

  // ── ACTIVE: who sends ─────────────────────────────────────────────────────

  activeWord(): number {
    return Atomics.load(this.i32, I32.ACTIVE);
  }

  static ownerOf(word: number): PathId | undefined {
    const owner = word & ACTIVE_OWNER_MASK;
    return owner === ACTIVE_OWNER_NONE ? undefined : (owner as PathId);
  }

  static epochOf(word: number): number {
    return word >>> ACTIVE_OWNER_BITS;
  }

  /**
   * Hand sending to `to` (or to nobody) if ACTIVE still holds `expectedWord`.
   * One compare-and-swap: two detectors racing can never both switch.
   */
  switchActive(expectedWord: number, to: PathId | undefined): boolean {
    const epoch = ControlBlock.epochOf(expectedWord) + 1;
    const next = ((epoch << ACTIVE_OWNER_BITS) | (to ?? ACTIVE_OWNER_NONE)) | 0;
    if (Atomics.compareExchange(this.i32, I32.ACTIVE, expectedWord, next) !== expectedWord) return false;
    Atomics.add(this.i32, I32.SWITCH_COUNT, 1);
    Atomics.notify(this.i32, I32.ACTIVE);
    return true;
  }

  /** Sleep until ACTIVE changes from `expectedWord`, a notify, or the timeout. */
  waitOnActive(expectedWord: number, timeoutMs: number): WaitResult {
    return Atomics.wait(this.i32, I32.ACTIVE, expectedWord, timeoutMs);
  }

  /**
   * Wake every data path (a command was queued, or the session table changed),
   * sleeping or idle, and the supervisor, which judges the work now due.
   */
  wakePaths(): void {
    Atomics.add(this.i32, I32.PATH_DOORBELL, 1);
    Atomics.notify(this.i32, I32.PATH_DOORBELL);
    Atomics.notify(this.i32, I32.ACTIVE);
    this.ringSupervisor();
  }

  pathDoorbell(): number {
    return Atomics.load(this.i32, I32.PATH_DOORBELL);
  }

  /**
   * An idle path (nothing due) sleeps in its event loop until the doorbell moves
   * from `value`: it costs no CPU and its sockets' events are still delivered.
   */
  waitPathDoorbell(value: number, timeoutMs: number): Promise<unknown> {
    const result = Atomics.waitAsync(this.i32, I32.PATH_DOORBELL, value, timeoutMs);
    return result.async ? result.value : Promise.resolve(result.value);
  }

  switchCount(): number {
    return Atomics.load(this.i32, I32.SWITCH_COUNT);
  }

  /**
   * A standby that saw the sender late on due work takes sending over (the same
   * CAS as any switch) and counts it as a handover: nobody is failed.
   */
  handOver(expectedWord: number, to: PathId): boolean {
    if (!this.switchActive(expectedWord, to)) return false;
    Atomics.add(this.i32, I32.HANDOVERS, 1);
    return true;
  }

  handoverCount(): number {
    return Atomics.load(this.i32, I32.HANDOVERS);
  }

  // ── SIGFAILOVER and the supervisor's doorbell ─────────────────────────────

  sigfailover(): number {
    return Atomics.load(this.i32, I32.SIGFAILOVER);
  }

  bumpSigfailover(): void {
    Atomics.add(this.i32, I32.SIGFAILOVER, 1);
    Atomics.notify(this.i32, I32.SIGFAILOVER);
  }

  supervisorDoorbell(): number {
    return Atomics.load(this.i32, I32.SUPERVISOR_DOORBELL);
  }

  ringSupervisor(): void {
    Atomics.add(this.i32, I32.SUPERVISOR_DOORBELL, 1);
    Atomics.notify(this.i32, I32.SUPERVISOR_DOORBELL);
  }

  /** The supervisor watching several pairs waits on every pair's doorbell at once: in its event loop. */
  waitSupervisorDoorbellAsync(value: number, timeoutMs: number): Promise<WaitResult> {
    const result = Atomics.waitAsync(this.i32, I32.SUPERVISOR_DOORBELL, value, timeoutMs);
    return result.async ? result.value : Promise.resolve(result.value);
  }

  // ── Heartbeat settings and shutdown ───────────────────────────────────────

  heartbeatSettings(): { periodUs: number; maxMissed: number } {
    return {
      periodUs: Atomics.load(this.i32, I32.HEARTBEAT_PERIOD_US),
      maxMissed: Atomics.load(this.i32, I32.MAX_MISSED_HEARTBEATS),
    };
  }

  /** The heartbeat period alone: read on every data-path turn, so no object is built. */
  heartbeatPeriodUs(): number {
    return Atomics.load(this.i32, I32.HEARTBEAT_PERIOD_US);
  }

  setHeartbeatSettings(periodUs: number, maxMissed: number): void {
    Atomics.store(this.i32, I32.HEARTBEAT_PERIOD_US, periodUs);
    Atomics.store(this.i32, I32.MAX_MISSED_HEARTBEATS, maxMissed);
    this.ringSupervisor();
  }

  /** The data paths' batch window (pacing.batchWindowUs), read on every turn. */
  batchWindowUs(): number {
    return Atomics.load(this.i32, I32.BATCH_WINDOW_US);
  }

  setBatchWindowUs(windowUs: number): void {
    Atomics.store(this.i32, I32.BATCH_WINDOW_US, windowUs);
  }

  isShutdown(): boolean {
    return Atomics.load(this.i32, I32.SHUTDOWN) !== 0;
  }

  shutdown(): void {
    Atomics.store(this.i32, I32.SHUTDOWN, 1);
    Atomics.notify(this.i32, I32.ACTIVE);
    this.ringSupervisor();
  }

  // ── Per path ──────────────────────────────────────────────────────────────

  beat(path: PathId): void {
    Atomics.add(this.i32, pathI32Index(path, PATH_I32.HEARTBEAT), 1);
  }

  /**
   * When the path next owes work (+Infinity: nothing). Published before every
   * sleep; the supervisor judges a silent path only a period after this time,
   * so a plain store (visible within microseconds) is enough.
   */
  publishNextDue(path: PathId, atMs: number): void {
    this.f64[pathF64Index(path, PATH_F64.NEXT_DUE_MS)] = atMs;
  }

  nextDueMs(path: PathId): number {
    return this.f64[pathF64Index(path, PATH_F64.NEXT_DUE_MS)];
  }

  /**
   * The control plane queued a command for `path` (call after the push): it is
   * due from `atMs` if the path owed no command before, else since the older one.
   */
  markCommandQueued(path: PathId, atMs: number): void {
    const queued = pathI32Index(path, PATH_I32.COMMANDS_QUEUED);
    if (Atomics.load(this.i32, queued) === Atomics.load(this.i32, pathI32Index(path, PATH_I32.COMMANDS_TAKEN))) {
      this.f64[pathF64Index(path, PATH_F64.COMMAND_AT_MS)] = atMs;
    }
    Atomics.add(this.i32, queued, 1); // publishes the stamp
  }

  /** The path applied one command (counted after it is applied, so a hang inside one stays owed). */
  commandTaken(path: PathId): void {
    Atomics.add(this.i32, pathI32Index(path, PATH_I32.COMMANDS_TAKEN), 1);
  }

  /** Since when `path` has owed a command it has not applied yet; +Infinity when it owes none. */
  commandsOwedSinceMs(path: PathId): number {
    if (Atomics.load(this.i32, pathI32Index(path, PATH_I32.COMMANDS_QUEUED)) === Atomics.load(this.i32, pathI32Index(path, PATH_I32.COMMANDS_TAKEN))) {
      return Number.POSITIVE_INFINITY;
    }
    return this.f64[pathF64Index(path, PATH_F64.COMMAND_AT_MS)];
  }

  countSent(path: PathId, datagrams = 1, bytes = 0): void {
    Atomics.add(this.i32, pathI32Index(path, PATH_I32.SENT), datagrams);
    if (bytes > 0) Atomics.add(this.i32, pathI32Index(path, PATH_I32.SENT_BYTES), bytes);
  }

  sentCount(path: PathId): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.SENT)) >>> 0;
  }

  /** UDP payload bytes sent by the path, modulo 2^32. */
  sentBytes(path: PathId): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.SENT_BYTES)) >>> 0;
  }

  /** Count one send batch in its lateness bucket (once per batch, never per datagram). */
  countBatchLateness(path: PathId, lateMs: number): void {
    let bucket = 0;
    while (bucket < LATENESS_BUCKETS_MS.length && lateMs > LATENESS_BUCKETS_MS[bucket]) bucket++;
    Atomics.add(this.i32, pathI32Index(path, PATH_I32.LATENESS_BUCKET + bucket), 1);
    if (lateMs > 0) Atomics.add(this.i32, pathI32Index(path, PATH_I32.LATENESS_SUM_US), Math.round(lateMs * 1000));
  }

  /** The path's batch count in lateness bucket `bucket` (0 … LATENESS_BUCKETS_MS.length), modulo 2^32. */
  latenessBucketCount(path: PathId, bucket: number): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.LATENESS_BUCKET + bucket)) >>> 0;
  }

  /** Sum of the path's batch lateness in µs, modulo 2^32. */
  latenessSumUs(path: PathId): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.LATENESS_SUM_US)) >>> 0;
  }

  heartbeat(path: PathId): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.HEARTBEAT));
  }

  failoverVariables(path: PathId): { type: FailoverType; state: FailoverState } {
    return {
      type: Atomics.load(this.i32, pathI32Index(path, PATH_I32.FAILOVER_TYPE)) as FailoverType,
      state: Atomics.load(this.i32, pathI32Index(path, PATH_I32.FAILOVER_STATE)) as FailoverState,
    };
  }

  /** Publish a path's failover variables; every change bumps SIGFAILOVER. */
  setFailoverVariables(path: PathId, type: FailoverType, state: FailoverState): void {
    const t = Atomics.exchange(this.i32, pathI32Index(path, PATH_I32.FAILOVER_TYPE), type);
    const s = Atomics.exchange(this.i32, pathI32Index(path, PATH_I32.FAILOVER_STATE), state);
    if (t !== type || s !== state) this.bumpSigfailover();
  }

  setThreadId(path: PathId, tid: number): void {
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.THREAD_ID), tid);
  }

  threadId(path: PathId): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.THREAD_ID));
  }

  incarnation(path: PathId): number {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.INCARNATION));
  }

  /** Called by the control plane before it spawns a path's next worker. */
  beginIncarnation(path: PathId): number {
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.ONLINE), 0);
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.THREAD_ID), 0);
    this.f64[pathF64Index(path, PATH_F64.FAULT_AT_MS)] = 0;
    this.f64[pathF64Index(path, PATH_F64.NEXT_DUE_MS)] = Number.POSITIVE_INFINITY;
    // A new worker and a new queue: nothing is owed.
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.COMMANDS_TAKEN), Atomics.load(this.i32, pathI32Index(path, PATH_I32.COMMANDS_QUEUED)));
    return Atomics.add(this.i32, pathI32Index(path, PATH_I32.INCARNATION), 1) + 1;
  }

  /**
   * A path that caught its own fatal error says so here before it dies. The
   * incarnation tag keeps a late write from a terminated worker from blaming its
   * replacement.
   */
  reportCritical(path: PathId, incarnation: number, cause: FailureCause, atMs: number): void {
    this.f64[pathF64Index(path, PATH_F64.CRITICAL_AT_MS)] = atMs;
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.CRITICAL), (incarnation << 8) | failureCauseCode(cause));
    this.ringSupervisor();
  }

  /** The cause of the current incarnation's critical failure, or undefined. */
  critical(path: PathId): { cause: FailureCause; atMs: number } | undefined {
    const word = Atomics.load(this.i32, pathI32Index(path, PATH_I32.CRITICAL));
    if (word === 0 || word >>> 8 !== this.incarnation(path)) return undefined;
    return { cause: FAILURE_CAUSE_CODES[(word & 0xff) - 1], atMs: this.f64[pathF64Index(path, PATH_F64.CRITICAL_AT_MS)] };
  }

  /** Stamp the moment an injected fault begins, for detection-latency figures. */
  recordFaultStart(path: PathId, atMs: number): void {
    this.f64[pathF64Index(path, PATH_F64.FAULT_AT_MS)] = atMs;
    Atomics.add(this.i32, I32.FENCE, 0);
  }

  faultStartMs(path: PathId): number {
    Atomics.load(this.i32, I32.FENCE);
    return this.f64[pathF64Index(path, PATH_F64.FAULT_AT_MS)];
  }

  /** Claim the handling of one incarnation's failure; true for exactly one caller. */
  claimFailure(path: PathId, incarnation: number): boolean {
    const index = pathI32Index(path, PATH_I32.FAILURE_CLAIMED);
    for (;;) {
      const claimed = Atomics.load(this.i32, index);
      if (claimed >= incarnation) return false;
      if (Atomics.compareExchange(this.i32, index, claimed, incarnation) === claimed) return true;
    }
  }

  /** The failure of `path`'s incarnation `incarnation` has been claimed (it is out of service). */
  failureClaimedFor(path: PathId, incarnation: number): boolean {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.FAILURE_CLAIMED)) >= incarnation;
  }

  failureClaimed(path: PathId): boolean {
    return Atomics.load(this.i32, pathI32Index(path, PATH_I32.FAILURE_CLAIMED)) === this.incarnation(path);
  }

  /**
   * The control plane marks a path online in lockstep (it has opened every
   * session): from now on a switch may go to it, and its heartbeats are watched.
   */
  setOnline(path: PathId, incarnation: number): void {
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.ONLINE), incarnation);
    this.ringSupervisor();
  }

  /** The path went offline: no switch may go to it. */
  clearOnline(path: PathId): void {
    Atomics.store(this.i32, pathI32Index(path, PATH_I32.ONLINE), 0);
    this.ringSupervisor();
  }

  /** Online and not failed: the only kind of path a switch may go to. */
  isOnline(path: PathId): boolean {
    const incarnation = this.incarnation(path);
    return incarnation !== 0
      && Atomics.load(this.i32, pathI32Index(path, PATH_I32.ONLINE)) === incarnation
      && Atomics.load(this.i32, pathI32Index(path, PATH_I32.FAILURE_CLAIMED)) !== incarnation;
  }

  // ── Per session: the control word ─────────────────────────────────────────

  ctrl(slot: number): bigint {
    return Atomics.load(this.u64, slot);
  }

  /**
   * Decode a session's control word into `out` without allocating: the data
   * paths do this for every session on every wake. The halves are read high, low,
   * high again; writers only ever replace the whole word (64-bit CAS), and the
   * high half (flags, segment id) never returns to an earlier value, so equal
   * high reads mean the low half belongs to the same word.
   */
  readCtrl(slot: number, out: CtrlState): void {
    const hiIndex = 2 * slot + 1;
    for (;;) {
      const hi = Atomics.load(this.ctrl32, hiIndex);
      const lo = Atomics.load(this.ctrl32, 2 * slot);
      if (Atomics.load(this.ctrl32, hiIndex) !== hi) continue;
      out.hi = hi;
      out.lo = lo;
      out.cursor = (hi & CTRL_HI_CURSOR_MASK) * 0x1_0000_0000 + (lo >>> 0);
      out.paused = (hi & CTRL_HI_PAUSED) !== 0;
      out.ended = (hi & CTRL_HI_ENDED) !== 0;
      out.segment = hi >>> CTRL_HI_SEGMENT_SHIFT;
      return;
    }
  }

  /** advanceCursor for a word decoded by readCtrl (the one allocation, after a send). */
  advanceCursorFrom(slot: number, hi: number, lo: number, datagrams = 1): boolean {
    return this.advanceCursor(slot, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0), datagrams);
  }

  static cursorOf(word: bigint): number {
    return Number(word & CTRL.CURSOR_MASK);
  }

  static segmentOf(word: bigint): number {
    return Number((word >> CTRL.SEGMENT_SHIFT) & CTRL.SEGMENT_MASK);
  }

  static isPaused(word: bigint): boolean {
    return (word & CTRL.PAUSED) !== 0n;
  }

  static isEnded(word: bigint): boolean {
    return (word & CTRL.ENDED) !== 0n;
  }

  /** Reset a free slot for a new session: cursor 0, segment 0, paused, unclaimed, no faults. */
  resetSession(slot: number): void {
    Atomics.store(this.i32, sessionI32Index(slot, SESSION_I32.CLAIM), 0);
    Atomics.store(this.i32, sessionI32Index(slot, SESSION_I32.FAULT), 0);
    Atomics.store(this.u64, slot, CTRL.PAUSED);
  }

  // ── Per session: the send claim ───────────────────────────────────────────

  /** The claim tag of one path incarnation (never 0). */
  static claimTag(path: PathId, incarnation: number): number {
    return ((incarnation << 1) | path) + 1;
  }

  /**
   * Take the right to send the datagram at a session's cursor: 0 when taken,
   * else the tag of the holder. Taken before the send and dropped with the
   * advance, so two senders can never put the same datagram on the wire.
   */
  claimSend(slot: number, tag: number): number {
    return Atomics.compareExchange(this.i32, sessionI32Index(slot, SESSION_I32.CLAIM), 0, tag);
  }

  /** Replace a dead holder's claim with ours; true when it was still `holder`'s. */
  stealClaim(slot: number, holder: number, tag: number): boolean {
    return Atomics.compareExchange(this.i32, sessionI32Index(slot, SESSION_I32.CLAIM), holder, tag) === holder;
  }

  /** The tag holding a session's send claim, 0 when none (a process that stops sending waits for its sends in flight to settle). */
  claimHolder(slot: number): number {
    return Atomics.load(this.i32, sessionI32Index(slot, SESSION_I32.CLAIM));
  }

  releaseClaim(slot: number, tag: number): void {
    Atomics.compareExchange(this.i32, sessionI32Index(slot, SESSION_I32.CLAIM), tag, 0);
  }

  /** A claim's holder is gone for good: a later incarnation runs, or its failure was claimed. */
  claimHolderDead(tag: number): boolean {
    const path = ((tag - 1) & 1) as PathId;
    const incarnation = (tag - 1) >>> 1;
    return this.incarnation(path) !== incarnation
      || Atomics.load(this.i32, pathI32Index(path, PATH_I32.FAILURE_CLAIMED)) === incarnation;
  }

  // ── Per session: which path failed to read or send it ─────────────────────

  /**
   * `path` failed to read (or send) session `slot`: set its bit and say whether
   * the twin's bit was set already, and whether this path's own was (left by an
   * earlier incarnation that failed on this session too).
   */
  recordSessionFault(slot: number, path: PathId, io: SessionIo): { twin: boolean; own: boolean } {
    const own = sessionFaultBit(path, io);
    const before = Atomics.or(this.i32, sessionI32Index(slot, SESSION_I32.FAULT), own);
    return { twin: (before & sessionFaultBit(partnerOf(path), io)) !== 0, own: (before & own) !== 0 };
  }

  /** `path` read (or sent) session `slot` successfully: its earlier failure is history. */
  clearSessionFault(slot: number, path: PathId, io: SessionIo): void {
    Atomics.and(this.i32, sessionI32Index(slot, SESSION_I32.FAULT), ~sessionFaultBit(path, io));
  }

  /**
   * `path` waits (or no longer waits) for its read of session `slot`'s next
   * datagram. Not a fault: the twin's lateness detector reads it (readWaits).
   */
  setReadWait(slot: number, path: PathId, waiting: boolean): void {
    const bit = sessionReadWaitBit(path);
    if (waiting) Atomics.or(this.i32, sessionI32Index(slot, SESSION_I32.FAULT), bit);
    else Atomics.and(this.i32, sessionI32Index(slot, SESSION_I32.FAULT), ~bit);
  }

  readWaits(slot: number, path: PathId): boolean {
    return (Atomics.load(this.i32, sessionI32Index(slot, SESSION_I32.FAULT)) & sessionReadWaitBit(path)) !== 0;
  }

  /**
   * Send-then-advance: after sending `datagrams` datagrams from `cursorOf(sentWord)`,
   * move the cursor on past them (one compare-and-swap for a run). Fails (false) if a newer owner or a new segment already
   * moved it, so a deposed path that wakes late can never move it backwards; a
   * pause that landed meanwhile does not undo the advance (the datagram left).
   */
  advanceCursor(slot: number, sentWord: bigint, datagrams = 1): boolean {
    const cursor = sentWord & CTRL.CURSOR_MASK;
    const segment = sentWord >> CTRL.SEGMENT_SHIFT;
    const step = BigInt(datagrams);
    let expected = sentWord;
    for (;;) {
      const seen = Atomics.compareExchange(this.u64, slot, expected, expected + step);
      if (seen === expected) return true;
      if ((seen & CTRL.CURSOR_MASK) !== cursor || seen >> CTRL.SEGMENT_SHIFT !== segment) return false;
      expected = seen; // only the paused/ended flags changed: keep them, still advance
    }
  }

  /** Set a flag (paused or ended) on the control word, whatever the cursor. */
  private setCtrlFlag(slot: number, flag: bigint): bigint {
    for (;;) {
      const seen = Atomics.load(this.u64, slot);
      if ((seen & flag) !== 0n) return seen;
      if (Atomics.compareExchange(this.u64, slot, seen, seen | flag) === seen) return seen | flag;
    }
  }

  pauseSession(slot: number): bigint {
    return this.setCtrlFlag(slot, CTRL.PAUSED);
  }

  markEnded(slot: number): bigint {
    return this.setCtrlFlag(slot, CTRL.ENDED);
  }

  /**
   * Start a new segment (first PLAY, resume or seek) at the current cursor.
   * `build(cursor)` returns the parameters for a segment starting at that cursor;
   * they are written to the slot no path is reading, then published with one CAS
   * that also clears paused/ended. If a path advanced the cursor in between, the
   * CAS fails and the segment is rebuilt at the new cursor.
   */
  startSegment(slot: number, build: (cursor: number, segmentId: number) => Omit<SegmentParams, 'id' | 'startCursor'>): SegmentParams {
    for (;;) {
      const seen = Atomics.load(this.u64, slot);
      const cursor = ControlBlock.cursorOf(seen);
      const id = (ControlBlock.segmentOf(seen) + 1) & Number(CTRL.SEGMENT_MASK);
      const params: SegmentParams = { id, startCursor: cursor, scale: 1, ...build(cursor, id) };
      this.writeSegment(slot, params);
      const next = (BigInt(id) << CTRL.SEGMENT_SHIFT) | BigInt(cursor);
      if (Atomics.compareExchange(this.u64, slot, seen, next) === seen) return params;
    }
  }

  private writeSegment(slot: number, p: SegmentParams): void {
    const s = p.id % 2;
    // Seqlock: invalidate the id, write the fields, then the id. Readers check the
    // id after reading the fields. The publishing CAS orders these plain stores.
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.ID)] = -1;
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.START_CURSOR)] = p.startCursor;
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.START_PACKET)] = p.startPacket;
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.START_TIME_MS)] = p.startTimeMs;
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.RTP_TS_BASE)] = p.rtpTsBase;
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.END_PACKET)] = p.endPacket;
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.SCALE)] = p.scale ?? 1;
    Atomics.add(this.i32, I32.FENCE, 0); // full fence before the id
    this.f64[segmentF64Index(slot, s, SEGMENT_F64.ID)] = p.id;
  }

  /** Read segment `id` of a session into `out`; false if that segment is no longer stored. */
  readSegment(slot: number, id: number, out: SegmentParams): boolean {
    const s = id % 2;
    if (this.f64[segmentF64Index(slot, s, SEGMENT_F64.ID)] !== id) return false;
    out.id = id;
    out.startCursor = this.f64[segmentF64Index(slot, s, SEGMENT_F64.START_CURSOR)]!;
    out.startPacket = this.f64[segmentF64Index(slot, s, SEGMENT_F64.START_PACKET)]!;
    out.startTimeMs = this.f64[segmentF64Index(slot, s, SEGMENT_F64.START_TIME_MS)]!;
    out.rtpTsBase = this.f64[segmentF64Index(slot, s, SEGMENT_F64.RTP_TS_BASE)]!;
    out.endPacket = this.f64[segmentF64Index(slot, s, SEGMENT_F64.END_PACKET)]!;
    out.scale = this.f64[segmentF64Index(slot, s, SEGMENT_F64.SCALE)]!;
    Atomics.load(this.i32, I32.FENCE); // fence: re-check the id after the fields
    return this.f64[segmentF64Index(slot, s, SEGMENT_F64.ID)] === id;
  }
}
