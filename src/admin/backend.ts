// The contract between the admin server and whatever runs the data paths (the engine):
// one async method per admin command, plus a subscription for `watch` events, and the
// shapes of their results. The admin server validates, dispatches and frames; the
// backend decides. A backend refuses a command by throwing a TwinframeError, whose
// code, message and details travel to the client unchanged; any other exception is
// reported as TF_INTERNAL and logged with its stack.

import type { ProcessPairStatus } from '../pair-process/pair-status.js';
import type { RoleSwitchResult } from '../pair-process/role-switch.js';
import type { PairStates } from '../failover/state-machine.js';
import type { NamedState } from '../failover/states.js';
import type { FailoverState, FailoverType, PathName } from '../shared/layout.js';
import type { ReloadResult } from '../config/reload.js';
import type { BroadcastStatus, BroadcastView } from '../broadcast/manager.js';
import type { AdminCommand, CommandArgs, FaultKind } from './protocol.js';

export type { BroadcastStatus, BroadcastView, ReloadResult };

/** `broadcast remove`'s answer. */
export interface BroadcastRemoved {
  readonly name: string;
  readonly removed: true;
}

/** One data path, as status shows it (the engine's PathStatus, for operators). */
export interface PathView {
  readonly path: PathName;
  readonly namedState: NamedState;
  /** The patent's failover_type variable, by name ('UNDEF' | 'MASTER' | 'SLAVE'). */
  readonly failoverType: keyof typeof FailoverType;
  /** The patent's failover_state variable, by name ('NONE', 'LIVE', 'SYNCED', …). */
  readonly failoverState: keyof typeof FailoverState;
  /** Whether this path's datagrams go on the wire now. */
  readonly sending: boolean;
  /** Worker thread id, null while no worker runs. */
  readonly threadId: number | null;
  /** The path's heartbeat counter (moves while the path is alive). */
  readonly heartbeats: number;
  /** How many times this path was restarted after a failure. */
  readonly restarts: number;
}

export interface HeartbeatSettings {
  readonly periodUs: number;
  readonly maxMissed: number;
  /** From validateFailoverTiming: the longest a hang can go undetected. */
  readonly worstCaseDetectionUs: number;
}

export interface LimitsSettings {
  readonly maxStreams: number;
  readonly mpegBandwidthKbps: number;
  readonly serverBandwidthKbps: number;
}

/** One switch of the sending path of one pair. */
export interface FailoverRecord {
  /** The pair of data paths it happened on. */
  readonly pair: number;
  /** Wall-clock time of the switch, ISO 8601. */
  readonly at: string;
  readonly from: PathName | null;
  readonly to: PathName | null;
  /** What caused it: 'manual', 'missed heartbeats', 'exception: …', 'worker exit 1', … */
  readonly cause: string;
  /** Fault → detection, when the fault's time is known (injected faults, failure words); else null. */
  readonly detectionLatencyUs: number | null;
  /** Detection → ACTIVE switched. */
  readonly switchLatencyUs: number | null;
}

/** One pair of data paths, as status shows it: each pair fails over on its own. */
export interface PairView {
  readonly pair: number;
  readonly paths: { readonly a: PathView; readonly b: PathView };
  /** The pair's sending path, null when none is online. */
  readonly active: PathName | null;
  /** The pair's ACTIVE epoch: incremented by every switch. */
  readonly epoch: number;
  /** Lossless handovers from a late sender to its on-time twin since start (nobody failed). */
  readonly handovers: number;
  /** Paths of this pair failed (and restarted) since start. */
  readonly failovers: number;
  /** The pair's last switch (failover or manual), with its latencies. */
  readonly lastFailover: FailoverRecord | null;
  /** Sessions open on this pair. */
  readonly sessions: number;
}

/**
 * Every pair (`pairs`), and at the top level pair 0's paths, sender, epoch and
 * handovers (the pair the commands without --pair address), the latest switch
 * of any pair, and what the pairs share.
 */
