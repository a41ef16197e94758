// Piscina worker entry: proves an asset's cached '.tfidx' file (validated whole,
// content check compared) or builds and writes a new one, off the main thread. Also the error envelope both sides share: piscina would
// turn a thrown TwinframeError into a plain Error and lose its code, so the
// worker returns failures as data and the pool rebuilds the TwinframeError.

import fs from 'node:fs';
import { TwinframeError, errorCodes, type ErrorCode } from '../errors.js';
import { indexOpenAsset } from './asset-index.js';
import { assetContentCheck } from './content-check.js';
import { readVerifiedIndexHead, writeIndexFile, type VerifiedIndexHead } from './index-file.js';
import type { RandomAccessPoint } from '../index-format/index-format.js';

export interface IndexTask {
  /** Absolute path of the .ts asset, for messages and the index's sourcePath. */
  assetPath: string;
  /**
   * The asset, opened by the pool with ASSET_OPEN_FLAGS (threads share the
   * process's descriptors): the worker indexes the file the pool checked, and
   * never opens a name itself. The pool closes it when the task is done.
   */
  fd: number;
  /** Where to write the index; its directory must exist. */
  indexPath: string;
  /** Use the index file already at indexPath if it proves itself for this asset (else build). */
  reuse?: boolean;
  /** media.maxRandomAccessPoints (asset-index.ts DEFAULT_MAX_RANDOM_ACCESS_POINTS when absent). */
  maxRandomAccessPoints?: number;
}

/** An error as plain, structured-clonable data. */
export interface SerializedError {
  /** Set when the error was a TwinframeError: rebuild it with this code. */
  code: ErrorCode | undefined;
  name: string;
  message: string;
  details: Record<string, unknown>;
  /** errno code (ENOSPC, EACCES, ...) of a non-twinframe system error. */
  errno: string | undefined;
}

/**
 * What a task did. `built`: the asset was indexed (else the cached file was
 * used). `rejected`: why the cached file was refused, when it was present,
 * current and still refused (planted or corrupt: worth a log line).
 */
export type IndexTaskResult =
  | ({ ok: true; built: boolean; rejected: string | undefined } & VerifiedIndexHead)
  | { ok: false; error: SerializedError; rejected: string | undefined };

/** Keeps only what survives structured cloning and JSON: details are for logs, not objects. */
function plainDetails(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof TwinframeError) {
    return { code: err.code, name: err.name, message: err.message, details: plainDetails(err.details), errno: undefined };
  }
  if (err instanceof Error) {
    const errno = (err as NodeJS.ErrnoException).code;
    return { code: undefined, name: err.name, message: err.message, details: {}, errno: typeof errno === 'string' ? errno : undefined };
  }
  return { code: undefined, name: 'Error', message: String(err), details: {}, errno: undefined };
}

export function deserializeError(e: SerializedError): Error {
  if (e.code !== undefined && Object.hasOwn(errorCodes, e.code)) return new TwinframeError(e.code, e.message, e.details);
  const err = new Error(e.message) as NodeJS.ErrnoException;
  err.name = e.name;
  if (e.errno !== undefined) err.code = e.errno;
  return err;
}

/**
 * The cached index, if it is this asset's and valid whole: undefined when there is
 * none or it is stale (the asset changed since, or an older format), the reason
 * when it is refused.
 */
function cachedIndex(task: IndexTask): VerifiedIndexHead | string | undefined {
  let found: VerifiedIndexHead;
  try {
    found = readVerifiedIndexHead(task.indexPath);
  } catch (err) {
    if (err instanceof TwinframeError && (err.details.errno === 'ENOENT' || err.details.version !== undefined)) return undefined;
    return err instanceof Error ? err.message : String(err);
  }
  const { meta } = found;
  const st = fs.fstatSync(task.fd);
  if (meta.sourceSize !== st.size || meta.sourceMtimeMs !== st.mtimeMs) return undefined;
  if (meta.sourcePath !== task.assetPath) return `asset index ${task.indexPath} describes ${meta.sourcePath}, not ${task.assetPath}`;
  if (meta.contentCheck !== assetContentCheck(task.fd, st.size, task.assetPath)) {
    return `asset index ${task.indexPath} was not made from the bytes of ${task.assetPath} (its content check differs)`;
  }
  return found;
}

/** The task piscina runs: never throws, so error codes survive the thread boundary. */
export default function indexAsset(task: IndexTask): IndexTaskResult {
  let rejected: string | undefined;
  try {
    if (task.reuse === true) {
      const found = cachedIndex(task);
      if (typeof found === 'object') return { ok: true, built: false, rejected: undefined, ...found };
      rejected = found;
    }
    const index = indexOpenAsset(task.fd, task.assetPath, task.maxRandomAccessPoints);
    writeIndexFile(task.indexPath, index);
    // Read back what was written, as every reader will: the data paths pread this very file.
    return { ok: true, built: true, rejected, ...readVerifiedIndexHead(task.indexPath) };
  } catch (err) {
    return { ok: false, error: serializeError(err), rejected };
  }
}

/**
 * A result as it crosses to the main thread: the random-access points as one
 * Uint32Array of (packet, ticks, videoPackets) triples, not 100 k objects. Cloning
 * those objects cost the main thread ~60 ms for an asset with 100 k points; a
 * typed array is one copy, and rebuilding the objects a few ms.
 */
export type IndexTaskReply =
  | (Extract<IndexTaskResult, { ok: true }> & { packedRandomAccess: Uint32Array })
  | Extract<IndexTaskResult, { ok: false }>;

/** The entry the pool runs (piscina `name`): indexAsset, its reply packed for the trip. */
export function indexAssetPacked(task: IndexTask): IndexTaskReply {
  const result = indexAsset(task);
  if (!result.ok) return result;
  const raps = result.meta.randomAccess;
  const packed = new Uint32Array(3 * raps.length);
  raps.forEach((rap, i) => packed.set([rap.packet, rap.ticks, rap.videoPackets], 3 * i));
  return { ...result, meta: { ...result.meta, randomAccess: [] }, packedRandomAccess: packed };
}

/** The reply's result as indexAsset returned it (main thread). */
export function unpackReply(reply: IndexTaskReply): IndexTaskResult {
  if (!reply.ok) return reply;
  const { packedRandomAccess: packed, ...result } = reply;
  const randomAccess = new Array<RandomAccessPoint>(packed.length / 3);
  for (let i = 0; i < randomAccess.length; i++) randomAccess[i] = { packet: packed[3 * i], ticks: packed[3 * i + 1], videoPackets: packed[3 * i + 2] };
  return { ...result, meta: { ...result.meta, randomAccess } };
}
