// The pair runs one broadcast table: the primary's. It crosses the link
// ('broadcast-table') when a standby joins and after every change of the
// running table, and the standby's broadcast manager keeps it for when it
// sends (BroadcastManager.followTable). Without it each process would run its
// own configuration's table at a takeover, and a difference would close or
// start broadcasts at the very moment the pair is least protected.
//
// The broadcast manager starts after the pair (src/server.ts), so both sides
// are attached to it once it exists: a primary's table before that is empty
// (it has run nothing yet), and a standby keeps what it received.

import type { BroadcastConfig } from '../config/schema.js';

/** What the pair needs of this process's broadcast manager (src/broadcast/manager.ts). */
export interface PairBroadcasts {
  table(): BroadcastConfig[];
  on(event: 'table', listener: (table: BroadcastConfig[]) => void): unknown;
  followTable(table: readonly BroadcastConfig[]): void;
}

export class BroadcastTableLink {
  #manager: PairBroadcasts | undefined;
  /** A standby's: received before the manager existed. */
  #received: readonly BroadcastConfig[] | undefined;
  readonly #listeners = new Set<(table: BroadcastConfig[]) => void>();

  attach(manager: PairBroadcasts): void {
    this.#manager = manager;
    manager.on('table', (table) => {
      for (const listener of this.#listeners) listener(table);
    });
    if (this.#received) manager.followTable(this.#received);
    this.#received = undefined;
  }

  /** The primary side: the table as it runs now. */
  snapshot(): BroadcastConfig[] {
    return this.#manager?.table() ?? [];
  }

  /** The primary side: every change from now on; returns the function that stops it. */
  watch(listener: (table: BroadcastConfig[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The standby side: the primary's table. */
  received(table: readonly BroadcastConfig[]): void {
    if (this.#manager) this.#manager.followTable(table);
    else this.#received = table;
  }
}
