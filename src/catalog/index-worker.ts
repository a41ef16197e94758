// Piscina worker entry: builds one asset's index and writes its '.tfidx' file,
// off the main thread. Also the error envelope both sides share: piscina would
// turn a thrown TwinframeError into a plain Error and lose its code, so the
// worker returns failures as data and the pool rebuilds the TwinframeError.

import { TwinframeError, errorCodes, type ErrorCode } from '../errors.js';
import { indexOpenAsset } from './asset-index.js';
import type { AssetIndexMeta } from '../index-format/index-format.js';
import { writeIndexFile } from './index-file.js';

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

export type IndexTaskResult = { ok: true; meta: AssetIndexMeta } | { ok: false; error: SerializedError };

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

/** The task piscina runs: never throws, so error codes survive the thread boundary. */
export default function indexAsset(task: IndexTask): IndexTaskResult {
  try {
    const index = indexOpenAsset(task.fd, task.assetPath);
    writeIndexFile(task.indexPath, index);
    return { ok: true, meta: index.meta };
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
}
