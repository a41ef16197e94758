// The process pair as the composition root (server.ts) sees it: start this
// process's side (primary or standby, by `pair.role`), its status, its stop. A
// standby that took over listens on the link as a primary in turn, so a new
// standby can join it mid-stream and the pair is protected again.

import type { Engine } from '../engine/engine.js';
import type { PairConfig, TwinframeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SynchronizedParameters } from './link-messages.js';
import { PairPrimary } from './primary.js';
import { PairStandby } from './standby.js';
import type { RoleSwitchResult } from './role-switch.js';
import { TwinframeError } from '../errors.js';
import type { ProcessPairStatus, ProcessRole, TakeoverRecord } from './pair-status.js';
import type { SharedBlocks } from './shared-blocks.js';
import type { SharedWires } from './shared-wires.js';
import { processLockSpace } from '../shared/wire.js';
import { RtspAdoption, RtspSessionFeed, type RtspPairServer } from './rtsp-sessions.js';
import { ConnectionHandoff, HeldConnections, type ReleasedConnections, type RtspConnectionServer } from './rtsp-handoff.js';
import { BroadcastTableLink, type PairBroadcasts } from './broadcast-table.js';

/** What the pair needs of this process's RTSP server: its sessions and its connections. */
type PairRtspServer = RtspPairServer & RtspConnectionServer;

export interface PairProcess {
  /** The role this process started in. */
  readonly role: ProcessRole;
  status(): ProcessPairStatus;
  /** This process's RTSP server, once it exists: its sessions cross the link (rtsp-sessions.ts). */
  attachRtsp(server: PairRtspServer): void;
  /** This process's broadcast manager, once it exists: the primary's table crosses the link (broadcast-table.ts). */
  attachBroadcasts(manager: PairBroadcasts): void;
  /** An operator's lossless role switch, asked of either process (role-switch.ts); resolves once the other side sends. */
  switchRoles(): Promise<RoleSwitchResult>;
  close(): Promise<void>;
}

export interface PairProcessOptions {
  readonly pair: PairConfig;
  readonly engine: Engine;
  /** Where the engine's control blocks live (shared memory: sharedBlocks). */
  readonly blocks: SharedBlocks;
  /** Where interleaved sessions' wires live (the RTSP server's wireMemory). */
  readonly wires: SharedWires;
  readonly logger: Logger;
  /** The running configuration (a reload may change its live fields). */
  readonly config: () => TwinframeConfig;
  /** A standby took over: this process serves viewers from now on (after a role switch, once the other process released them). */
  readonly onTakeover: (record: TakeoverRecord) => void;
  /** This process handed sending over (a role switch): the other process runs what this one ran. */
  readonly onHandedOver: () => void;
}

/** After a role switch, how long the process that took sending waits for the other to release the RTSP connections (rtsp-release). */
const RELEASE_WAIT_MS = 5000;

/**
 * A primary listens on the link; a standby holds its engine's sending and
 * follows the primary. A role switch turns one into the other: the primary
 * hands sending over and follows the process that took it; that one listens
 * on the link as a primary, as after any takeover.
 */
