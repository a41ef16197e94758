// The admin backend of a running server: each twinframectl command carried out
// on the engine (state machine commands, switches, faults: on the pair they name,
// pair 0 by default), the catalog (assets) and the configuration file (heartbeat
// and limits persist across restarts).

import type { ProcessPairStatus } from '../pair-process/pair-status.js';
import type { RoleSwitchResult } from '../pair-process/role-switch.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import type { AssetCatalog } from '../catalog/catalog.js';
import { updateConfig } from '../config/store.js';
import { limitsSchema, validateFailoverTiming } from '../config/schema.js';
import { TwinframeError } from '../errors.js';
import { describePair } from '../failover/state-machine.js';
import { failoverStateName, failoverTypeName } from '../failover/states.js';
import type { Engine, FailoverEvent, PairStatus, StreamLimits } from '../engine/engine.js';
import { monoNowMs } from '../shared/clock.js';
import { SLOW_DISK_DEFAULT_MS } from '../shared/commands.js';
import { FailureCause, type PathName } from '../shared/layout.js';
import type {
  AdminBackend, AssetInfo, BroadcastRemoved, FailoverRecord, FaultInjectionResult, HeartbeatSettings, LimitsSettings,
  PairStatesResult, PairView, PathView, ReloadResult, SessionView, StatusResult, WatchEvent, WatchListener,
} from './backend.js';
import type { CommandArgs } from './protocol.js';
import type { BroadcastManager, BroadcastView } from '../broadcast/manager.js';
import type { BroadcastTable } from '../broadcast/table.js';

export interface EngineBackendOptions {
  readonly engine: Engine;
  readonly catalog: AssetCatalog;
  /** Where settings changed here are persisted; undefined: not persisted. */
  readonly configPath: string | undefined;
  readonly faultInjection: boolean;
  /** Re-reads the configuration and applies it (the composition root's). */
  readonly reload: () => Promise<ReloadResult>;
  /** The broadcast table and its running side; absent: the broadcast commands are refused. */
  readonly broadcasts?: { readonly table: BroadcastTable; readonly manager: BroadcastManager };
  /** This process's side of a process pair, for status; absent: it runs alone. */
  readonly processPair?: () => ProcessPairStatus;
  /** The process pair's role switch (src/pair-process/pair-process.ts). */
  readonly pairSwitch?: () => Promise<RoleSwitchResult>;
}

export class EngineAdminBackend implements AdminBackend {
  private readonly engine: Engine;
  private readonly catalog: AssetCatalog;
  private readonly configPath: string | undefined;
  private readonly faultInjection: boolean;
  private readonly applyReload: () => Promise<ReloadResult>;
  /** Reloads run one after the other. */
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly startedAt = Date.now();
  /** Each pair's last switch (failover or manual), by pair index. */
  private readonly lastFailovers: Array<FailoverRecord | null>;
  /** The latest switch of any pair. */
  private lastFailover: FailoverRecord | null = null;
  private readonly listeners = new Set<WatchListener>();
  private readonly broadcasts: EngineBackendOptions['broadcasts'];
  private readonly processPair: EngineBackendOptions['processPair'];
  private readonly switchPair: EngineBackendOptions['pairSwitch'];

