// twinframe's Prometheus metrics (prom-client), in their own registry. Three
// sources, none of them on the data path's hot loop:
// - the control blocks: each data path counts what it sends (datagrams, bytes)
//   and its send batches' pacing lateness in its own words of its pair's control
//   block (one Atomics.add per session run or per batch); a scrape reads them
//   (collect callbacks), so nothing is posted or logged per datagram;
// - the engine's state (sessions, failover states, switch counters), read at scrape;
// - events the control plane already has: failovers and handovers (engine events),
//   RTSP replies and asset indexing (callbacks the composition root wires up).

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AssetCatalog } from '../catalog/catalog.js';
import type { Engine, FailoverEvent, HandoverEvent, PathStatus, SessionInfo } from '../engine/engine.js';
import type { AuthCounters } from '../rtsp/auth.js';
import { NamedState } from '../failover/states.js';
import { LATENESS_BUCKETS_MS, PATH_COUNT, PATH_NAMES, type PathId } from '../shared/layout.js';
import { SharedHistogram, type BucketCounts } from './shared-histogram.js';
import { WideCounter } from './wide-counter.js';

/** How often the shared 32-bit counters are read besides scrapes, so none wraps unseen (wide-counter.ts). */
const SAMPLE_INTERVAL_MS = 1000;

/** Failure detection and switch latency buckets, seconds: a crash is switched in ~0.2 ms, a hang within ~15 ms. */
const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.0334, 0.1, 1];
/** Indexing an asset: a sample of seconds takes milliseconds, 180 MB about 0.4 s. */
const INDEX_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A session's transport as RTSP (and twinframectl sessions) names it. */
function transportLabel(s: SessionInfo): string {
  if (s.interleaved) return 'RTP/AVP/TCP';
  return s.transport === 'rtp' ? 'RTP/AVP' : 'MP2T/UDP';
}

/** Counters of one path of one pair, widened from the control block's 32-bit words. */
interface PathCounters {
  readonly pair: string;
  readonly path: string;
  readonly datagrams: WideCounter;
  readonly bytes: WideCounter;
  readonly latenessSumUs: WideCounter;
  readonly latenessBuckets: readonly WideCounter[];
}

type PathLabel = 'pair' | 'path';

export class TwinframeMetrics {
  readonly registry = new Registry();
  readonly #engine: Engine;
  readonly #paths: PathCounters[] = [];
  readonly #sampler: NodeJS.Timeout;
  readonly #detection: Histogram<'cause'>;
  readonly #switch: Histogram<'cause'>;
  readonly #failovers: Counter<'pair' | 'path' | 'cause'>;
  readonly #handovers: Counter<'pair' | 'cause'>;
  readonly #rtspRequests: Counter<'method' | 'status'>;
  readonly #indexing: Histogram<'result'>;
  readonly #onFailover = (e: FailoverEvent): void => this.#failover(e);
  readonly #onHandover = (e: HandoverEvent): void => this.#handovers.inc({ pair: String(e.pair), cause: e.cause });

