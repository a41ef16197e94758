// The failover variables of the patent (Fig. 5, [0079]-[0098]) and the nine
// named states they map to. Numeric values are what the shared control block
// stores, so they must stay stable.

export const FailoverType = { UNDEF: 0, MASTER: 1, SLAVE: 2 } as const;
export type FailoverType = (typeof FailoverType)[keyof typeof FailoverType];

export const FailoverState = {
  UNDEF: 0,
  NONE: 1,
  LIVE: 2,
  FAILED: 3,
  SYNCING: 4,
  SYNCED: 5,
  NOPARTNER: 6,
} as const;
export type FailoverState = (typeof FailoverState)[keyof typeof FailoverState];

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
