import type { TransportKind } from '../shared/commands.js';

/** The first path segment of a broadcast's URL (rtsp://host/broadcast/<name>); the RTSP server routes it to the broadcasts first. */
export const BROADCAST_PATH_SEGMENT = 'broadcast';

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
  /** That session's RTP SSRC (both paths send with it); absent while no session runs: each start of a broadcast draws a new one. */
  readonly ssrc?: number;
}
export interface BroadcastLookup {
  find(name: string): BroadcastStream | undefined;
}
