// The primary's side of the life lock (native-pair.ts): a region of its own
// holding the lock, which its main thread takes at once and holds for the
// process's life. The standby's takeover thread (native-takeover.ts) waits on
// it: the kernel hands it on as "owner died" as soon as the primary starts to
// die, before its memory teardown. It is never released on a close: a release
// means "take sending now" (a role switch), and a closing primary still sends.

import { acquireLifeLock, createSharedRegion, initLifeLock, LIFE_LOCK_BYTES, lifeLockWords, openSharedRegion, removeSharedRegion } from './native-pair.js';
import { pairRegionPath } from './shared-blocks.js';

/** The region's size: the lock alone. */
export const LIFE_REGION_BYTES = LIFE_LOCK_BYTES;

export interface HeldLifeLock {
  /** The region's name, for the standby to map. */
  readonly file: string;
  /** Remove the name (the lock stays held: the process's exit lets it go). */
  readonly removeName: () => void;
}

/** Make this process's life lock on the pair's `link` and take it on this thread (the main thread: it lives as long as the process). */
export function holdLifeLock(link: string): HeldLifeLock {
  const file = `${pairRegionPath(link, 'life')}lock`;
  removeSharedRegion(file); // a dead process of the same pid left it
  const lock = lifeLockWords(createSharedRegion(file, LIFE_REGION_BYTES), 0);
  initLifeLock(lock);
  if (acquireLifeLock(lock, 0) !== 'taken') throw new Error(`cannot take the new life lock ${file}`);
  return { file, removeName: () => removeSharedRegion(file) };
}

/** The primary's life lock, mapped by its standby. */
export function mapLifeLock(file: string): Int32Array {
  return lifeLockWords(openSharedRegion(file, LIFE_REGION_BYTES), 0);
}
