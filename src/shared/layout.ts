// The shared control block: the one place that declares the SharedArrayBuffer
// layout. Nothing else indexes the buffer by number; src/shared/control-block.ts
// holds every Atomics call on it.
//
//   ┌─ Int32 words ─────────────────────────────────────────────────────────────┐
//   │ global: ACTIVE, SIGFAILOVER, SUPERVISOR_DOORBELL, heartbeat config, ...   │
//   │ per path (×2): heartbeat, failover_type/state, critical word, ...         │
//   │ per session: the send claim, fault bits (which path failed to read/send)  │
//   ├─ Float64 words ───────────────────────────────────────────────────────────┤
//   │ per path: time of the critical failure / injected fault, when work is due │
//   │ per session: two segment slots (start cursor, start packet, start time,  │
//   │              RTP timestamp base, segment id)                              │
//   ├─ BigUint64 words ─────────────────────────────────────────────────────────┤
//   │ per session: the control word {segment id, paused, ended, cursor}        │
//   └───────────────────────────────────────────────────────────────────────────┘

export const PATH_COUNT = 2;
/** A data path as the control block indexes it. */
export type PathId = 0 | 1;
/** A data path as operators, logs and the failover state machine name it. */
export const PATH_NAMES = ['a', 'b'] as const;
export type PathName = (typeof PATH_NAMES)[number];

/** The other path of the pair (by index or by name). */
export function partnerOf(path: PathId): PathId;
export function partnerOf(path: PathName): PathName;
export function partnerOf(path: PathId | PathName): PathId | PathName {
  if (typeof path === 'number') return path === 0 ? 1 : 0;
  return path === 'a' ? 'b' : 'a';
}

/**
 * The patent's failover variables (Fig. 5, [0066]-[0067]) as the control block
 * stores them: the numbers must stay stable. Named states: src/failover/states.ts.
 */
export const FailoverType = { UNDEF: 0, MASTER: 1, SLAVE: 2 } as const;
export type FailoverType = (typeof FailoverType)[keyof typeof FailoverType];

export const FailoverState = {
  UNDEF: 0,
  NONE: 1,
  LIVE: 2,
  FAILED: 3,
  SYNCING: 4,
  SYNCED: 5,
  NOPARTNER: 6,
} as const;
export type FailoverState = (typeof FailoverState)[keyof typeof FailoverState];

/** ACTIVE word: owner in the low 2 bits, epoch above them. Every switch bumps the epoch. */
export const ACTIVE_OWNER_BITS = 2;
export const ACTIVE_OWNER_MASK = 0b11;
export const ACTIVE_OWNER_NONE = 3;

// ── Int32 region ────────────────────────────────────────────────────────────
export const I32 = {
  /** Which path sends, and the switch epoch. Data paths sleep on this word. */
  ACTIVE: 0,
  /** Generation counter bumped on every change of failover_type/failover_state. */
  SIGFAILOVER: 1,
  /** The supervisor sleeps on this word; dying paths and the control plane notify it. */
  SUPERVISOR_DOORBELL: 2,
  /** How late due work may be before the sender counts as late (and the standby takes over sending). */
  HEARTBEAT_PERIOD_US: 3,
  /** A path running on a CPU with no progress on due work for period × this is hung. */
  MAX_MISSED_HEARTBEATS: 4,
  /** Non-zero: every thread leaves its loop. */
  SHUTDOWN: 5,
  /** Count of switches the supervisor or control plane made (for statistics). */
  SWITCH_COUNT: 6,
  /** Never holds data: read-modify-write on it is a full memory fence for plain stores. */
  FENCE: 7,
  /** Count of lossless handovers from a late sender to its on-time twin (nobody failed). */
  HANDOVERS: 8,
  /** Bumped whenever a data path has something new to look at (a command, a play); an idle path sleeps on it. */
  PATH_DOORBELL: 9,
  /** A data path sends what falls due within this window in one turn (pacing.batchWindowUs). */
  BATCH_WINDOW_US: 10,
  GLOBAL_WORDS: 11,
} as const;

