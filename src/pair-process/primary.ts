// The primary process's side of a process pair: it listens on the private link,
// authenticates the standby that connects (one at a time), sends it the
// synchronized parameters and a snapshot of every open session, then the session
// command stream as the engine emits it, and every CURSOR_PERIOD_MS where each
// session stands. The primary never waits for its standby: a standby that stops
// reading is dropped, and streams go on.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import type { Engine, ReplicationEvent } from '../engine/engine.js';
import { TwinframeError } from '../errors.js';
import type { Logger } from '../log.js';
import { LinkChannel, authenticateStandby } from './link.js';
import { CURSOR_PERIOD_MS, type SharedBlocksInfo, type SynchronizedParameters } from './link-messages.js';
import type { PeerState, ProcessPairStatus } from './pair-status.js';
import type { RtspSessionFeed } from './rtsp-sessions.js';
import type { ConnectionHandoff } from './rtsp-handoff.js';
import type { BroadcastTableLink } from './broadcast-table.js';
import { holdLifeLock, type HeldLifeLock } from './native-life-lock.js';
import { handOverSending } from './role-switch.js';
import type { RtspHandover } from '../rtsp/server.js';

/** A standby this far behind in reading the link is dropped (it resynchronizes when it reconnects). */
const MAX_UNREAD_BYTES = 64 * 1024 * 1024;

export interface PairPrimaryOptions {
  readonly engine: Engine;
  /** The private link's Unix socket path. */
  readonly link: string;
  readonly secret: string;
  /** The synchronized parameters as they are now. */
  readonly params: () => SynchronizedParameters;
  /** This process's control blocks in shared memory, for the standby to map. */
  readonly controlBlocks: SharedBlocksInfo;
  /** This process's RTSP sessions, for the standby to answer for after a takeover. */
  readonly rtsp: RtspSessionFeed;
  /** This process's RTSP listening socket and connections, passed to the standby as descriptors. */
  readonly connections: ConnectionHandoff;
  /** This process's broadcast table, which the standby runs once it sends. */
  readonly broadcasts: BroadcastTableLink;
  readonly logger: Logger;
  /** The linked standby asked for a role switch (an operator's command there). */
  readonly onSwitchRequest?: () => void;
}

interface LinkedStandby {
  readonly channel: LinkChannel;
  state: PeerState;
  pid: number | null;
  /** It follows every session and its takeover thread waits on the life lock ('armed'). */
  armed: boolean;
}

/** How long a role switch waits for a just-linked standby to be armed. */
const ARMED_WAIT_MS = 5000;
/** How long a role switch waits for the RTSP requests read so far to be answered. */
const RTSP_QUIESCE_MS = 2000;
/** How long a role switch waits for its last link message to leave. */
const FLUSH_MS = 1000;

export class PairPrimary {
  private readonly log: Logger;
  private readonly server: Server;
  private standby: LinkedStandby | undefined;
  private cursorTimer: NodeJS.Timeout | undefined;
  private unwatchRtsp: (() => void) | undefined;
  private unwatchBroadcasts: (() => void) | undefined;
  private closed = false;
  /** Held by a thread of this process from listen on: the standby's takeover thread waits on it. */
  private lifeLock: HeldLifeLock | undefined;
  private readonly forward = (step: ReplicationEvent): void => this.send({ type: 'step', step });

  private constructor(private readonly options: PairPrimaryOptions) {
    this.log = options.logger.child({ component: 'pair-primary' });
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Listen on the link's path (a stale socket file of a dead process is replaced; a live listener's is not). */
  static async listen(options: PairPrimaryOptions): Promise<PairPrimary> {
    if (await someoneListens(options.link)) throw new TwinframeError('TF_PAIR_LINK', `another process listens on the private link ${options.link}: a pair has one primary`);
    await rm(options.link, { force: true });
    const primary = new PairPrimary(options);
    // Held before a standby can link: the params it gets name the lock.
    primary.lifeLock = await holdLifeLock(options.link);
    primary.log.info({ lifeLock: primary.lifeLock.file, holder: primary.lifeLock.priority.policy }, 'process pair: holding the life lock');
    await new Promise<void>((resolve, reject) => {
      primary.server.once('error', reject);
      primary.server.listen(options.link, () => {
        primary.server.off('error', reject);
        resolve();
      });
    });
    await chmod(options.link, 0o600);
    primary.log.info({ link: options.link }, 'process pair: primary, listening for its standby');
    return primary;
  }

  status(): ProcessPairStatus {
    const peer = this.standby;
    return {
      role: 'primary',
      state: peer?.state === 'linked' ? 'Primary' : 'Primary_No_Secondary',
      sending: true,
      peer: { state: peer?.state ?? 'none', pid: peer?.pid ?? null },
      link: this.options.link,
      takeover: null,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dropStandby();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.options.link, { force: true });
    this.lifeLock?.removeName();
  }

  private accept(socket: Socket): void {
    const channel = new LinkChannel(socket);
    if (this.standby || this.closed) {
      channel.send({ type: 'refused', reason: 'a standby is already linked to this primary' });
      socket.end();
      return;
    }
    const standby: LinkedStandby = { channel, state: 'authenticating', pid: null, armed: false };
    this.standby = standby;
    channel.whenClosed(() => {
      if (this.standby !== standby) return;
      this.dropStandby();
      this.log.warn({ pid: standby.pid }, 'process pair: the standby left the link; streams are unprotected against the death of this process');
    });
    authenticateStandby(channel, this.options.secret).then((pid) => this.synchronize(standby, pid), (err: Error) => {
      this.log.warn({ err: err.message }, 'process pair: a process on the link was refused');
      channel.close();
    });
  }

