// The standby's takeover step, done by a watcher thread the moment the
// primary's life lock changes hands (its main thread began to die, or it let
// go of sending: a role switch), without a turn of the standby's event loop.
//
// The step needs only shared memory: the takeover table (below, kept by the
// standby's main thread: which of its sessions follows which place of the
// primary's control blocks, at which of the primary's segments, and each
// pair's designated sender), the primary's control blocks and the standby's
// own. Each followed session whose primary still plays the same segment moves
// its cursor on to the primary's; one the primary paused, or moved to a segment
// whose step had not crossed the link yet, is paused here and left to the main
// thread (it adopts the segment from the block, then plays). Then each pair's
// ACTIVE names its designated sender, which sends everything due at once. The
// main thread does the rest after (bookkeeping, RTSP, status, log).
//
// The table's lock keeps the step and the main thread's segment changes apart
// (a session half adopted would send the wrong datagrams); both hold it for
// microseconds.

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { processLockSpace } from '../shared/wire.js';
import { ControlBlock } from '../shared/control-block.js';
import type { PathId } from '../shared/layout.js';
import type { MainToTakeover, TakeoverStep, TakeoverToMain, TakeoverWorkerData } from '../shared/messages.js';
import type { PriorityResult } from '../shared/thread-priority.js';
import { requirePairNative } from './native-pair.js';
import { WATCH_SLICE_MS } from './native-watcher.js';
import { CLAIM_WAIT_MS } from './wire-claim.js';

/** Which thread learns of the primary's death: 'thread' (the takeover thread, on the life lock: the default) or 'main' (the main thread polls /proc every 2 ms; TWINFRAME_PAIR_WATCH=main, for comparison). */
export function takeoverWatch(): 'thread' | 'main' {
  return process.env.TWINFRAME_PAIR_WATCH === 'main' ? 'main' : 'thread';
}

/** How long stop() waits for the thread to end by itself: a wait slice, or a claim after a death (its wait, then each wire's, with room). */
const STOP_WAIT_MS = 2 * WATCH_SLICE_MS + 3 * CLAIM_WAIT_MS;
const LOCK = 0;
const TOOK_OVER = 1;
const HEADER = 2;
/** Per session: [followed (1), primary pair, primary slot, primary segment the session plays here]. */
const ENTRY = 4;
const NO_SENDER = -1;

export class TakeoverTable {
  readonly #i32: Int32Array;

  constructor(readonly sab: SharedArrayBuffer, readonly pairs: number, readonly maxSessions: number) {
    this.#i32 = new Int32Array(sab);
  }

  static create(pairs: number, maxSessions: number): TakeoverTable {
    const table = new TakeoverTable(new SharedArrayBuffer((HEADER + pairs + pairs * maxSessions * ENTRY) * 4), pairs, maxSessions);
    for (let p = 0; p < pairs; p++) table.#i32[HEADER + p] = NO_SENDER;
    return table;
  }

