// The wires of interleaved sessions (RTP on the viewer's RTSP connection,
// src/shared/wire.ts) live in shared regions when the process is one of a pair:
// the standby maps each one its primary makes, and its data paths write to the
// very same ring after a takeover, so the byte stream on the connection goes on
// where the dead primary's writes stopped (a frame half sent is finished, none
// is sent twice, and datagrams already in the ring are not appended again).
//
// Names: `wire-<link tag>-<pid>-<nonce>-<n>` in the pair's private directory. A process
// removes the names of the wires its RTSP server is done with, and every name it
// still owns when it stops. A standby that takes over owns the names of the wires
// it followed (a primary that hands over forgets them), and after a death removes
// the dead primary's others (sessions it never saw).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { WireMemory } from '../rtsp/server.js';
import { createSharedRegion, openSharedRegion, removeSharedRegion } from './native-pair.js';
import { pairRegionPath } from './shared-blocks.js';

export class SharedWires implements WireMemory {
  readonly #link: string;
  #next = 0;
  readonly #nonce = randomBytes(4).toString('hex');
  /** Names this process removes when it stops: the wires it made, and those it took over. */
  readonly #owned = new Set<string>();

  constructor(link: string) {
    this.#link = link;
  }

  create(bytes: number): { sab: SharedArrayBuffer; region: string } {
    // The nonce: a dead process of the same pid may have left a name that a survivor still carries.
    const region = `${pairRegionPath(this.#link, 'wire')}${this.#nonce}-${this.#next++}`;
    const sab = createSharedRegion(region, bytes);
    this.#owned.add(region);
    return { sab, region };
  }

  remove(region: string): void {
    removeSharedRegion(region);
    this.#owned.delete(region);
  }

  forget(region: string): void {
    this.#owned.delete(region);
  }

  /** Map a wire the primary made (a standby follows its session). */
  map(region: string, bytes: number): SharedArrayBuffer {
    return openSharedRegion(region, bytes);
  }

  /** This process took the sessions of these wires over (a death or a role switch): their names are its to remove. */
  own(regions: Iterable<string>): void {
    for (const region of regions) this.#owned.add(region);
  }

  /**
   * The primary died: the pair's wires no session here carries (`keep`) go, the
   * dead one's (sessions this process never followed) and any it had taken over
   * itself. Only the two processes of the pair name wires of this link.
   */
  removeUnused(keep: Iterable<string>): void {
    const kept = new Set(keep);
    const ownPrefix = pairRegionPath(this.#link, 'wire');
    const linkPrefix = ownPrefix.slice(0, ownPrefix.length - `${process.pid}-`.length);
    const dir = path.dirname(ownPrefix);
    for (const name of fs.readdirSync(dir)) {
      const region = path.join(dir, name);
      if (region.startsWith(linkPrefix) && !region.startsWith(ownPrefix) && !kept.has(region)) removeSharedRegion(region);
    }
  }

  /** This process stops: every name it owns goes. */
  removeAll(): void {
    for (const region of this.#owned) removeSharedRegion(region);
    this.#owned.clear();
  }
}
