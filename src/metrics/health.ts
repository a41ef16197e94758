// The health probe's verdict (GET /healthz): healthy while every pair has a path
// that can send: one owns ACTIVE and is online. A pair without one streams
// nothing (its sessions wait), so a load balancer or systemd watchdog should
// know. A pair merely failing over stays healthy: ACTIVE moves to the twin at once.

import type { EngineStatus } from '../engine/engine.js';
import type { PathName } from '../shared/layout.js';

export interface Health {
  readonly healthy: boolean;
  /** Per pair, the path that sends, or null when none can. */
  readonly pairs: ReadonlyArray<{ readonly pair: number; readonly sending: PathName | null }>;
}

export function health(status: EngineStatus): Health {
  const pairs = status.pairs.map((p) => {
    const sender = p.paths.find((path) => path.active && path.online);
    return { pair: p.pair, sending: sender?.path ?? null };
  });
  return { healthy: pairs.every((p) => p.sending !== null), pairs };
}
