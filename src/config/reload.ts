// What a reload may change on a running server. Compares the running
// configuration with the one just read, field by field, and sorts every
// difference into what applies live (without dropping a stream) and what needs
// a restart (reported, the running value stays). Pure: the composition root
// (server.ts) carries the live part out.

import type { TwinframeConfig } from './schema.js';

/**
 * Fields that need a restart, as dotted prefixes: what the listeners, the data
 * paths' threads and their shared memory were built from.
 */
export const RESTART_ONLY: readonly string[] = [
  'rtsp.host', 'rtsp.port', 'rtsp.serverPortRange', 'admin.socketPath', 'admin.faultInjection',
  'paths.pairs', 'media.cacheDir', 'pacing.batchWindowUs', 'failover.autoFailover',
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

function restartOnly(path: string): boolean {
  return RESTART_ONLY.some((p) => path === p || path.startsWith(`${p}.`));
}

/** Copies the restart-only fields of `running` over `file`. */
function keepRestartOnly(running: TwinframeConfig, file: TwinframeConfig): TwinframeConfig {
  const next = structuredClone(file) as unknown as Record<string, Record<string, unknown>>;
  const from = running as unknown as Record<string, Record<string, unknown>>;
  for (const path of RESTART_ONLY) {
    const [section, field] = path.split('.');
    next[section][field] = structuredClone(from[section][field]);
  }
  return next as unknown as TwinframeConfig;
}

export function planReload(running: TwinframeConfig, file: TwinframeConfig): ReloadPlan {
  const before = leaves(running, '', new Map());
  const after = leaves(file, '', new Map());
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k)).sort();
  return {
    live: changed.filter((k) => !restartOnly(k)),
    restart: changed.filter(restartOnly).map((path) => ({ path, running: before.get(path) ?? 'unset', file: after.get(path) ?? 'unset' })),
    next: keepRestartOnly(running, file),
  };
}

/** What a reload did: reported to twinframectl and logged. */
export interface ReloadResult {
  /** The file read. */
  readonly source: string;
  readonly applied: readonly string[];
  readonly restartNeeded: readonly RestartField[];
}
