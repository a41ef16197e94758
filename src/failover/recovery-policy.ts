// Automatic recovery (the engine's autoFailover mode) as a pure decision: given
// the pair, which operator step brings `path` one step closer to online? The
// engine applies the step, then asks again, until there is none. A failed path
// is left alone (its restart is under way), as is one synchronizing (its
// begin-sync reports its own outcome) or already online.

import { FailoverState, FailoverType, partnerOf, type PathName } from '../shared/layout.js';
import type { FailoverPair, MachineEvent } from './state-machine.js';

/** A bound on the engine's step loop: the longest walk from an offline state to online is 3 steps (Undefined: set type, sync, start); 6 leaves a margin. */
export const MAX_RECOVERY_STEPS = 6;

export function nextRecoveryStep(pair: FailoverPair, path: PathName): MachineEvent | undefined {
  const partner = pair[partnerOf(path)];
  const { type, state } = pair[path];
  if (state === FailoverState.FAILED) return undefined;
  if (type === FailoverType.UNDEF) {
    // Take the role the partner leaves free.
    return { kind: 'set_config_type', path, type: partner.type === FailoverType.MASTER ? 'secondary' : 'primary' };
  }
  if (state === FailoverState.NONE && type === FailoverType.SLAVE) return { kind: 'failover_sync', path };
  if (state === FailoverState.NONE || state === FailoverState.SYNCED) return { kind: 'start_streaming', path };
  return undefined;
}
