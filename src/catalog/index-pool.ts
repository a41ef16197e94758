// Indexes assets on a one-thread piscina pool and caches the results as
// '.tfidx' files keyed by the asset's absolute path. A cached index is used only
// once it has proved itself on that thread (validated whole, its
// content check matching the asset's bytes); a planted or corrupt one is logged
// and rebuilt. Concurrent requests for one asset share a single task. A proved
// (or freshly built) index head is kept in memory, for a bounded number of assets
// and random-access points, while neither the asset nor its index file has
// changed: a DESCRIBE then costs an open, two fstats, a stat and a close. A
// failure is remembered too, until the asset changes (a transient one, such as
// ENOSPC while writing, for a back-off of 30 s only), so a refused asset is not
// indexed again by every DESCRIBE and SETUP.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { TwinframeError } from '../errors.js';
import { ASSET_OPEN_FLAGS, inodeOf, type AssetIdentity } from '../shared/asset-file.js';
import { DEFAULT_MAX_RANDOM_ACCESS_POINTS, notRegularRefusal, openRefusal } from './asset-index.js';
import { INDEX_FILE_EXTENSION, type AssetIndexMeta } from '../index-format/index-format.js';
import { indexFileKey, type IndexHead } from './index-file.js';
import { deserializeError, unpackReply, type IndexTask, type IndexTaskReply } from './index-worker.js';

export interface IndexedAsset {
  /** Absolute path of the asset. */
  assetPath: string;
  indexPath: string;
  meta: AssetIndexMeta;
  /** Byte offset of the packet-time table in the index file (from the same validated read as meta). */
  timesOffset: number;
  /** Where the pictures table is (index-format.ts AssetIndex.pictures), and its entries. */
  picturesOffset: number;
  pictureCount: number;
  /** The file that was indexed: device and inode of the opened asset, size and mtime as indexed. */
  identity: AssetIdentity;
}

function indexedAsset(
  assetPath: string,
  indexPath: string,
  head: IndexHead,
  inode: { dev: string; ino: string },
): IndexedAsset {
  const identity = { ...inode, size: head.meta.sourceSize, mtimeMs: head.meta.sourceMtimeMs };
  const { meta, timesOffset, picturesOffset, pictureCount } = head;
  return { assetPath, indexPath, meta, timesOffset, picturesOffset, pictureCount, identity };
}

export interface IndexPoolOptions {
  /** How long the indexing thread may sit idle before it exits (ms). */
  idleTimeout?: number;
  /** Called after each build (not a cache hit) with its duration and whether it indexed the asset (metrics). */
  onBuilt?: (ms: number, ok: boolean) => void;
  /** Where a rejected (planted or corrupt) cached index is reported. */
  logger?: Logger;
  /** media.maxRandomAccessPoints: an asset with more is refused. */
  maxRandomAccessPoints?: number;
  /** How long a failure with an errno (ENOSPC, EIO, ...) is remembered before the asset is tried again (ms). */
  failureRetryMs?: number;
}

export interface IndexPoolStats {
  /** Indexes built by the worker. */
  builds: number;
  /** Requests answered from a valid cached index file. */
  cacheHits: number;
  /** Of those, answered from memory, without reading the index file. */
  memoryHits: number;
  /** Requests that joined a build already in progress. */
  shared: number;
  /** Builds that refused their asset. */
  failures: number;
  /** Requests answered with a remembered failure, without indexing. */
  rememberedFailures: number;
  /** Cached index files refused (planted or corrupt) and rebuilt. */
  rejected: number;
}

/** The cache file of an asset: the first 16 hex digits of sha256(absolute path). */
export function indexPathFor(assetPath: string, cacheDir: string): string {
  const key = createHash('sha256').update(path.resolve(assetPath)).digest('hex').slice(0, 16);
  return path.join(path.resolve(cacheDir), key + INDEX_FILE_EXTENSION);
}

