// A fake AdminBackend for tests of what sits in front of the engine (the admin server,
// twinframectl): canned results that a test file can override per command, every call
// recorded as [wire command, args], and watch events delivered with emit().

import type {
  AdminBackend, BroadcastView, FailoverRecord, SessionView, StatusResult, WatchEvent, WatchListener,
} from '../../src/admin/backend.js';

const FAKE_PATHS: StatusResult['paths'] = {
  a: { path: 'a', namedState: 'Primary', failoverType: 'MASTER', failoverState: 'LIVE', sending: true, threadId: 1, heartbeats: 1200, restarts: 0 },
  b: { path: 'b', namedState: 'Secondary', failoverType: 'SLAVE', failoverState: 'LIVE', sending: false, threadId: 2, heartbeats: 1199, restarts: 1 },
};

/** A healthy single pair: a is Primary and sending, b is its Secondary. */
export const FAKE_STATUS: StatusResult = {
  paths: FAKE_PATHS,
  active: 'a',
  epoch: 3,
  heartbeat: { periodUs: 250, maxMissed: 3, worstCaseDetectionUs: 1400 },
  handovers: 2,
  lastFailover: null,
  sessions: 0,
  broadcasts: { table: 0, sessions: 0 },
  uptimeSec: 42,
  faultInjection: false,
  pairs: [{ pair: 0, paths: FAKE_PATHS, active: 'a', epoch: 3, handovers: 2, failovers: 1, lastFailover: null, sessions: 0 }],
};

type Command = Exclude<keyof AdminBackend, 'subscribe' | 'status'>;
type Handler<M extends Command> = (
  ...args: Parameters<AdminBackend[M]>
) => Awaited<ReturnType<AdminBackend[M]>> | ReturnType<AdminBackend[M]>;

/** Per-command behaviour: return a result, or throw to refuse (a TwinframeError) or fail (anything else). */
export type FakeBehaviour = { readonly [M in Command]?: Handler<M> };

export interface FakeAdminBackendOptions {
  /** What status returns; FAKE_STATUS unless given. */
  readonly status?: StatusResult;
  /** Overrides of the default behaviour, command by command. */
  readonly behaviour?: FakeBehaviour;
}

/** The default sessions list: `sessionCount` playing sessions. */
function fakeSession(i: number): SessionView {
  return {
    id: `s${i}`, kind: 'viewer', broadcast: null, pair: 0, asset: 'sample.ts', client: '127.0.0.1:5000', transport: 'RTP/AVP', state: 'playing',
    startedAt: '2025-01-01T00:00:00.000Z', positionSec: i, datagramsSent: i * 10, bitrateKbps: 4000,
  };
}

export const FAKE_BROADCAST: BroadcastView = {
  name: 'news', asset: '/sample.ts', to: '127.0.0.1:5004', at: '2025-01-01T00:00:00.000Z', loop: true, transport: 'rtp',
  state: 'running', status: 'playing', sessionId: 'b0', error: null, nextRetry: null,
};

const MANUAL_FAILOVER: FailoverRecord = {
  pair: 0, at: '2025-01-01T00:00:00.000Z', from: 'a', to: 'b', cause: 'manual', detectionLatencyUs: null, switchLatencyUs: 12,
};

export class FakeAdminBackend implements AdminBackend {
  /** Every command that reached the backend, as [wire command, args]. */
  readonly calls: Array<[string, unknown]> = [];
  readonly listeners = new Set<WatchListener>();
  /** How long status takes to answer. */
  statusDelayMs = 0;
  /** How many sessions the default sessions() lists. */
  sessionCount = 0;

  readonly #status: StatusResult;
  readonly #behaviour: { readonly [M in Command]: Handler<M> };

