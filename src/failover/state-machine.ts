// The failover state machine of the patent (Fig. 5, [0079]-[0098]) for one pair of
// data paths, as a pure function: (pair, event) → (next pair, actions). No threads,
// no I/O, no clock: the engine carries out the actions, and the same module can later
// run on each host of a two-host pair (claim 1) with only the transport changed.
//
// Vocabulary. A "path" is a server of the patent (here a data-path worker thread).
// Each path has the patent's two variables, failover_type and failover_state
// (src/failover/states.ts maps them to the nine named states). A path is ONLINE in
// the patent's shaded states (Primary, Primary_No_Secondary, Secondary,
// Secondary_No_Primary) and OFFLINE otherwise. The SENDER is the one path whose
// datagrams reach the wire: Primary or Primary_No_Secondary, or Secondary_No_Primary
// when no primary is online ([0078]: a shaded state means a server is available).
//
// Where the patent is silent, this module chooses the safe behaviour and says so at
// the spot, under two rules that every transition keeps (and the tests check over
// every reachable pair): never two senders, and never a switch to a path that is not
// synchronized and online (a path is only made sender if it is Secondary — in
// lockstep — or has just been started with the running sessions mirrored into it).

import { TwinframeError, type ErrorCode } from '../errors.js';
import { FailoverState, FailoverType, FailureCause, PATH_NAMES, partnerOf, type PathName } from '../shared/layout.js';
import { NamedState, namedState } from './states.js';

/** One data path's failover variables ([0066]-[0067]). */
export interface PathFailover {
  readonly type: FailoverType;
  readonly state: FailoverState;
}

export interface FailoverPair {
  readonly a: PathFailover;
  readonly b: PathFailover;
}

/** The argument of set_config_type. */
export type ConfigType = 'primary' | 'secondary' | 'undef';
const CONFIG_TYPES: readonly ConfigType[] = ['primary', 'secondary', 'undef'];

/**
 * Everything that can move the machine. Admin commands come from the operator
 * (twinframectl); system events come from the engine and supervisor.
 */
export type MachineEvent =
  // Admin commands of the patent ([0079]-[0088]).
  | { readonly kind: 'set_config_type'; readonly path: PathName; readonly type: ConfigType }
  | { readonly kind: 'start_streaming'; readonly path: PathName }
  | { readonly kind: 'stop_streaming'; readonly path: PathName }
  | { readonly kind: 'failover_sync'; readonly path: PathName }
  | { readonly kind: 'failover_unsync'; readonly path: PathName }
  /** Operator-requested swap of roles while both paths are healthy (Primary + Secondary). */
  | { readonly kind: 'manual_switch' }
  // System events.
  /** The begin-sync action finished: parameters of [0083] copied ([0082]). */
  | { readonly kind: 'sync_complete'; readonly path: PathName }
  | { readonly kind: 'sync_failed'; readonly path: PathName; readonly reason?: string }
  /**
   * A critical process of `path` failed ([0094]-[0095]): the path's own failure word,
   * its worker's exit/error, a send/disk error, an over-temperature reading.
   */
  | { readonly kind: 'critical_failure'; readonly path: PathName; readonly cause: FailureCause }
  /** `path` missed more than max-missed heartbeats ([0096]-[0097]). */
  | { readonly kind: 'heartbeat_missed'; readonly path: PathName }
  /** The failed `path` was restarted (fresh worker) and is ready to be configured. */
  | { readonly kind: 'repaired'; readonly path: PathName };

export type MachineEventKind = MachineEvent['kind'];

/** Admin commands that target one path (the patent's commands). */
export const OPERATOR_COMMANDS = [
  'set_config_type',
  'start_streaming',
  'stop_streaming',
  'failover_sync',
  'failover_unsync',
] as const satisfies readonly MachineEventKind[];
export type OperatorCommand = (typeof OPERATOR_COMMANDS)[number];

