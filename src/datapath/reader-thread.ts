// A data path's own reader thread, as the path sees it: a worker the path
// starts itself (so it lives and dies with the path, and a disk that hangs on
// this path's files stalls only this thread, never the twin's reader or the
// process-wide libuv threadpool both paths would share). Chunk requests go
// through each session's ring (./chunk-ring.ts) and a doorbell word; session
// registrations and faults go by message, a few per session.

import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { ControlBlock } from '../shared/control-block.js';
import type { PathToReader, ReadAsset, ReaderToPath, ReaderWorkerData } from '../shared/messages.js';
import type { ChunkRing } from './chunk-ring.js';

/** Word 0 of the doorbell buffer rings the reader; word READY_WORD is set once it runs. */
export const READY_WORD = 1;
/** How long a path waits for its reader to come up before it starts anyway (its reads are then just late). */
const READY_TIMEOUT_MS = 2000;

export class ReaderThread {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly doorbell = new Int32Array(new SharedArrayBuffer(8));
  private nextId = 1;
  /** Trick play: key-frame tables (or why not) the thread answered, by ring id (undefined: asked, not answered yet). */
  private readonly keyAnswers = new Map<number, ReaderToPath | undefined>();
  private stopping = false;
  /** Set when the thread died: the reads the path still waits for will never come. */
  failure: Error | undefined;

  /** `id`: the path's pair and name ("0a"), for the thread's names. */
  constructor(cb: ControlBlock, id: string) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    const workerData: ReaderWorkerData = { threadName: `tf-read-${id}`, controlBlock: cb.sab, maxSessions: cb.layout.maxSessions, doorbell: this.doorbell.buffer, port: channel.port2 };
    this.worker = new Worker(new URL('./reader-worker.js', import.meta.url), {
      workerData,
      transferList: [channel.port2],
      name: `twinframe-reader-${id}`,
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

  /**
   * Resolves once the thread runs (a worker takes tens of ms to boot): a path
   * that started its loop before would report itself synced while its first
   * reads still wait for the boot, and a stream it resumes would start late.
   */
  async ready(): Promise<void> {
    const wait = Atomics.waitAsync(this.doorbell, READY_WORD, 0, READY_TIMEOUT_MS);
    if (wait.async) {
      // A pending waitAsync does not keep the event loop alive; this timer does, for as long.
      const timer = setTimeout(() => {}, READY_TIMEOUT_MS);
      await wait.value;
      clearTimeout(timer);
    }
  }

  /** Serve `ring`'s requests from now on; returns its id. */
  open(ring: ChunkRing, asset: ReadAsset): number {
    const id = this.nextId++;
    this.post({ type: 'open', id, ring: ring.sab, asset });
    return id;
  }

  close(id: number): void {
    this.keyAnswers.delete(id);
    this.post({ type: 'close', id });
  }

  /** Trick play: ask for the key-frame table of ring `id`'s asset (once per session). */
  askKeys(id: number): void {
    this.keyAnswers.set(id, undefined);
    this.post({ type: 'keys', id });
  }

  /** The thread's answer to askKeys(id), once it came (read from the port without waiting). */
  keysFor(id: number): ReaderToPath | undefined {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      const answer = m.message as ReaderToPath;
      if (this.keyAnswers.has(answer.id)) this.keyAnswers.set(answer.id, answer); // else its session closed meanwhile
    }
    return this.keyAnswers.get(id);
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