  /**
   * The parameters, then every open session as steps, then the live stream: the
   * snapshot and the subscription happen in one turn, so no step falls between.
   */
  private synchronize(standby: LinkedStandby, pid: number): void {
    if (this.standby !== standby || standby.channel.isClosed) return;
    standby.pid = pid;
    standby.state = 'synchronizing';
    const { engine } = this.options;
    this.send({ type: 'params', params: this.options.params(), controlBlocks: this.options.controlBlocks, lifeLock: this.lifeLock!.file });
    this.send({ type: 'broadcast-table', table: this.options.broadcasts.snapshot() });
    this.unwatchBroadcasts = this.options.broadcasts.watch((table) => this.send({ type: 'broadcast-table', table }));
    const snapshot = engine.replicaSnapshot();
    for (const step of snapshot) this.send({ type: 'step', step });
    this.forwardRtspSessions(pid);
    this.send({ type: 'synced' });
    engine.on('replicate', this.forward);
    standby.channel.onMessage((m) => {
      if (m.type === 'switch-request') this.options.onSwitchRequest?.();
      else if (m.type === 'armed') standby.armed = true;
      else this.log.warn({ type: m.type }, 'process pair: unexpected message from the standby');
    });
    this.cursorTimer = setInterval(() => this.sendCursors(), CURSOR_PERIOD_MS);
    standby.state = 'linked';
    this.log.info({ pid, sessions: snapshot.filter((s) => s.kind === 'open').length }, 'process pair: standby linked and synchronized');
  }

  /**
   * Each RTSP session's state after its engine step, now and from now on (in the
   * same turn as the engine's snapshot); and the RTSP connections, on the standby's descriptor channel.
   */
  private forwardRtspSessions(pid: number): void {
    for (const session of this.options.rtsp.snapshot()) this.send({ type: 'rtsp-session', session });
    this.unwatchRtsp = this.options.rtsp.watch((session) => this.send({ type: 'rtsp-session', session }));
    this.options.connections.linked(pid);
  }

  /**
   * A role switch: hand sending to the linked, synchronized standby
   * (role-switch.ts), and with it the viewers' RTSP connections and sessions
   * (`rtsp`: this process's RTSP server stops at request boundaries first, and
   * answers on if the switch fails). Resolves with the standby's pid and the
   * settle time; this process sends and answers nothing after.
   */
  async handOver(rtsp: { quiesce(timeoutMs: number): Promise<RtspHandover> } | undefined): Promise<{ pid: number | null; settleMs: number }> {
    const standby = this.standby;
    if (standby?.state !== 'linked' || !this.lifeLock) throw new TwinframeError('TF_PAIR_SWITCH', 'no standby follows this process');
    // Handed over before the standby's thread waits on the lock, sending would pause until it does.
    for (const deadline = Date.now() + ARMED_WAIT_MS; !standby.armed; await new Promise((r) => setTimeout(r, 10))) {
      if (Date.now() > deadline || this.standby !== standby) throw new TwinframeError('TF_PAIR_SWITCH', 'the standby is not ready to take over yet (it is synchronizing)');
    }
    // Without its copies, letting go of this process's would close every viewer's connection.
    if (rtsp && !this.options.connections.handing) throw new TwinframeError('TF_PAIR_SWITCH', 'the standby holds no copy of the viewers\' RTSP connections (its descriptor channel is down): a switch would close them');
    const handover = await rtsp?.quiesce(RTSP_QUIESCE_MS);
    let settleMs: number;
    try {
      if (this.standby !== standby) throw new TwinframeError('TF_PAIR_SWITCH', 'the standby left the link');
      this.sendCursors(); // the standby moves to the last cursors from the blocks anyway; this keeps its read-ahead close
      settleMs = await handOverSending(this.options.engine, this.lifeLock);
    } catch (err) {
      handover?.resume();
      throw err;
    }
    const connections = handover?.commit() ?? [];
    this.send({ type: 'rtsp-release', connections: connections.map((c) => ({ id: c.id, pending: c.pending.toString('base64') })) });
    await standby.channel.flushed(FLUSH_MS);
    this.log.info({ standbyPid: standby.pid, settleMs, connections: connections.length }, 'process pair: sending and the RTSP connections handed over to the standby (role switch)');
    return { pid: standby.pid, settleMs };
  }

  private sendCursors(): void {
    const cursors = this.options.engine.replicaCursors();
    if (cursors.length > 0) this.send({ type: 'cursors', cursors });
  }

  private send(message: Parameters<LinkChannel['send']>[0]): void {
    const standby = this.standby;
    if (!standby) return;
    if (standby.channel.socket.writableLength > MAX_UNREAD_BYTES) {
      this.log.warn({ pid: standby.pid }, 'process pair: the standby does not read its link; dropped');
      standby.channel.close();
      return;
    }
    standby.channel.send(message);
  }

  private dropStandby(): void {
    const standby = this.standby;
    this.standby = undefined;
    this.options.engine.off('replicate', this.forward);
    this.unwatchRtsp?.();
    this.unwatchRtsp = undefined;
    this.unwatchBroadcasts?.();
    this.unwatchBroadcasts = undefined;
    this.options.connections.unlinked();
    clearInterval(this.cursorTimer);
    this.cursorTimer = undefined;
    standby?.channel.close();
  }
}

/** A process accepts connections on this Unix socket path. */
function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}