  constructor(options: EngineBackendOptions) {
    this.engine = options.engine;
    this.catalog = options.catalog;
    this.configPath = options.configPath;
    this.faultInjection = options.faultInjection;
    this.applyReload = options.reload;
    this.broadcasts = options.broadcasts;
    this.processPair = options.processPair;
    this.switchPair = options.pairSwitch;
    this.broadcasts?.manager.on('change', (c) => this.publish({ type: 'broadcast', at: now(), name: c.name, change: c.status, ...(c.detail === undefined ? {} : { detail: c.detail }) }));
    const engine = this.engine;
    this.lastFailovers = Array.from({ length: engine.pairCount }, () => null);
    engine.on('failover', (e) => this.recordFailover(failoverRecord(e)));
    engine.on('handover', (h) => this.publish({ type: 'handover', at: now(), pair: h.pair, from: h.from, to: h.to, lateMs: h.lateMs }));
    engine.on('path-state', (e) => {
      this.publish({ type: 'state', at: now(), pair: e.pair, states: describePair(engine.failoverPair(e.pair)), cause: `${e.path} → ${e.named}` });
    });
    engine.on('session-opened', (s) => this.publish({ type: 'session', at: now(), id: s.id, change: 'opened', asset: s.assetName, pair: s.pair, ...(s.broadcast === undefined ? {} : { broadcast: s.broadcast }) }));
    engine.on('session-closed', (s) => this.publish({ type: 'session', at: now(), id: s.id, change: 'closed' }));
    engine.on('session-failed', (e) => this.publish({ type: 'session', at: now(), id: e.id, change: 'failed', asset: e.assetName, scope: e.scope, reason: e.reason }));
    engine.on('asset-failed', (e) => this.publish({ type: 'asset', at: now(), asset: e.assetName, change: 'unavailable', reason: e.reason }));
  }

  // The three read commands reject (never throw) like every AdminBackend method.
  status(): Promise<StatusResult> {
    return Promise.resolve().then(() => this.statusNow());
  }

  private statusNow(): StatusResult {
    const s = this.engine.status();
    const pairs = s.pairs.map((p) => this.pairView(p));
    const first = pairs[0];
    return {
      paths: first.paths,
      active: first.active,
      epoch: first.epoch,
      heartbeat: heartbeatSettings(s.heartbeat.periodUs, s.heartbeat.maxMissed),
      handovers: first.handovers,
      lastFailover: this.lastFailover,
      sessions: s.sessions,
      broadcasts: { table: this.broadcasts?.table.list().length ?? 0, sessions: this.engine.listSessions().filter((x) => x.broadcast !== undefined).length },
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      faultInjection: this.faultInjection,
      pairs,
      processPair: this.processPair?.() ?? null,
    };
  }

  private pairView(p: PairStatus): PairView {
    const path = (name: PathName): PathView => {
      const x = p.paths.find((y) => y.path === name)!;
      return {
        path: name, namedState: x.named, failoverType: failoverTypeName(x.failoverType), failoverState: failoverStateName(x.failoverState),
        sending: x.active, threadId: x.threadId, heartbeats: x.heartbeat, restarts: Math.max(0, x.incarnation - 1), // every incarnation after the first replaced a failed worker
      };
    };
    return {
      pair: p.pair, paths: { a: path('a'), b: path('b') }, active: p.active ?? null, epoch: p.epoch, handovers: p.handovers,
      failovers: p.failovers, lastFailover: this.lastFailovers[p.pair] ?? null, sessions: p.sessions,
    };
  }

  sessions(): Promise<SessionView[]> {
    return Promise.resolve().then(() => this.engine.listSessions().map((s) => ({
      id: s.id,
      kind: s.broadcast === undefined ? 'viewer' : 'broadcast',
      broadcast: s.broadcast ?? null,
      pair: s.pair,
      asset: s.assetName,
      // Interleaved, the media goes on the viewer's RTSP connection: no port of its own.
      client: s.interleaved ? s.destination.address : `${s.destination.address}:${s.destination.port}`,
      transport: s.interleaved ? 'RTP/AVP/TCP' : s.transport === 'rtp' ? 'RTP/AVP' : 'MP2T/UDP',
      state: s.state === 'ended' || s.state === 'closed' ? 'ready' : s.state,
      startedAt: s.openedAt.toISOString(),
      // Where the stream is in the asset (after a seek too), not how much it has sent.
      positionSec: Math.round((s.packet * TS_PACKET_BYTES * 8 / s.bitrate) * 10) / 10,
      datagramsSent: s.sent,
      bitrateKbps: Math.round(s.bitrate / 1000),
    })));
  }