/** Index heads kept in memory, the most recently used: at most this many... */
const MAX_HEADS = 256;
/** ...holding at most this many random-access points in all (~50 B each as objects: ~50 MiB). */
const MAX_HEAD_POINTS = 1_000_000;

/** Failures remembered (one per asset): the most recent. */
const MAX_FAILURES = 1024;

/** A failure with an errno (ENOSPC, EIO, ...) may pass: the asset is tried again after this long by default. */
const FAILURE_RETRY_MS = 30_000;

interface Failure {
  /** The asset that failed: device, inode, size, mtime. */
  assetKey: string;
  /** performance.now() after which a transient failure is retried; Infinity for a verdict on the bytes. */
  retryAt: number;
  error: Error;
}

/** Which asset file a stat describes; a change to its bytes changes size or mtime. */
function assetKeyOf(identity: AssetIdentity): string {
  return `${identity.dev}:${identity.ino}:${identity.size}:${identity.mtimeMs}`;
}

/** A system error (the disk, not the asset's bytes): worth another try later. */
function isTransient(err: Error): boolean {
  const errno = err instanceof TwinframeError ? err.details.errno : (err as NodeJS.ErrnoException).code;
  return typeof errno === 'string';
}

/** A remembered failure, thrown afresh (a shared Error object would collect stacks from every thrower). */
function again(err: Error): Error {
  if (err instanceof TwinframeError) return new TwinframeError(err.code, err.message, { ...err.details });
  return Object.assign(new Error(err.message), { name: err.name, code: (err as NodeJS.ErrnoException).code });
}

export class IndexPool {
  readonly #piscina: Piscina<IndexTask, IndexTaskReply>;
  readonly #inflight = new Map<string, Promise<IndexedAsset>>();
  /** Assets that failed to index, by index path, oldest first: not indexed again until they change. */
  readonly #failed = new Map<string, Failure>();
  readonly #stats: IndexPoolStats = { builds: 0, cacheHits: 0, memoryHits: 0, shared: 0, failures: 0, rememberedFailures: 0, rejected: 0 };
  /** Index heads proved lately, by index path, least recently used first (a Map keeps insertion order). */
  readonly #heads = new Map<string, { readonly key: string; readonly head: IndexHead }>();
  /** Random-access points in #heads. */
  #headPoints = 0;
  readonly #onBuilt: ((ms: number, ok: boolean) => void) | undefined;
  readonly #logger: Logger | undefined;
  readonly #maxRandomAccessPoints: number;
  readonly #failureRetryMs: number;
  #closed = false;