/** Per-path Int32 fields, at I32.GLOBAL_WORDS + path * PATH_I32_STRIDE. */
export const PATH_I32 = {
  /** Incremented by the path on every turn of work (progress); judged only against work that is due. */
  HEARTBEAT: 0,
  FAILOVER_TYPE: 1,
  FAILOVER_STATE: 2,
  /** Which incarnation of the worker occupies this path (bumped on every respawn). */
  INCARNATION: 3,
  /** (incarnation << 8) | cause, written by a path that caught its own fatal error. */
  CRITICAL: 4,
  /** Incarnation whose failure has been handled: claimed once, by CAS. */
  FAILURE_CLAIMED: 5,
  /** Incarnation that is online: it has opened every session and may send or take over sending. */
  ONLINE: 6,
  /** Linux thread id of the path's worker, so the supervisor can read its CPU time. */
  THREAD_ID: 7,
  /** Datagrams this path put on the wire (all incarnations; wraps at 2^32). */
  SENT: 8,
  /** Commands queued for the path, and commands it has applied: it owes work while they differ. */
  COMMANDS_QUEUED: 9,
  COMMANDS_TAKEN: 10,
  /** Bytes of the RTP packets (or raw datagrams) this path sent (all incarnations; wraps at 2^32: the metrics widen it). */
  SENT_BYTES: 11,
  /** Sum of the send batches' lateness, µs (early counts as 0; wraps at 2^32). */
  LATENESS_SUM_US: 12,
  /** First of LATENESS_BUCKETS_MS.length + 1 batch counters, one per lateness bucket (the last: above every bound). */
  LATENESS_BUCKET: 13,
  STRIDE: 22, // LATENESS_BUCKET + LATENESS_BUCKETS_MS.length + 1
} as const;

/**
 * Upper bounds (ms) of the pacing-lateness buckets a sending path counts its
 * batches in: how late a batch's most overdue datagram left (0: on time or
 * early, as a batch may send up to one window early). One counter per bucket
 * and one for the rest, in the path's words (PATH_I32.LATENESS_BUCKET).
 */
export const LATENESS_BUCKETS_MS = [0, 0.25, 0.5, 1, 2, 5, 10, 50] as const;

/**
 * Per-session Int32 fields, after the per-path ones. CLAIM: 0, or the tag
 * (incarnation << 1 | path) + 1 of the path sending the datagram at the cursor:
 * taken before the send and dropped with the cursor advance, so a path that
 * takes over waits for a late sender's send instead of repeating it.
 */
export const SESSION_I32 = {
  CLAIM: 0,
  /** Fault bits: see SESSION_FAULT. */
  FAULT: 1,
  STRIDE: 2,
} as const;

/**
 * The per-session FAULT word: one bit per path and kind of
 * I/O, set when that path's last attempt to read (or send) the session failed. A
 * failure the twin shares is the asset's (or the session's), not a path's
 * (src/datapath/error-scope.ts). Cleared when the slot is reset for a new session.
 */
const SESSION_FAULT = {
  /** Bit READ_SHIFT + path: the path's last read of the session's asset failed. */
  READ_SHIFT: 0,
  /** Bit SEND_SHIFT + path: the path's last send for the session failed. */
  SEND_SHIFT: 2,
  /** Bit READ_WAIT_SHIFT + path: the path waits for its read of the session's next datagram (not a fault). */
  READ_WAIT_SHIFT: 4,
} as const;
export type SessionIo = 'read' | 'send';

/** The bit of one path's read wait in a session's FAULT word. */
export function sessionReadWaitBit(path: PathId): number {
  return 1 << (SESSION_FAULT.READ_WAIT_SHIFT + path);
}

/** Session slots of one pair's control block (about 120 bytes each); admission is decided by the configured limits. */
export const MAX_SESSIONS = 2048;

// ── Float64 region ──────────────────────────────────────────────────────────
/** Per-path Float64 fields (shared-clock milliseconds). */
export const PATH_F64 = {
  /** When the path caught its fatal error or began an injected fault. */
  CRITICAL_AT_MS: 0,
  /** When an injected fault began (a hang never reports itself, so it is stamped here). */
  FAULT_AT_MS: 1,
  /** When the path next owes work (its next wake-up for a datagram); +Infinity when nothing is due. */
  NEXT_DUE_MS: 2,
  /** When a command was queued while the path owed none: the due time of the commands it owes. */
  COMMAND_AT_MS: 3,
  STRIDE: 4,
} as const;