/**
 * Work the engine must carry out after a transition, in array order; an action
 * must be complete before the next one starts.
 *
 * - `begin-sync`: copy the synchronized parameters of [0083] into `path`, then feed
 *   back `sync_complete` or `sync_failed` (the engine must bound it with a timeout and
 *   report `sync_failed`, because the patent lets only a finished sync leave
 *   Secondary_Synchronizing).
 * - `start-path`: bring `path` online: it starts serving requests. With `mirrorFrom`
 *   it first loads the running sessions of that path (the "final synchronization" of
 *   [0087]) and runs in lockstep without sending; with `null` nothing runs yet.
 *   Whether it sends is decided only by `switch-active`.
 * - `switch-active`: make `to` the sender (the ACTIVE word, new epoch); `from` is the
 *   sender being replaced, `null` if none. `to: null` means nobody sends any more:
 *   every running session stops (the operator stopped the last online path, or the
 *   only online path failed).
 * - `stop-path`: take `path` offline gracefully: it stops serving and drops its
 *   sessions. It is never the sender by then (a switch-active precedes it).
 * - `restart-path`: `path` has failed: fence it (a preceding switch-active has
 *   already moved ACTIVE away if it was the sender), terminate its worker, spawn a
 *   fresh one, then feed back `repaired`.
 */
export type FailoverAction =
  | { readonly kind: 'begin-sync'; readonly path: PathName }
  | { readonly kind: 'start-path'; readonly path: PathName; readonly mirrorFrom: PathName | null }
  | { readonly kind: 'switch-active'; readonly from: PathName | null; readonly to: PathName | null }
  | { readonly kind: 'stop-path'; readonly path: PathName }
  | { readonly kind: 'restart-path'; readonly path: PathName; readonly cause: FailureCause };

export interface TransitionResult {
  readonly pair: FailoverPair;
  readonly actions: readonly FailoverAction[];
}

export interface PairStates {
  readonly a: NamedState;
  readonly b: NamedState;
}

// --- the per-path states, as values ---------------------------------------------

function pf(type: FailoverType, state: FailoverState): PathFailover {
  return { type, state };
}

const UNDEFINED = pf(FailoverType.UNDEF, FailoverState.UNDEF);
const PRIMARY = pf(FailoverType.MASTER, FailoverState.LIVE);
const PRIMARY_OFFLINE = pf(FailoverType.MASTER, FailoverState.NONE);
const PRIMARY_NO_SECONDARY = pf(FailoverType.MASTER, FailoverState.NOPARTNER);
const SECONDARY = pf(FailoverType.SLAVE, FailoverState.LIVE);
const SECONDARY_OFFLINE = pf(FailoverType.SLAVE, FailoverState.NONE);
const SECONDARY_SYNCHRONIZING = pf(FailoverType.SLAVE, FailoverState.SYNCING);
const SECONDARY_SYNCHRONIZED = pf(FailoverType.SLAVE, FailoverState.SYNCED);
const SECONDARY_NO_PRIMARY = pf(FailoverType.SLAVE, FailoverState.NOPARTNER);

/**
 * Every (failover_type, failover_state) combination this machine uses. Failed keeps
 * the type the path had when it failed: the patent defines Failed as MASTER/FAILED
 * ([0072]) for a failed primary and is silent about a failed secondary or an
 * unconfigured path; keeping the type lets `repaired` bring the path back in a role
 * that cannot clash with its partner's.
 */
export const VALID_PATH_STATES: readonly PathFailover[] = [
  UNDEFINED,
  pf(FailoverType.UNDEF, FailoverState.FAILED),
  PRIMARY,
  PRIMARY_OFFLINE,
  PRIMARY_NO_SECONDARY,
  pf(FailoverType.MASTER, FailoverState.FAILED),
  SECONDARY,
  SECONDARY_OFFLINE,
  SECONDARY_SYNCHRONIZING,
  SECONDARY_SYNCHRONIZED,
  SECONDARY_NO_PRIMARY,
  pf(FailoverType.SLAVE, FailoverState.FAILED),
];

/** A fresh pair: both paths unconfigured (the control block starts zeroed). */
export function initialPair(): FailoverPair {
  return { a: UNDEFINED, b: UNDEFINED };
}

function named(p: PathFailover): NamedState {
  return namedState(p.type, p.state);
}

function isFailed(p: PathFailover): boolean {
  return p.state === FailoverState.FAILED;
}

/** Online = one of the patent's shaded states (500A, 500B, 540A, 540B). */
function isOnline(p: PathFailover): boolean {
  return (p.type === FailoverType.MASTER || p.type === FailoverType.SLAVE)
    && (p.state === FailoverState.LIVE || p.state === FailoverState.NOPARTNER);
}

/** Whether this path's datagrams go on the wire in this state. */
function isSender(p: PathFailover): boolean {
  if (p.type === FailoverType.MASTER) return p.state === FailoverState.LIVE || p.state === FailoverState.NOPARTNER;
  if (p.type === FailoverType.SLAVE) return p.state === FailoverState.NOPARTNER;
  return false;
}

