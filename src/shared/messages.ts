// Every message that crosses a thread by postMessage or workerData, declared
// once. (The commands the control plane queues for a data path travel on a SAB
// ring instead: ./commands.ts.) Senders annotate what they post with these
// types; receivers take them as they are.
//
//   main ──workerData──► data path   DataPathWorkerData
//   main ──postMessage──► data path   MainToPath
//   main ◄──postMessage── data path   PathToMain
//   main ──workerData──► supervisor   SupervisorWorkerData
//   main ◄──postMessage── supervisor  SupervisorToMain
//   data path ──workerData──► its reader   ReaderWorkerData
//   data path ──MessagePort──► its reader  PathToReader
//   data path ◄──MessagePort── its reader  ReaderToPath
//   main ──workerData──► watcher      WatcherWorkerData (src/pair-process/native-watcher.ts)
//   main ◄──postMessage── watcher     WatcherToMain

import type { MessagePort } from 'node:worker_threads';
import type { OpenSessionCommand } from './commands.js';
import type { FailureCause, PathId } from './layout.js';
import type { PriorityResult } from './thread-priority.js';
import type { LockSpace } from './wire.js';

export interface DataPathWorkerData {
  /** The pair the path belongs to: names its threads only (the control block is the pair's). */
  readonly pair: number;
  readonly path: PathId;
  readonly incarnation: number;
  readonly controlBlock: SharedArrayBuffer;
  readonly maxSessions: number;
  readonly commandQueue: SharedArrayBuffer;
  readonly faultInjection: boolean;
}

/**
 * What the control plane posts to a data path (commands travel on the SAB ring;
 * a SharedArrayBuffer cannot): the wire of an interleaved session, before its
 * open-session command, and again to every new incarnation.
 */
export interface WireMessage {
  readonly type: 'wire';
  readonly slot: number;
  readonly sessionId: string;
  readonly wire: SharedArrayBuffer;
  /** The process's half of the wire lock's tags (src/shared/wire.ts). */
  readonly lockSpace: LockSpace;
}
export type MainToPath = WireMessage;

/** The supervisor watches every pair of data paths: one control block per pair, by pair index. */
export interface SupervisorWorkerData {
  readonly controlBlocks: readonly SharedArrayBuffer[];
  readonly maxSessions: number;
}

/** A thread is running its loop, at this scheduling policy (and why not a better one). */
export interface BootedMessage {
  readonly type: 'booted';
  readonly policy: PriorityResult['policy'];
  readonly priorityError: string | undefined;
}

/**
 * A session this path stops serving through no fault of its own: its destination
 * or stream address ('session') or its asset's file ('asset') is unusable
 * (src/datapath/error-scope.ts). The control plane ends the session, or every
 * session of the asset; the path stays healthy.
 */
export interface SessionFaultMessage {
  readonly type: 'session-fault';
  readonly slot: number;
  readonly sessionId: string;
  readonly scope: 'session' | 'asset';
  readonly reason: string;
}

/** This path (`to`), on time, found `from` late on due work and took sending over. */
export interface HandoverMessage {
  readonly type: 'handover';
  readonly from: PathId;
  readonly to: PathId;
  readonly lateMs: number;
  readonly atMs: number;
  /** 'late': the sender's heartbeat stood still; 'read-wait': the sender waited for its read of a datagram `to` held ready. */
  readonly cause: HandoverCause;
}

export type HandoverCause = 'late' | 'read-wait';

/** What a data path tells the control plane. */
export type PathToMain =
  | (BootedMessage & { readonly path: PathId; readonly incarnation: number })
  /** The session's socket is bound on this path: it can follow the session's cursor. */
  | { readonly type: 'session-bound'; readonly slot: number; readonly sessionId: string }
  | { readonly type: 'session-closed'; readonly slot: number }
  | { readonly type: 'session-ended'; readonly slot: number; readonly sessionId: string }
  /** Every session queued before the sync marker `token` is open on this path. */
  | { readonly type: 'synced'; readonly token: number }
  | HandoverMessage
  /** A destination error reported while the stream goes on (ICMP unreachable and the like). */
  | { readonly type: 'session-error'; readonly slot: number; readonly sessionId: string; readonly message: string }
  | SessionFaultMessage;

