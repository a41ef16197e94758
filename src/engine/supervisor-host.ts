// The control plane's side of the supervisor thread (one for every pair): start
// it, route its failure reports (with the pair they concern), stop it at shutdown.

import type { Worker } from 'node:worker_threads';
import type { ControlBlock } from '../shared/control-block.js';
import type { FailureReport, SupervisorToMain } from '../shared/messages.js';
import { spawnSupervisorWorker } from '../supervisor/index.js';
import { missingNodeFlags } from '../shared/node-flags.js';
import type { Logger } from '../log.js';
import { STOP_TIMEOUT_MS, TERMINATE_TIMEOUT_MS, stopWorker } from './worker-stop.js';

export class SupervisorHost {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(blocks: readonly ControlBlock[], maxSessions: number, onFailure: (pair: number, report: FailureReport) => void, private readonly log: Logger) {
    const worker = spawnSupervisorWorker({ controlBlocks: blocks.map((cb) => cb.sab), maxSessions });
    worker.on('message', (msg: SupervisorToMain) => {
      if (msg.type === 'path-failed') onFailure(msg.pair, msg.report);
      else if (msg.policy !== 'fifo') log.warn({ thread: 'supervisor', policy: msg.policy, reason: msg.priorityError }, 'supervisor runs without real-time priority');
      else if (missingNodeFlags().length > 0) {
        log.warn({ missing: missingNodeFlags() }, 'real-time threads with helper-thread GC: start node with these flags (src/shared/node-flags.ts), or a GC can hold two cores for a second');
      } else log.info({ thread: 'supervisor', policy: msg.policy }, 'supervisor runs with real-time priority');
    });
    worker.on('error', (err) => log.error({ err }, 'supervisor thread failed'));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.worker = worker;
  }

  /** Shutdown (after the control block's shutdown flag): wait for the thread within bounds. */
  async stop(): Promise<void> {
    if (await stopWorker(this.worker, this.exited, STOP_TIMEOUT_MS, TERMINATE_TIMEOUT_MS)) return;
    this.log.error({ thread: 'supervisor', waitedMs: STOP_TIMEOUT_MS + TERMINATE_TIMEOUT_MS }, 'thread did not end when stopped (blocked in a system call?); leaving it');
  }
}
