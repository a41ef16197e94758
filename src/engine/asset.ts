// Turns an indexed catalog asset into what the engine hands to the data paths:
// file paths, the packet count, where the packet-time table starts, and which
// file (device, inode) the catalog approved.

import type { IndexedAsset } from '../catalog/index-pool.js';
import type { EngineAsset } from './session-table.js';

export function toEngineAsset(indexed: IndexedAsset): EngineAsset {
  return {
    assetPath: indexed.assetPath,
    indexPath: indexed.indexPath,
    packetCount: indexed.meta.packetCount,
    timesOffset: indexed.timesOffset,
    bitrate: indexed.meta.bitrate,
    identity: indexed.identity,
    randomAccess: indexed.meta.randomAccess,
  };
}