/** A failed path taken out of service (src/supervisor/fail-path.ts). */
export interface FailureReport {
  readonly path: PathId;
  readonly incarnation: number;
  readonly cause: FailureCause;
  /** Best estimate of when the failure happened (fault start, critical report, or last heartbeat). */
  readonly failedAtMs: number;
  /** When the failure was claimed (by the supervisor, or the control plane's backup detector). */
  readonly detectedAtMs: number;
  /** Set when the failed path was sending and ACTIVE moved. */
  readonly switchedAtMs: number | undefined;
  /** Where sending went: the twin, or undefined when it was not online (streams stop). */
  readonly switchedTo: PathId | undefined;
  readonly wasActive: boolean;
  readonly epoch: number;
  /** A hang: what the supervisor saw (logged, so that any heartbeat failure can be told apart afterwards). */
  readonly stall?: StallEvidence;
}

/** The supervisor's evidence against a stalled path. */
export interface StallEvidence {
  /** How long its due work had made no progress. */
  readonly stalledMs: number;
  /** How long the supervisor measured its CPU time, and how much it ran meanwhile (undefined: no CPU figures). */
  readonly observedMs: number;
  readonly cpuMs: number | undefined;
}

/** What the supervisor tells the control plane. */
export type SupervisorToMain =
  | BootedMessage
  /** `pair`: the index of the pair (its control block) whose path failed. */
  | { readonly type: 'path-failed'; readonly pair: number; readonly report: FailureReport };

/** What a reader thread needs to read one session's asset (the files' checks are the data path's). */
export type ReadAsset = Pick<OpenSessionCommand, 'assetPath' | 'indexPath' | 'packetCount' | 'timesOffset' | 'assetIdentity'>;

/** A data path's reader thread (src/datapath/reader-worker.ts). */
export interface ReaderWorkerData {
  /** The kernel's name for the thread (tf-read-<pair><path>). */
  readonly threadName: string;
  readonly controlBlock: SharedArrayBuffer;
  readonly maxSessions: number;
  /** Word 0: bumped by the path for every chunk it requests. */
  readonly doorbell: SharedArrayBuffer;
  /** Where the path's PathToReader messages arrive (read synchronously, between reads). */
  readonly port: MessagePort;
}

/**
 * What a data path tells its reader thread, once per session or fault, never
 * per chunk (chunk requests travel in the session's ring: src/datapath/chunk-ring.ts).
 */
export type PathToReader =
  /** Serve the chunk requests of `ring`, reading `asset` through the handles the ring names. */
  | { readonly type: 'open'; readonly id: number; readonly ring: SharedArrayBuffer; readonly asset: ReadAsset }
  | { readonly type: 'close'; readonly id: number }
  /** Trick play: read the key-frame table of ring `id`'s asset, answered by a ReaderToPath 'keys'. */
  | { readonly type: 'keys'; readonly id: number }
  /** The 'slow-disk' fault: every read from now on first waits this long. */
  | { readonly type: 'slow-disk'; readonly delayMs: number };

/**
 * What a reader thread answers a path: a session's key-frame table (see
 * src/datapath/asset-reader.ts readKeyTable), or why it could not be read
 * (failure: a FailureKind of src/datapath/chunk-ring.ts).
 */
export type ReaderToPath =
  | { readonly type: 'keys'; readonly id: number; readonly table: SharedArrayBuffer }
  | { readonly type: 'keys-failed'; readonly id: number; readonly failure: number; readonly message: string };