export interface StatusResult {
  readonly paths: { readonly a: PathView; readonly b: PathView };
  /** Pair 0's sending path, null when none is online. */
  readonly active: PathName | null;
  /** Pair 0's ACTIVE epoch: incremented by every switch. */
  readonly epoch: number;
  readonly heartbeat: HeartbeatSettings;
  /** Pair 0's lossless handovers from a late sender to its on-time twin since start (nobody failed). */
  readonly handovers: number;
  /** The latest switch of any pair (it names its pair). */
  readonly lastFailover: FailoverRecord | null;
  /** Sessions currently open, on all pairs (broadcasts' sessions included). */
  readonly sessions: number;
  /** The broadcast table: its rows, and how many of the open sessions carry one. */
  readonly broadcasts: { readonly table: number; readonly sessions: number };
  readonly uptimeSec: number;
  readonly faultInjection: boolean;
  readonly pairs: readonly PairView[];
  /** This process's side of a process pair (a hot-standby process); null or absent: it runs alone. */
  readonly processPair?: ProcessPairStatus | null;
}

/** One session, as twinframectl sessions shows it (the engine's SessionInfo, for operators). */
export interface SessionView {
  readonly id: string;
  /** 'broadcast': it carries a broadcast of the table (`broadcast` names it), no RTSP viewer owns it. */
  readonly kind: 'viewer' | 'broadcast';
  readonly broadcast: string | null;
  /** The pair of data paths that streams it, for its whole life. */
  readonly pair: number;
  readonly asset: string;
  /** Where the datagrams go, e.g. '127.0.0.1:5000'. */
  readonly client: string;
  /** 'RTP/AVP', 'RTP/AVP/TCP' (interleaved on the RTSP connection) or 'MP2T/UDP'. */
  readonly transport: string;
  /** 'failed': a fault of its destination or asset ended it (the RTSP server tears it down). */
  readonly state: 'init' | 'ready' | 'playing' | 'paused' | 'failed';
  readonly startedAt: string;
  readonly positionSec: number;
  readonly datagramsSent: number;
  readonly bitrateKbps: number;
}

export interface AssetInfo {
  readonly name: string;
  readonly sizeBytes: number;
  /** The asset's npt range (covering its last frame); null when it cannot be indexed. */
  readonly durationSec: number | null;
  readonly bitrateKbps: number | null;
  readonly indexed: boolean;
}

/** Result of the five failover commands: the pair's two paths' named states after the command. */
export interface PairStatesResult {
  readonly pair: number;
  readonly states: PairStates;
}

export interface FaultInjectionResult {
  readonly pair: number;
  readonly path: PathName;
  readonly kind: FaultKind;
  /** 'slow-disk': how long each read of the path now waits. */
  readonly delayMs?: number;
  /** Wall-clock time the fault was injected, ISO 8601. */
  readonly at: string;
}

/** What `watch` streams. `at` is an ISO 8601 wall-clock time; `pair` names the pair of data paths an event concerns. */
export type WatchEvent =
  /** A pair's failover_type/failover_state changed (the SIGFAILOVER of [0093]). */
  | { readonly type: 'state'; readonly at: string; readonly pair: number; readonly states: PairStates; readonly cause: string }
  | ({ readonly type: 'failover' } & FailoverRecord)
  | { readonly type: 'handover'; readonly at: string; readonly pair: number; readonly from: PathName; readonly to: PathName; readonly lateMs: number }
  /** `pair`: the pair that streams the session (on 'opened'). */
  | { readonly type: 'session'; readonly at: string; readonly id: string; readonly change: 'opened' | 'playing' | 'paused' | 'closed'; readonly asset?: string; readonly pair?: number; readonly broadcast?: string }
  /** A broadcast of the table changed status (scheduled, playing, stopped, ended, failed…). */
  | { readonly type: 'broadcast'; readonly at: string; readonly name: string; readonly change: BroadcastStatus; readonly detail?: string }
  /** A fault of the session's own ('session': destination, stream address) or of its asset ended it; no path failed. */
  | { readonly type: 'session'; readonly at: string; readonly id: string; readonly change: 'failed'; readonly asset: string; readonly scope: 'session' | 'asset'; readonly reason: string }
  /** An asset found unusable while streaming: refused until its file changes. */
  | { readonly type: 'asset'; readonly at: string; readonly asset: string; readonly change: 'unavailable'; readonly reason: string }
  | { readonly type: 'config'; readonly at: string; readonly changed: readonly string[] }
  | { readonly type: 'path'; readonly at: string; readonly pair: number; readonly path: PathName; readonly change: 'started' | 'exited' | 'restarted' | 'fault-injected'; readonly detail?: string };