/** The path that sends in this pair, or null if no path is online. */
export function senderOf(pair: FailoverPair): PathName | null {
  const senders = PATH_NAMES.filter((p) => isSender(pair[p]));
  return senders.length === 1 ? senders[0] : null;
}

export function describePair(pair: FailoverPair): PairStates {
  return { a: named(pair.a), b: named(pair.b) };
}

function sameState(x: PathFailover, y: PathFailover): boolean {
  return x.type === y.type && x.state === y.state;
}

/**
 * Why a pair could not have been produced by this machine (empty when it is
 * consistent). The machine refuses to work from an inconsistent pair, because
 * every safety argument below assumes these hold.
 */
export function pairProblems(pair: FailoverPair): string[] {
  const problems: string[] = [];
  for (const p of PATH_NAMES) {
    if (!VALID_PATH_STATES.some((v) => sameState(v, pair[p]))) {
      problems.push(`path ${p} has an invalid combination type=${pair[p].type} state=${pair[p].state}`);
    }
  }
  if (problems.length > 0) return problems;
  const { a, b } = pair;
  if (isSender(a) && isSender(b)) problems.push('both paths would send');
  for (const p of PATH_NAMES) {
    const me = pair[p];
    const partner = pair[partnerOf(p)];
    if (me.state === FailoverState.LIVE && !(partner.state === FailoverState.LIVE && partner.type !== me.type)) {
      problems.push(`path ${p} is ${named(me)} but its partner is ${named(partner)}`);
    }
    if (me.state === FailoverState.NOPARTNER && isOnline(partner)) {
      problems.push(`path ${p} is ${named(me)} but its partner is online (${named(partner)})`);
    }
  }
  if (!isFailed(a) && !isFailed(b) && a.type === b.type && a.type !== FailoverType.UNDEF) {
    problems.push(`both paths are configured ${a.type === FailoverType.MASTER ? 'primary' : 'secondary'}`);
  }
  return problems;
}

// --- the transitions ---------------------------------------------------------------

interface Refusal {
  readonly refused: string;
  readonly code?: ErrorCode;
}

type StepResult = TransitionResult | Refusal;

function isRefusal(r: StepResult): r is Refusal {
  return 'refused' in r;
}

function withPath(pair: FailoverPair, path: PathName, next: PathFailover): FailoverPair {
  return path === 'a' ? { a: next, b: pair.b } : { a: pair.a, b: next };
}

function withBoth(path: PathName, mine: PathFailover, partners: PathFailover): FailoverPair {
  return path === 'a' ? { a: mine, b: partners } : { a: partners, b: mine };
}

/** A short reason why a command needs a different state, shared by several commands. */
function stateHint(p: PathFailover): string {
  switch (named(p)) {
    case NamedState.Undefined: return 'the path has no role yet: set_config_type first';
    case NamedState.Failed: return 'the path has failed and must be restarted (repaired) first';
    case NamedState.Secondary_Synchronizing: return 'synchronization is in progress: wait for it to finish';
    default: return isOnline(p) ? 'the path is online: stop_streaming first' : 'the path is offline';
  }
}

function setConfigType(pair: FailoverPair, path: PathName, type: ConfigType): StepResult {
  const me = pair[path];
  const partner = pair[partnerOf(path)];
  const state = named(me);
  if (state === NamedState.Secondary_Synchronized) {
    // [0085]: failover_unsync exists precisely to leave this state for admin changes.
    return { refused: 'a synchronized secondary must be unsynchronized first (failover_unsync)' };
  }
  if (state !== NamedState.Undefined && state !== NamedState.Primary_Offline && state !== NamedState.Secondary_Offline) {
    return { refused: stateHint(me) };
  }
  // Patent silent: two primaries (or two secondaries) could both come online in a
  // NOPARTNER state and both send. Refused unless the partner has failed (a failed
  // path returns in the complementary role, see repaired).
  const wanted = type === 'primary' ? FailoverType.MASTER : type === 'secondary' ? FailoverType.SLAVE : FailoverType.UNDEF;
  if (wanted !== FailoverType.UNDEF && partner.type === wanted && !isFailed(partner)) {
    return { refused: `the partner ${partnerOf(path)} is already ${type} (${named(partner)}); a pair has one primary and one secondary` };
  }
  const next = type === 'primary' ? PRIMARY_OFFLINE : type === 'secondary' ? SECONDARY_OFFLINE : UNDEFINED;
  return { pair: withPath(pair, path, next), actions: [] };
}

