// Checks the failover state machine against a specification table written from the
// patent (Fig. 5, [0079]-[0098]) over every consistent (target state × partner state ×
// event) combination, plus the patent's walk-through and the safety invariants.

import test from 'ava';
import { isTwinframeError } from '../src/errors.js';
import { FailoverState, FailoverType, FailureCause, PATH_NAMES, partnerOf, type PathName } from '../src/shared/layout.js';
import {
  OPERATOR_COMMANDS,
  VALID_PATH_STATES,
  allowedCommands,
  bootstrapPair,
  describePair,
  initialPair,
  senderOf,
  transition,
  type FailoverAction,
  type FailoverPair,
  type MachineEvent,
  type PathFailover,
} from '../src/failover/state-machine.js';
import { EVENT_KINDS, allEvents, applyEvents, canManualSwitch, isConsistentPair, rejoinEvents } from './helpers/failover-events.js';

// --- labels for the twelve per-path states ---------------------------------------------

const T = FailoverType;
const St = FailoverState;
const LABELS = {
  U: { type: T.UNDEF, state: St.UNDEF },
  FU: { type: T.UNDEF, state: St.FAILED },
  P: { type: T.MASTER, state: St.LIVE },
  PO: { type: T.MASTER, state: St.NONE },
  PNS: { type: T.MASTER, state: St.NOPARTNER },
  FP: { type: T.MASTER, state: St.FAILED },
  S: { type: T.SLAVE, state: St.LIVE },
  SO: { type: T.SLAVE, state: St.NONE },
  SSing: { type: T.SLAVE, state: St.SYNCING },
  SSed: { type: T.SLAVE, state: St.SYNCED },
  SNP: { type: T.SLAVE, state: St.NOPARTNER },
  FS: { type: T.SLAVE, state: St.FAILED },
} as const satisfies Record<string, PathFailover>;
type Label = keyof typeof LABELS;
const ALL_LABELS = Object.keys(LABELS) as Label[];

function labelOf(p: PathFailover): Label {
  const found = ALL_LABELS.find((l) => LABELS[l].type === p.type && LABELS[l].state === p.state);
  if (found === undefined) throw new Error(`no label for ${JSON.stringify(p)}`);
  return found;
}

function pairOf(path: PathName, mine: Label, partner: Label): FailoverPair {
  return path === 'a' ? { a: LABELS[mine], b: LABELS[partner] } : { a: LABELS[partner], b: LABELS[mine] };
}

// --- the specification, independent of the implementation -------------------------------

const ONLINE: Label[] = ['P', 'PNS', 'S', 'SNP'];
const PRIMARY_ROLE: Label[] = ['P', 'PO', 'PNS'];
const SECONDARY_ROLE: Label[] = ['S', 'SO', 'SSing', 'SSed', 'SNP'];
const FAILED: Label[] = ['FU', 'FP', 'FS'];

/** Which pairs the machine can ever produce (written from the patent, not from the code). */
function specConsistent(x: Label, y: Label): boolean {
  const one = (l: Label, m: Label): boolean => {
    if (l === 'P' && m !== 'S') return false; // Primary means "a partner exists and is online" [0067]
    if (l === 'S' && m !== 'P') return false;
    if ((l === 'PNS' || l === 'SNP') && ONLINE.includes(m)) return false; // NOPARTNER: no partner online
    return true;
  };
  if (!one(x, y) || !one(y, x)) return false;
  if (PRIMARY_ROLE.includes(x) && PRIMARY_ROLE.includes(y)) return false; // one primary per pair
  if (SECONDARY_ROLE.includes(x) && SECONDARY_ROLE.includes(y)) return false;
  return true;
}

type Outcome =
  | { readonly to: readonly [Label | '=', Label | '=']; readonly actions: readonly string[] }
  | { readonly error: 'TF_FAILOVER_ILLEGAL_COMMAND' | 'TF_FAILOVER_NO_STANDBY' };
type Match = readonly Label[] | '*';
type Row = readonly [target: Match, partner: Match, outcome: Outcome];

const ILLEGAL: Outcome = { error: 'TF_FAILOVER_ILLEGAL_COMMAND' };
const go = (target: Label | '=', partner: Label | '=', ...actions: string[]): Outcome => ({ to: [target, partner], actions });
const CONFIGURABLE: Label[] = ['U', 'PO', 'SO'];

