// The commands the control plane sends to a data path, on the path's SAB ring
// (command-queue.ts). What a data path reports back goes by postMessage, since
// the control plane is never on the hot path: ./messages.ts.

import { isIPv4 } from 'node:net';
import type { AssetIdentity } from './asset-file.js';
import type { LoopPlan } from '../mpegts/loop.js';

export type TransportKind = 'rtp' | 'udp';

/** The faults that fail the path they are injected into (each with its failure cause). */
export const FailureFaultKinds = ['crash', 'exception', 'hang', 'socket', 'disk', 'temperature'] as const;
export type FailureFaultKind = (typeof FailureFaultKinds)[number];
/**
 * Every fault an operator can inject: the failures, and 'slow-disk', no failure
 * by itself: every later read of that path's reader thread first waits a given
 * time; only a read that then misses its deadline, while the twin holds the
 * datagram ready, moves sending to the twin (a handover).
 */
export const FaultKinds = [...FailureFaultKinds, 'slow-disk'] as const;
export type FaultKind = (typeof FaultKinds)[number];
/** How long each read of a path waits after a 'slow-disk' fault that names no delay. */
export const SLOW_DISK_DEFAULT_MS = 200;
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
  /**
   * RTP on the viewer's RTSP connection instead of UDP (destination and source
   * are then unused): the frames go into the connection's wire, which arrives by
   * message (WireMessage), and out on `fd`.
   */
  readonly interleaved?: InterleavedOutput;
  /** The destination is a multicast group (a broadcast): how far it goes and which interface it leaves by. */
  readonly multicast?: MulticastOutput;
  /** A looping broadcast: it plays on past the asset's end, pass after pass (src/mpegts/loop.ts). */
  readonly loop?: LoopPlan;
}

export interface MulticastOutput {
  /** IP_MULTICAST_TTL, 0..255. */
  readonly ttl: number;
  /** The address of the interface the group is sent on; absent: the routing table's choice. */
  readonly interface?: string;
}

/** Whether an address is an IPv4 multicast group (224.0.0.0/4). */
export function isMulticastGroup(address: string): boolean {
  if (!isIPv4(address)) return false;
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}

export interface InterleavedOutput {
  /** The engine's own descriptor of the RTSP connection's socket, open until both paths closed the session. */
  readonly fd: number;
  /** The interleaved channel of RTP. */
  readonly channel: number;
  /** A viewer whose stream falls this far behind its schedule (it reads too slowly) is ended. */
  readonly backlogMs: number;
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
  /** 'slow-disk' only: how long each read waits (default SLOW_DISK_DEFAULT_MS). */
  readonly delayMs?: number;
}

export type PathCommand = OpenSessionCommand | CloseSessionCommand | SyncMarkerCommand | InjectFaultCommand;
