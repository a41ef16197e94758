// Spawns a data-path worker (src/datapath/worker.ts).

import { Worker } from 'node:worker_threads';
import type { DataPathWorkerData } from '../shared/commands.js';

export function spawnDataPathWorker(workerData: DataPathWorkerData): Worker {
  return new Worker(new URL('./worker.js', import.meta.url), {
    workerData,
    name: `twinframe-datapath-${workerData.path === 0 ? 'a' : 'b'}`,
    // Small, steady heaps: young-generation scavenges stay short on the hot loop.
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
  });
}