// Action notation: p = the event's path, q = its partner.
//   'sync p' begin-sync · 'start p' start-path without mirror · 'start p<-q' start-path mirroring q
//   'switch q>p' switch-active from q to p · 'switch >p' from nobody · 'switch p>' to nobody
//   'stop p' stop-path · 'restart p' restart-path
const FAILURE_ROWS: readonly Row[] = [
  [FAILED, '*', go('=', '=')], // a second detector reporting the same failure
  [['P'], ['S'], go('FP', 'PNS', 'switch p>q', 'restart p')], // [0094]-[0097]: the secondary takes over
  [['S'], ['P'], go('FS', 'PNS', 'restart p')],
  [['PNS'], '*', go('FP', '=', 'switch p>', 'restart p')],
  [['SNP'], '*', go('FS', '=', 'switch p>', 'restart p')],
  [['U'], '*', go('FU', '=', 'restart p')],
  [['PO'], '*', go('FP', '=', 'restart p')],
  [['SO', 'SSing', 'SSed'], '*', go('FS', '=', 'restart p')],
];

const SPEC: Record<string, readonly Row[]> = {
  'set_config_type primary': [
    [CONFIGURABLE, PRIMARY_ROLE, ILLEGAL], // never two primaries
    [CONFIGURABLE, '*', go('PO', '=')], // [0079]
    ['*', '*', ILLEGAL],
  ],
  'set_config_type secondary': [
    [CONFIGURABLE, SECONDARY_ROLE, ILLEGAL],
    [CONFIGURABLE, '*', go('SO', '=')], // [0081]
    ['*', '*', ILLEGAL],
  ],
  'set_config_type undef': [
    [CONFIGURABLE, '*', go('U', '=')],
    ['*', '*', ILLEGAL],
  ],
  start_streaming: [
    [['PO'], ['SNP'], go('P', 'S', 'start p<-q', 'switch q>p')], // [0088]
    [['PO'], '*', go('PNS', '=', 'start p', 'switch >p')], // [0080]
    [['SSed'], ['PNS'], go('S', 'P', 'start p<-q')], // [0086]
    [['SSed'], '*', go('SNP', '=', 'start p', 'switch >p')], // [0086], [0089]
    ['*', '*', ILLEGAL],
  ],
  stop_streaming: [
    [['P'], ['S'], go('PO', 'SNP', 'switch p>q', 'stop p')], // [0088]
    [['PNS'], '*', go('PO', '=', 'switch p>', 'stop p')],
    [['S'], ['P'], go('SSed', 'PNS', 'stop p')], // [0088]
    [['SNP'], '*', go('SSed', '=', 'switch p>', 'stop p')],
    ['*', '*', ILLEGAL],
  ],
  failover_sync: [
    [['SO'], '*', go('SSing', '=', 'sync p')], // [0082]
    ['*', '*', ILLEGAL],
  ],
  failover_unsync: [
    [['SSed'], '*', go('SO', '=')], // [0085]
    ['*', '*', ILLEGAL],
  ],
  sync_complete: [
    [['SSing'], '*', go('SSed', '=')], // [0082]
    ['*', '*', ILLEGAL],
  ],
  sync_failed: [
    [['SSing'], '*', go('SO', '=')], // [0082]
    ['*', '*', ILLEGAL],
  ],
  critical_failure: FAILURE_ROWS,
  heartbeat_missed: FAILURE_ROWS,
  repaired: [
    [['FU'], '*', go('U', '=')],
    [['FP', 'FS'], ['P', 'PO', 'PNS', 'FP'], go('SO', '=')], // partner is (or was) primary: rejoin as secondary
    [['FP', 'FS'], ['S', 'SO', 'SSing', 'SSed', 'SNP', 'FS'], go('PO', '=')],
    [['FP'], ['U', 'FU'], go('PO', '=')],
    [['FS'], ['U', 'FU'], go('SO', '=')],
    ['*', '*', ILLEGAL],
  ],
};

function specFor(event: MachineEvent, mine: Label, partner: Label): Outcome {
  const key = event.kind === 'set_config_type' ? `set_config_type ${event.type}` : event.kind;
  const rows = SPEC[key];
  if (rows === undefined) throw new Error(`no specification rows for ${key}`);
  const matches = (m: Match, l: Label): boolean => m === '*' || m.includes(l);
  const row = rows.find(([t, p]) => matches(t, mine) && matches(p, partner));
  if (row === undefined) throw new Error(`no specification row for ${key} on ${mine} with partner ${partner}`);
  return row[2];
}

