// Indexes an asset by its name, for tests: production indexes a descriptor the
// index pool opened and checked (indexOpenAsset in src/catalog/asset-index.ts).

import fs from 'node:fs';
import path from 'node:path';
import { indexOpenAsset, openRefusal } from '../../src/catalog/asset-index.js';
import type { AssetIndex } from '../../src/index-format/index-format.js';
import { ASSET_OPEN_FLAGS } from '../../src/shared/asset-file.js';

/** Indexes the MPEG-TS file at `filePath`; refuses it with a TwinframeError naming the file and the problem. */
export function buildAssetIndex(filePath: string): AssetIndex {
  const file = path.resolve(filePath);
  let fd: number;
  try {
    fd = fs.openSync(file, ASSET_OPEN_FLAGS);
  } catch (err) {
    throw openRefusal(file, err);
  }
  try {
    return indexOpenAsset(fd, file);
  } finally {
    fs.closeSync(fd);
  }
}
