// The wires of interleaved sessions (RTP on the viewer's RTSP connection,
// src/shared/wire.ts) live in shared regions when the process is one of a pair:
// the standby maps each one its primary makes, and its data paths write to the
// very same ring after a takeover, so the byte stream on the connection goes on
// where the dead primary's writes stopped (a frame half sent is finished, none
// is sent twice, and datagrams already in the ring are not appended again).
//
// Names: `wire-<link tag>-<pid>-<n>` in the pair's private directory. A process
// removes the names of the wires its RTSP server is done with, and every name it
// still owns when it stops. A standby that takes over owns the names of the wires
// it followed, and removes the dead primary's others (sessions it never saw).

import fs from 'node:fs';
import path from 'node:path';
import type { WireMemory } from '../rtsp/server.js';
import { createSharedRegion, openSharedRegion, removeSharedRegion } from './native-pair.js';
import { pairRegionPath } from './shared-blocks.js';

export class SharedWires implements WireMemory {
  readonly #link: string;
  #next = 0;
  /** Names this process removes when it stops: the wires it made, and those it took over. */
  readonly #owned = new Set<string>();

  constructor(link: string) {
    this.#link = link;
  }

  create(bytes: number): { sab: SharedArrayBuffer; region: string } {
    const region = `${pairRegionPath(this.#link, 'wire')}${this.#next++}`;
    removeSharedRegion(region); // a dead process of the same pid left it
    const sab = createSharedRegion(region, bytes);
    this.#owned.add(region);
    return { sab, region };
  }

  remove(region: string): void {
    removeSharedRegion(region);
    this.#owned.delete(region);
  }

  /** Map a wire the primary made (a standby follows its session). */
  map(region: string, bytes: number): SharedArrayBuffer {
    return openSharedRegion(region, bytes);
  }

  /**
   * The primary `pid` died and this process took its sessions over: the wires it
   * followed are this process's to remove from now on, and the dead one's others go now.
   */
  tookOver(pid: number, followed: Iterable<string>): void {
    const keep = new Set(followed);
    for (const region of keep) this.#owned.add(region);
    const prefix = pairRegionPath(this.#link, 'wire', pid);
    const dir = path.dirname(prefix);
    for (const name of fs.readdirSync(dir)) {
      const region = path.join(dir, name);
      if (region.startsWith(prefix) && !keep.has(region)) removeSharedRegion(region);
    }
  }

  /** This process stops: every name it owns goes. */
  removeAll(): void {
    for (const region of this.#owned) removeSharedRegion(region);
    this.#owned.clear();
  }
}