function decodeAction(spec: string, p: PathName): FailoverAction {
  const q = partnerOf(p);
  const name = (s: string): PathName | null => (s === '' ? null : s === 'p' ? p : s === 'q' ? q : (() => { throw new Error(s); })());
  const [verb, arg = ''] = spec.split(' ') as [string, string?];
  switch (verb) {
    case 'sync': return { kind: 'begin-sync', path: name(arg)! };
    case 'stop': return { kind: 'stop-path', path: name(arg)! };
    case 'restart': return { kind: 'restart-path', path: name(arg)!, cause: FailureCause.EXCEPTION };
    case 'start': {
      const [who, from = ''] = arg.split('<-') as [string, string?];
      return { kind: 'start-path', path: name(who)!, mirrorFrom: name(from) };
    }
    case 'switch': {
      const [from = '', to = ''] = arg.split('>') as [string, string?];
      return { kind: 'switch-active', from: name(from), to: name(to) };
    }
    default: throw new Error(`bad action spec ${spec}`);
  }
}

/** Actions with one failure cause (the spec's), for comparison with the spec. */
function normalize(actions: readonly FailoverAction[]): FailoverAction[] {
  return actions.map((a) => (a.kind === 'restart-path' ? { ...a, cause: FailureCause.EXCEPTION } : a));
}

// --- the pairs under test ----------------------------------------------------------------

const CONSISTENT_LABEL_PAIRS: Array<[Label, Label]> = [];
for (const x of ALL_LABELS) for (const y of ALL_LABELS) if (specConsistent(x, y)) CONSISTENT_LABEL_PAIRS.push([x, y]);

test('the twelve labelled states are exactly the per-path states the machine uses', (t) => {
  t.is(VALID_PATH_STATES.length, ALL_LABELS.length);
  for (const s of VALID_PATH_STATES) t.notThrows(() => labelOf(s));
});

test('the machine and the specification agree on which pairs are consistent', (t) => {
  for (const x of ALL_LABELS) {
    for (const y of ALL_LABELS) {
      t.is(isConsistentPair({ a: LABELS[x], b: LABELS[y] }), specConsistent(x, y), `${x}/${y}`);
    }
  }
  t.true(CONSISTENT_LABEL_PAIRS.length > 40);
});

test('every event on every consistent pair gives the next states, actions or typed error of the specification', (t) => {
  let checked = 0;
  for (const path of PATH_NAMES) {
    const q = partnerOf(path);
    for (const [mine, partner] of CONSISTENT_LABEL_PAIRS) {
      const pair = pairOf(path, mine, partner);
      for (const event of allEvents()) {
        if (event.kind === 'manual_switch' || event.path !== path) continue;
        const where = `${event.kind}${event.kind === 'set_config_type' ? ` ${event.type}` : ''} on ${path}=${mine}, ${q}=${partner}`;
        const expected = specFor(event, mine, partner);
        checked++;
        if ('error' in expected) {
          const err = t.throws(() => transition(pair, event), undefined, where);
          if (!isTwinframeError(err)) { t.fail(`${where}: not a TwinframeError: ${String(err)}`); continue; }
          t.is(err.code, expected.error, where);
          const named = describePair(pair);
          t.is(err.details.state, named[path], where);
          t.is(err.details.command, event.kind, where);
          t.deepEqual(err.details.allowed, allowedCommands(pair, path), where);
          t.true(err.message.includes(named[path]), `${where}: message names the state: ${err.message}`);
          for (const c of allowedCommands(pair, path)) t.true(err.message.includes(c), `${where}: message names ${c}`);
          continue;
        }
        let result;
        try {
          result = transition(pair, event);
        } catch (e) {
          t.fail(`${where}: unexpected refusal: ${(e as Error).message}`);
          continue;
        }
        const [nextMine, nextPartner] = expected.to;
        t.is(labelOf(result.pair[path]), nextMine === '=' ? mine : nextMine, `${where}: target`);
        t.is(labelOf(result.pair[q]), nextPartner === '=' ? partner : nextPartner, `${where}: partner`);
        t.deepEqual(normalize(result.actions), expected.actions.map((s) => decodeAction(s, path)), `${where}: actions`);
      }
    }
  }
  t.true(checked > 1000, `checked ${checked}`);
});