function startStreaming(pair: FailoverPair, path: PathName): StepResult {
  const me = pair[path];
  const q = partnerOf(path);
  const partner = pair[q];
  switch (named(me)) {
    case NamedState.Primary_Offline:
      if (isOnline(partner)) {
        // [0088]: the secondary (Secondary_No_Primary, the sender) becomes Secondary
        // and this path Primary. Patent silent on the hand-over of running sessions:
        // the primary first mirrors them from the sender, then takes over.
        return {
          pair: withBoth(path, PRIMARY, SECONDARY),
          actions: [{ kind: 'start-path', path, mirrorFrom: q }, { kind: 'switch-active', from: q, to: path }],
        };
      }
      // [0080], [0089]: no secondary online yet.
      return {
        pair: withPath(pair, path, PRIMARY_NO_SECONDARY),
        actions: [{ kind: 'start-path', path, mirrorFrom: null }, { kind: 'switch-active', from: null, to: path }],
      };
    case NamedState.Secondary_Synchronized:
      if (isOnline(partner)) {
        // [0086]: the primary is online; both become LIVE. The primary keeps sending.
        return {
          pair: withBoth(path, SECONDARY, PRIMARY),
          actions: [{ kind: 'start-path', path, mirrorFrom: q }],
        };
      }
      // [0086], [0089]: no primary online; this secondary serves alone.
      return {
        pair: withPath(pair, path, SECONDARY_NO_PRIMARY),
        actions: [{ kind: 'start-path', path, mirrorFrom: null }, { kind: 'switch-active', from: null, to: path }],
      };
    case NamedState.Secondary_Offline:
      return { refused: 'a secondary must be synchronized before it starts (failover_sync) [0086]' };
    default:
      return { refused: isOnline(me) ? 'the path is already online' : stateHint(me) };
  }
}

function stopStreaming(pair: FailoverPair, path: PathName): StepResult {
  const me = pair[path];
  const q = partnerOf(path);
  switch (named(me)) {
    case NamedState.Primary:
      // [0088]: the secondary becomes Secondary_No_Primary. Patent silent on the
      // streams: Secondary_No_Primary is a serving state ([0078]) and the secondary
      // is in lockstep, so it takes over without a glitch (a planned failover).
      return {
        pair: withBoth(path, PRIMARY_OFFLINE, SECONDARY_NO_PRIMARY),
        actions: [{ kind: 'switch-active', from: path, to: q }, { kind: 'stop-path', path }],
      };
    case NamedState.Primary_No_Secondary:
      return {
        pair: withPath(pair, path, PRIMARY_OFFLINE),
        actions: [{ kind: 'switch-active', from: path, to: null }, { kind: 'stop-path', path }],
      };
    case NamedState.Secondary:
      // [0088]: the primary becomes Primary_No_Secondary. Patent silent on where an
      // offline secondary goes: back to Secondary_Synchronized, the state it was
      // started from; its parameters still are the pair's (one box shares one
      // configuration store), and a restart mirrors the sessions again anyway.
      return {
        pair: withBoth(path, SECONDARY_SYNCHRONIZED, PRIMARY_NO_SECONDARY),
        actions: [{ kind: 'stop-path', path }],
      };
    case NamedState.Secondary_No_Primary:
      return {
        pair: withPath(pair, path, SECONDARY_SYNCHRONIZED),
        actions: [{ kind: 'switch-active', from: path, to: null }, { kind: 'stop-path', path }],
      };
    default:
      return { refused: named(me) === NamedState.Failed ? stateHint(me) : 'the path is not online' };
  }
}

function failoverSync(pair: FailoverPair, path: PathName): StepResult {
  const me = pair[path];
  switch (named(me)) {
    case NamedState.Secondary_Offline:
      // [0082]. Patent: parameters come from the primary. In one box they live in
      // the shared configuration store, so no configured partner is needed.
      return { pair: withPath(pair, path, SECONDARY_SYNCHRONIZING), actions: [{ kind: 'begin-sync', path }] };
    case NamedState.Primary_Offline:
    case NamedState.Primary:
    case NamedState.Primary_No_Secondary:
      return { refused: 'only a secondary is synchronized; the primary is the source of the parameters [0082]' };
    case NamedState.Secondary_Synchronized:
    case NamedState.Secondary:
    case NamedState.Secondary_No_Primary:
      return { refused: 'the path is already synchronized' };
    default:
      return { refused: stateHint(me) };
  }
}

