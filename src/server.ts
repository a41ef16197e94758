// One twinframe server: the configuration turned into running parts. The
// catalog (assets under the mount points, indexed on a piscina pool), the engine
// (supervisor + K pairs of data paths), the RTSP front end for viewers and the admin
// socket for operators. close() stops them in the reverse order, so the RTSP
// server says BYE to its players before the engine stops the data paths.

import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AssetCatalog } from './catalog/catalog.js';
import { IndexPool } from './catalog/index-pool.js';
import type { TwinframeConfig } from './config/schema.js';
import { Engine, type AssetFailedEvent } from './engine/engine.js';
import { MAX_SESSIONS } from './shared/layout.js';
import { AdminServer } from './admin/server.js';
import { EngineAdminBackend } from './admin/engine-backend.js';
import { RtspServer, type RtspServerOptions } from './rtsp/server.js';
import { EngineRtspBackend } from './rtsp-backend.js';

export interface ServerOptions {
  readonly config: TwinframeConfig;
  /** Where admin changes are persisted; undefined keeps them in memory only. */
  readonly configPath: string | undefined;
  readonly logger: Logger;
  /**
   * RTSP settings the configuration cannot express (port 0, sub-second
   * timeouts for tests, the connection cap); they win over the configuration.
   */
  readonly rtsp?: Partial<Omit<RtspServerOptions, 'backend' | 'logger'>>;
}

export interface TwinframeServer {
  readonly config: TwinframeConfig;
  readonly engine: Engine;
  readonly catalog: AssetCatalog;
  readonly admin: AdminServer;
  readonly rtsp: RtspServer;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<TwinframeServer> {
  const { config, logger } = options;
  await mkdir(config.media.cacheDir, { recursive: true });
  const pool = new IndexPool();
  const catalog = new AssetCatalog({ mounts: config.media.mounts, cacheDir: config.media.cacheDir, pool, logger });
  const stops: Array<() => Promise<void>> = [() => pool.close()];
  let closing: Promise<void> | undefined;
  // Stop in reverse order of start (RTSP first, so players get their BYE), once.
  const close = (): Promise<void> => (closing ??= (async () => {
    for (const stop of [...stops].reverse()) await stop().catch((err: Error) => logger.error({ err: err.message }, 'error while stopping'));
  })());
  try {
    const engine = await Engine.start({
      logger,
      heartbeatPeriodUs: config.failover.heartbeatPeriodUs,
      maxMissedHeartbeats: config.failover.maxMissedHeartbeats,
      batchWindowUs: config.pacing.batchWindowUs,
      autoFailover: config.failover.autoFailover,
      faultInjection: config.admin.faultInjection,
      serverPortRange: config.rtsp.serverPortRange,
      limits: config.limits,
      pairs: config.paths.pairs,
      // Every slot a pair's control block can hold: the configured limits decide admission.
      maxSessions: MAX_SESSIONS,
    });
    stops.push(() => engine.close());
    // An asset found unusable while it streamed (its sessions have ended) is refused until its file changes.
    engine.on('asset-failed', (e: AssetFailedEvent) => catalog.markUnavailable(e.assetPath, e.reason));
    const backend = new EngineAdminBackend({
      engine, catalog, configPath: options.configPath, faultInjection: config.admin.faultInjection,
    });
    const admin = new AdminServer({ socketPath: config.admin.socketPath, backend, logger: logger.child({ component: 'admin' }) });
    await admin.listen();
    stops.push(() => admin.close());
    const rtsp = new RtspServer({
      backend: new EngineRtspBackend(engine, catalog),
      host: config.rtsp.host,
      port: config.rtsp.port,
      sessionTimeoutMs: config.rtsp.sessionTimeoutSec * 1000,
      allowForeignDestination: config.rtsp.allowForeignDestination,
      streamAddress: config.network.streamIp,
      maxRequestBytes: config.rtsp.maxRequestBytes,
      interleavedBacklogMs: config.rtsp.interleavedBacklogMs,
      logger,
      ...options.rtsp,
    });
    stops.push(() => rtsp.close());
    await rtsp.listen();
    return { config, engine, catalog, admin, rtsp, close };
  } catch (err) {
    await close();
    throw err;
  }
}
