// Every message that crosses the private link between the two processes of a
// process pair, one declared type each, and the shared secret's proofs. The
// messages are JSON, one per line: the link code sees only a byte stream, so a
// TCP link between two hosts is a transport change.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StreamLimits } from '../engine/session-table.js';
import type { ReplicaCursor, ReplicationEvent } from '../engine/replica.js';
import type { RtspSessionRecord } from '../rtsp/session.js';
import type { BroadcastConfig } from '../config/schema.js';
import type { LockSpace } from '../shared/wire.js';

/** Bumped when a message changes meaning: both processes must speak the same. */
export const LINK_PROTOCOL = 4;

/**
 * The synchronized parameters (patent [0083]) the standby takes from its primary.
 * Limits and heartbeat apply live; the others must match the standby's own
 * configuration (they shape its sockets and threads), and a mismatch is logged.
 */
export interface SynchronizedParameters {
  readonly heartbeatPeriodUs: number;
  readonly maxMissedHeartbeats: number;
  readonly batchWindowUs: number;
  readonly limits: StreamLimits;
  readonly serverPortRange: { readonly first: number; readonly last: number };
  /** The primary's half of the wire lock's tags: the standby takes the other (src/shared/wire.ts). */
  readonly lockSpace: LockSpace;
  /** The system time (wall clock) of the primary when it sent these, for the log: the processes share the monotonic clock. */
  readonly wallClockMs: number;
}

/** Primary → standby, first: prove the secret on this nonce. */
export interface ChallengeMessage { readonly type: 'challenge'; readonly protocol: number; readonly nonce: string; readonly pid: number }
/** Standby → primary: the proof, and the standby's own nonce for the primary to prove. */
export interface HelloMessage { readonly type: 'hello'; readonly protocol: number; readonly proof: string; readonly nonce: string; readonly pid: number }
/** Primary → standby: the primary's proof; the link is authenticated both ways. */
export interface WelcomeMessage { readonly type: 'welcome'; readonly proof: string }
/** Either way: why the link is closed (bad proof, protocol, a second standby). */
export interface RefusedMessage { readonly type: 'refused'; readonly reason: string }
/** Where the primary's control blocks are mapped (src/pair-process/shared-blocks.ts), by pair. */
export interface SharedBlocksInfo { readonly files: readonly string[]; readonly maxSessions: number }
/** lifeLock: the region of the life lock the primary's main thread holds (native-life-lock.ts), for the standby's takeover thread. */
export interface ParamsMessage { readonly type: 'params'; readonly params: SynchronizedParameters; readonly controlBlocks: SharedBlocksInfo; readonly lifeLock: string }
/** One step of the session command stream (patent [0087]). */
export interface StepMessage { readonly type: 'step'; readonly step: ReplicationEvent }
/** A UDP session's RTSP state (its SETUP, PLAY, PAUSE, end of asset): the standby's RTSP server answers for it after a takeover (rtsp-sessions.ts). */
export interface RtspSessionMessage { readonly type: 'rtsp-session'; readonly session: RtspSessionRecord }
/**
 * On the descriptor channel beside the link (rtsp-handoff.ts), primary → standby:
 * the RTSP listening socket, an accepted RTSP connection (each with its descriptor
 * attached), or that connection's end (the standby closes its copy).
 */
export type HandoffMessage =
  | { readonly kind: 'listener' }
  | { readonly kind: 'connection'; readonly id: number }
  | { readonly kind: 'closed'; readonly id: number };
/**
 * Primary → standby, after a role switch handed sending over: the primary
 * answers no RTSP request any more. The standby serves the held connections
 * listed, each starting with `pending` (base64: what the primary had received
 * on it and not answered), and closes the others (they were closing).
 */
export interface RtspReleaseMessage { readonly type: 'rtsp-release'; readonly connections: ReadonlyArray<{ readonly id: number; readonly pending: string }> }
/** Primary → standby: the broadcast table as the primary runs it, when the standby joins and after each change (broadcast-table.ts). */
export interface BroadcastTableMessage { readonly type: 'broadcast-table'; readonly table: readonly BroadcastConfig[] }
/** The snapshot of the sessions open when the standby joined is complete: what follows is live. */
export interface SyncedMessage { readonly type: 'synced' }
/** Where every session stands on the primary (every CURSOR_PERIOD_MS while any plays). */
export interface CursorsMessage { readonly type: 'cursors'; readonly cursors: readonly ReplicaCursor[] }

/** Standby → primary: an operator asked the standby for a role switch; the primary hands sending over (role-switch.ts). */
export interface SwitchRequestMessage { readonly type: 'switch-request' }
/** Standby → primary: it follows every session and its takeover thread waits on the life lock: a handover now loses no time. */
export interface ArmedMessage { readonly type: 'armed' }

export type LinkMessage =
  | ChallengeMessage | HelloMessage | WelcomeMessage | RefusedMessage
  | ParamsMessage | StepMessage | RtspSessionMessage | RtspReleaseMessage | BroadcastTableMessage | SyncedMessage | CursorsMessage | SwitchRequestMessage | ArmedMessage;

/** How often the primary tells the standby where its sessions stand. */
export const CURSOR_PERIOD_MS = 10;
/** How long each side waits for the other's next handshake message. */
export const HANDSHAKE_TIMEOUT_MS = 3000;

export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

/** What `role` sends to prove it holds the secret, on the other side's nonce. */
export function proofOf(secret: string, role: 'primary' | 'standby', nonce: string): string {
  return createHmac('sha256', secret).update(`twinframe-pair ${LINK_PROTOCOL} ${role} ${nonce}`).digest('hex');
}

/** Compared in constant time. */
export function proofHolds(secret: string, role: 'primary' | 'standby', nonce: string, proof: unknown): boolean {
  if (typeof proof !== 'string') return false;
  const expected = Buffer.from(proofOf(secret, role, nonce), 'hex');
  const given = Buffer.from(proof, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