/** One segment: a stretch of a session played from one start point at one pace. */
export const SEGMENT_F64 = {
  /** Segment id this slot holds; written last, checked after reading (seqlock). */
  ID: 0,
  /** Cursor value (datagram count since session start) at which the segment begins. */
  START_CURSOR: 1,
  /** First TS packet of the segment. */
  START_PACKET: 2,
  /** Shared-clock time at which the segment's first datagram is due. */
  START_TIME_MS: 3,
  /** RTP timestamp of the segment's first datagram (90 kHz). */
  RTP_TS_BASE: 4,
  /** The packet the segment stops before (a range's end; the packet count for the whole asset). */
  END_PACKET: 5,
  /** Trick play's Scale (2, 4, 8, 16, -2, ... see mpegts/trick.ts); 1: normal play. */
  SCALE: 6,
  STRIDE: 7,
} as const;
/** Two slots per session so the control plane writes one while paths read the other. */
export const SEGMENT_SLOTS = 2;
const SESSION_F64_STRIDE = SEGMENT_F64.STRIDE * SEGMENT_SLOTS;

// ── BigUint64 region: per-session control word ─────────────────────────────
//   bits 0-39 cursor (datagrams sent since session start)
//   bit 40 paused, bit 41 ended
//   bits 48-63 segment id
export const CTRL = {
  CURSOR_MASK: (1n << 40n) - 1n,
  PAUSED: 1n << 40n,
  ENDED: 1n << 41n,
  SEGMENT_SHIFT: 48n,
  SEGMENT_MASK: 0xffffn,
} as const;

export interface Layout {
  readonly maxSessions: number;
  readonly i32Words: number;
  readonly f64Offset: number; // bytes
  readonly f64Words: number;
  readonly u64Offset: number; // bytes
  readonly u64Words: number;
  readonly byteLength: number;
}

export function computeLayout(maxSessions: number = MAX_SESSIONS): Layout {
  const i32Words = I32.GLOBAL_WORDS + PATH_COUNT * PATH_I32.STRIDE + maxSessions * SESSION_I32.STRIDE;
  const f64Offset = align8(i32Words * 4);
  const f64Words = PATH_COUNT * PATH_F64.STRIDE + maxSessions * SESSION_F64_STRIDE;
  const u64Offset = f64Offset + f64Words * 8;
  const u64Words = maxSessions;
  return { maxSessions, i32Words, f64Offset, f64Words, u64Offset, u64Words, byteLength: u64Offset + u64Words * 8 };
}

export function pathI32Index(path: PathId, field: number): number {
  return I32.GLOBAL_WORDS + path * PATH_I32.STRIDE + field;
}

export function sessionI32Index(slot: number, field: number): number {
  return I32.GLOBAL_WORDS + PATH_COUNT * PATH_I32.STRIDE + slot * SESSION_I32.STRIDE + field;
}

/** The bit of one path and kind of I/O in a session's fault word. */
export function sessionFaultBit(path: PathId, io: SessionIo): number {
  return 1 << ((io === 'read' ? SESSION_FAULT.READ_SHIFT : SESSION_FAULT.SEND_SHIFT) + path);
}

export function pathF64Index(path: PathId, field: number): number {
  return path * PATH_F64.STRIDE + field;
}

export function segmentF64Index(slot: number, segmentSlot: number, field: number): number {
  return PATH_COUNT * PATH_F64.STRIDE + slot * SESSION_F64_STRIDE + segmentSlot * SEGMENT_F64.STRIDE + field;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Why a path failed: written by a dying path into its critical word, reported
 * by the supervisor, carried by the engine's 'failover' event and the state
 * machine's critical_failure. The values are what operators and logs see.
 */
export const FailureCause = {
  EXCEPTION: 'exception',
  EXIT: 'exit',
  SOCKET: 'socket',
  DISK: 'disk',
  /** No progress on due work (hung or starved): judged by the supervisor, never self-reported. */
  HEARTBEAT: 'heartbeat',
  TEMPERATURE: 'temperature',
  /** Did not open every session in time when synchronized. */
  SYNC: 'sync',
} as const;
export type FailureCause = (typeof FailureCause)[keyof typeof FailureCause];

/** A cause as the low 8 bits of the critical word (0: none), and back. */
export const FAILURE_CAUSE_CODES: readonly FailureCause[] = [
  FailureCause.EXCEPTION, FailureCause.EXIT, FailureCause.SOCKET, FailureCause.DISK,
  FailureCause.HEARTBEAT, FailureCause.TEMPERATURE, FailureCause.SYNC,
];
export function failureCauseCode(cause: FailureCause): number {
  return FAILURE_CAUSE_CODES.indexOf(cause) + 1;
}
