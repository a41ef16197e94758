// Turns an indexed catalog asset into what the engine hands to the data paths:
// file paths, the packet count and where the packet-time table starts.

import { open } from 'node:fs/promises';
import { IndexHeader } from '../catalog/index-file.js';
import type { IndexedAsset } from '../catalog/index-pool.js';
import { TwinframeError } from '../errors.js';
import type { EngineAsset } from './engine.js';

export async function toEngineAsset(indexed: IndexedAsset): Promise<EngineAsset> {
  const header = Buffer.alloc(IndexHeader.SIZE);
  const file = await open(indexed.indexPath, 'r');
  try {
    const { bytesRead } = await file.read(header, 0, IndexHeader.SIZE, 0);
    if (bytesRead !== IndexHeader.SIZE) throw new TwinframeError('TF_INDEX_CORRUPT', `index ${indexed.indexPath} is shorter than its header`);
  } finally {
    await file.close();
  }
  return {
    assetPath: indexed.assetPath,
    indexPath: indexed.indexPath,
    packetCount: indexed.meta.packetCount,
    timesOffset: header.readUInt32LE(IndexHeader.TIMES_OFFSET_OFFSET),
    bitrate: indexed.meta.bitrate,
  };
}
