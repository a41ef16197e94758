// What a reload may change on a running server. Compares the running
// configuration with the one just read, field by field, and sorts every
// difference into what applies live (without dropping a stream) and what needs
// a restart (reported, the running value stays). Pure: the composition root
// (server.ts) carries the live part out.

import type { TwinframeConfig } from './schema.js';

/**
 * Fields a running server applies, as dotted prefixes (server.ts carries each
 * out). Every other field needs a restart: what the listeners, the logger, the
 * data paths' threads and their shared memory were built from. A field added to
 * the schema later is reported as needing a restart until it is listed here.
 */
export const LIVE: readonly string[] = [
  'limits', 'failover.heartbeatPeriodUs', 'failover.maxMissedHeartbeats', 'media.mounts', 'auth', 'log.level',
  'rtsp.sessionTimeoutSec', 'rtsp.allowForeignDestination', 'rtsp.maxRequestBytes', 'rtsp.maxConnections',
  'rtsp.requestTimeoutSec', 'rtsp.idleTimeoutSec', 'rtsp.interleavedBacklogMs', 'rtsp.maxConnectionsPerAddress',
  'rtsp.maxSessionsPerAddress', 'rtsp.maxSessionsPerConnection', 'rtsp.setupTimeoutSec',
  // network.streamIp applies to new sessions; mask, routes and loadBalance are stored only.
  'network', 'loadBalance',
  // The broadcast table: removed ones stop, changed ones start again at their schedule's position;
  // so do the group broadcasts a change of multicast.ttl or multicast.interface reaches.
  'broadcasts', 'multicast',
];

export interface RestartField {
  readonly path: string;
  /** The values as JSON text, for people. */
  readonly running: string;
  readonly file: string;
}

export interface ReloadPlan {
  /** Fields that changed and apply live, dotted, sorted. */
  readonly live: readonly string[];
  /** Fields that changed and keep their running value until a restart. */
  readonly restart: readonly RestartField[];
  /** The configuration to run with: the file's live fields, the running restart-only ones. */
  readonly next: TwinframeConfig;
}

/** Leaf fields (arrays count as one value) of a configuration, by dotted path. */
function leaves(value: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix === '' ? k : `${prefix}.${k}`, out);
  } else {
    out.set(prefix, JSON.stringify(value) ?? 'unset');
  }
  return out;
}

function live(path: string): boolean {
  return LIVE.some((p) => path === p || path.startsWith(`${p}.`));
}

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `file` with every field that is not live taken from `running` (present in either). */
function keepRestartOnly(running: Tree, file: Tree, prefix: string): Tree {
  const out: Tree = {};
  for (const key of new Set([...Object.keys(running), ...Object.keys(file)])) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const [r, f] = [running[key], file[key]];
    if (live(path)) out[key] = structuredClone(f);
    else if (isTree(r) && isTree(f)) out[key] = keepRestartOnly(r, f, path);
    else out[key] = structuredClone(r);
  }
  return out;
}

export function planReload(running: TwinframeConfig, file: TwinframeConfig): ReloadPlan {
  const before = leaves(running, '', new Map());
  const after = leaves(file, '', new Map());
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k)).sort();
  return {
    live: changed.filter(live),
    restart: changed.filter((k) => !live(k)).map((path) => ({ path, running: before.get(path) ?? 'unset', file: after.get(path) ?? 'unset' })),
    next: keepRestartOnly(running, file, '') as unknown as TwinframeConfig,
  };
}

/** What a reload did: reported to twinframectl and logged. */
export interface ReloadResult {
  /** The file read. */
  readonly source: string;
  readonly applied: readonly string[];
  readonly restartNeeded: readonly RestartField[];
}