export async function startPairProcess(options: PairProcessOptions): Promise<PairProcess> {
  const { pair, engine, logger } = options;
  const rtsp = new RtspSessionFeed();
  const connections = new ConnectionHandoff(logger);
  const broadcasts = new BroadcastTableLink();
  let rtspServer: PairRtspServer | undefined;
  /** This process listens on the link (it sends: it started as primary, or took over). */
  let primary: PairPrimary | undefined;
  /** This process follows a primary, or did until it took over. */
  let standby: PairStandby | undefined;
  /** While it follows: the primary's RTSP sessions and connections, held for a takeover. */
  let adoption: RtspAdoption | undefined;
  let held: HeldConnections | undefined;
  let closed = false;
  let switching = false;
  const listen = async (): Promise<PairPrimary> => {
    const listening = await PairPrimary.listen({
      engine, link: pair.link, secret: pair.secret, logger, rtsp, connections, broadcasts, params: () => synchronizedParameters(options.config(), engine),
      controlBlocks: { files: options.blocks.files, maxSessions: engine.controlBlock().layout.maxSessions },
      onSwitchRequest: () => {
        handOver().catch((err: Error) => logger.error({ err: err.message }, 'process pair: the standby asked for a role switch; it failed'));
      },
    });
    // The link is ours (a pair has one primary): the descriptor channel beside it too.
    connections.listen(pair.link);
    return listening;
  };
  const attachRtsp = (server: PairRtspServer): void => {
    rtspServer = server;
    rtsp.attach(server);
    connections.attach(server);
    adoption?.attach(server);
  };
  const follow = (keepOwnSessions: boolean): void => {
    adoption?.close();
    held?.close();
    const followerAdoption = new RtspAdoption(engine, logger);
    const followerHeld = new HeldConnections(logger);
    if (rtspServer) followerAdoption.attach(rtspServer);
    adoption = followerAdoption;
    held = followerHeld;
    const follower: PairStandby = PairStandby.start({
      engine, link: pair.link, secret: pair.secret, logger, keepOwnSessions, rtsp: followerAdoption, connections: followerHeld, broadcasts, wires: options.wires,
      onTakeover: (record) => {
        // Before the RTSP server would listen on the port: on the primary's own socket, with its connections.
        const serve = (released?: ReleasedConnections): void => {
          if (rtspServer) followerHeld.takeOver(rtspServer, released);
          options.onTakeover(record);
        };
        if (record.cause === 'death') serve();
        else {
          // A role switch: the other process answers until it released the connections, after its last
          // session record; if it dies first, every held connection is served as at a death.
          void followerHeld.whenReleased(RELEASE_WAIT_MS).then((released) => {
            if (!released) logger.warn({ waitedMs: RELEASE_WAIT_MS }, 'process pair: the other process did not release its RTSP connections after the switch; serving every one it passed');
            if (!closed && standby === follower) serve(released);
          });
        }
        whenFree(listen, 'the private link', logger).then(async (p) => {
          if (closed || standby !== follower) await p.close();
          else primary = p;
        }, (err: Error) => logger.error({ err: err.message }, 'process pair: took over, but cannot listen for a new standby'));
      },
    });
    standby = follower;
  };
  /** The primary's half of a role switch: hand sending over, stop listening, follow the process that took it. */
  const handOver = async (): Promise<RoleSwitchResult> => {
    const current = primary;
    if (!current || switching) throw new TwinframeError('TF_PAIR_SWITCH', switching ? 'a switch is under way' : 'this process does not send');
    switching = true;
    try {
      const { pid, settleMs } = await current.handOver(rtspServer);
      primary = undefined;
      await current.close();
      standby?.close();
      options.onHandedOver();
      follow(true);
      return { role: 'standby', peerPid: pid, sessions: engine.listSessions().length, settleMs, switchMs: null };
    } finally {
      switching = false;
    }
  };
  if (pair.role === 'primary') {
    primary = await listen();
  } else {
    engine.holdSending();
    follow(false);
  }
  return {
    role: pair.role,
    status: () => {
      if (standby && primary) return survivorStatus(standby.status(), primary.status());
      return (standby ?? primary)!.status();
    },
    attachRtsp,
    attachBroadcasts: (manager) => broadcasts.attach(manager),
    switchRoles: async () => {
      if (primary) return handOver();
      if (!standby) throw new TwinframeError('TF_PAIR_SWITCH', 'this process has no pair');
      const record = await standby.requestSwitch();
      return { role: 'primary', peerPid: standby.status().peer.pid, sessions: record.sessions, settleMs: null, switchMs: record.switchMs };
    },
    close: async () => {
      closed = true;
      standby?.close();
      adoption?.close();
      held?.close();
      await primary?.close();
      connections.close();
    },
  };
}

/** How long a standby that took over waits for the dead primary's listeners (its RTSP port, its link) to be let go. */
const LISTEN_RETRY_MS = 10;
const LISTEN_GIVE_UP_MS = 10_000;

/**
 * Listen where the dead primary listened: the kernel closes its sockets only at
 * the end of its teardown, some milliseconds after the takeover, so try again
 * until they are free.
 */
export async function whenFree<T>(listen: () => Promise<T>, what: string, logger: Logger): Promise<T> {
  const deadline = Date.now() + LISTEN_GIVE_UP_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await listen();
      if (attempt > 1) logger.info({ what, attempts: attempt }, 'process pair: listening where the dead primary listened');
      return result;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, LISTEN_RETRY_MS));
    }
  }
}

/** A standby that took over: Secondary_No_Primary while it serves alone, Primary again once a new standby follows it. */
function survivorStatus(standby: ProcessPairStatus, asPrimary: ProcessPairStatus | undefined): ProcessPairStatus {
  if (!asPrimary || asPrimary.peer.state === 'none') return standby;
  return { ...standby, state: asPrimary.state === 'Primary' ? 'Primary' : standby.state, peer: asPrimary.peer };
}

/** Patent [0083]: what the standby takes from its primary, as the primary runs it now. */
function synchronizedParameters(config: TwinframeConfig, engine: Engine): SynchronizedParameters {
  const { periodUs, maxMissed } = engine.status().heartbeat;
  return {
    heartbeatPeriodUs: periodUs,
    maxMissedHeartbeats: maxMissed,
    batchWindowUs: config.pacing.batchWindowUs,
    limits: engine.getLimits(),
    serverPortRange: config.rtsp.serverPortRange,
    lockSpace: processLockSpace(),
    wallClockMs: Date.now(),
  };
}
