// The commands the control plane sends to a data path, and the events a data
// path reports back. Commands travel on the path's SAB ring (command-queue.ts);
// events go by postMessage, since the control plane is never on the hot path.

import type { AssetIdentity } from './asset-file.js';
import type { PathId } from './layout.js';

export type TransportKind = 'rtp' | 'udp';

export const FaultKinds = ['crash', 'exception', 'hang', 'socket', 'disk', 'temperature'] as const;
export type FaultKind = (typeof FaultKinds)[number];
/**
 * What the engine can inject: the failures above, and 'stall', which is not a
 * failure: the path stops for a few ms between a send and its cursor advance,
 * as a descheduled sender would (the test of a lossless handover).
 */
export type InjectableFault = FaultKind | 'stall';

export interface OpenSessionCommand {
  readonly type: 'open-session';
  readonly slot: number;
  readonly sessionId: string;
  readonly assetPath: string;
  readonly indexPath: string;
  readonly packetCount: number;
  /** Byte offset of the packet-time table in the index file. */
  readonly timesOffset: number;
  /** The file the catalog approved: the path opens `assetPath` and refuses any other inode. */
  readonly assetIdentity: AssetIdentity;
  readonly transport: TransportKind;
  readonly destination: { readonly address: string; readonly port: number };
  readonly source: { readonly address: string; readonly port: number };
  readonly ssrc: number;
  readonly initialSeq: number;
}

export interface CloseSessionCommand {
  readonly type: 'close-session';
  readonly slot: number;
}

/** Sent after the commands that (re)build a path's session table: the path reports 'synced' once every session is open. */
export interface SyncMarkerCommand {
  readonly type: 'sync-marker';
  readonly token: number;
}

export interface InjectFaultCommand {
  readonly type: 'inject-fault';
  readonly kind: InjectableFault;
}

export type PathCommand = OpenSessionCommand | CloseSessionCommand | SyncMarkerCommand | InjectFaultCommand;

/**
 * A session this path stops serving through no fault of its own: its destination
 * or stream address ('session') or its asset's file ('asset') is unusable
 * (src/datapath/error-scope.ts). The control plane ends the session, or every
 * session of the asset; the path stays healthy.
 */
export interface SessionFaultEvent {
  readonly type: 'session-fault';
  readonly slot: number;
  readonly sessionId: string;
  readonly scope: 'session' | 'asset';
  readonly reason: string;
}

export type PathEvent =
  | { readonly type: 'booted'; readonly path: PathId; readonly incarnation: number; readonly policy: string; readonly priorityError: string | undefined }
  | { readonly type: 'session-ready'; readonly slot: number; readonly sessionId: string }
  | { readonly type: 'session-closed'; readonly slot: number }
  | { readonly type: 'session-ended'; readonly slot: number; readonly sessionId: string }
  | { readonly type: 'synced'; readonly token: number }
  /** This path (`to`), on time, found `from` late on due work and took sending over. */
  | { readonly type: 'handover'; readonly from: PathId; readonly to: PathId; readonly lateMs: number; readonly atMs: number }
  /** A destination error reported while the stream goes on (ICMP unreachable and the like). */
  | { readonly type: 'session-error'; readonly slot: number; readonly sessionId: string; readonly message: string }
  | SessionFaultEvent;

/** What the data path worker receives as workerData. */
export interface DataPathWorkerData {
  readonly path: PathId;
  readonly incarnation: number;
  readonly controlBlock: SharedArrayBuffer;
  readonly maxSessions: number;
  readonly commandQueue: SharedArrayBuffer;
  readonly faultInjection: boolean;
}
