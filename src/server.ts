// One twinframe server: the configuration turned into running parts. The
// catalog (assets under the mount points, indexed on a piscina pool), the engine
// (supervisor + K pairs of data paths), the RTSP front end for viewers and the admin
// socket for operators, and the metrics listener (Prometheus and the health
// probe, when metrics.listen is set). close() stops them in the reverse order, so the RTSP
// server says BYE to its players before the engine stops the data paths.
// reload() re-reads the configuration and applies what can change live.

import { ensurePrivateDirectory } from './shared/private-dir.js';
import { TwinframeError } from './errors.js';
import type { Logger } from 'pino';
import { AssetCatalog } from './catalog/catalog.js';
import { IndexPool } from './catalog/index-pool.js';
import type { TwinframeConfig } from './config/schema.js';
import { planReload, type ReloadResult } from './config/reload.js';
import { RtspAuthenticator, type AuthSettings } from './rtsp/auth.js';
import { Engine, type AssetFailedEvent } from './engine/engine.js';
import { MAX_SESSIONS } from './shared/layout.js';
import { AdminServer } from './admin/server.js';
import { EngineAdminBackend } from './admin/engine-backend.js';
import { RtspServer, type RtspLiveSettings, type RtspServerOptions } from './rtsp/server.js';
import { EngineRtspBackend } from './rtsp-backend.js';
import { TwinframeMetrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/http-server.js';
import { health } from './metrics/health.js';
import { parseListenAddress } from './config/schema.js';
import { BroadcastManager } from './broadcast/manager.js';
import { BroadcastTable } from './broadcast/table.js';
import { startPairProcess, whenFree, type PairProcess } from './pair-process/pair-process.js';
import { sharedBlocks, type SharedBlocks } from './pair-process/shared-blocks.js';
import { SharedWires } from './pair-process/shared-wires.js';

export interface ServerOptions {
  readonly config: TwinframeConfig;
  /** Where admin changes are persisted; undefined keeps them in memory only. */
  readonly configPath: string | undefined;
  readonly logger: Logger;
  /**
   * RTSP settings the configuration cannot express (port 0, sub-second
   * timeouts for tests, the connection cap); they win over the configuration.
   */
  readonly rtsp?: Partial<Omit<RtspServerOptions, 'backend' | 'logger' | 'auth'>>;
  /**
   * How a reload reads the configuration (the file, with the command line's
   * overrides); absent: reload is refused. Throws TF_CONFIG_INVALID on a bad file.
   */
  readonly loadConfig?: () => Promise<TwinframeConfig>;
}

export interface TwinframeServer {
  /** The running configuration (a reload changes its live fields). */
  readonly config: TwinframeConfig;
  readonly engine: Engine;
  readonly catalog: AssetCatalog;
  readonly admin: AdminServer;
  readonly rtsp: RtspServer;
  /** The metrics listener's bound address; undefined when metrics.listen is '' or it could not bind. */
  readonly metrics: { readonly address: string; readonly port: number } | undefined;
  /** Who may play (counters for the metrics: auth.counters()). */
  readonly auth: RtspAuthenticator;
  /** The broadcast table's running side (also the RTSP layer's BroadcastLookup). */
  readonly broadcasts: BroadcastManager;
  /** This process's side of a process pair (configuration `pair`); undefined when it runs alone. */
  readonly pairProcess: PairProcess | undefined;
  /**
   * Re-read the configuration and apply what can change without dropping a stream;
   * what cannot is reported. An invalid file (TF_CONFIG_INVALID) changes nothing.
   */
  reload(): Promise<ReloadResult>;
  close(): Promise<void>;
}

/** The RTSP server's live settings from the configuration (and the start-up overrides, which win). */
function rtspSettings(config: TwinframeConfig, overrides: ServerOptions['rtsp']): RtspLiveSettings {
  const sessionTimeoutMs = config.rtsp.sessionTimeoutSec * 1000;
  return {
    sessionTimeoutMs,
    allowForeignDestination: config.rtsp.allowForeignDestination,
    streamAddress: config.network.streamIp,
    maxRequestBytes: config.rtsp.maxRequestBytes,
    maxConnections: config.rtsp.maxConnections,
    idleTimeoutMs: config.rtsp.idleTimeoutSec === undefined ? sessionTimeoutMs + 10_000 : config.rtsp.idleTimeoutSec * 1000,
    requestTimeoutMs: config.rtsp.requestTimeoutSec * 1000,
    interleavedBacklogMs: config.rtsp.interleavedBacklogMs,
    maxConnectionsPerAddress: config.rtsp.maxConnectionsPerAddress,
    maxSessionsPerAddress: config.rtsp.maxSessionsPerAddress,
    maxSessionsPerConnection: config.rtsp.maxSessionsPerConnection,
    setupTimeoutMs: config.rtsp.setupTimeoutSec * 1000,
    ...overrides,
  };
}

function authSettings(config: TwinframeConfig): AuthSettings {
  const a = config.auth;
  return {
    enabled: a.enabled,
    realm: a.realm,
    allowBasic: a.basic,
    users: a.users.map((u) => ({ name: u.name, ha1: { MD5: u.md5, 'SHA-256': u.sha256 }, ...(u.basic === undefined ? {} : { basic: u.basic }) })),
    access: a.access,
    maxFailures: a.maxFailures,
    lockoutMs: a.lockoutSec * 1000,
    // A player's keep-alives (at most a session timeout apart) keep its nonce fresh.
    nonceTimeoutMs: config.rtsp.sessionTimeoutSec * 1000 + 10_000,
  };
}

/** The parts a process pair's takeover and role switch act on, filled in as the server starts. */
interface Started {
  rtsp?: RtspServer;
  broadcasts?: { readonly manager: BroadcastManager; readonly table: BroadcastTable };
}

export async function startServer(options: ServerOptions): Promise<TwinframeServer> {
  let config = options.config;
  const { logger } = options;
  // Whoever may write the cache may plant indexes: it must be ours alone.
  await ensurePrivateDirectory(config.media.cacheDir, 'cache directory', `make it owned by uid ${process.getuid?.() ?? '?'} and mode 0700 (chown/chmod), or set media.cacheDir to another path`);
  let metrics: TwinframeMetrics | undefined;
  const pool = new IndexPool({ onBuilt: (ms, ok) => metrics?.assetIndexed(ms, ok), logger, maxRandomAccessPoints: config.media.maxRandomAccessPoints });
  const catalog = new AssetCatalog({ mounts: config.media.mounts, cacheDir: config.media.cacheDir, pool, logger });
  const stops: Array<() => Promise<void>> = [() => pool.close()];
  let closing: Promise<void> | undefined;
  // Stop in reverse order of start (RTSP first, so players get their BYE), once.
  const close = (): Promise<void> => (closing ??= (async () => {
    for (const stop of [...stops].reverse()) await stop().catch((err: Error) => logger.error({ err: err.message }, 'error while stopping'));
  })());
  try {
    // A process pair keeps the engine's control blocks in shared memory the other process maps.
    const blocks = config.pair && sharedBlocks(config.pair.link);
    if (blocks) stops.push(() => Promise.resolve(blocks.remove()));
    // And the wires of RTP on RTSP connections, whose ring the other process writes on after a takeover.
    const wires = config.pair && new SharedWires(config.pair.link);
    if (wires) stops.push(() => Promise.resolve(wires.removeAll()));
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
      ...(blocks ? { controlBlockMemory: blocks.memory } : {}),
    });
    stops.push(() => engine.close());
    // Filled in once the RTSP server exists; the admin socket answers only after that.
    const started: Started = {};
    const pairProcess = blocks && wires && await startProcessPair(engine, blocks, wires, started);
    // An asset found unusable while it streamed (its sessions have ended) is refused until its file changes.
    engine.on('asset-failed', (e: AssetFailedEvent) => catalog.markUnavailable(e.assetPath, e.reason));
    // The broadcast table's running side; its broadcasts start once the RTSP server listens.
    const broadcasts = new BroadcastManager({
      engine, catalog, logger, defaultTtl: config.multicast.ttl,
      rules: () => ({ allowForeignDestination: config.rtsp.allowForeignDestination, streamIp: config.network.streamIp, multicastInterface: config.multicast.interface }),
    });
    stops.push(() => Promise.resolve(broadcasts.close()));
    // Its edits, the first apply and every reload's broadcast changes run on one queue.
    const broadcastTable = new BroadcastTable(broadcasts, options.configPath);
    started.broadcasts = { manager: broadcasts, table: broadcastTable };
    // A standby's table runs once it sends (its engine follows the primary's broadcasts meanwhile): its
    // primary's, which crosses the link, else its own configuration's.
    if (pairProcess?.role === 'standby') broadcasts.release(config.broadcasts);
    pairProcess?.attachBroadcasts(broadcasts);
    const auth = new RtspAuthenticator(authSettings(config));
    const applyReload = async (after: (work: Promise<unknown>) => void): Promise<ReloadResult> => {
      if (options.loadConfig === undefined || options.configPath === undefined) {
        throw new TwinframeError('TF_CONFIG_INVALID', 'this server was started without a configuration file to reload');
      }
      const file = await options.loadConfig();
      // Running values as the engine holds them: twinframectl limits/heartbeat change them too.
      const heartbeat = engine.status().heartbeat;
      const running: TwinframeConfig = {
        ...config,
        limits: engine.getLimits(),
        broadcasts: broadcasts.table(),
        failover: { ...config.failover, heartbeatPeriodUs: heartbeat.periodUs, maxMissedHeartbeats: heartbeat.maxMissed },
      };
      const plan = planReload(running, file);
      const next = plan.next;
      const changed = (section: string): boolean => plan.live.some((p) => p.startsWith(`${section}.`) || p === section);
      if (changed('media')) catalog.setMounts(next.media.mounts);
      if (changed('limits')) engine.setLimits(next.limits);
      if (changed('failover')) engine.setHeartbeat(next.failover.heartbeatPeriodUs, next.failover.maxMissedHeartbeats);
      if (changed('rtsp') || changed('network')) started.rtsp?.reconfigure(rtspSettings(next, options.rtsp));
      if (changed('auth') || changed('rtsp')) auth.configure(authSettings(next));
      if (changed('log')) logger.level = next.log.level;
      if (changed('broadcasts')) after(broadcasts.apply(next.broadcasts));
      if (changed('multicast')) after(broadcasts.setMulticast(config.multicast, next.multicast));
      config = next;
      const result: ReloadResult = { source: options.configPath, applied: plan.live, restartNeeded: plan.restart };
      logger.info({ applied: result.applied, restartNeeded: result.restartNeeded }, 'configuration reloaded');
      for (const r of plan.restart) logger.warn({ field: r.path, running: r.running, file: r.file }, 'configuration field changed in the file; it applies only after a restart');
      return result;
    };
    const backend = new EngineAdminBackend({
      engine, catalog, configPath: options.configPath, faultInjection: config.admin.faultInjection, reload: () => broadcastTable.reload(applyReload),
      broadcasts: { manager: broadcasts, table: broadcastTable },
      ...(pairProcess ? { processPair: () => pairProcess.status(), pairSwitch: () => pairProcess.switchRoles() } : {}),
    });
    const admin = new AdminServer({ socketPath: config.admin.socketPath, backend, logger: logger.child({ component: 'admin' }) });
    await admin.listen();
    stops.push(() => admin.close());
    let metricsAddress: { address: string; port: number } | undefined;
    if (config.metrics.listen !== '') {
      const registry = new TwinframeMetrics({ engine, catalog, auth });
      metricsAddress = await listenMetrics(registry, engine, config.metrics.listen, logger);
      if (metricsAddress === undefined) {
        registry.close();
      } else {
        metrics = registry;
        stops.push(() => Promise.resolve(registry.close()));
      }
    }
    const rtspServer = new RtspServer({
      backend: new EngineRtspBackend(engine, catalog),
      broadcasts,
      host: config.rtsp.host,
      port: config.rtsp.port,
      ...rtspSettings(config, options.rtsp),
      auth,
      logger,
      ...(wires ? { wireMemory: wires } : {}),
      ...(metrics === undefined ? {} : { onReply: metrics.rtspReply.bind(metrics) }),
      ...options.rtsp,
    });
    started.rtsp = rtspServer;
    stops.push(() => rtspServer.close());
    // A standby serves viewers only once it took over (its primary holds the port and the broadcasts).
    if (pairProcess?.role !== 'standby') {
      await rtspServer.listen();
      void broadcastTable.start(config.broadcasts); // each start logs its own outcome
    }
    // After listening: a primary passes its listening socket to its standby.
    pairProcess?.attachRtsp(rtspServer);
    return {
      get config() { return config; },
      engine, catalog, admin, rtsp: rtspServer, metrics: metricsAddress, auth, broadcasts, pairProcess, close,
      reload: () => backend.reload(),
    };
  } catch (err) {
    await close();
    throw err;
  }

  /**
   * This process's side of the process pair, if configured. A standby listens
   * for viewers once it took over, and its broadcast table runs then, on the
   * broadcasts its engine carries; a primary that hands sending over lets them go.
   */
  async function startProcessPair(engine: Engine, blocks: SharedBlocks, wires: SharedWires, started: Started): Promise<PairProcess | undefined> {
    if (config.pair === undefined) return undefined;
    const pairProcess = await startPairProcess({
      pair: config.pair, engine, blocks, wires, logger, config: () => config,
      onTakeover: () => {
        const server = started.rtsp;
        if (server) whenFree(() => server.listen(), 'RTSP', logger).catch((err: Error) => logger.error({ err: err.message }, 'took over, but cannot listen for RTSP viewers'));
        const broadcasts = started.broadcasts;
        if (broadcasts) {
          const table = broadcasts.manager.carryOn();
          broadcasts.table.start(table) // each start logs its own outcome
            .catch((err: Error) => logger.error({ err: err.message }, 'took over, but the broadcast table did not start'))
            .finally(() => broadcasts.manager.settleCarried());
        }
      },
      onHandedOver: () => started.broadcasts?.manager.release(),
    });
    stops.push(() => pairProcess.close());
    return pairProcess;
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
