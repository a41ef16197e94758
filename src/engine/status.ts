// The engine's status: what the control block says about each path and the
// pair, projected for operators (twinframectl status) and tests.

import { ControlBlock } from '../shared/control-block.js';
import { PATH_NAMES, type FailoverState, type FailoverType, type PathName } from '../shared/layout.js';
import type { FailureReport } from '../shared/messages.js';
import { namedState, type NamedState } from '../failover/states.js';
import type { PathHost } from './path-host.js';

export interface PathStatus {
  readonly path: PathName;
  readonly incarnation: number;
  readonly named: NamedState;
  readonly failoverType: FailoverType;
  readonly failoverState: FailoverState;
  /** The path is online (the control block's ONLINE word): it may send or take over sending. */
  readonly online: boolean;
  /** The path sends (owns ACTIVE). */
  readonly active: boolean;
  readonly heartbeat: number;
  /** Datagrams this path has sent, over all its incarnations. */
  readonly sent: number;
  /** Linux thread id of the path's worker, null while none runs. */
  readonly threadId: number | null;
}

/**
 * Emitted as 'failover': a path failed and was taken out of service.
 *
 * Switch latency, everywhere in twinframe, is from detection (the failure
 * claimed) to ACTIVE moved: what the switch itself costs. Detection latency is
 * from the failure (its best estimate) to detection. Their sum is the time
 * from the failure to the twin sending.
 */
export interface FailoverEvent extends FailureReport {
  readonly pathName: PathName;
  readonly switchedToName: PathName | undefined;
  /** Detection to ACTIVE switch, ms (undefined when the failed path was not sending). */
  readonly switchLatencyMs: number | undefined;
}

export interface EngineStatus {
  active: PathName | undefined;
  epoch: number;
  switches: number;
  sigfailover: number;
  paths: PathStatus[];
  heartbeat: { periodUs: number; maxMissed: number };
  handovers: number;
  lastFailover: FailoverEvent | undefined;
  sessions: number;
}

export function failoverEvent(report: FailureReport): FailoverEvent {
  return {
    ...report,
    pathName: PATH_NAMES[report.path],
    switchedToName: report.switchedTo === undefined ? undefined : PATH_NAMES[report.switchedTo],
    switchLatencyMs: report.switchedAtMs === undefined ? undefined : report.switchedAtMs - report.detectedAtMs,
  };
}

export function engineStatus(cb: ControlBlock, hosts: readonly PathHost[], lastFailover: FailoverEvent | undefined, sessions: number): EngineStatus {
  const word = cb.activeWord();
  const owner = ControlBlock.ownerOf(word);
  return {
    active: owner === undefined ? undefined : PATH_NAMES[owner],
    epoch: ControlBlock.epochOf(word),
    switches: cb.switchCount(),
    sigfailover: cb.sigfailover(),
    paths: hosts.map((h) => {
      const v = cb.failoverVariables(h.id);
      return {
        path: h.name, incarnation: h.incarnation, named: namedState(v.type, v.state),
        failoverType: v.type, failoverState: v.state, online: cb.isOnline(h.id), active: owner === h.id, heartbeat: cb.heartbeat(h.id), sent: cb.sentCount(h.id),
        threadId: h.hasWorker ? cb.threadId(h.id) || null : null,
      };
    }),
    heartbeat: cb.heartbeatSettings(),
    handovers: cb.handoverCount(),
    lastFailover,
    sessions,
  };
}