  async assets(): Promise<AssetInfo[]> {
    const entries = await this.catalog.list();
    // Indexes what is not indexed yet (the catalog's one indexing thread, cached
    // for later), so every asset shows its duration before anyone played it; an
    // asset that cannot be indexed shows none. One at a time: the data paths share the disk.
    const out: AssetInfo[] = [];
    for (const e of entries) {
      const meta = await this.catalog.resolve(e.name).then((asset) => asset.meta, () => undefined);
      out.push({
        name: e.name, sizeBytes: e.size, indexed: meta !== undefined,
        // The npt range DESCRIBE announces: it covers the last frame.
        durationSec: meta === undefined ? null : Math.round(meta.presentationEndMs) / 1000,
        bitrateKbps: meta === undefined ? null : Math.round(meta.bitrate / 1000),
      });
    }
    return out;
  }

  setConfigType(args: CommandArgs<'set_config_type'>): Promise<PairStatesResult> {
    return this.run({ kind: 'set_config_type', path: args.path, type: args.type }, args.pair);
  }

  startStreaming(args: CommandArgs<'start_streaming'>): Promise<PairStatesResult> {
    return this.run({ kind: 'start_streaming', path: args.path }, args.pair);
  }

  stopStreaming(args: CommandArgs<'stop_streaming'>): Promise<PairStatesResult> {
    return this.run({ kind: 'stop_streaming', path: args.path }, args.pair);
  }

  failoverSync(args: CommandArgs<'failover_sync'>): Promise<PairStatesResult> {
    return this.run({ kind: 'failover_sync', path: args.path }, args.pair);
  }

  failoverUnsync(args: CommandArgs<'failover_unsync'>): Promise<PairStatesResult> {
    return this.run({ kind: 'failover_unsync', path: args.path }, args.pair);
  }

  async heartbeat(args: CommandArgs<'heartbeat'>): Promise<HeartbeatSettings> {
    const current = this.engine.status().heartbeat;
    if (args.periodUs === undefined && args.maxMissed === undefined) return heartbeatSettings(current.periodUs, current.maxMissed);
    const periodUs = args.periodUs ?? current.periodUs;
    const maxMissed = args.maxMissed ?? current.maxMissed;
    validateFailoverTiming(periodUs, maxMissed);
    if (this.configPath) await updateConfig(this.configPath, { failover: { heartbeatPeriodUs: periodUs, maxMissedHeartbeats: maxMissed } });
    this.engine.setHeartbeat(periodUs, maxMissed);
    this.publish({ type: 'config', at: now(), changed: ['failover.heartbeatPeriodUs', 'failover.maxMissedHeartbeats'] });
    return heartbeatSettings(periodUs, maxMissed);
  }

  async limits(args: CommandArgs<'limits'>): Promise<LimitsSettings> {
    const current = this.engine.getLimits();
    const changed = Object.keys(args).filter((k) => (args as Record<string, unknown>)[k] !== undefined);
    if (changed.length === 0) return current;
    const next: StreamLimits = { ...current, ...Object.fromEntries(changed.map((k) => [k, (args as Record<string, number>)[k]])) };
    // Validate the whole (e.g. MPEG ≤ server bandwidth) before anything is persisted or applied.
    const checked = limitsSchema.safeParse(next);
    if (!checked.success) {
      throw new TwinframeError('TF_CONFIG_INVALID', `limits refused: ${checked.error.issues.map((i) => `${i.path.join('.') || 'limits'}: ${i.message}`).join('; ')}`);
    }
    if (this.configPath) await updateConfig(this.configPath, { limits: next });
    this.engine.setLimits(next);
    this.publish({ type: 'config', at: now(), changed: changed.map((k) => `limits.${k}`) });
    return next;
  }