test('a manual switch swaps Primary and Secondary and is refused with TF_FAILOVER_NO_STANDBY otherwise', (t) => {
  for (const [x, y] of CONSISTENT_LABEL_PAIRS) {
    const pair: FailoverPair = { a: LABELS[x], b: LABELS[y] };
    if ((x === 'P' && y === 'S') || (x === 'S' && y === 'P')) {
      const from: PathName = x === 'P' ? 'a' : 'b';
      const to = partnerOf(from);
      const r = transition(pair, { kind: 'manual_switch' });
      t.is(labelOf(r.pair[from]), 'S');
      t.is(labelOf(r.pair[to]), 'P');
      t.deepEqual(r.actions, [{ kind: 'switch-active', from, to }]);
      t.true(canManualSwitch(pair));
    } else {
      const err = t.throws(() => transition(pair, { kind: 'manual_switch' }), undefined, `${x}/${y}`);
      t.true(isTwinframeError(err, 'TF_FAILOVER_NO_STANDBY'), `${x}/${y}`);
      t.false(canManualSwitch(pair));
    }
  }
});

test('allowedCommands lists exactly the commands the specification accepts', (t) => {
  for (const path of PATH_NAMES) {
    for (const [mine, partner] of CONSISTENT_LABEL_PAIRS) {
      const pair = pairOf(path, mine, partner);
      const accepted = new Set<string>();
      for (const event of allEvents()) {
        if (event.kind === 'manual_switch' || event.path !== path) continue;
        if (!(OPERATOR_COMMANDS as readonly string[]).includes(event.kind)) continue;
        if (!('error' in specFor(event, mine, partner))) accepted.add(event.kind);
      }
      t.deepEqual(allowedCommands(pair, path), OPERATOR_COMMANDS.filter((c) => accepted.has(c)), `${path}=${mine} partner=${partner}`);
    }
  }
});

test('every transition keeps the safety rules: one sender at most, and a switch only to a synchronized, online path', (t) => {
  for (const [x, y] of CONSISTENT_LABEL_PAIRS) {
    const pair: FailoverPair = { a: LABELS[x], b: LABELS[y] };
    for (const event of allEvents()) {
      let r;
      try { r = transition(pair, event); } catch { continue; }
      const where = `${JSON.stringify(event)} on a=${x} b=${y}`;
      t.true(isConsistentPair(r.pair), `${where}: result consistent`);
      const before = senderOf(pair);
      const after = senderOf(r.pair);
      const switches = r.actions.filter((a) => a.kind === 'switch-active');
      if (before === after) {
        t.is(switches.length, 0, `${where}: no switch when the sender stays`);
      } else {
        t.is(switches.length, 1, `${where}: exactly one switch`);
        const sw = switches[0];
        t.is(sw.from, before, `${where}: switch from the old sender`);
        t.is(sw.to, after, `${where}: switch to the new sender`);
        if (sw.to !== null) {
          const wasInLockstep = labelOf(pair[sw.to]) === 'S';
          const startedFirst = r.actions.findIndex((a) => a.kind === 'start-path' && a.path === sw.to) >= 0
            && r.actions.findIndex((a) => a.kind === 'start-path' && a.path === sw.to) < r.actions.indexOf(sw);
          t.true(wasInLockstep || startedFirst, `${where}: the new sender was in lockstep or started first`);
          const wasSynchronized = ['S', 'SSed', 'SNP', 'PO', 'P', 'PNS'].includes(labelOf(pair[sw.to]));
          t.true(wasSynchronized, `${where}: the new sender was synchronized (or is the configured primary)`);
        }
      }
      for (const a of r.actions) {
        if (a.kind === 'restart-path') t.is(r.pair[a.path].state, FailoverState.FAILED, `${where}: restart only a failed path`);
        if (a.kind === 'begin-sync') t.is(labelOf(r.pair[a.path]), 'SSing', `${where}: sync only when synchronizing`);
        if (a.kind === 'stop-path') t.not(after, a.path, `${where}: a stopped path does not send`);
      }
    }
  }
});