function failoverUnsync(pair: FailoverPair, path: PathName): StepResult {
  const me = pair[path];
  switch (named(me)) {
    case NamedState.Secondary_Synchronized:
      return { pair: withPath(pair, path, SECONDARY_OFFLINE), actions: [] }; // [0085]
    case NamedState.Secondary_Offline:
      return { refused: 'the path is not synchronized' };
    case NamedState.Primary_Offline:
      return { refused: 'only a secondary is synchronized and unsynchronized [0085]' };
    default:
      return { refused: stateHint(me) };
  }
}

function syncResult(pair: FailoverPair, path: PathName, ok: boolean): StepResult {
  // A late result for a sync that no longer runs (the path failed or was reset
  // meanwhile) is refused rather than applied: it describes a path that is gone.
  if (named(pair[path]) !== NamedState.Secondary_Synchronizing) return { refused: 'no synchronization is in progress on this path' };
  return { pair: withPath(pair, path, ok ? SECONDARY_SYNCHRONIZED : SECONDARY_OFFLINE), actions: [] }; // [0082]
}

function failure(pair: FailoverPair, path: PathName, cause: FailureCause): StepResult {
  const me = pair[path];
  const q = partnerOf(path);
  // Several detectors report the same failure (failure word, worker exit, heartbeats):
  // only the first one acts; the rest find the path already Failed and change nothing.
  if (isFailed(me)) return { pair, actions: [] };
  const failed = pf(me.type, FailoverState.FAILED);
  const restart: FailoverAction = { kind: 'restart-path', path, cause };
  switch (named(me)) {
    case NamedState.Primary:
      // [0094], [0097]: the old primary goes Failed, the secondary (in lockstep)
      // becomes Primary_No_Secondary and sends from the next datagram.
      return {
        pair: withBoth(path, failed, PRIMARY_NO_SECONDARY),
        actions: [{ kind: 'switch-active', from: path, to: q }, restart],
      };
    case NamedState.Secondary:
      // Patent silent on a failed secondary; mirror of [0088]: the primary loses
      // its partner and goes on sending.
      return { pair: withBoth(path, failed, PRIMARY_NO_SECONDARY), actions: [restart] };
    case NamedState.Primary_No_Secondary:
    case NamedState.Secondary_No_Primary:
      // Nobody to take over (the partner is offline, so not in lockstep): the
      // streams stop. Switching to an offline partner would send from a path with
      // no sessions, so the safe choice is no sender.
      return { pair: withPath(pair, path, failed), actions: [{ kind: 'switch-active', from: path, to: null }, restart] };
    default:
      // An offline path fails: nothing was sending from it, the partner is unaffected.
      return { pair: withPath(pair, path, failed), actions: [restart] };
  }
}

function repaired(pair: FailoverPair, path: PathName): StepResult {
  const me = pair[path];
  if (!isFailed(me)) return { refused: 'the path has not failed' };
  const partner = pair[partnerOf(path)];
  // Patent: the repaired former primary rejoins as the secondary ([0046], [0063]).
  // Generalized (patent silent otherwise): a path that had a role comes back in the
  // role complementary to its partner's, so a pair never holds two primaries or two
  // secondaries; with an unconfigured partner it keeps its own role; an unconfigured
  // path stays unconfigured.
  let next: PathFailover;
  if (me.type === FailoverType.UNDEF) next = UNDEFINED;
  else if (partner.type === FailoverType.MASTER) next = SECONDARY_OFFLINE;
  else if (partner.type === FailoverType.SLAVE) next = PRIMARY_OFFLINE;
  else next = me.type === FailoverType.MASTER ? PRIMARY_OFFLINE : SECONDARY_OFFLINE;
  return { pair: withPath(pair, path, next), actions: [] };
}

function manualSwitch(pair: FailoverPair): StepResult {
  const from = senderOf(pair);
  if (from === null || named(pair[from]) !== NamedState.Primary || named(pair[partnerOf(from)]) !== NamedState.Secondary) {
    // Only a Secondary is both synchronized and in lockstep; anything else would
    // lose or replay datagrams.
    return {
      refused: 'a manual switch needs one path Primary and the other Secondary (online and in lockstep)',
      code: 'TF_FAILOVER_NO_STANDBY',
    };
  }
  const to = partnerOf(from);
  return { pair: withBoth(from, SECONDARY, PRIMARY), actions: [{ kind: 'switch-active', from, to }] };
}

