// A data path's own reader thread, as the path sees it: a worker the path
// starts itself (so it lives and dies with the path, and a disk that hangs on
// this path's files stalls only this thread, never the twin's reader or the
// process-wide libuv threadpool both paths would share). Chunk requests go
// through each session's ring (./chunk-ring.ts) and a doorbell word; session
// registrations and faults go by message, a few per session.

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ControlBlock } from '../shared/control-block.js';
import type { PathToReader, ReadAsset, ReaderWorkerData } from '../shared/messages.js';
import type { ChunkRing } from './chunk-ring.js';

export class ReaderThread {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly doorbell = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;
  private stopping = false;
  /** Set when the thread died: the reads the path still waits for will never come. */
  failure: Error | undefined;

  constructor(cb: ControlBlock, name: string) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    const workerData: ReaderWorkerData = { controlBlock: cb.sab, maxSessions: cb.layout.maxSessions, doorbell: this.doorbell.buffer, port: channel.port2 };
    this.worker = new Worker(new URL('./reader-worker.js', import.meta.url), {
      workerData,
      transferList: [channel.port2],
      name,
      // It keeps a few objects per session: a small heap (a Worker's isolate still costs ~9 MiB of RSS).
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 },
    });
    this.worker.on('error', (err) => { this.failure ??= err; });
    this.worker.on('exit', (code) => {
      if (!this.stopping) this.failure ??= new Error(`it exited with code ${code}`);
    });
    // The path's own loop decides when it ends; this thread never keeps it alive.
    this.worker.unref();
    this.port.unref();
  }

  /** Serve `ring`'s requests from now on; returns its id. */
  open(ring: ChunkRing, asset: ReadAsset): number {
    const id = this.nextId++;
    this.post({ type: 'open', id, ring: ring.sab, asset });
    return id;
  }

  close(id: number): void {
    this.post({ type: 'close', id });
  }

  slowDisk(delayMs: number): void {
    this.post({ type: 'slow-disk', delayMs });
  }

  /** A chunk was requested: wake the reader. */
  ring(): void {
    Atomics.add(this.doorbell, 0, 1);
    Atomics.notify(this.doorbell, 0);
  }

  stop(): Promise<number> {
    this.stopping = true;
    return this.worker.terminate();
  }

  private post(message: PathToReader): void {
    this.port.postMessage(message);
    this.ring();
  }
}
