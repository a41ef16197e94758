// Spawns the supervisor thread (src/supervisor/worker.ts).

import { Worker } from 'node:worker_threads';
import type { SupervisorWorkerData } from '../shared/messages.js';

export function spawnSupervisorWorker(workerData: SupervisorWorkerData): Worker {
  return new Worker(new URL('./worker.js', import.meta.url), { workerData, name: 'twinframe-supervisor' });
}
