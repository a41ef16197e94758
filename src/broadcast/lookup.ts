import type { TransportKind } from '../shared/commands.js';

/** The first path segment of a broadcast's URL (rtsp://host/broadcast/<name>); the RTSP server routes it to the broadcasts first. */
export const BROADCAST_PATH_SEGMENT = 'broadcast';

/**
 * 'scheduled': its start time is ahead. 'starting': being opened. 'preparing':
 * being opened, its asset read first for its loop plan (once per file). 'playing': its
 * engine session runs. 'stopped': kept in the table, not sent. 'ended': played
 * to its end (no loop). 'failed': it could not start, or a fault ended it.
 */
export type BroadcastStatus = 'scheduled' | 'starting' | 'preparing' | 'playing' | 'stopped' | 'ended' | 'failed';

/** A broadcast as the RTSP server sees it (rtsp://host/broadcast/<name>). */
export interface BroadcastStream {
  readonly name: string;
  /** The asset's URL path, as a viewer would DESCRIBE it (its media: duration, bitrate, SDP). */
  readonly assetName: string;
  /** The group (multicast) or the one receiver (unicast push), RTP port even; RTCP port + 1. */
  readonly destination: { readonly address: string; readonly port: number };
  readonly ttl: number;
  readonly transport: TransportKind;
  /** The engine session carrying it while it runs; undefined while scheduled or stopped. */
  readonly sessionId: string | undefined;
  readonly status: BroadcastStatus;
  /** When it starts (scheduled) or is tried again (failed), ms since the epoch; absent when nothing is due. */
  readonly nextAtMs?: number;
  /** That session's RTP SSRC (both paths send with it); absent while no session runs: each start of a broadcast draws a new one. */
  readonly ssrc?: number;
}
export interface BroadcastLookup {
  find(name: string): BroadcastStream | undefined;
}
