// The control blocks of a process pair's engines live in shared memory: each
// process keeps its pairs' blocks in regions of the private runtime directory
// (named by the link and its pid), and the standby maps its primary's, so at
// takeover it reads every session's exact cursor, segment and flags where the
// primary's data paths left them, whatever the link had carried by then.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { ControlBlock } from '../shared/control-block.js';
import { computeLayout } from '../shared/layout.js';
import { createSharedRegion, openSharedRegion, pairRuntimeDir, removeSharedRegion } from './native-pair.js';

/** This process's control-block regions: the engine's memory for them, their names for the standby, their removal. */
export interface SharedBlocks {
  /** The regions made so far, by pair index. */
  readonly files: readonly string[];
  /** EngineOptions.controlBlockMemory. */
  readonly memory: (pair: number, bytes: number) => SharedArrayBuffer;
  /** Remove the names (the memory lives while a process maps it). */
  readonly remove: () => void;
}

/** Process `pid`'s region `kind` of the pair on `link` (default: this process's), named by the link and the pid (a SIGKILLed process's names are found by `-<pid>-`). */
export function pairRegionPath(link: string, kind: string, pid = process.pid): string {
  const tag = createHash('sha256').update(path.resolve(link)).digest('hex').slice(0, 16);
  return path.join(pairRuntimeDir(), `${kind}-${tag}-${pid}-`);
}

export function sharedBlocks(link: string): SharedBlocks {
  const files: string[] = [];
  return {
    files,
    memory: (pair, bytes) => {
      const file = `${pairRegionPath(link, 'cb')}${pair}`;
      removeSharedRegion(file); // a dead process of the same pid left it
      const sab = createSharedRegion(file, bytes);
      files[pair] = file;
      return sab;
    },
    remove: () => {
      for (const file of files) removeSharedRegion(file);
    },
  };
}

/** Map the primary's control blocks (read at takeover; never written). */
export function mapPeerBlocks(files: readonly string[], maxSessions: number): ControlBlock[] {
  const bytes = computeLayout(maxSessions).byteLength;
  return files.map((file) => ControlBlock.attach(openSharedRegion(file, bytes), maxSessions));
}
