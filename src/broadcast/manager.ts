// The broadcast manager: the running side of the broadcast table. Each running
// broadcast whose schedule has begun is an engine session with no RTSP viewer,
// opened and played at the position its schedule says now (schedule.ts), so a
// restarted server resumes it like a TV channel; one that starts later waits on
// a timer. The engine carries it like any session: on both paths of its pair
// (a failover is lossless), and a path that restarts picks it up mid-stream
// from the session table. It is also the RTSP layer's BroadcastLookup.
//
// In a process pair only the sending process runs the table. The standby's
// engine follows the primary's broadcast sessions, and its manager keeps the
// primary's table (followTable, over the link); when it takes over (a death or
// a role switch) it takes each broadcast that table names as it stands
// (carryOn: no new session, reports from the session's play) and starts only
// the others. A primary that hands sending over lets its broadcasts go
// (release: no BYE, the streams go on from the other process).

import { EventEmitter } from 'node:events';
import type { AssetCatalog, CatalogAsset } from '../catalog/catalog.js';
import { readPacketTicksAsync } from '../catalog/index-file.js';
import { parseBroadcastDestination, type BroadcastConfig } from '../config/schema.js';
import { toEngineAsset } from '../engine/asset.js';
import type { Engine, SessionFailedEvent, SessionInfo } from '../engine/engine.js';
import { TwinframeError, isTwinframeError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { TICKS_PER_MS } from '../mpegts/packet.js';
import { checkDestination, type DestinationRules } from './destination.js';
import { hasLoopPlan, loopPlanOf } from './loop-source.js';
import { startBroadcastReports, type BroadcastReports, type BroadcastReportsOptions } from './reports.js';
import type { BroadcastLookup, BroadcastStatus, BroadcastStream } from './lookup.js';
import { isMulticastGroup } from '../shared/commands.js';
import { MAX_TIMER_MS, RETRY_MAX_MS, packetAtTicks, retryDelayMs, scheduleNow, startOffsetMs } from './schedule.js';

export type { BroadcastStatus };

/** One broadcast, as twinframectl broadcast list shows it. */
export interface BroadcastView extends BroadcastConfig {
  /** Its schedule's time 0, ISO 8601. */
  readonly at: string;
  readonly status: BroadcastStatus;
  readonly sessionId: string | null;
  readonly error: string | null;
  /** A failed running broadcast: when it is tried again (ISO 8601); null otherwise. */
  readonly nextRetry: string | null;
}

/** Emitted as 'change' whenever a broadcast's status changes. */
export interface BroadcastChange {
  readonly name: string;
  readonly status: BroadcastStatus;
  readonly detail?: string;
}

export interface BroadcastManagerOptions {
  readonly engine: Engine;
  readonly catalog: AssetCatalog;
  readonly logger?: Logger;
  /** The destination rules now (a reload may change them). */
  readonly rules: () => DestinationRules;
  /** TTL of a multicast broadcast that names none. */
  readonly defaultTtl: number;
  /** Wall clock, ms (tests move it). */
  readonly now?: () => number;
}

interface Entry {
  def: BroadcastConfig;
  atMs: number;
  status: BroadcastStatus;
  sessionId: string | undefined;
  error: string | undefined;
  /** Its scheduled start, or (failed) its next try. */
  timer: NodeJS.Timeout | undefined;
  /** Failures in a row (the back-off step), and when the next try is due (ms since the epoch). */
  failures: number;
  retryAtMs: number | undefined;
  /** When it last began playing: a failure after RETRY_MAX_MS of play starts the back-off over. */
  playingSinceMs: number | undefined;
  /** Its RTCP sender reports while its session plays (RTP broadcasts). */
  reports: BroadcastReports | undefined;
  /** Bumped by every change of the entry: a start still under way for an older one gives up. */
  generation: number;
}

export class BroadcastManager extends EventEmitter<{ change: [BroadcastChange]; table: [BroadcastConfig[]] }> implements BroadcastLookup {
  private readonly engine: Engine;
  private readonly catalog: AssetCatalog;
  private readonly log: Logger;
  private readonly rules: () => DestinationRules;
  /** multicast.ttl now (a reload changes it): the TTL of a group broadcast that names none. */
  private defaultTtl: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  /** BYEs on their way out (close() waits for them). */
  private readonly byes = new Set<Promise<void>>();
  /** Broadcast sessions the engine carries for another process (carryOn), by broadcast name, until a launch takes them. */
  private carried = new Map<string, SessionInfo>();
  /** False in a process pair's standby: the table runs only in the process that sends (apply() keeps it for carryOn()). */
  private sending = true;
  /** The table a standby runs once it sends: its primary's, else the one it let go or the last reload's. */
  private heldTable: readonly BroadcastConfig[] = [];
  /** heldTable is the primary's (followTable): a reload here does not replace it. */
  private tableFromPrimary = false;
  private closed = false;

  constructor(options: BroadcastManagerOptions) {
    super();
    this.engine = options.engine;
    this.catalog = options.catalog;
    this.log = (options.logger ?? silentLogger).child({ component: 'broadcast' });
    this.rules = options.rules;
    this.defaultTtl = options.defaultTtl;
    this.now = options.now ?? Date.now;
    this.engine.on('session-ended', ({ id }) => this.sessionOver(id, 'ended', undefined));
    this.engine.on('session-failed', (e: SessionFailedEvent) => this.sessionOver(e.id, 'failed', `${e.scope} fault: ${e.reason}`));
    this.engine.on('session-closed', ({ id }) => {
      const entry = this.bySession(id);
      if (!entry) return;
      entry.sessionId = undefined;
      this.endReports(entry, false); // closed under it: nothing left to report
    });
  }

  /** The table as it runs, in order. */
  table(): BroadcastConfig[] {
    return [...this.entries.values()].map((e) => e.def);
  }

  get(name: string): BroadcastConfig | undefined {
    return this.entries.get(name)?.def;
  }

  find(name: string): BroadcastStream | undefined {
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    const { def } = entry;
    const ssrc = entry.sessionId === undefined ? undefined : this.engine.getSession(entry.sessionId)?.ssrc;
    return {
      name: def.name, assetName: def.asset, destination: parseBroadcastDestination(def.to)!, ttl: def.ttl ?? this.defaultTtl,
      transport: def.transport, sessionId: entry.sessionId, ...(ssrc === undefined ? {} : { ssrc }),
      status: entry.status, ...(entry.status === 'scheduled' ? { nextAtMs: entry.atMs } : entry.retryAtMs === undefined ? {} : { nextAtMs: entry.retryAtMs }),
    };
  }

  list(): BroadcastView[] {
    return [...this.entries.values()].map((e) => ({
      ...e.def, at: new Date(e.atMs).toISOString(), status: e.status, sessionId: e.sessionId ?? null, error: e.error ?? null,
      nextRetry: e.retryAtMs === undefined ? null : new Date(e.retryAtMs).toISOString(),
    }));
  }

  /** TF_BROADCAST_STANDBY in a process pair's standby: the table is edited where it runs, on the primary. */
  requireSending(): void {
    if (!this.sending) throw new TwinframeError('TF_BROADCAST_STANDBY', 'this process is the standby of a process pair: edit the broadcast table on the primary (and keep both configurations\' tables alike)');
  }

  /** How many broadcasts have an engine session now. */
  get playing(): number {
    return [...this.entries.values()].filter((e) => e.sessionId !== undefined).length;
  }

  /**
   * Refuse, with a clear error, a broadcast that cannot run: its asset unknown,
   * its destination one the server may not send to, or (running) over a stream
   * limit next to what runs now. Resolves with its asset.
   */
  async check(def: BroadcastConfig): Promise<CatalogAsset> {
    const asset = await this.catalog.resolve(def.asset).catch((err: unknown) => {
      // The catalog speaks RTSP's 404 to viewers; an operator is told which asset is unknown.
      if (isTwinframeError(err, 'TF_RTSP_NOT_FOUND')) throw new TwinframeError('TF_ASSET_NOT_FOUND', `unknown asset ${def.asset}: ${err.message}`, { asset: def.asset });
      throw err;
    });
    await checkDestination(parseBroadcastDestination(def.to)!, this.rules());
    if (def.state === 'running') this.engine.checkAdmission(asset.meta.bitrate, this.entries.get(def.name)?.sessionId);
    return asset;
  }

  /**
   * Make the running broadcasts match `defs` (the table at start, after an
   * admin change or a reload): removed ones stop, changed ones start again at
   * their schedule's position, new ones start or wait for their time.
   * Resolves once each start has an outcome (playing, scheduled, ended or failed).
   * `restart`: a broadcast that failed (or ended) is started again even if unchanged;
   * one that plays or waits for its time is left alone.
   */
  async apply(defs: readonly BroadcastConfig[], restart?: string): Promise<void> {
    if (!this.sending) {
      // A reload on a standby: run once it sends, unless it follows its primary's table.
      if (!this.tableFromPrimary) this.heldTable = defs;
      else this.log.info('a standby runs its primary\'s broadcast table once it sends: the reloaded one is not used');
      return;
    }
    const wanted = new Map(defs.map((d) => [d.name, d]));
    for (const [name, entry] of this.entries) {
      if (!wanted.has(name)) {
        this.halt(entry);
        this.entries.delete(name);
        this.emit('change', { name, status: 'stopped', detail: 'removed' });
      }
    }
    const order = new Map<string, Entry>();
    const changed: Entry[] = [];
    for (const def of defs) {
      let entry = this.entries.get(def.name);
      const retry = def.name === restart && (entry?.status === 'failed' || entry?.status === 'ended');
      if (entry && !retry && JSON.stringify(entry.def) === JSON.stringify(def)) {
        order.set(def.name, entry);
        continue;
      }
      if (entry) this.halt(entry);
      entry ??= {
        def, atMs: 0, status: 'stopped', sessionId: undefined, error: undefined, timer: undefined,
        failures: 0, retryAtMs: undefined, playingSinceMs: undefined, reports: undefined, generation: 0,
      };
      entry.def = def;
      entry.atMs = def.at === undefined ? this.now() : Date.parse(def.at);
      entry.error = undefined;
      entry.failures = 0; // edited or started by the operator: a new back-off
      order.set(def.name, entry);
      changed.push(entry);
    }
    this.entries.clear();
    for (const [name, entry] of order) this.entries.set(name, entry);
    const starts: Array<Promise<void>> = [];
    for (const entry of changed) {
      if (entry.def.state === 'running') starts.push(this.launch(entry, entry.generation));
      else this.setStatus(entry, 'stopped');
    }
    this.emit('table', this.table());
    await Promise.all(starts);
  }

  /**
   * Resolves once `applied` (an apply() that starts broadcast `name`) has, or as
   * soon as that start is preparing (reading its asset for the loop plan): an
   * admin reply does not wait for a read of the whole asset.
   */
  untilPreparing(name: string, applied: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const onChange = (c: BroadcastChange): void => {
        if (c.name === name && c.status === 'preparing') done();
      };
      const done = (): void => {
        this.off('change', onChange);
        resolve();
      };
      this.on('change', onChange);
      void applied.then(done, done);
    });
  }

  /**
   * A process pair's takeover: the engine carries the other process's
   * broadcasts. The next apply() (the table's start) takes the session of each
   * broadcast its table names with the same asset and destination instead of
   * opening one; the sessions of any other are closed then (this table does not
   * run them), or, if this process has no broadcast table at all, left to run
   * unmanaged (logged). Returns the table to apply: the one held since release().
   */
  carryOn(): readonly BroadcastConfig[] {
    this.sending = true;
    this.tableFromPrimary = false;
    this.carried = new Map(this.engine.listSessions().flatMap((s) => (s.broadcast === undefined ? [] : [[s.broadcast, s] as const])));
    const table = this.heldTable;
    this.heldTable = [];
    return table;
  }

  /** The carried sessions no launch took: closed if this table runs broadcasts, else left to run (logged). Call after apply(). */
  settleCarried(): void {
    const left = [...this.carried.values()];
    this.carried.clear();
    for (const s of left) {
      if (this.entries.size > 0) {
        this.log.warn({ broadcast: s.broadcast, session: s.id }, 'broadcast of the other process that this table does not run (or runs differently): its session is closed');
        this.engine.closeSession(s.id);
      } else {
        this.log.warn({ broadcast: s.broadcast, session: s.id }, 'broadcast of the other process goes on unmanaged: this process has no broadcast table (give both processes the same one)');
      }
    }
  }

  /**
   * A process pair's standby (from its start, or after a role switch): the other
   * process sends the broadcasts and its manager runs them. Reports stop without
   * a BYE (the streams go on), and the table (`table`: the running one) is held
   * until this process sends again (carryOn).
   */
  release(table: readonly BroadcastConfig[] = this.table()): void {
    this.sending = false;
    this.heldTable = table;
    this.tableFromPrimary = false;
    for (const entry of this.entries.values()) {
      entry.generation++;
      clearTimeout(entry.timer);
      entry.sessionId = undefined;
      this.endReports(entry, false);
    }
    this.entries.clear();
  }

  /** A standby: its primary's table as it runs (the link), the one it runs once it sends. */
  followTable(table: readonly BroadcastConfig[]): void {
    if (this.sending) return;
    this.heldTable = table;
    this.tableFromPrimary = true;
  }

  /** Stop every broadcast's timer and reports, with a BYE (the engine closes their sessions as it stops); resolves once every BYE has left. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.entries.values()) {
      clearTimeout(entry.timer);
      entry.generation++;
      this.endReports(entry, true); // the engine stops after this: receivers hear the stream is over
    }
    await Promise.all(this.byes);
  }

  /** Open the broadcast's session at its schedule's position, or wait for its start. */
  private async launch(entry: Entry, generation: number): Promise<void> {
    const stale = (): boolean => this.closed || entry.generation !== generation || this.entries.get(entry.def.name) !== entry;
    entry.timer = undefined;
    this.setStatus(entry, 'starting');
    const { def } = entry;
    let sessionId: string | undefined;
    try {
      const asset = await this.catalog.resolve(def.asset);
      const at = scheduleNow(entry.atMs, this.now(), asset.meta.durationMs, def.loop);
      if (stale()) return;
      if (at.kind === 'pending') {
        entry.timer = setTimeout(() => void this.launch(entry, generation), Math.min(at.inMs, MAX_TIMER_MS));
        this.setStatus(entry, 'scheduled', `starts at ${new Date(entry.atMs).toISOString()}`);
        return;
      }
      if (at.kind === 'ended') {
        this.setStatus(entry, 'ended', 'its schedule is over');
        return;
      }
      const { meta } = asset;
      const ticksOf = (packet: number): Promise<number> => (packet === 0 ? Promise.resolve(0) : readPacketTicksAsync(asset.indexPath, asset.timesOffset, packet));
      const startPacket = await packetAtTicks(startOffsetMs(at.offsetMs) * TICKS_PER_MS, meta.packetCount, ticksOf);
      // A file not read yet for its plan may take long (a multi-GB asset, a cold disk): said, so an edit answers at once.
      if (def.loop && !hasLoopPlan(asset)) this.setStatus(entry, 'preparing', `reading ${asset.name} for its loop plan`);
      const loop = def.loop ? await loopPlanOf(asset) : undefined;
      if (stale()) return;
      const destination = parseBroadcastDestination(def.to)!;
      // Rows from the file (at start, on reload) meet the rules an `add` meets.
      const rules = this.rules();
      const { source } = await checkDestination(destination, rules);
      if (stale()) return;
      const multicast = multicastOf(def, { ttl: this.defaultTtl, interface: rules.multicastInterface });
      const carried = this.takeCarried(def.name, asset.name, destination);
      if (carried) {
        await this.carry(entry, carried, { packetCount: meta.packetCount, loop, destination, multicast }, stale);
        return;
      }
      const info = await this.engine.openSession({
        asset: toEngineAsset({ ...asset, assetPath: asset.path }), assetName: asset.name, destination,
        transport: def.transport, source, broadcast: def.name, ...(loop ? { loop } : {}), ...(multicast ? { multicast } : {}),
      });
      sessionId = info.id;
      if (stale()) {
        this.engine.closeSession(sessionId);
        return;
      }
      entry.sessionId = sessionId;
      const play = await this.engine.play(sessionId, { startPacket });
      if (stale()) return;
      const rtcp = { address: info.source.address, port: info.source.rtcpPort };
      if (!await this.startReports(entry, { engine: this.engine, sessionId, play, packetCount: meta.packetCount, loop, destination, multicast, source: rtcp }, stale)) return;
      this.log.info({ broadcast: def.name, session: sessionId, startPacket, offsetMs: Math.round(at.offsetMs) }, 'broadcast playing');
      this.nowPlaying(entry, `session ${sessionId} from packet ${startPacket}`);
    } catch (err) {
      if (sessionId !== undefined) this.engine.closeSession(sessionId);
      if (entry.sessionId === sessionId) entry.sessionId = undefined;
      if (stale()) return;
      this.failed(entry, (err as Error).message, 'broadcast could not start');
    }
  }

  /** The carried session of broadcast `name`, if it plays `assetName` to `destination` (else it is left for settleCarried). */
  private takeCarried(name: string, assetName: string, destination: { address: string; port: number }): SessionInfo | undefined {
    const s = this.carried.get(name);
    if (!s || s.assetName !== assetName || s.destination.address !== destination.address || s.destination.port !== destination.port) return undefined;
    this.carried.delete(name);
    return this.engine.getSession(s.id) === undefined ? undefined : s;
  }

  /** The entry runs on the carried session as it stands: its reports start from the session's play. */
  private async carry(entry: Entry, carried: SessionInfo, stream: Pick<BroadcastReportsOptions, 'packetCount' | 'loop' | 'destination' | 'multicast'>, stale: () => boolean): Promise<void> {
    entry.sessionId = carried.id;
    const play = this.engine.currentPlay(carried.id);
    const source = { address: carried.source.address, port: carried.source.rtcpPort };
    if (play && !await this.startReports(entry, { engine: this.engine, sessionId: carried.id, play, ...stream, source }, stale)) return;
    this.log.info({ broadcast: entry.def.name, session: carried.id }, 'broadcast taken over from the other process of the pair');
    this.nowPlaying(entry, `session ${carried.id}, taken over`);
  }

  /** An RTP broadcast's sender reports, on the entry; false if the entry went stale meanwhile (they are stopped again). */
  private async startReports(entry: Entry, options: BroadcastReportsOptions, stale: () => boolean): Promise<boolean> {
    if (entry.def.transport !== 'rtp') return true;
    const reports = await startBroadcastReports(options).catch((err: Error) => {
      // Sender reports are advisory: the broadcast goes on without them, as a viewer's session does.
      this.log.warn({ broadcast: entry.def.name, err: err.message, port: options.source.port }, 'cannot bind the RTCP port; no sender reports');
      return undefined;
    });
    if (stale()) {
      void reports?.end(false);
      return false;
    }
    entry.reports = reports;
    return true;
  }

  private nowPlaying(entry: Entry, detail: string): void {
    entry.playingSinceMs = this.now();
    entry.error = undefined; // a try after a failure worked
    this.setStatus(entry, 'playing', detail);
  }

  /**
   * The entry failed: its reason kept and logged (once per failure, so once per
   * back-off step), and a running one tried again after the back-off
   * (schedule.ts retryDelayMs); `start`, an edit or a removal ends the wait.
   */
  private failed(entry: Entry, error: string, message: string): void {
    entry.error = error;
    entry.retryAtMs = undefined;
    if (entry.def.state !== 'running' || this.closed) {
      this.log.warn({ broadcast: entry.def.name, err: error }, message);
      this.setStatus(entry, 'failed', error);
      return;
    }
    if (entry.playingSinceMs !== undefined && this.now() - entry.playingSinceMs >= RETRY_MAX_MS) entry.failures = 0;
    entry.playingSinceMs = undefined;
    entry.failures++;
    const delayMs = retryDelayMs(entry.failures);
    entry.retryAtMs = this.now() + delayMs;
    const generation = entry.generation;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.retryAtMs = undefined;
      void this.launch(entry, generation);
    }, delayMs);
    const retryAt = new Date(entry.retryAtMs).toISOString();
    this.log.warn({ broadcast: entry.def.name, err: error, failures: entry.failures, retryInMs: delayMs, retryAt }, `${message}; trying again in ${delayMs / 1000} s`);
    this.setStatus(entry, 'failed', `${error} (failure ${entry.failures} in a row; next try at ${retryAt})`);
  }

  /**
   * multicast.* changed by a reload, from `running` to `next` (the rules answer
   * `next.interface` by the time a restart reads them). A session's TTL and
   * interface are set on both paths' sockets when it opens, so each group
   * broadcast the change reaches (one that takes the server's TTL, or any when
   * the interface changes) starts again at its schedule's position with the new
   * ones, as an edited broadcast does: a new session (new SSRC, a few ms without
   * datagrams). Resolves once each restart has an outcome.
   */
  async setMulticast(running: MulticastSettings, next: MulticastSettings): Promise<void> {
    this.defaultTtl = next.ttl;
    const restarts: Array<Promise<void>> = [];
    for (const entry of this.entries.values()) {
      const live = entry.status === 'playing' || entry.status === 'starting';
      if (!live || JSON.stringify(multicastOf(entry.def, running)) === JSON.stringify(multicastOf(entry.def, next))) continue;
      this.halt(entry);
      restarts.push(this.launch(entry, entry.generation));
    }
    await Promise.all(restarts);
  }

  /** Stop what the entry runs or waits for; a start under way gives up. */
  private halt(entry: Entry): void {
    entry.generation++;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.retryAtMs = undefined;
    if (entry.sessionId !== undefined) {
      const id = entry.sessionId;
      entry.sessionId = undefined;
      this.endReports(entry, true);
      this.engine.closeSession(id);
    }
  }

  /** Stop the entry's reports; `bye` (before its session closes): a last report and a BYE. */
  private endReports(entry: Entry, bye: boolean): void {
    const reports = entry.reports;
    entry.reports = undefined;
    if (reports === undefined) return;
    const ending = reports.end(bye);
    this.byes.add(ending);
    void ending.finally(() => this.byes.delete(ending));
  }

  private sessionOver(id: string, status: 'ended' | 'failed', error: string | undefined): void {
    const entry = this.bySession(id);
    if (!entry) return;
    entry.sessionId = undefined;
    this.endReports(entry, true);
    this.engine.closeSession(id);
    if (status === 'failed') {
      this.failed(entry, error ?? 'its session failed', 'broadcast session failed');
    } else {
      entry.error = undefined;
      this.setStatus(entry, status);
    }
  }

  private bySession(id: string): Entry | undefined {
    for (const entry of this.entries.values()) if (entry.sessionId === id) return entry;
    return undefined;
  }

  private setStatus(entry: Entry, status: BroadcastStatus, detail?: string): void {
    if (entry.status === status && status !== 'failed') return;
    entry.status = status;
    this.emit('change', { name: entry.def.name, status, ...(detail === undefined ? {} : { detail }) });
  }
}

/** The configuration's multicast section. */
export interface MulticastSettings {
  readonly ttl: number;
  readonly interface?: string | undefined;
}

/** The multicast options a broadcast's session opens with under `settings`; undefined for a unicast push. */
function multicastOf(def: BroadcastConfig, settings: MulticastSettings): { ttl: number; interface?: string } | undefined {
  if (!isMulticastGroup(parseBroadcastDestination(def.to)!.address)) return undefined;
  return { ttl: def.ttl ?? settings.ttl, ...(settings.interface === undefined ? {} : { interface: settings.interface }) };
}

/** TF_BROADCAST_NOT_FOUND unless the table has it. */
export function requireBroadcast(manager: BroadcastManager, name: string): BroadcastConfig {
  const def = manager.get(name);
  if (!def) throw new TwinframeError('TF_BROADCAST_NOT_FOUND', `no broadcast '${name}'`, { name });
  return def;
}
