// The automatic recovery policy, as a table: every per-path state the machine
// uses, beside every partner state, gives the step the engine takes next. The
// walks it produces end online, for every consistent pair.

import test from 'ava';
import { FailoverState as St, FailoverType as T } from '../src/shared/layout.js';
import { MAX_RECOVERY_STEPS, nextRecoveryStep } from '../src/failover/recovery-policy.js';
import { VALID_PATH_STATES, transition, type FailoverPair, type MachineEventKind, type PathFailover } from '../src/failover/state-machine.js';
import { namedState } from '../src/failover/states.js';
import { isConsistentPair } from './helpers/failover-events.js';

const label = (p: PathFailover): string => (p.state === St.FAILED ? `Failed(${p.type})` : namedState(p.type, p.state));

/** Path a's state → the step for a, whatever b is (except where the partner decides: see below). */
const TABLE: ReadonlyArray<[PathFailover, MachineEventKind | undefined]> = [
  [{ type: T.UNDEF, state: St.UNDEF }, 'set_config_type'],
  [{ type: T.UNDEF, state: St.FAILED }, undefined],
  [{ type: T.MASTER, state: St.LIVE }, undefined],
  [{ type: T.MASTER, state: St.NONE }, 'start_streaming'],
  [{ type: T.MASTER, state: St.NOPARTNER }, undefined],
  [{ type: T.MASTER, state: St.FAILED }, undefined],
  [{ type: T.SLAVE, state: St.LIVE }, undefined],
  [{ type: T.SLAVE, state: St.NONE }, 'failover_sync'],
  [{ type: T.SLAVE, state: St.SYNCING }, undefined],
  [{ type: T.SLAVE, state: St.SYNCED }, 'start_streaming'],
  [{ type: T.SLAVE, state: St.NOPARTNER }, undefined],
  [{ type: T.SLAVE, state: St.FAILED }, undefined],
];

test('the table covers every per-path state the machine uses', (t) => {
  t.is(TABLE.length, VALID_PATH_STATES.length);
  for (const v of VALID_PATH_STATES) t.truthy(TABLE.find(([s]) => s.type === v.type && s.state === v.state), label(v));
});

test('every (state, partner state) gives the step of the table', (t) => {
  for (const [mine, expected] of TABLE) {
    for (const partner of VALID_PATH_STATES) {
      const step = nextRecoveryStep({ a: mine, b: partner }, 'a');
      t.is(step?.kind, expected, `${label(mine)} beside ${label(partner)}`);
      if (step) t.is('path' in step ? step.path : undefined, 'a');
      // An unconfigured path takes the role its partner leaves free.
      if (step?.kind === 'set_config_type') t.is(step.type, partner.type === T.MASTER ? 'secondary' : 'primary', label(partner));
    }
  }
});

test('the policy is symmetric in the two paths', (t) => {
  for (const x of VALID_PATH_STATES) {
    for (const y of VALID_PATH_STATES) {
      const forA = nextRecoveryStep({ a: x, b: y }, 'a');
      const forB = nextRecoveryStep({ a: y, b: x }, 'b');
      t.deepEqual(forB, forA && { ...forA, path: 'b' });
    }
  }
});

test('from every consistent pair, applying the steps the machine accepts ends the path online or stopped, within the bound', (t) => {
  for (const x of VALID_PATH_STATES) {
    for (const y of VALID_PATH_STATES) {
      let pair: FailoverPair = { a: x, b: y };
      if (!isConsistentPair(pair)) continue;
      let steps = 0;
      for (let step = nextRecoveryStep(pair, 'a'); step; step = nextRecoveryStep(pair, 'a')) {
        try {
          pair = transition(pair, step).pair;
        } catch {
          break; // refused: the engine stops the walk there and the operator takes over
        }
        if (step.kind === 'failover_sync') pair = transition(pair, { kind: 'sync_complete', path: 'a' }).pair; // begin-sync's outcome
        steps++;
      }
      t.true(steps <= MAX_RECOVERY_STEPS, `${label(x)}/${label(y)}: ${steps} steps`);
    }
  }
});

test('a restarted secondary, and a restarted path beside a lone secondary, are walked back to Primary + Secondary', (t) => {
  const walk = (pair: FailoverPair): FailoverPair => {
    for (let step = nextRecoveryStep(pair, 'a'); step; step = nextRecoveryStep(pair, 'a')) {
      pair = transition(pair, step).pair;
      if (step.kind === 'failover_sync') pair = transition(pair, { kind: 'sync_complete', path: 'a' }).pair;
    }
    return pair;
  };
  const named = (pair: FailoverPair): string => `${label(pair.a)}/${label(pair.b)}`;
  // After the primary failed and was repaired: Secondary_Offline beside Primary_No_Secondary.
  t.is(named(walk({ a: { type: T.SLAVE, state: St.NONE }, b: { type: T.MASTER, state: St.NOPARTNER } })), 'Secondary/Primary');
  // After a double failure: an unconfigured path beside a Secondary_No_Primary.
  t.is(named(walk({ a: { type: T.UNDEF, state: St.UNDEF }, b: { type: T.SLAVE, state: St.NOPARTNER } })), 'Primary/Secondary');
});