  async failover(args: CommandArgs<'failover'>): Promise<FailoverRecord> {
    const started = monoNowMs();
    const { pair, from, to } = await this.engine.switchover(args.pair ?? 0);
    const record: FailoverRecord = {
      pair, at: now(), from, to, cause: 'manual', detectionLatencyUs: null, switchLatencyUs: Math.round((monoNowMs() - started) * 1000),
    };
    this.recordFailover(record);
    return record;
  }

  pairSwitch(): Promise<RoleSwitchResult> {
    return this.switchPair ? this.switchPair() : Promise.reject(new TwinframeError('TF_PAIR_SWITCH', 'this server runs without a process pair (configuration pair)'));
  }

  reload(): Promise<ReloadResult> {
    const run = this.reloading.catch(() => undefined).then(() => this.applyReload());
    this.reloading = run;
    return run.then((result) => {
      if (result.applied.length > 0) this.publish({ type: 'config', at: now(), changed: result.applied });
      return result;
    });
  }

  injectFault(args: CommandArgs<'inject_fault'>): Promise<FaultInjectionResult> {
    return Promise.resolve().then(() => {
      const pair = args.pair ?? 0;
      const delayMs = args.kind === 'slow-disk' ? args.delayMs ?? SLOW_DISK_DEFAULT_MS : undefined;
      this.engine.injectFault(args.path, args.kind, pair, delayMs);
      this.publish({ type: 'path', at: now(), pair, path: args.path, change: 'fault-injected', detail: delayMs === undefined ? args.kind : `${args.kind} ${delayMs} ms` });
      return { pair, path: args.path, kind: args.kind, delayMs, at: now() };
    });
  }

  broadcastAdd(args: CommandArgs<'broadcast_add'>): Promise<BroadcastView> {
    return this.broadcastTable().then((t) => t.add(args));
  }

  broadcastList(): Promise<BroadcastView[]> {
    return this.broadcastTable().then((t) => t.list());
  }

  broadcastRemove(args: CommandArgs<'broadcast_remove'>): Promise<BroadcastRemoved> {
    return this.broadcastTable().then((t) => t.remove(args.name));
  }

  broadcastStart(args: CommandArgs<'broadcast_start'>): Promise<BroadcastView> {
    return this.broadcastTable().then((t) => t.setState(args.name, 'running'));
  }

  broadcastStop(args: CommandArgs<'broadcast_stop'>): Promise<BroadcastView> {
    return this.broadcastTable().then((t) => t.setState(args.name, 'stopped'));
  }

  private broadcastTable(): Promise<BroadcastTable> {
    const table = this.broadcasts?.table;
    return table ? Promise.resolve(table) : Promise.reject(new TwinframeError('TF_ADMIN_BAD_REQUEST', 'this server runs without a broadcast table'));
  }

  subscribe(listener: WatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async run(event: Parameters<Engine['command']>[0], pair = 0): Promise<PairStatesResult> {
    return { pair, states: await this.engine.command(event, pair) };
  }

  private recordFailover(record: FailoverRecord): void {
    this.lastFailovers[record.pair] = record;
    this.lastFailover = record;
    this.publish({ type: 'failover', ...record });
  }

  private publish(event: WatchEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

function now(): string {
  return new Date().toISOString();
}

function heartbeatSettings(periodUs: number, maxMissed: number): HeartbeatSettings {
  return { periodUs, maxMissed, worstCaseDetectionUs: validateFailoverTiming(periodUs, maxMissed).worstCaseDetectionUs };
}

function failoverRecord(e: FailoverEvent): FailoverRecord {
  return {
    pair: e.pair,
    at: new Date(Date.now() - (monoNowMs() - e.detectedAtMs)).toISOString(),
    from: e.wasActive ? e.pathName : null,
    to: e.switchedToName ?? null,
    cause: e.cause === FailureCause.HEARTBEAT ? 'missed heartbeats' : e.cause,
    detectionLatencyUs: Math.round((e.detectedAtMs - e.failedAtMs) * 1000),
    switchLatencyUs: e.switchLatencyMs === undefined ? null : Math.round(e.switchLatencyMs * 1000),
  };
}