  constructor(options: { engine: Engine; catalog: AssetCatalog; auth?: { counters(): AuthCounters } }) {
    const { engine, catalog, auth } = options;
    this.#engine = engine;
    const registers = [this.registry];
    for (let pair = 0; pair < engine.status().pairs.length; pair++) {
      const cb = engine.controlBlock(pair);
      for (let id = 0; id < PATH_COUNT; id++) {
        const path = id as PathId;
        this.#paths.push({
          pair: String(pair),
          path: PATH_NAMES[path],
          datagrams: new WideCounter(() => cb.sentCount(path)),
          bytes: new WideCounter(() => cb.sentBytes(path)),
          latenessSumUs: new WideCounter(() => cb.latenessSumUs(path)),
          latenessBuckets: Array.from({ length: LATENESS_BUCKETS_MS.length + 1 }, (_, bucket) => new WideCounter(() => cb.latenessBucketCount(path, bucket))),
        });
      }
    }
    const paths = this.#paths;
    const perPath = (counter: Counter<PathLabel>, value: (p: PathCounters) => number): void => {
      counter.reset();
      for (const p of paths) counter.inc({ pair: p.pair, path: p.path }, value(p));
    };

    new Counter({
      name: 'twinframe_path_sent_datagrams_total', help: 'Datagrams a data path put on the wire (every incarnation of the path).',
      labelNames: ['pair', 'path'], registers,
      collect() { perPath(this, (p) => p.datagrams.value()); },
    });
    new Counter({
      name: 'twinframe_path_sent_bits_total',
      help: 'Bits of RTP packets (or raw MPEG-TS datagrams) a data path sent, without UDP/IP headers or interleaved framing.',
      labelNames: ['pair', 'path'], registers,
      collect() { perPath(this, (p) => p.bytes.value() * 8); },
    });
    new SharedHistogram<PathLabel>({
      name: 'twinframe_pacing_lateness_seconds',
      help: 'How late each send batch of a data path left, counted from its most overdue datagram\'s deadline (early or on time: 0).',
      labelNames: ['pair', 'path'], bounds: LATENESS_BUCKETS_MS.map((ms) => ms / 1000), registry: this.registry,
      read: (): BucketCounts<PathLabel>[] => paths.map((p) => ({
        labels: { pair: p.pair, path: p.path }, counts: p.latenessBuckets.map((b) => b.value()), sum: p.latenessSumUs.value() / 1e6,
      })),
    });

    new Gauge({
      name: 'twinframe_sessions', help: 'Sessions open (set up, not yet closed), by transport (RTP/AVP, RTP/AVP/TCP, MP2T/UDP) and state.',
      labelNames: ['transport', 'state'], registers,
      collect() {
        this.reset();
        for (const s of engine.listSessions()) this.inc({ transport: transportLabel(s), state: s.state });
      },
    });
    new Gauge({
      name: 'twinframe_path_state', help: 'A data path\'s failover state (the patent\'s named states): 1 for the current one.',
      labelNames: ['pair', 'path', 'state'], registers,
      collect() {
        this.reset();
        for (const pair of engine.status().pairs) {
          for (const p of pair.paths) {
            for (const state of Object.values(NamedState)) this.set({ pair: String(pair.pair), path: p.path, state }, p.named === state ? 1 : 0);
          }
        }
      },
    });
    const pathGauge = (name: string, help: string, value: (p: PathStatus) => number): void => {
      new Gauge({
        name, help, labelNames: ['pair', 'path'], registers,
        collect() {
          this.reset();
          for (const pair of engine.status().pairs) for (const p of pair.paths) this.set({ pair: String(pair.pair), path: p.path }, value(p));
        },
      });
    };
    pathGauge('twinframe_path_sending', '1 while the data path owns ACTIVE (sends), else 0.', (p) => (p.active ? 1 : 0));
    pathGauge('twinframe_path_online', '1 while the data path is online (running and synchronized: it may send or take over), else 0.', (p) => (p.online ? 1 : 0));
    pathGauge('twinframe_path_incarnation', 'Which incarnation of the data path\'s worker runs (bumped at every restart).', (p) => p.incarnation);
    new Counter({
      name: 'twinframe_switches_total', help: 'Moves of ACTIVE (who sends) on a pair: failovers, handovers and manual switches.',
      labelNames: ['pair'], registers,
      collect() {
        this.reset();
        for (const pair of engine.status().pairs) this.inc({ pair: String(pair.pair) }, pair.switches);
      },
    });

    this.#failovers = new Counter({
      name: 'twinframe_failovers_total', help: 'Data paths failed and taken out of service, by cause.',
      labelNames: ['pair', 'path', 'cause'], registers,
    });
    this.#handovers = new Counter({
      name: 'twinframe_handovers_total',
      help: 'Lossless handovers from a late sender to its on-time twin (nobody failed), by cause: late (the sender stood still), read-wait (it waited for its disk).',
      labelNames: ['pair', 'cause'], registers,
    });
    this.#detection = new Histogram({
      name: 'twinframe_failover_detection_seconds', help: 'From a data path\'s failure to its detection (the failure claimed), by cause.',
      labelNames: ['cause'], buckets: LATENCY_BUCKETS_S, registers,
    });
    this.#switch = new Histogram({
      name: 'twinframe_failover_switch_seconds', help: 'From the detection of a sending path\'s failure to ACTIVE moved to its twin, by cause.',
      labelNames: ['cause'], buckets: LATENCY_BUCKETS_S, registers,
    });
    this.#rtspRequests = new Counter({
      name: 'twinframe_rtsp_requests_total', help: 'RTSP replies by request method and status (method "none": no request could be read).',
      labelNames: ['method', 'status'], registers,
    });

    if (auth !== undefined) {
      new Counter({
        name: 'twinframe_rtsp_auth_failures_total',
        help: 'RTSP logins refused: credentials wrong (failed), an address locked out after too many (lockout), requests refused while locked out (locked_out).',
        labelNames: ['kind'], registers,
        collect() {
          const c = auth.counters();
          this.reset();
          this.inc({ kind: 'failed' }, c.failedLogins);
          this.inc({ kind: 'lockout' }, c.lockouts);
          this.inc({ kind: 'locked_out' }, c.refusedLockedOut);
        },
      });
    }
    new Gauge({
      name: 'twinframe_assets', help: 'MPEG-TS files under the mount points (walked at each scrape).', registers,
      async collect() { this.set((await catalog.list()).length); },
    });
    this.#indexing = new Histogram({
      name: 'twinframe_asset_index_seconds', help: 'Time to index an asset (cached indexes are not counted), by result.',
      labelNames: ['result'], buckets: INDEX_BUCKETS_S, registers,
    });

    new Counter({
      name: 'process_cpu_seconds_total', help: 'CPU time of the whole process (every thread), user and system.', registers,
      collect() {
        const { user, system } = process.cpuUsage();
        this.reset();
        this.inc((user + system) / 1e6);
      },
    });
    new Gauge({
      name: 'process_resident_memory_bytes', help: 'Resident set size of the process.', registers,
      collect() { this.set(process.memoryUsage.rss()); },
    });

    engine.on('failover', this.#onFailover);
    engine.on('handover', this.#onHandover);
    this.#sampler = setInterval(() => this.#sample(), SAMPLE_INTERVAL_MS).unref();
  }

  /** The exposition text of every metric (GET /metrics). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** An RTSP reply was sent (method as the server names it; "none" when no request was read). */
  rtspReply(method: string, status: number): void {
    this.#rtspRequests.inc({ method, status: String(status) });
  }

  /** An asset index was built (ok) or refused its asset, taking `ms`. */
  assetIndexed(ms: number, ok: boolean): void {
    this.#indexing.observe({ result: ok ? 'ok' : 'refused' }, ms / 1000);
  }

  close(): void {
    clearInterval(this.#sampler);
    this.#engine.off('failover', this.#onFailover);
    this.#engine.off('handover', this.#onHandover);
  }

  #failover(e: FailoverEvent): void {
    this.#failovers.inc({ pair: String(e.pair), path: e.pathName, cause: e.cause });
    this.#detection.observe({ cause: e.cause }, Math.max(0, e.detectedAtMs - e.failedAtMs) / 1000);
    if (e.switchLatencyMs !== undefined) this.#switch.observe({ cause: e.cause }, Math.max(0, e.switchLatencyMs) / 1000);
  }

  /** Read every shared counter, so none wraps between two reads. */
  #sample(): void {
    for (const p of this.#paths) {
      p.datagrams.value();
      p.bytes.value();
      p.latenessSumUs.value();
      for (const b of p.latenessBuckets) b.value();
    }
  }
}
