// The process pair as the composition root (server.ts) sees it: start this
// process's side (primary or standby, by `pair.role`), its status, its stop.

import type { Engine } from '../engine/engine.js';
import type { PairConfig, TwinframeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SynchronizedParameters } from './link-messages.js';
import { PairPrimary } from './primary.js';
import { PairStandby } from './standby.js';
import type { ProcessPairStatus, ProcessRole, TakeoverRecord } from './pair-status.js';
import type { SharedBlocks } from './shared-blocks.js';

export interface PairProcess {
  /** The role this process started in. */
  readonly role: ProcessRole;
  status(): ProcessPairStatus;
  close(): Promise<void>;
}

export interface PairProcessOptions {
  readonly pair: PairConfig;
  readonly engine: Engine;
  /** Where the engine's control blocks live (shared memory: sharedBlocks). */
  readonly blocks: SharedBlocks;
  readonly logger: Logger;
  /** The running configuration (a reload may change its live fields). */
  readonly config: () => TwinframeConfig;
  /** A standby took over: this process serves viewers from now on. */
  readonly onTakeover: (record: TakeoverRecord) => void;
}

/** A primary listens on the link; a standby holds its engine's sending and follows the primary. */
export async function startPairProcess(options: PairProcessOptions): Promise<PairProcess> {
  const { pair, engine, logger } = options;
  if (pair.role === 'primary') {
    const controlBlocks = { files: options.blocks.files, maxSessions: engine.controlBlock().layout.maxSessions };
    const primary = await PairPrimary.listen({ engine, link: pair.link, secret: pair.secret, logger, controlBlocks, params: () => synchronizedParameters(options.config(), engine) });
    return { role: 'primary', status: () => primary.status(), close: () => primary.close() };
  }
  engine.holdSending();
  const standby = PairStandby.start({ engine, link: pair.link, secret: pair.secret, logger, onTakeover: options.onTakeover });
  return { role: 'standby', status: () => standby.status(), close: () => Promise.resolve(standby.close()) };
}

/** Patent [0083]: what the standby takes from its primary, as the primary runs it now. */
function synchronizedParameters(config: TwinframeConfig, engine: Engine): SynchronizedParameters {
  const { periodUs, maxMissed } = engine.status().heartbeat;
  return {
    heartbeatPeriodUs: periodUs,
    maxMissedHeartbeats: maxMissed,
    batchWindowUs: config.pacing.batchWindowUs,
    limits: engine.getLimits(),
    serverPortRange: config.rtsp.serverPortRange,
    wallClockMs: Date.now(),
  };
}