test('the consistent pairs are exactly the pairs reachable from a fresh pair', (t) => {
  const key = (p: FailoverPair): string => `${labelOf(p.a)}/${labelOf(p.b)}`;
  const seen = new Set<string>([key(initialPair())]);
  const queue: FailoverPair[] = [initialPair()];
  while (queue.length > 0) {
    const pair = queue.shift()!;
    for (const e of allEvents()) {
      let next: FailoverPair;
      try { next = transition(pair, e).pair; } catch { continue; }
      if (!seen.has(key(next))) { seen.add(key(next)); queue.push(next); }
    }
  }
  const consistent = new Set(CONSISTENT_LABEL_PAIRS.map(([x, y]) => `${x}/${y}`));
  t.deepEqual([...seen].sort(), [...consistent].sort());
});

test("the patent's walk-through configures, synchronizes and starts a protected pair", (t) => {
  const steps: Array<[MachineEvent, { a: string; b: string }]> = [
    [{ kind: 'set_config_type', path: 'a', type: 'primary' }, { a: 'Primary_Offline', b: 'Undefined' }], // [0079]
    [{ kind: 'start_streaming', path: 'a' }, { a: 'Primary_No_Secondary', b: 'Undefined' }], // [0080]
    [{ kind: 'set_config_type', path: 'b', type: 'secondary' }, { a: 'Primary_No_Secondary', b: 'Secondary_Offline' }], // [0081]
    [{ kind: 'failover_sync', path: 'b' }, { a: 'Primary_No_Secondary', b: 'Secondary_Synchronizing' }], // [0082]
    [{ kind: 'sync_complete', path: 'b' }, { a: 'Primary_No_Secondary', b: 'Secondary_Synchronized' }],
    [{ kind: 'start_streaming', path: 'b' }, { a: 'Primary', b: 'Secondary' }], // [0086]
    [{ kind: 'critical_failure', path: 'a', cause: FailureCause.DISK }, { a: 'Failed', b: 'Primary_No_Secondary' }], // [0094]
    [{ kind: 'heartbeat_missed', path: 'a' }, { a: 'Failed', b: 'Primary_No_Secondary' }], // late second detector
    [{ kind: 'repaired', path: 'a' }, { a: 'Secondary_Offline', b: 'Primary_No_Secondary' }],
    [{ kind: 'failover_sync', path: 'a' }, { a: 'Secondary_Synchronizing', b: 'Primary_No_Secondary' }],
    [{ kind: 'sync_failed', path: 'a' }, { a: 'Secondary_Offline', b: 'Primary_No_Secondary' }], // [0082] sync fails
    [{ kind: 'failover_sync', path: 'a' }, { a: 'Secondary_Synchronizing', b: 'Primary_No_Secondary' }],
    [{ kind: 'sync_complete', path: 'a' }, { a: 'Secondary_Synchronized', b: 'Primary_No_Secondary' }],
    [{ kind: 'start_streaming', path: 'a' }, { a: 'Secondary', b: 'Primary' }],
    [{ kind: 'manual_switch' }, { a: 'Primary', b: 'Secondary' }],
    [{ kind: 'stop_streaming', path: 'b' }, { a: 'Primary_No_Secondary', b: 'Secondary_Synchronized' }], // [0088]
    [{ kind: 'failover_unsync', path: 'b' }, { a: 'Primary_No_Secondary', b: 'Secondary_Offline' }], // [0085]
  ];
  let pair = initialPair();
  const seenActions: FailoverAction[][] = [];
  for (const [event, expected] of steps) {
    const r = transition(pair, event);
    pair = r.pair;
    seenActions.push([...r.actions]);
    t.deepEqual(describePair(pair), expected, JSON.stringify(event));
  }
  t.deepEqual(seenActions[1], [{ kind: 'start-path', path: 'a', mirrorFrom: null }, { kind: 'switch-active', from: null, to: 'a' }]);
  t.deepEqual(seenActions[3], [{ kind: 'begin-sync', path: 'b' }]);
  t.deepEqual(seenActions[5], [{ kind: 'start-path', path: 'b', mirrorFrom: 'a' }]);
  t.deepEqual(seenActions[6], [{ kind: 'switch-active', from: 'a', to: 'b' }, { kind: 'restart-path', path: 'a', cause: FailureCause.DISK }]);
  t.deepEqual(seenActions[7], []);
  t.deepEqual(seenActions[14], [{ kind: 'switch-active', from: 'b', to: 'a' }]);
});