export type WatchListener = (event: WatchEvent) => void;

export interface AdminBackend {
  status(): Promise<StatusResult>;
  sessions(): Promise<SessionView[]>;
  assets(): Promise<AssetInfo[]>;
  /** TF_FAILOVER_ILLEGAL_COMMAND when the state machine refuses. */
  setConfigType(args: CommandArgs<'set_config_type'>): Promise<PairStatesResult>;
  startStreaming(args: CommandArgs<'start_streaming'>): Promise<PairStatesResult>;
  stopStreaming(args: CommandArgs<'stop_streaming'>): Promise<PairStatesResult>;
  /**
   * Resolves once synchronization has an outcome: Secondary_Synchronized, or
   * Secondary_Offline when it failed (the states tell which), so a script can go on.
   */
  failoverSync(args: CommandArgs<'failover_sync'>): Promise<PairStatesResult>;
  failoverUnsync(args: CommandArgs<'failover_unsync'>): Promise<PairStatesResult>;
  /** No arguments: read. Otherwise apply (TF_HEARTBEAT_TOO_SLOW / TF_CONFIG_INVALID via validateFailoverTiming) and persist. */
  heartbeat(args: CommandArgs<'heartbeat'>): Promise<HeartbeatSettings>;
  /** No arguments: read. Otherwise apply and persist (TF_CONFIG_INVALID if the result is invalid). */
  limits(args: CommandArgs<'limits'>): Promise<LimitsSettings>;
  /** Manual switch of a pair; TF_FAILOVER_NO_STANDBY unless one of its paths is Primary and the other Secondary. */
  failover(args: CommandArgs<'failover'>): Promise<FailoverRecord>;
  /** The process pair's role switch; TF_PAIR_SWITCH when this process has no pair, or no synchronized peer to switch with. */
  pairSwitch(): Promise<RoleSwitchResult>;
  /** Re-read the configuration; TF_CONFIG_INVALID (field by field in details.issues) changes nothing. */
  reload(): Promise<ReloadResult>;
  /** TF_FAULT_INJECTION_DISABLED unless the configuration enables it. */
  injectFault(args: CommandArgs<'inject_fault'>): Promise<FaultInjectionResult>;
  /** The broadcast table (src/broadcast/table.ts): each edit checked, persisted, applied live. */
  broadcastAdd(args: CommandArgs<'broadcast_add'>): Promise<BroadcastView>;
  broadcastList(): Promise<BroadcastView[]>;
  /** TF_BROADCAST_NOT_FOUND when the table has no such broadcast (for remove, start, stop). */
  broadcastRemove(args: CommandArgs<'broadcast_remove'>): Promise<BroadcastRemoved>;
  broadcastStart(args: CommandArgs<'broadcast_start'>): Promise<BroadcastView>;
  broadcastStop(args: CommandArgs<'broadcast_stop'>): Promise<BroadcastView>;
  /**
   * Registers a listener for watch events; returns the function that removes it. The
   * listener must be called outside any lock: it writes to a socket (and never throws).
   */
  subscribe(listener: WatchListener): () => void;
}

/** The result each command's reply carries. */
export interface CommandResults {
  status: StatusResult;
  sessions: SessionView[];
  assets: AssetInfo[];
  set_config_type: PairStatesResult;
  start_streaming: PairStatesResult;
  stop_streaming: PairStatesResult;
  failover_sync: PairStatesResult;
  failover_unsync: PairStatesResult;
  heartbeat: HeartbeatSettings;
  limits: LimitsSettings;
  failover: FailoverRecord;
  pair_switch: RoleSwitchResult;
  watch: { watching: true };
  inject_fault: FaultInjectionResult;
  reload: ReloadResult;
  broadcast_add: BroadcastView;
  broadcast_list: BroadcastView[];
  broadcast_remove: BroadcastRemoved;
  broadcast_start: BroadcastView;
  broadcast_stop: BroadcastView;
}

// Compile-time check that every wire command has a result type and no more.
type _EveryCommandHasAResult = [AdminCommand] extends [keyof CommandResults] ? ([keyof CommandResults] extends [AdminCommand] ? true : never) : never;
export const everyCommandHasAResult: _EveryCommandHasAResult = true;
