// Viewers keep their RTSP sessions across a takeover (issue 17 item 3). The
// primary's RTSP server tells its standby of every session's SETUP and
// change of state (PLAY, PAUSE, end of asset) as 'rtsp-session' records on the
// link, after the engine's own steps and in the same snapshot for a standby
// that joins mid-stream; the session's end is the engine's close step. The
// standby's RTSP server holds each one dormant (no timer, no RTCP) and answers
// for it once it took over and listens: a viewer's keep-alive, PAUSE, PLAY and
// TEARDOWN on a new connection, with its old Session id.
//
// The RTSP server starts after the pair (src/server.ts), so both sides are
// attached to it once it exists; before that there is no session to tell of,
// and the standby keeps what it received.

import type { Engine } from '../engine/engine.js';
import type { Logger } from '../log.js';
import type { RtspSessionRecord } from '../rtsp/session.js';

/** What the pair needs of this process's RTSP server (src/rtsp/server.ts). */
export interface RtspPairServer {
  sessionRecords(): RtspSessionRecord[];
  watchSessions(listener: (record: RtspSessionRecord) => void): () => void;
  adoptSession(record: RtspSessionRecord): Promise<void>;
}

/** The primary side: the records a standby is sent, a snapshot and then every change. */
export class RtspSessionFeed {
  #server: RtspPairServer | undefined;
  readonly #listeners = new Set<(record: RtspSessionRecord) => void>();

  attach(server: RtspPairServer): void {
    this.#server = server;
    server.watchSessions((record) => {
      for (const listener of this.#listeners) listener(record);
    });
  }

  /** Every session as it stands now. */
  snapshot(): RtspSessionRecord[] {
    return this.#server?.sessionRecords() ?? [];
  }

  /** From now on, every change; returns the function that stops it. */
  watch(listener: (record: RtspSessionRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** The standby side: every record of its primary reaches this process's RTSP server, dormant until the takeover. */
export class RtspAdoption {
  #server: RtspPairServer | undefined;
  /** Received before the RTSP server existed, latest per session. */
  readonly #waiting = new Map<string, RtspSessionRecord>();
  /** Adoptions in the order received (each resolves the asset in this process's catalog first). */
  #adopting: Promise<void> = Promise.resolve();
  readonly #log: Logger;
  readonly #forget = (event: { id: string }): void => {
    this.#waiting.delete(event.id);
  };

  constructor(private readonly engine: Engine, logger: Logger) {
    this.#log = logger.child({ component: 'pair-rtsp' });
    // The primary's close step closed the engine's session: the RTSP server forgets it by the same event.
    engine.on('session-closed', this.#forget);
  }

  attach(server: RtspPairServer): void {
    this.#server = server;
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const record of waiting) this.#adopt(server, record);
  }

  /** Resolves once every record received so far is adopted (or given up). */
  settled(): Promise<void> {
    return this.#adopting;
  }

  receive(record: RtspSessionRecord): void {
    if (this.#server) this.#adopt(this.#server, record);
    else this.#waiting.set(record.info.id, record);
  }

  close(): void {
    this.engine.off('session-closed', this.#forget);
  }

  #adopt(server: RtspPairServer, record: RtspSessionRecord): void {
    this.#adopting = this.#adopting.then(() => server.adoptSession(record)).catch((err: Error) => {
      this.#log.error({ session: record.info.id, asset: record.assetPath, err: err.message }, 'process pair: cannot adopt an RTSP session of the primary; its viewer loses its RTSP control at a takeover');
    });
  }
}