/** What a watcher thread (src/pair-process/native-watcher.ts) waits for. */
export type WatchTarget =
  /** A descriptor to become readable (a pidfd: its process exited; a socket: a message); once: stop after the first time. */
  | { readonly kind: 'fd'; readonly fd: number; readonly once: boolean }
  /** The life lock of a shared region to be free or its holder dead (once). */
  | { readonly kind: 'life-lock'; readonly lock: Int32Array };

export interface WatcherWorkerData {
  readonly target: WatchTarget;
  /** [STOP, ARMED] (src/pair-process/native-watcher.ts): the owner's stop request, and whether to wait again. */
  readonly control: Int32Array;
  /** Set to 1 and Atomics.notify'd by the watcher thread itself, before it posts: wakes this process's waiters at once. */
  readonly wake?: { readonly array: Int32Array; readonly index: number };
}

/** The process pair's life-lock holder thread (src/pair-process/native-life-lock.ts). */
export interface LifeHolderWorkerData {
  /** The primary's life lock, to take and hold. */
  readonly lock: Int32Array;
  /** [RELEASE]: set to 1 (and notified) by the owner: let go of the lock (a role switch). */
  readonly control: Int32Array;
}

/** The holder thread holds the lock (at that priority), let go of it on request, or could not take it. */
export type LifeHolderToMain =
  | { readonly type: 'held'; readonly priority: PriorityResult }
  | { readonly type: 'released' }
  | { readonly type: 'error'; readonly message: string };

/** The process pair's takeover thread (src/pair-process/native-takeover.ts): what it maps and waits on. */
export interface TakeoverWorkerData {
  /** The primary's life lock. */
  readonly lock: Int32Array;
  /** [STOP]: the owner's stop request. */
  readonly control: Int32Array;
  /** The takeover table (TakeoverTable.sab) and its shape. */
  readonly table: SharedArrayBuffer;
  readonly pairs: number;
  readonly maxSessions: number;
  /** This process's control blocks, by pair, and the primary's. */
  readonly own: readonly SharedArrayBuffer[];
  readonly primary: readonly SharedArrayBuffer[];
  readonly primaryMaxSessions: number;
  /** The primary process, and this process's half of the wire lock's tags: after a death the thread claims the followed wires. */
  readonly primaryPid: number;
  readonly lockSpace: LockSpace;
  /** Where the followed wires arrive (MainToTakeover). */
  readonly wires: MessagePort;
}

/** Main → takeover thread: a wire of RTP on an RTSP connection it claims after a death, or no longer. */
export type MainToTakeover =
  | { readonly type: 'wire'; readonly id: string; readonly wire: SharedArrayBuffer }
  | { readonly type: 'unwire'; readonly id: string };

/** What the takeover step did. */
export interface TakeoverStep {
  /** Sessions moved on to the primary's cursor (they send from there). */
  moved: number;
  /** Sessions paused for the main thread (the primary paused them, or plays a segment not adopted here yet). */
  leftToMain: number;
  /** Pairs whose ACTIVE the step gave to their sender. */
  pairsSwitched: number;
}

/** What the takeover thread tells the main thread (at, switchedAt: process.hrtime.bigint()). */
export type TakeoverToMain =
  | { readonly type: 'ready'; readonly priority: PriorityResult }
  /** The life lock changed hands (died: the holder died; else it let go: a role switch); ran: the step was this thread's. */
  | { readonly type: 'took-over'; readonly at: bigint; readonly switchedAt: bigint; readonly died: boolean; readonly ran: boolean; readonly step: TakeoverStep }
  /** After a death, the followed wires: claimed, and how long the dead primary's writers took to be past their last system call. */
  | { readonly type: 'wires-claimed'; readonly wires: number; readonly unclaimed: number; readonly waitedMs: number }
  | { readonly type: 'error'; readonly message: string };

/** What the watcher saw (at: process.hrtime.bigint() then), or that its wait failed. */
export type WatcherToMain =
  | { readonly type: 'readable'; readonly at: bigint }
  | { readonly type: 'holder-gone'; readonly at: bigint; readonly died: boolean }
  | { readonly type: 'error'; readonly message: string };