  constructor(options: FakeAdminBackendOptions = {}) {
    this.#status = options.status ?? FAKE_STATUS;
    this.#behaviour = {
      sessions: () => Array.from({ length: this.sessionCount }, (_, i) => fakeSession(i)),
      assets: () => [{ name: 'sample.ts', sizeBytes: 4511248, durationSec: 10, bitrateKbps: 3600, indexed: true }],
      setConfigType: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary_Offline', b: 'Undefined' } }),
      startStreaming: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary_No_Secondary', b: 'Undefined' } }),
      stopStreaming: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary_Offline', b: 'Secondary_No_Primary' } }),
      failoverSync: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary_No_Secondary', b: 'Secondary_Synchronized' } }),
      failoverUnsync: (args) => ({ pair: args.pair ?? 0, states: { a: 'Primary_No_Secondary', b: 'Secondary_Offline' } }),
      heartbeat: (args) => ({ periodUs: args.periodUs ?? 250, maxMissed: args.maxMissed ?? 3, worstCaseDetectionUs: 1400 }),
      limits: () => ({ maxStreams: 100, mpegBandwidthKbps: 500000, serverBandwidthKbps: 1000000 }),
      failover: (args) => ({ ...MANUAL_FAILOVER, pair: args.pair ?? 0 }),
      pairSwitch: () => ({ role: 'standby', peerPid: 4242, sessions: 3, settleMs: 0.05, switchMs: null }),
      injectFault: (args) => ({ ...args, pair: args.pair ?? 0, at: '2025-01-01T00:00:00.000Z' }),
      reload: () => ({ source: '/etc/twinframe.json', applied: ['limits.maxStreams'], restartNeeded: [{ path: 'rtsp.port', running: '8554', file: '9554' }] }),
      broadcastAdd: (args) => ({ ...FAKE_BROADCAST, ...args, at: args.at ?? FAKE_BROADCAST.at }),
      broadcastList: () => [FAKE_BROADCAST],
      broadcastRemove: (args) => ({ name: args.name, removed: true }),
      broadcastStart: (args) => ({ ...FAKE_BROADCAST, name: args.name, state: 'running', status: 'playing' }),
      broadcastStop: (args) => ({ ...FAKE_BROADCAST, name: args.name, state: 'stopped', status: 'stopped', sessionId: null }),
      ...options.behaviour,
    };
  }

  async status(): Promise<StatusResult> {
    this.calls.push(['status', {}]);
    if (this.statusDelayMs > 0) await new Promise((r) => setTimeout(r, this.statusDelayMs));
    return this.#status;
  }

  async sessions() { this.calls.push(['sessions', {}]); return this.#behaviour.sessions(); }
  async assets() { this.calls.push(['assets', {}]); return this.#behaviour.assets(); }
  async setConfigType(args: Parameters<AdminBackend['setConfigType']>[0]) { this.calls.push(['set_config_type', args]); return this.#behaviour.setConfigType(args); }
  async startStreaming(args: Parameters<AdminBackend['startStreaming']>[0]) { this.calls.push(['start_streaming', args]); return this.#behaviour.startStreaming(args); }
  async stopStreaming(args: Parameters<AdminBackend['stopStreaming']>[0]) { this.calls.push(['stop_streaming', args]); return this.#behaviour.stopStreaming(args); }
  async failoverSync(args: Parameters<AdminBackend['failoverSync']>[0]) { this.calls.push(['failover_sync', args]); return this.#behaviour.failoverSync(args); }
  async failoverUnsync(args: Parameters<AdminBackend['failoverUnsync']>[0]) { this.calls.push(['failover_unsync', args]); return this.#behaviour.failoverUnsync(args); }
  async heartbeat(args: Parameters<AdminBackend['heartbeat']>[0]) { this.calls.push(['heartbeat', args]); return this.#behaviour.heartbeat(args); }
  async limits(args: Parameters<AdminBackend['limits']>[0]) { this.calls.push(['limits', args]); return this.#behaviour.limits(args); }
  async failover(args: Parameters<AdminBackend['failover']>[0]) { this.calls.push(['failover', {}]); return this.#behaviour.failover(args); }
  async injectFault(args: Parameters<AdminBackend['injectFault']>[0]) { this.calls.push(['inject_fault', args]); return this.#behaviour.injectFault(args); }
  async broadcastAdd(args: Parameters<AdminBackend['broadcastAdd']>[0]) { this.calls.push(['broadcast_add', args]); return this.#behaviour.broadcastAdd(args); }
  async broadcastList() { this.calls.push(['broadcast_list', {}]); return this.#behaviour.broadcastList(); }
  async broadcastRemove(args: Parameters<AdminBackend['broadcastRemove']>[0]) { this.calls.push(['broadcast_remove', args]); return this.#behaviour.broadcastRemove(args); }
  async broadcastStart(args: Parameters<AdminBackend['broadcastStart']>[0]) { this.calls.push(['broadcast_start', args]); return this.#behaviour.broadcastStart(args); }
  async broadcastStop(args: Parameters<AdminBackend['broadcastStop']>[0]) { this.calls.push(['broadcast_stop', args]); return this.#behaviour.broadcastStop(args); }
  async pairSwitch() { this.calls.push(['pair_switch', {}]); return this.#behaviour.pairSwitch(); }
  async reload() { this.calls.push(['reload', {}]); return this.#behaviour.reload(); }

  subscribe(listener: WatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: WatchEvent): void {
    for (const l of this.listeners) l(event);
  }
}