  /** Run `change` with the step kept out (a step under way finishes first). */
  locked<T>(change: () => T): T {
    while (Atomics.compareExchange(this.#i32, LOCK, 0, 1) !== 0) Atomics.wait(this.#i32, LOCK, 1, 1);
    try {
      return change();
    } finally {
      Atomics.store(this.#i32, LOCK, 0);
      Atomics.notify(this.#i32, LOCK);
    }
  }

  /** The step ran (by the thread or the main thread): sending is this process's. */
  get tookOver(): boolean {
    return Atomics.load(this.#i32, TOOK_OVER) === 1;
  }

  /** Session (pair, slot) here follows the primary's (primaryPair, primarySlot), playing its segment `segment` (0: none yet). */
  follow(pair: number, slot: number, primaryPair: number, primarySlot: number, segment: number): void {
    const at = this.#entry(pair, slot);
    Atomics.store(this.#i32, at + 1, primaryPair);
    Atomics.store(this.#i32, at + 2, primarySlot);
    Atomics.store(this.#i32, at + 3, segment);
    Atomics.store(this.#i32, at, 1);
  }

  /** The session plays the primary's segment `segment` now. */
  setSegment(pair: number, slot: number, segment: number): void {
    Atomics.store(this.#i32, this.#entry(pair, slot) + 3, segment);
  }

  unfollow(pair: number, slot: number): void {
    Atomics.store(this.#i32, this.#entry(pair, slot), 0);
  }

  unfollowAll(): void {
    for (let p = 0; p < this.pairs; p++) for (let s = 0; s < this.maxSessions; s++) this.unfollow(p, s);
  }

  /** The path of each pair that takes sending at the step (undefined: none). */
  setSenders(senders: readonly (PathId | undefined)[]): void {
    for (let p = 0; p < this.pairs; p++) Atomics.store(this.#i32, HEADER + p, senders[p] ?? NO_SENDER);
  }

  /**
   * The takeover step (call inside locked()): cursors on to the primary's, then
   * ACTIVE to each pair's sender. Once only: false when it already ran.
   */
  switchSending(own: readonly ControlBlock[], primary: readonly ControlBlock[], step: TakeoverStep): boolean {
    if (this.tookOver) return false;
    for (let p = 0; p < this.pairs; p++) {
      const cb = own[p];
      for (let s = 0; s < this.maxSessions; s++) {
        const at = this.#entry(p, s);
        if (Atomics.load(this.#i32, at) !== 1) continue;
        const block = primary[Atomics.load(this.#i32, at + 1)];
        if (!block) continue;
        const word = block.ctrl(Atomics.load(this.#i32, at + 2));
        const segment = ControlBlock.segmentOf(word);
        if (segment !== 0 && segment === Atomics.load(this.#i32, at + 3) && !ControlBlock.isPaused(word)) {
          moveCursorTo(cb, s, ControlBlock.cursorOf(word));
          step.moved++;
        } else {
          cb.pauseSession(s);
          step.leftToMain++;
        }
      }
    }
    for (let p = 0; p < this.pairs; p++) {
      const cb = own[p];
      const sender = Atomics.load(this.#i32, HEADER + p);
      if (sender === NO_SENDER || !cb.isOnline(sender as PathId)) continue;
      const word = cb.activeWord();
      if (ControlBlock.ownerOf(word) === undefined && cb.switchActive(word, sender as PathId)) step.pairsSwitched++;
    }
    Atomics.store(this.#i32, TOOK_OVER, 1);
    return true;
  }

  #entry(pair: number, slot: number): number {
    return HEADER + this.pairs + (pair * this.maxSessions + slot) * ENTRY;
  }
}

/** Move a session's cursor forward to `target` (never back: the standby's own cursor only follows). */
function moveCursorTo(cb: ControlBlock, slot: number, target: number): void {
  for (;;) {
    const word = cb.ctrl(slot);
    const cursor = ControlBlock.cursorOf(word);
    if (cursor >= target || cb.advanceCursor(slot, word, target - cursor)) return;
  }
}

export interface TakeoverThreadOptions {
  /** The primary's life lock (mapLifeLock). */
  readonly lock: Int32Array;
  readonly table: TakeoverTable;
  readonly own: readonly ControlBlock[];
  readonly primary: readonly ControlBlock[];
  /** The thread runs, at this priority. */
  readonly onReady: (priority: PriorityResult) => void;
  /** The step ran on the thread (it did nothing if the main thread had run it first: step.ran false). */
  readonly onTookOver: (message: Extract<TakeoverToMain, { type: 'took-over' }>) => void;
  /** After a death: the followed wires are claimed. */
  readonly onWiresClaimed: (message: Extract<TakeoverToMain, { type: 'wires-claimed' }>) => void;
  /** The primary process (its threads are waited for before a wire is claimed). */
  readonly primaryPid: number;
  readonly onError: (err: Error) => void;
}

/** The watcher thread: waits on the primary's life lock, runs the step the moment it changes hands, then tells the main thread. */
export class TakeoverThread {
  readonly #worker: Worker;
  /** [STOP]: the owner's stop request. */
  readonly #control = new Int32Array(new SharedArrayBuffer(4));
  readonly #wires: MessagePort;
  /** Ends once the worker has exited (by itself after a takeover, or stopped). */
  readonly #exited: Promise<void>;

  constructor(options: TakeoverThreadOptions) {
    requirePairNative();
    const { port1, port2 } = new MessageChannel();
    this.#wires = port1;
    const workerData: TakeoverWorkerData = {
      lock: options.lock,
      control: this.#control,
      table: options.table.sab,
      pairs: options.table.pairs,
      maxSessions: options.table.maxSessions,
      own: options.own.map((cb) => cb.sab),
      primary: options.primary.map((cb) => cb.sab),
      primaryMaxSessions: options.primary[0]?.layout.maxSessions ?? 0,
      primaryPid: options.primaryPid,
      lockSpace: processLockSpace(),
      wires: port2,
    };
    this.#worker = new Worker(new URL('./native-takeover-thread.js', import.meta.url), { workerData, transferList: [port2], name: 'twinframe-takeover' });
    this.#worker.on('message', (message: TakeoverToMain) => {
      if (message.type === 'ready') options.onReady(message.priority);
      else if (message.type === 'took-over') options.onTookOver(message);
      else if (message.type === 'wires-claimed') options.onWiresClaimed(message);
      else options.onError(new Error(message.message));
    });
    this.#worker.on('error', options.onError);
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
  }

  /** A followed session's wire of RTP on an RTSP connection, for the thread to claim after a death (it reads it within a wait slice). */
  followWire(id: string, wire: SharedArrayBuffer): void {
    this.#post({ type: 'wire', id, wire });
  }

  unfollowWire(id: string): void {
    this.#post({ type: 'unwire', id });
  }

  #post(message: MainToTakeover): void {
    this.#wires.postMessage(message);
  }

  /**
   * Stop waiting: the thread ends within its wait slice, or once it claimed the
   * wires after a death (never cut off inside a claim: it would leave a wire
   * locked); terminated only if it does not end in time.
   */
  async stop(): Promise<void> {
    Atomics.store(this.#control, 0, 1);
    this.#wires.close();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_WAIT_MS);
      timer.unref();
    });
    const tooLate = await Promise.race([this.#exited.then(() => false), late]);
    clearTimeout(timer);
    if (tooLate) await this.#worker.terminate();
  }
}
