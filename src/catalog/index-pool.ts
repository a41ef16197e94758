// Indexes assets on a one-thread piscina pool and caches the results as
// '.tfidx' files keyed by the asset's absolute path; a cached index is reused
// while the asset's size and mtime still match, and concurrent requests for one
// asset share a single build. The head of a cached index (its metadata: JSON
// and a schema check, ~100-200 ms for an asset with 100 k random-access points)
// is also kept in memory, for a bounded number of assets, while neither the
// asset nor its index file has changed: a DESCRIBE then costs two fstats.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Piscina } from 'piscina';
import { TwinframeError, type ErrorCode } from '../errors.js';
import { ASSET_OPEN_FLAGS, inodeOf, type AssetIdentity } from '../shared/asset-file.js';
import { notRegularRefusal, openRefusal } from './asset-index.js';
import { INDEX_FILE_EXTENSION, type AssetIndexMeta } from '../index-format/index-format.js';
import { readIndexHeadAsync, type IndexHead } from './index-file.js';
import { deserializeError, type IndexTask, type IndexTaskResult } from './index-worker.js';

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
}

/** The cache file of an asset: the first 16 hex digits of sha256(absolute path). */
export function indexPathFor(assetPath: string, cacheDir: string): string {
  const key = createHash('sha256').update(path.resolve(assetPath)).digest('hex').slice(0, 16);
  return path.join(path.resolve(cacheDir), key + INDEX_FILE_EXTENSION);
}

/** Index heads kept in memory (a few KiB each; a large random-access list more): the most recently used. */
const MAX_HEADS = 256;

/** Refusals that depend only on the file's bytes; read errors may be transient and are retried. */
const CONTENT_VERDICTS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TF_ASSET_EMPTY',
  'TF_ASSET_NOT_TS',
  'TF_ASSET_TRUNCATED',
  'TF_ASSET_NO_PAT',
  'TF_ASSET_NO_PMT',
  'TF_ASSET_NO_PCR',
]);

interface Failure {
  size: number;
  mtimeMs: number;
  error: TwinframeError;
}

export class IndexPool {
  readonly #piscina: Piscina<IndexTask, IndexTaskResult>;
  readonly #inflight = new Map<string, Promise<IndexedAsset>>();
  /** Assets that failed to index, by index path: not rebuilt until they change. */
  readonly #failed = new Map<string, Failure>();
  readonly #stats: IndexPoolStats = { builds: 0, cacheHits: 0, memoryHits: 0, shared: 0, failures: 0 };
  /** Index heads read lately, by index path, least recently used first (a Map keeps insertion order). */
  readonly #heads = new Map<string, { readonly key: string; readonly head: IndexHead }>();
  readonly #onBuilt: ((ms: number, ok: boolean) => void) | undefined;
  #closed = false;

  constructor(options: IndexPoolOptions = {}) {
    this.#piscina = new Piscina<IndexTask, IndexTaskResult>({
      filename: new URL('./index-worker.js', import.meta.url).href,
      // One thread: indexing is disk-bound, and a second one would only compete
      // with the data paths for the two cores.
      maxThreads: 1,
      minThreads: 0,
      idleTimeout: options.idleTimeout ?? 30_000,
    });
    this.#onBuilt = options.onBuilt;
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

      const cached = await this.#cachedHead(indexPath);
      if (
        cached !== undefined &&
        cached.meta.sourcePath === assetPath &&
        cached.meta.sourceSize === st.size &&
        cached.meta.sourceMtimeMs === st.mtimeMs
      ) {
        this.#stats.cacheHits++;
        return indexedAsset(assetPath, indexPath, cached, inode);
      }

      const failed = this.#failed.get(indexPath);
      if (failed !== undefined && failed.size === st.size && failed.mtimeMs === st.mtimeMs) {
        // Same bytes as last time: the answer cannot have changed, so do not pay for a rescan.
        throw new TwinframeError(failed.error.code, failed.error.message, { ...failed.error.details });
      }

      await fs.promises.mkdir(path.dirname(indexPath), { recursive: true });
      this.#stats.builds++;
      const started = performance.now();
      const result = await this.#piscina.run({ assetPath, indexPath, fd: handle.fd });
      this.#onBuilt?.(performance.now() - started, result.ok);
      if (!result.ok) {
        this.#stats.failures++;
        const error = deserializeError(result.error);
        if (error instanceof TwinframeError && CONTENT_VERDICTS.has(error.code)) this.#failed.set(indexPath, { size: st.size, mtimeMs: st.mtimeMs, error });
        throw error;
      }
      this.#failed.delete(indexPath);
      // Read back what was written: the data paths will pread this very file.
      return indexedAsset(assetPath, indexPath, await readIndexHeadAsync(indexPath), inode);
    } finally {
      await handle.close();
    }
  }

  /**
   * The head of the cached index file, from memory while the file is the one it
   * was read from (device, inode, size, mtime, ctime: a rewrite or a replacement
   * changes one of them), else read and remembered. Undefined: no usable file.
   */
  async #cachedHead(indexPath: string): Promise<IndexHead | undefined> {
    const st = await fs.promises.stat(indexPath, { bigint: true }).catch(() => undefined);
    if (st === undefined) {
      this.#heads.delete(indexPath);
      return undefined;
    }
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const remembered = this.#heads.get(indexPath);
    this.#heads.delete(indexPath);
    if (remembered?.key === key) {
      this.#heads.set(indexPath, remembered); // most recently used now
      this.#stats.memoryHits++;
      return remembered.head;
    }
    const head = await readIndexHeadAsync(indexPath).catch(() => undefined);
    if (head === undefined) return undefined;
    this.#heads.set(indexPath, { key, head });
    if (this.#heads.size > MAX_HEADS) this.#heads.delete(this.#heads.keys().next().value!);
    return head;
  }

  /** Stops the indexing thread; pending and later requests fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#piscina.destroy();
  }
}