function step(pair: FailoverPair, event: MachineEvent): StepResult {
  switch (event.kind) {
    case 'set_config_type': return setConfigType(pair, event.path, event.type);
    case 'start_streaming': return startStreaming(pair, event.path);
    case 'stop_streaming': return stopStreaming(pair, event.path);
    case 'failover_sync': return failoverSync(pair, event.path);
    case 'failover_unsync': return failoverUnsync(pair, event.path);
    case 'manual_switch': return manualSwitch(pair);
    case 'sync_complete': return syncResult(pair, event.path, true);
    case 'sync_failed': return syncResult(pair, event.path, false);
    case 'critical_failure': return failure(pair, event.path, event.cause);
    case 'heartbeat_missed': return failure(pair, event.path, FailureCause.HEARTBEAT);
    case 'repaired': return repaired(pair, event.path);
  }
}

function eventLabel(event: MachineEvent): string {
  return event.kind === 'set_config_type' ? `set_config_type ${event.type}` : event.kind;
}

/**
 * Applies one event. Returns the next pair (a new object; the input is not touched)
 * and the actions to carry out, or throws TwinframeError TF_FAILOVER_ILLEGAL_COMMAND
 * (TF_FAILOVER_NO_STANDBY for a manual switch without a standby) whose message names
 * the state and the commands allowed in it.
 */
export function transition(pair: FailoverPair, event: MachineEvent): TransitionResult {
  const problems = pairProblems(pair);
  if (problems.length > 0) throw new Error(`inconsistent failover pair: ${problems.join('; ')}`);
  const result = step(pair, event);
  if (!isRefusal(result)) return result;

  const states = describePair(pair);
  if (event.kind === 'manual_switch') {
    throw new TwinframeError(result.code ?? 'TF_FAILOVER_ILLEGAL_COMMAND',
      `manual_switch refused: path a is ${states.a}, path b is ${states.b}; ${result.refused}`,
      { path: null, state: states, command: 'manual_switch', allowed: [] });
  }
  const path = event.path;
  const q = partnerOf(path);
  const allowed = allowedCommands(pair, path);
  throw new TwinframeError(result.code ?? 'TF_FAILOVER_ILLEGAL_COMMAND',
    `${eventLabel(event)} refused on path ${path} in state ${states[path]} (partner ${q}: ${states[q]}): ${result.refused}. `
      + `Allowed commands for path ${path} now: ${allowed.length > 0 ? allowed.join(', ') : 'none'}`,
    { path, state: states[path], partnerState: states[q], command: event.kind, allowed });
}

/**
 * The admin commands that `path` accepts in this pair. set_config_type is listed when
 * at least one of its types is accepted.
 */
export function allowedCommands(pair: FailoverPair, path: PathName): OperatorCommand[] {
  return OPERATOR_COMMANDS.filter((kind) => {
    const variants: MachineEvent[] = kind === 'set_config_type'
      ? CONFIG_TYPES.map((type) => ({ kind, path, type }))
      : [{ kind, path }];
    return variants.some((e) => !isRefusal(step(pair, e)));
  });
}

/**
 * The patent's walk-through ([0079]-[0086]) as events: configure `primary`, start it
 * (Primary_No_Secondary), configure the other path secondary, synchronize it, start
 * it (Primary + Secondary). For the "start both automatically" mode: the engine
 * applies these in order and carries out each transition's actions; the
 * `sync_complete` entry stands for the outcome of the `begin-sync` action just before
 * it: the engine waits for the real outcome and, if it is a failure, applies
 * `sync_failed` instead and stops bootstrapping there.
 */
export function bootstrapPair(primary: PathName = 'a'): readonly MachineEvent[] {
  const secondary = partnerOf(primary);
  return [
    { kind: 'set_config_type', path: primary, type: 'primary' },
    { kind: 'start_streaming', path: primary },
    { kind: 'set_config_type', path: secondary, type: 'secondary' },
    { kind: 'failover_sync', path: secondary },
    { kind: 'sync_complete', path: secondary },
    { kind: 'start_streaming', path: secondary },
  ];
}
