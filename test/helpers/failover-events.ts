// Test-side helpers over the failover state machine: every concrete event, a
// fold of events, and predicates built from the machine's own refusals. The
// engine needs none of these, so they live here rather than in
// src/failover/state-machine.ts.

import { FailureCause, PATH_NAMES, type PathName } from '../../src/shared/layout.js';
import {
  OPERATOR_COMMANDS, pairProblems, transition,
  type FailoverAction, type FailoverPair, type MachineEvent, type MachineEventKind,
} from '../../src/failover/state-machine.js';

const SYSTEM_EVENTS = [
  'sync_complete',
  'sync_failed',
  'critical_failure',
  'heartbeat_missed',
  'repaired',
] as const satisfies readonly MachineEventKind[];

/** Every event kind, commands first. */
export const EVENT_KINDS: readonly MachineEventKind[] = [...OPERATOR_COMMANDS, 'manual_switch', ...SYSTEM_EVENTS];

/** Every concrete event (both paths, every set_config_type argument), to walk the full product. */
export function allEvents(): MachineEvent[] {
  const events: MachineEvent[] = [];
  for (const path of PATH_NAMES) {
    for (const kind of EVENT_KINDS) {
      switch (kind) {
        case 'manual_switch': break;
        case 'set_config_type': for (const type of ['primary', 'secondary', 'undef'] as const) events.push({ kind, path, type }); break;
        case 'critical_failure': events.push({ kind, path, cause: FailureCause.EXCEPTION }); break;
        default: events.push({ kind, path });
      }
    }
  }
  events.push({ kind: 'manual_switch' });
  return events;
}

export function isConsistentPair(pair: FailoverPair): boolean {
  return pairProblems(pair).length === 0;
}

export function canManualSwitch(pair: FailoverPair): boolean {
  if (!isConsistentPair(pair)) return false;
  try {
    transition(pair, { kind: 'manual_switch' });
    return true;
  } catch {
    return false;
  }
}

/**
 * After `repaired` brought a failed path back as Secondary_Offline: the events that
 * return the pair to Primary + Secondary. The sync_complete entry stands for the
 * outcome of the begin-sync action just before it (as in bootstrapPair).
 */
export function rejoinEvents(path: PathName): readonly MachineEvent[] {
  return [
    { kind: 'failover_sync', path },
    { kind: 'sync_complete', path },
    { kind: 'start_streaming', path },
  ];
}

/** Applies events in order; throws at the first refusal. */
export function applyEvents(pair: FailoverPair, events: readonly MachineEvent[]): { pair: FailoverPair; actions: FailoverAction[] } {
  let current = pair;
  const actions: FailoverAction[] = [];
  for (const e of events) {
    const r = transition(current, e);
    current = r.pair;
    actions.push(...r.actions);
  }
  return { pair: current, actions };
}