  constructor(options: IndexPoolOptions = {}) {
    this.#piscina = new Piscina<IndexTask, IndexTaskReply>({
      filename: new URL('./index-worker.js', import.meta.url).href,
      name: 'indexAssetPacked',
      // One thread: indexing is disk-bound, and a second one would only compete
      // with the data paths for the two cores.
      maxThreads: 1,
      minThreads: 0,
      idleTimeout: options.idleTimeout ?? 30_000,
    });
    this.#onBuilt = options.onBuilt;
    this.#logger = options.logger;
    this.#maxRandomAccessPoints = options.maxRandomAccessPoints ?? DEFAULT_MAX_RANDOM_ACCESS_POINTS;
    this.#failureRetryMs = options.failureRetryMs ?? FAILURE_RETRY_MS;
  }

  get stats(): Readonly<IndexPoolStats> {
    return { ...this.#stats };
  }

  /** Returns the asset's index, from the cache when it is still valid, else built now. */
  index(assetPath: string, cacheDir: string): Promise<IndexedAsset> {
    if (this.#closed) return Promise.reject(new Error('index pool is closed'));
    const abs = path.resolve(assetPath);
    const indexPath = indexPathFor(abs, cacheDir);
    const running = this.#inflight.get(indexPath);
    if (running !== undefined) {
      this.#stats.shared++;
      return running;
    }
    const job = this.#lookupOrBuild(abs, indexPath).finally(() => this.#inflight.delete(indexPath));
    this.#inflight.set(indexPath, job);
    return job;
  }

  async #lookupOrBuild(assetPath: string, indexPath: string): Promise<IndexedAsset> {
    // Open once, check the open file, index that file: a name swapped for a FIFO
    // or another file after this point changes nothing here.
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(assetPath, ASSET_OPEN_FLAGS);
    } catch (err) {
      throw openRefusal(assetPath, err);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw notRegularRefusal(assetPath, st);
      const inode = inodeOf(await handle.stat({ bigint: true }));
      // The index file and the asset, as they are now: what a remembered head or failure must match.
      const assetKey = assetKeyOf({ ...inode, size: st.size, mtimeMs: st.mtimeMs });
      const indexKey = await fs.promises.stat(indexPath, { bigint: true }).then(indexFileKey, () => undefined);

      const remembered = this.#heads.get(indexPath);
      this.#forgetHead(indexPath);
      if (remembered !== undefined && remembered.key === `${indexKey}|${assetKey}`) {
        this.#rememberHead(indexPath, remembered.key, remembered.head); // most recently used now
        this.#stats.cacheHits++;
        this.#stats.memoryHits++;
        return indexedAsset(assetPath, indexPath, remembered.head, inode);
      }

      const failed = this.#failed.get(indexPath);
      if (failed !== undefined && failed.assetKey === assetKey && performance.now() < failed.retryAt) {
        // Same file as last time: the answer cannot have changed, so do not pay for a rescan.
        this.#stats.rememberedFailures++;
        throw again(failed.error);
      }
      this.#failed.delete(indexPath);

      await fs.promises.mkdir(path.dirname(indexPath), { recursive: true, mode: 0o700 });
      const started = performance.now();
      const task: IndexTask = { assetPath, indexPath, fd: handle.fd, reuse: indexKey !== undefined, maxRandomAccessPoints: this.#maxRandomAccessPoints };
      const result = unpackReply(await this.#piscina.run(task));
      if (result.rejected !== undefined) {
        this.#stats.rejected++;
        this.#logger?.warn({ indexPath, assetPath, problem: result.rejected }, 'cached asset index rejected; indexing the asset again');
      }
      if (result.ok) {
        // Proved (a valid cache file) or just built and read back: the next request is answered from memory.
        const { meta, timesOffset, picturesOffset, pictureCount } = result;
        this.#rememberHead(indexPath, `${result.key}|${assetKey}`, { meta, timesOffset, picturesOffset, pictureCount });
      }
      if (result.ok && !result.built) {
        this.#stats.cacheHits++;
        return indexedAsset(assetPath, indexPath, result, inode);
      }
      this.#stats.builds++;
      this.#onBuilt?.(performance.now() - started, result.ok);
      if (!result.ok) {
        this.#stats.failures++;
        const error = deserializeError(result.error);
        this.#failed.set(indexPath, { assetKey, retryAt: isTransient(error) ? performance.now() + this.#failureRetryMs : Infinity, error });
        if (this.#failed.size > MAX_FAILURES) this.#failed.delete(this.#failed.keys().next().value!);
        throw error;
      }
      return indexedAsset(assetPath, indexPath, result, inode);
    } finally {
      await handle.close();
    }
  }

  /** Keep a proved head as the most recently used; the least recently used go past either bound. */
  #rememberHead(indexPath: string, key: string, head: IndexHead): void {
    this.#forgetHead(indexPath);
    this.#heads.set(indexPath, { key, head });
    this.#headPoints += head.meta.randomAccess.length;
    while (this.#heads.size > MAX_HEADS || (this.#headPoints > MAX_HEAD_POINTS && this.#heads.size > 1)) {
      this.#forgetHead(this.#heads.keys().next().value!);
    }
  }

  #forgetHead(indexPath: string): void {
    const entry = this.#heads.get(indexPath);
    if (entry === undefined) return;
    this.#heads.delete(indexPath);
    this.#headPoints -= entry.head.meta.randomAccess.length;
  }

  /** Stops the indexing thread; pending and later requests fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#piscina.destroy();
  }
}
