// The engine's status: what each pair's control block says about its paths and
// the pair, projected for operators (twinframectl status) and tests.

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
  /** The pair whose path failed; its other pairs are untouched. */
  readonly pair: number;
  readonly pathName: PathName;
  readonly switchedToName: PathName | undefined;
  /** Detection to ACTIVE switch, ms (undefined when the failed path was not sending). */
  readonly switchLatencyMs: number | undefined;
}

/** One pair of data paths: its own control block, failover state and counters. */
export interface PairStatus {
  pair: number;
  active: PathName | undefined;
  epoch: number;
  /** Switches of ACTIVE on this pair (failovers, manual switches, handovers). */
  switches: number;
  sigfailover: number;
  paths: PathStatus[];
  handovers: number;
  /** Paths of this pair failed (claimed, taken out of service) since start. */
  failovers: number;
  /** This pair's last failover. */
  lastFailover: FailoverEvent | undefined;
  /** Sessions open on this pair. */
  sessions: number;
}

/**
 * Every pair (`pairs`), the settings they share, and the sessions of all of
 * them. The other top-level fields are pair 0's, the pair every single-pair
 * tool and the operator commands without a pair selector address.
 */
export interface EngineStatus extends Omit<PairStatus, 'pair' | 'sessions'> {
  heartbeat: { periodUs: number; maxMissed: number };
  /** Sessions open on all pairs. */
  sessions: number;
  pairs: PairStatus[];
}

export function failoverEvent(pair: number, report: FailureReport): FailoverEvent {
  return {
    ...report,
    pair,
    pathName: PATH_NAMES[report.path],
    switchedToName: report.switchedTo === undefined ? undefined : PATH_NAMES[report.switchedTo],
    switchLatencyMs: report.switchedAtMs === undefined ? undefined : report.switchedAtMs - report.detectedAtMs,
  };
}

export function pairStatus(
  pair: number, cb: ControlBlock, hosts: readonly PathHost[], failures: { count: number; last: FailoverEvent | undefined }, sessions: number,
): PairStatus {
  const word = cb.activeWord();
  const owner = ControlBlock.ownerOf(word);
  return {
    pair,
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
    handovers: cb.handoverCount(),
    failovers: failures.count,
    lastFailover: failures.last,
    sessions,
  };
}

/** The engine's status from its pairs' (at least one); the pairs share their heartbeat settings. */
export function engineStatus(pairs: readonly PairStatus[], heartbeat: { periodUs: number; maxMissed: number }): EngineStatus {
  const { pair: _pair, sessions: _sessions, ...first } = pairs[0];
  return { ...first, heartbeat, sessions: pairs.reduce((sum, p) => sum + p.sessions, 0), pairs: [...pairs] };
}
