// Spawns a data-path worker (src/datapath/worker.ts).

import { Worker } from 'node:worker_threads';
import { PATH_NAMES } from '../shared/layout.js';
import type { DataPathWorkerData } from '../shared/messages.js';

export function spawnDataPathWorker(workerData: DataPathWorkerData): Worker {
  return new Worker(new URL('./worker.js', import.meta.url), {
    workerData,
    name: `twinframe-datapath-${workerData.pair}${PATH_NAMES[workerData.path]}`,
    // Small, steady heaps: young-generation scavenges stay short on the hot loop.
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
  });
}