test('bootstrapPair takes a fresh pair to Primary and Secondary, for either primary', (t) => {
  for (const primary of PATH_NAMES) {
    const { pair, actions } = applyEvents(initialPair(), bootstrapPair(primary));
    const states = describePair(pair);
    t.is(states[primary], 'Primary');
    t.is(states[partnerOf(primary)], 'Secondary');
    t.is(senderOf(pair), primary);
    t.true(actions.some((a) => a.kind === 'begin-sync' && a.path === partnerOf(primary)));
  }
});

test('a failed secondary leaves the primary sending, and rejoinEvents brings the pair back', (t) => {
  let { pair } = applyEvents(initialPair(), bootstrapPair('a'));
  const r = transition(pair, { kind: 'critical_failure', path: 'b', cause: FailureCause.SOCKET });
  t.deepEqual(describePair(r.pair), { a: 'Primary_No_Secondary', b: 'Failed' });
  t.deepEqual(r.actions, [{ kind: 'restart-path', path: 'b', cause: FailureCause.SOCKET }]);
  t.is(senderOf(r.pair), 'a');
  pair = transition(r.pair, { kind: 'repaired', path: 'b' }).pair;
  t.deepEqual(describePair(pair), { a: 'Primary_No_Secondary', b: 'Secondary_Offline' });
  pair = applyEvents(pair, rejoinEvents('b')).pair;
  t.deepEqual(describePair(pair), { a: 'Primary', b: 'Secondary' });
});

test('a secondary brought online first serves alone until the primary arrives and takes over', (t) => {
  // [0089]: order of bringing the paths online is free.
  const { pair } = applyEvents(initialPair(), [
    { kind: 'set_config_type', path: 'b', type: 'secondary' },
    { kind: 'failover_sync', path: 'b' },
    { kind: 'sync_complete', path: 'b' },
    { kind: 'start_streaming', path: 'b' },
  ]);
  t.deepEqual(describePair(pair), { a: 'Undefined', b: 'Secondary_No_Primary' });
  t.is(senderOf(pair), 'b');
  const withPrimary = applyEvents(pair, [{ kind: 'set_config_type', path: 'a', type: 'primary' }]).pair;
  const r = transition(withPrimary, { kind: 'start_streaming', path: 'a' });
  t.deepEqual(describePair(r.pair), { a: 'Primary', b: 'Secondary' });
  t.deepEqual(r.actions, [{ kind: 'start-path', path: 'a', mirrorFrom: 'b' }, { kind: 'switch-active', from: 'b', to: 'a' }]);
});

test('an illegal command names the state and the allowed commands in its message', (t) => {
  const pair = applyEvents(initialPair(), [{ kind: 'set_config_type', path: 'b', type: 'secondary' }]).pair;
  const err = t.throws(() => transition(pair, { kind: 'start_streaming', path: 'b' }));
  if (!isTwinframeError(err, 'TF_FAILOVER_ILLEGAL_COMMAND')) return t.fail(String(err));
  t.regex(err.message, /Secondary_Offline/);
  t.regex(err.message, /failover_sync/);
  t.regex(err.message, /set_config_type/);
  t.deepEqual(err.details, {
    path: 'b', state: 'Secondary_Offline', partnerState: 'Undefined', command: 'start_streaming', allowed: ['set_config_type', 'failover_sync'],
  });
});

test('transition never modifies the pair it is given', (t) => {
  const { pair } = applyEvents(initialPair(), bootstrapPair('a'));
  const frozen = Object.freeze({ a: Object.freeze({ ...pair.a }), b: Object.freeze({ ...pair.b }) });
  const r = transition(frozen, { kind: 'critical_failure', path: 'a', cause: FailureCause.EXCEPTION });
  t.deepEqual(describePair(frozen), { a: 'Primary', b: 'Secondary' });
  t.not(r.pair, frozen);
});

test('an inconsistent pair is rejected as a programming error, not a refused command', (t) => {
  const twoSenders: FailoverPair = { a: LABELS.PNS, b: LABELS.SNP };
  const err = t.throws(() => transition(twoSenders, { kind: 'stop_streaming', path: 'a' }));
  t.false(isTwinframeError(err));
  t.regex(err.message, /inconsistent/);
});

test('the exported event list covers every event kind once', (t) => {
  t.is(new Set(EVENT_KINDS).size, EVENT_KINDS.length);
  const kinds = new Set(allEvents().map((e) => e.kind));
  t.deepEqual([...kinds].sort(), [...EVENT_KINDS].sort());
});
