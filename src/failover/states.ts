// The nine named states of the patent (Fig. 5, [0079]-[0098]) and how the two
// failover variables map to them. The variables themselves (FailoverType,
// FailoverState) are numbers the shared control block stores: src/shared/layout.ts.

import { FailoverState, FailoverType } from '../shared/layout.js';

export const NamedState = {
  Undefined: 'Undefined',
  Primary: 'Primary',
  Primary_Offline: 'Primary_Offline',
  Primary_No_Secondary: 'Primary_No_Secondary',
  Failed: 'Failed',
  Secondary: 'Secondary',
  Secondary_Offline: 'Secondary_Offline',
  Secondary_Synchronizing: 'Secondary_Synchronizing',
  Secondary_Synchronized: 'Secondary_Synchronized',
  Secondary_No_Primary: 'Secondary_No_Primary',
} as const;
export type NamedState = (typeof NamedState)[keyof typeof NamedState];

const typeNames = Object.fromEntries(Object.entries(FailoverType).map(([k, v]) => [v, k])) as Record<FailoverType, keyof typeof FailoverType>;
const stateNames = Object.fromEntries(Object.entries(FailoverState).map(([k, v]) => [v, k])) as Record<FailoverState, keyof typeof FailoverState>;

export function failoverTypeName(type: FailoverType): keyof typeof FailoverType {
  return typeNames[type];
}

export function failoverStateName(state: FailoverState): keyof typeof FailoverState {
  return stateNames[state];
}

/** The DESIGN.md table: (failover_type, failover_state) → named state. */
export function namedState(type: FailoverType, state: FailoverState): NamedState {
  if (type === FailoverType.MASTER) {
    switch (state) {
      case FailoverState.LIVE: return NamedState.Primary;
      case FailoverState.NONE: return NamedState.Primary_Offline;
      case FailoverState.NOPARTNER: return NamedState.Primary_No_Secondary;
      case FailoverState.FAILED: return NamedState.Failed;
      default: return NamedState.Undefined;
    }
  }
  if (type === FailoverType.SLAVE) {
    switch (state) {
      case FailoverState.LIVE: return NamedState.Secondary;
      case FailoverState.NONE: return NamedState.Secondary_Offline;
      case FailoverState.SYNCING: return NamedState.Secondary_Synchronizing;
      case FailoverState.SYNCED: return NamedState.Secondary_Synchronized;
      case FailoverState.NOPARTNER: return NamedState.Secondary_No_Primary;
      case FailoverState.FAILED: return NamedState.Failed;
      default: return NamedState.Undefined;
    }
  }
  return state === FailoverState.FAILED ? NamedState.Failed : NamedState.Undefined;
}
