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
import type { ProcessPairStatus, ProcessRole, TakeoverRecord } from './pair-status.js';
import type { SharedBlocks } from './shared-blocks.js';
import { RtspAdoption, RtspSessionFeed, type RtspPairServer } from './rtsp-sessions.js';
import { ConnectionHandoff, HeldConnections, type RtspConnectionServer } from './rtsp-handoff.js';

/** What the pair needs of this process's RTSP server: its sessions and its connections. */
type PairRtspServer = RtspPairServer & RtspConnectionServer;

export interface PairProcess {
  /** The role this process started in. */
  readonly role: ProcessRole;
  status(): ProcessPairStatus;
  /** This process's RTSP server, once it exists: its sessions cross the link (rtsp-sessions.ts). */
  attachRtsp(server: PairRtspServer): void;
  close(): Promise<void>;
}

export interface PairProcessOptions {
  readonly pair: PairConfig;
  readonly engine: Engine;
  /** Where the engine's control blocks live (shared memory: sharedBlocks). */
  readonly blocks: SharedBlocks;
  readonly logger: Logger;
  /** The running configuration (a reload may change its live fields). */
  readonly config: () => TwinframeConfig;
  /** A standby took over: this process serves viewers from now on. */
  readonly onTakeover: (record: TakeoverRecord) => void;
}

/** A primary listens on the link; a standby holds its engine's sending and follows the primary. */
export async function startPairProcess(options: PairProcessOptions): Promise<PairProcess> {
  const { pair, engine, logger } = options;
  const rtsp = new RtspSessionFeed();
  const connections = new ConnectionHandoff(logger);
  let rtspServer: PairRtspServer | undefined;
  const listen = async (): Promise<PairPrimary> => {
    const primary = await PairPrimary.listen({
      engine, link: pair.link, secret: pair.secret, logger, rtsp, connections, params: () => synchronizedParameters(options.config(), engine),
      controlBlocks: { files: options.blocks.files, maxSessions: engine.controlBlock().layout.maxSessions },
    });
    // The link is ours (a pair has one primary): the descriptor channel beside it too.
    connections.listen(pair.link);
    return primary;
  };
  const attachRtsp = (server: PairRtspServer): void => {
    rtspServer = server;
    rtsp.attach(server);
    connections.attach(server);
  };
  if (pair.role === 'primary') {
    const primary = await listen();
    return {
      role: 'primary', status: () => primary.status(), attachRtsp,
      close: async () => {
        await primary.close();
        connections.close();
      },
    };
  }
  engine.holdSending();
  let survivor: PairPrimary | undefined;
  let closed = false;
  const adoption = new RtspAdoption(engine, logger);
  const held = new HeldConnections(logger);
  const standby = PairStandby.start({
    engine, link: pair.link, secret: pair.secret, logger, rtsp: adoption, connections: held,
    onTakeover: (record) => {
      // Before the RTSP server would listen on the port: on the primary's own socket, with its connections.
      if (rtspServer) held.takeOver(rtspServer);
      options.onTakeover(record);
      whenFree(listen, 'the private link', logger).then(async (primary) => {
        if (closed) await primary.close();
        else survivor = primary;
      }, (err: Error) => logger.error({ err: err.message }, 'process pair: took over, but cannot listen for a new standby'));
    },
  });
  return {
    role: 'standby',
    status: () => survivorStatus(standby.status(), survivor?.status()),
    attachRtsp: (server) => {
      adoption.attach(server);
      attachRtsp(server);
    },
    close: async () => {
      closed = true;
      standby.close();
      adoption.close();
      held.close();
      await survivor?.close();
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
    wallClockMs: Date.now(),
  };
}
