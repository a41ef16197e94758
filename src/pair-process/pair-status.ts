// What `twinframectl status` shows of the process pair, in either process.

import type { NamedState } from '../failover/states.js';
import type { TakeoverStep } from '../shared/messages.js';

export type ProcessRole = 'primary' | 'standby';

/**
 * The other process as this one sees it: 'none' (no standby linked, or the
 * standby not linked yet), 'authenticating', 'synchronizing' (snapshot under way),
 * 'linked', 'lost' (the link closed but the process runs), 'dead' (it exited).
 */
export type PeerState = 'none' | 'authenticating' | 'synchronizing' | 'linked' | 'lost' | 'dead';

/** The standby's takeover from a dead primary, or from one that handed over (a role switch). */
export interface TakeoverRecord {
  /** When it happened (ISO 8601). */
  readonly at: string;
  /**
   * What told the standby: the primary's life lock changing hands ('life-lock', its takeover
   * thread), the primary's exit seen by the main thread's watch ('exiting'), or the link's close confirmed by it ('link').
   */
  readonly noticedBy: 'life-lock' | 'exiting' | 'link';
  /** Which thread switched sending: the takeover thread the moment it heard, or the main thread. */
  readonly switchedBy: 'takeover-thread' | 'main-thread';
  /** From that moment to sending switched, ms. */
  readonly switchMs: number;
  /** What the switching step did (sessions moved on, left to the main thread, pairs switched). */
  readonly step: TakeoverStep;
  /** The primary died, or handed sending over (an operator's role switch). */
  readonly cause: 'death' | 'switch';
  /** Sessions taken over. */
  readonly sessions: number;
  /** Pairs of data paths that now send. */
  readonly pairsSending: number;
  /** Where the cursors came from: the primary's control blocks (exact) or the link's last report (up to 10 ms old). */
  readonly cursors: 'shared-memory' | 'link';
}

export interface ProcessPairStatus {
  /** The role this process started in, or took in a role switch (primary: it started as one and never handed over; standby: it followed a primary, and may have taken over since: the state says). */
  readonly role: ProcessRole;
  /** The process pair's failover state, by the patent's names. */
  readonly state: NamedState;
  /** This process's data paths put datagrams on the wire. */
  readonly sending: boolean;
  readonly peer: { readonly state: PeerState; readonly pid: number | null };
  /** The private link's socket path. */
  readonly link: string;
  readonly takeover: TakeoverRecord | null;
}
