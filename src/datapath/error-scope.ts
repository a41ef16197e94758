// Which part of the server an error belongs to, and so what it may take down:
// only a fault of this path fails this path (README, "Error scopes").
//
//   path     this path's thread, socket or files: fail over to the twin
//   session  the session's destination or stream address: end that session
//   asset    the asset's file: end every session of the asset, refuse the asset
//
// Some errors carry their evidence (the file ended where its index says data
// is; bind or connect refused, which path-session.ts reports directly). A read
// error or a stalled send says nothing by itself: the control block's per-session
// fault bits tell whether the twin failed on the same session too.

import type { ControlBlock } from '../shared/control-block.js';
import { partnerOf, type PathId, type SessionIo } from '../shared/layout.js';
import { AssetError, DiskError } from './asset-reader.js';
import { SendStalledError, ViewerConnectionError } from './path-session.js';

export type ErrorScope = 'path' | 'session' | 'asset';

/**
 * The scope of an error thrown while this path served (or opened) session
 * `slot`. A read or send failure is this path's unless the twin failed on the
 * same session too, or this path already had in an earlier life (a fresh worker
 * failing again where its twin does not is not a disk gone bad twice): then it is
 * the asset's (read) or the session's (send). With no twin online to take over,
 * failing the only sender would stop every stream, so the session ends instead;
 * that is no evidence against the asset, which stays available.
 */
export function scopeOf(err: unknown, cb: ControlBlock, path: PathId, slot: number): ErrorScope {
  if (err instanceof AssetError) return 'asset';
  if (err instanceof ViewerConnectionError) return 'session';
  const io: SessionIo | undefined = err instanceof DiskError ? 'read' : err instanceof SendStalledError ? 'send' : undefined;
  if (io === undefined) return 'path';
  const { twin, own } = cb.recordSessionFault(slot, path, io);
  if (twin || own) return io === 'read' ? 'asset' : 'session';
  return cb.isOnline(partnerOf(path)) ? 'path' : 'session';
}
