// One twinframe server: the configuration turned into running parts. The
// catalog (assets under the mount points, indexed on a piscina pool), the engine
// (supervisor + K pairs of data paths), the RTSP front end for viewers and the admin
// socket for operators, and the metrics listener (Prometheus and the health
// probe, when metrics.listen is set). close() stops them in the reverse order, so the RTSP
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
import { TwinframeMetrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/http-server.js';
import { health } from './metrics/health.js';
import { parseListenAddress } from './config/schema.js';

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
  /** The metrics listener's bound address; undefined when metrics.listen is '' or it could not bind. */
  readonly metrics: { readonly address: string; readonly port: number } | undefined;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<TwinframeServer> {
  const { config, logger } = options;
  await mkdir(config.media.cacheDir, { recursive: true });
  let metrics: TwinframeMetrics | undefined;
  const pool = new IndexPool({ onBuilt: (ms, ok) => metrics?.assetIndexed(ms, ok) });
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
    let metricsAddress: { address: string; port: number } | undefined;
    if (config.metrics.listen !== '') {
      const registry = new TwinframeMetrics({ engine, catalog });
      metricsAddress = await listenMetrics(registry, engine, config.metrics.listen, logger);
      if (metricsAddress === undefined) {
        registry.close();
      } else {
        metrics = registry;
        stops.push(() => Promise.resolve(registry.close()));
      }
    }
    const rtsp = new RtspServer({
      backend: new EngineRtspBackend(engine, catalog),
      host: config.rtsp.host,
      port: config.rtsp.port,
      sessionTimeoutMs: config.rtsp.sessionTimeoutSec * 1000,
      allowForeignDestination: config.rtsp.allowForeignDestination,
      streamAddress: config.network.streamIp,
      maxRequestBytes: config.rtsp.maxRequestBytes,
      interleavedBacklogMs: config.rtsp.interleavedBacklogMs,
      maxConnectionsPerAddress: config.rtsp.maxConnectionsPerAddress,
      maxSessionsPerAddress: config.rtsp.maxSessionsPerAddress,
      maxSessionsPerConnection: config.rtsp.maxSessionsPerConnection,
      setupTimeoutMs: config.rtsp.setupTimeoutSec * 1000,
      logger,
      ...(metrics === undefined ? {} : { onReply: metrics.rtspReply.bind(metrics) }),
      ...options.rtsp,
    });
    stops.push(() => rtsp.close());
    await rtsp.listen();
    return { config, engine, catalog, admin, rtsp, metrics: metricsAddress, close };
  } catch (err) {
    await close();
    throw err;
  }

  /**
   * Serve /metrics and /healthz on `listen`. A port that cannot be bound is logged
   * and metrics stay off: streams matter more than their statistics.
   */
  async function listenMetrics(registry: TwinframeMetrics, engine: Engine, listen: string, log: Logger): Promise<{ address: string; port: number } | undefined> {
    const { host, port } = parseListenAddress(listen)!; // validated by the schema
    const server = new MetricsServer({
      metrics: () => registry.metrics(),
      contentType: registry.contentType,
      health: () => health(engine.status()),
    }, log.child({ component: 'metrics' }));
    try {
      const bound = await server.listen(host, port);
      stops.push(() => server.close());
      return bound;
    } catch (err) {
      log.error({ component: 'metrics', listen, err: (err as Error).message }, 'cannot listen for metrics; serving without them');
      return undefined;
    }
  }
}
