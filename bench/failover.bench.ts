// Failover benchmark: injects many faults of every kind into a running engine
// that streams 1 and 20 concurrent ~4 Mbit/s RTP sessions to a receiver on
// 127.0.0.1, and measures what a viewer would see.
//
//   node dist/bench/failover.bench.js [--faults N] [--sessions 1,20] [--quick] ...
//
// Per fault kind (crash, exception, hang, socket, disk, temperature), separately
// for faults of the active path and of the standby:
//   (a) fault → ACTIVE switch: the earlier of FailoverEvent.switchedAtMs and a
//       handover away from the victim after the injection (HandoverEvent.atMs),
//       minus failedAtMs: a sending path that hangs is usually handed over from
//       by its standby before the supervisor fails it (then wasActive=false);
//   (b) lateness of the first datagram due at or after the fault instant
//       (failedAtMs): its arrival minus its schedule, where the schedule of a
//       datagram is PlayResult.startTimeMs + (times[packet] - times[startPacket]) / 90;
//       per fault the worst session counts;
//   (c) the largest inter-arrival gap of a session in [T - 50 ms, T + 100 ms]
//       (worst session), against the same figure at random instants of a
//       no-fault baseline run by the same invocation on the same engine.
// Totals over every datagram of every session: lost, duplicated, reordered (RTP
// sequence numbers), mismatched (payload/timestamp/SSRC against the asset, with
// test/helpers' checkRtpStream), false failovers (path failures no injected
// fault explains), unexplained handovers (a standby took sending over from a late
// sender with no injected fault behind it: lossless by design, counted apart from
// false failovers; an engine without handovers, the earlier design, simply
// reports none); kernel UDP receive-buffer drops
// (/proc/net/snmp RcvbufErrors and the receiver sockets' own drop counters in
// /proc/net/udp) are reported apart, so a receiver drop is never taken for
// server loss.
//
// The receiver is this same file run as a child process (--receiver process, the
// default; --receiver thread runs it as a worker thread of the bench instead). A
// separate process shares nothing with the engine's process (V8 platform
// threads, allocator, mmap lock), as a real viewer would not; CLOCK_MONOTONIC is
// one clock for every process of the host, so its stamps compare directly. It
// binds one socket per session with a 4 MiB receive buffer, stamps every arrival
// with Number(process.hrtime.bigint()) / 1e6 (the clock of monoNowMs(),
// FailoverEvent and PlayResult.startTimeMs), keeps (seq, arrival) per datagram
// in typed arrays and checks payloads as they come, so memory stays small over
// long runs. It asks for SCHED_FIFO priority 5 (below the engine's 10) so that
// other processes on a noisy box do not delay its stamps, while the engine's
// threads still preempt it.
//
// Sessions end with the asset (12 s) and are played again from packet 0 on
// 'session-ended'; every PlayResult is kept, so each sequence number maps to its
// segment and packet. When no path was sending for a while (both failed), the
// engine restarts the sessions' clocks by itself (no PlayResult): the receiver
// infers those segments from the RTP timestamps and counts them.
//
// An engine that does not get protected again, or does not notice a fault,
// within the recovery timeout is closed and replaced by a fresh one (new
// sessions on new receiver sockets): the fault counts as unrecovered and the
// run goes on.
//
// Everything is bounded: a fault that does not recover within
// --recovery-timeout-ms (10 s) is recorded as a failure and the run goes on; the
// engine, sockets, worker threads and temp files are always cleaned up and the
// process exits by itself.

import { fork, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { IndexPool } from '../src/catalog/index-pool.js';
import { readIndexFile } from '../src/catalog/index-file.js';
import { toEngineAsset } from '../src/engine/asset.js';
import { Engine, type EngineAsset, type FailoverEvent, type PlayResult, type SessionInfo } from '../src/engine/engine.js';
import { monoNowMs } from '../src/shared/clock.js';
import { FaultKinds, type FaultKind } from '../src/shared/commands.js';
import { raiseThreadPriority } from '../src/shared/thread-priority.js';
import { createLogger, silentLogger, type Logger } from '../src/log.js';
import { checkRtpStream, type SampleAsset } from '../test/helpers/engine-fixture.js';
import { parseRtpPacket, sequenceStats, type RtpPacket } from '../test/helpers/rtsp-client.js';
import { FlagReader, mulberry32, nearest16, quantile, readSocketDrops, readStealMs, readUdpSnmp, sleep, threadPolicies, withTimeout } from './lib.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, from dist/bench/ (compiled) or bench/ (never run uncompiled, but be kind). */
const ROOT = path.basename(path.dirname(HERE)) === 'dist' ? path.resolve(HERE, '../..') : path.resolve(HERE, '..');

const EXPECTED_CAUSE: Record<FaultKind, string> = {
  crash: 'exit', exception: 'exception', hang: 'heartbeat', socket: 'socket', disk: 'disk', temperature: 'temperature',
};
const TS_PER_DATAGRAM = 7;
/** A victim synchronized less than this long before its fault is reported apart as young (one rule judges every age; the earlier design had a 3 s warm-up). */
const YOUNG_VICTIM_MS = 3000;
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
const GAP_BEFORE_MS = 50;
const GAP_AFTER_MS = 100;
const TARGET_LATE_P50_MS = 1;
const TARGET_LATE_P99_MS = 33;
const RECEIVER_FIFO_PRIORITY = 5;

// ─────────────────────────────────────────────────────────────────────────────
// Options

interface Options {
  faults: number;
  sessions: number[];
  kinds: FaultKind[];
  standbyShare: number;
  baselineS: number;
  warmupMs: number;
  settleMinMs: number;
  settleMaxMs: number;
  recoveryTimeoutMs: number;
  muxrate: number;
  asset: string | undefined;
  seed: number;
  out: string;
  receiverRt: boolean;
  receiver: 'process' | 'thread';
  log: string | undefined;
  deadlineMin: number;
  quick: boolean;
  strict: boolean;
}

const USAGE = `usage: node dist/bench/failover.bench.js [options]
  --faults N               faults in total, split evenly over the session counts (default 1000; --quick 120)
  --sessions 1,20          concurrent session counts, one engine each (default 1,20)
  --kinds a,b              fault kinds (default all: ${FaultKinds.join(',')})
  --standby-share F        share of faults aimed at the standby path (default 0.2)
  --baseline-s S           no-fault baseline per session count, seconds (default 20; --quick 8)
  --warmup-ms MS           streaming before the baseline starts (default 2000)
  --settle-ms MIN-MAX      random pause after the pair is protected again, before the next fault (default 150-350)
  --recovery-timeout-ms MS a fault not recovered within this is a failure (default 10000)
  --muxrate BPS            mux rate of the generated asset (default 4000000)
  --asset FILE             use this .ts file instead of generating one
  --seed N                 PRNG seed (default: time)
  --receiver process|thread  receiver in a child process (default: it shares nothing with the engine's
                           process: no V8 platform threads, no mmap lock) or in a worker thread of the bench
  --receiver-rt on|off     receiver thread asks for SCHED_FIFO ${RECEIVER_FIFO_PRIORITY} (default on)
  --log FILE               engine log (pino, level info) to FILE
  --deadline-min M         stop injecting after M minutes and report what was measured (default 30)
  --out DIR                where the JSON goes (default bench/results)
  --quick                  --faults 120 --baseline-s 8
  --strict                 exit 1 when a target is missed (default: exit 0 unless the bench itself failed)`;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    faults: 1000, sessions: [1, 20], kinds: [...FaultKinds], standbyShare: 0.2, baselineS: 20, warmupMs: 2000,
    settleMinMs: 150, settleMaxMs: 350, recoveryTimeoutMs: 10_000, muxrate: 4_000_000, asset: undefined,
    seed: Date.now() % 2 ** 31, out: path.join(ROOT, 'bench/results'), receiverRt: true, receiver: 'process', log: undefined, deadlineMin: 30, quick: false, strict: false,
  };
  let faultsGiven = false;
  let baselineGiven = false;
  const args = new FlagReader(argv, USAGE);
  for (const flag of args.flags()) {
    const value = (): string => args.value(flag);
    const num = (): number => args.number(flag);
    switch (flag) {
      case '--faults': o.faults = Math.max(0, Math.floor(num())); faultsGiven = true; break;
      case '--sessions': o.sessions = value().split(',').map((s) => Math.max(1, Math.floor(Number(s)))).filter((n) => Number.isFinite(n)); break;
      case '--kinds': {
        const kinds = value().split(',').map((s) => s.trim());
        for (const k of kinds) if (!(FaultKinds as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${k}`);
        o.kinds = kinds as FaultKind[];
        break;
      }
      case '--standby-share': o.standbyShare = Math.min(1, Math.max(0, num())); break;
      case '--baseline-s': o.baselineS = Math.max(1, num()); baselineGiven = true; break;
      case '--warmup-ms': o.warmupMs = Math.max(0, num()); break;
      case '--settle-ms': {
        const [a, b] = value().split('-').map(Number);
        if (!Number.isFinite(a)) throw new Error('--settle-ms MIN-MAX');
        o.settleMinMs = a!;
        o.settleMaxMs = Number.isFinite(b) ? Math.max(a, b) : a;
        break;
      }
      case '--recovery-timeout-ms': o.recoveryTimeoutMs = Math.max(100, num()); break;
      case '--muxrate': o.muxrate = Math.max(100_000, num()); break;
      case '--asset': o.asset = path.resolve(value()); break;
      case '--seed': o.seed = Math.floor(num()); break;
      case '--receiver-rt': o.receiverRt = value() !== 'off'; break;
      case '--receiver': {
        const v = value();
        if (v !== 'process' && v !== 'thread') throw new Error(`--receiver process|thread\n${USAGE}`);
        o.receiver = v;
        break;
      }
      case '--log': o.log = path.resolve(value()); break;
      case '--deadline-min': o.deadlineMin = Math.max(0.1, num()); break;
      case '--out': o.out = path.resolve(value()); break;
      case '--quick': o.quick = true; break;
      case '--strict': o.strict = true; break;
      case '--help': case '-h': console.log(USAGE); process.exit(0); break;
      default: console.error(`failover.bench: ignoring unknown option ${flag}`);
    }
  }
  if (o.quick) {
    if (!faultsGiven) o.faults = 120;
    if (!baselineGiven) o.baselineS = 8;
  }
  if (o.sessions.length === 0) o.sessions = [1, 20];
  return o;
}

// ─────────────────────────────────────────────────────────────────────────────
// Small helpers

interface Dist { n: number; p50: number; p99: number; max: number; mean: number }

function dist(values: readonly number[]): Dist {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const mean = v.length ? v.reduce((s, x) => s + x, 0) / v.length : Number.NaN;
  return { n: v.length, p50: quantile(v, 0.5), p99: quantile(v, 0.99), max: v.length ? v[v.length - 1] : Number.NaN, mean };
}

function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}

function fmtDist(d: Dist, width = 6, digits = 2): string {
  return [d.p50, d.p99, d.max].map((x) => fmt(x, digits).padStart(width)).join(' ');
}

/** engine.status().handovers, or undefined for an engine that does not count handovers (the earlier design). */
function handoverCount(status: object): number | undefined {
  const n = (status as Record<string, unknown>).handovers;
  return typeof n === 'number' ? n : undefined;
}

// ─────────────────────────────────────────────────────────────────────────────
// Receiver thread

interface ReceiverInit {
  readonly role: 'receiver';
  readonly asset: EngineAsset;
  readonly times: Uint32Array;
  readonly rt: boolean;
}

/** How the receiver talks to the bench: a worker's parentPort, or a child process's IPC channel. */
interface Channel {
  post(msg: FromReceiver, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (msg: ToReceiver) => void): void;
  close(): void;
}

interface Segment {
  /** Session cursor (datagram index since the session opened) of the segment's first datagram. */
  readonly startCursor: number;
  readonly play: PlayResult;
  /** first / ended: play() results of the bench; stall: a restarted stalled session; rebase: inferred from RTP timestamps (engine-internal restart of the clock). */
  readonly reason: 'first' | 'ended' | 'stall' | 'rebase';
}

type ToReceiver =
  | { type: 'add'; count: number }
  | { type: 'session'; sock: number; info: SessionInfo }
  | { type: 'segment'; sock: number; segment: Segment }
  | { type: 'collect' }
  | { type: 'init'; init: ReceiverInit };

interface SocketData {
  readonly sock: number;
  readonly port: number;
  readonly count: number;
  readonly seq: Uint16Array;
  readonly at: Float64Array;
  readonly mismatched: number;
  readonly firstMismatch: string | undefined;
  readonly checked: number;
  readonly unplaced: number;
  readonly malformed: number;
  /** Segments as the receiver knows them: the play() results plus the inferred engine rebases. */
  readonly segments: Segment[];
  readonly inferredRebases: number;
}

type FromReceiver =
  | { type: 'booted'; policy: string; policyError: string | undefined }
  | { type: 'added'; first: number; ports: number[]; recvBuffer: number[] }
  /** Every 50 ms: last arrival (ms) and datagram count per socket, for the stall watchdog and the end-of-phase quiet wait. */
  | { type: 'live'; last: number[]; counts: number[] }
  | { type: 'data'; sockets: SocketData[] };

function segmentLength(seg: Segment, packetCount: number): number {
  return Math.ceil((packetCount - seg.play.startPacket) / TS_PER_DATAGRAM);
}

/**
 * The receiver thread. One socket per session (sockets are added per engine
 * generation, never reused), each stamping arrivals on the shared clock and
 * checking payloads against the asset in small batches.
 */
function runReceiver(init: ReceiverInit, port: Channel): void {
  const priority = init.rt ? raiseThreadPriority(RECEIVER_FIFO_PRIORITY) : { policy: 'normal', error: 'disabled (--receiver-rt off)' };
  const sample: SampleAsset = {
    asset: init.asset, bytes: readFileSync(init.asset.assetPath), times: init.times, randomAccess: [], durationMs: 0, cleanup: async () => {},
  };

  interface Sock {
    socket: dgram.Socket;
    port: number;
    seq: Uint16Array;
    at: Float64Array;
    n: number;
    pending: Array<{ p: RtpPacket; at: number }>;
    info: SessionInfo | undefined;
    segments: Segment[];
    maxCursor: number | undefined;
    mismatched: number;
    firstMismatch: string | undefined;
    checked: number;
    unplaced: number;
    malformed: number;
    inferred: number;
    last: number;
  }
  const socks: Sock[] = [];

  const addSocket = async (): Promise<Sock> => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => { socket.off('error', reject); resolve(); });
    });
    try { socket.setRecvBufferSize(RECV_BUFFER_BYTES); } catch { /* capped by net.core.rmem_max: the size is reported */ }
    const s: Sock = {
      socket, port: socket.address().port, seq: new Uint16Array(1 << 14), at: new Float64Array(1 << 14), n: 0, pending: [],
      info: undefined, segments: [], maxCursor: undefined, mismatched: 0, firstMismatch: undefined, checked: 0, unplaced: 0, malformed: 0, inferred: 0, last: 0,
    };
    socket.on('message', (data: Buffer) => {
      const atMs = Number(process.hrtime.bigint()) / 1e6;
      if (s.n === s.seq.length) {
        const seq = new Uint16Array(s.seq.length * 2); seq.set(s.seq); s.seq = seq;
        const at = new Float64Array(s.at.length * 2); at.set(s.at); s.at = at;
      }
      s.seq[s.n] = data.length >= 4 ? data.readUInt16BE(2) : 0;
      s.at[s.n] = atMs;
      s.n++;
      s.last = atMs;
      try {
        s.pending.push({ p: parseRtpPacket(data), at: atMs });
      } catch {
        s.malformed++;
      }
    });
    socket.on('error', () => { /* a receive error shows up as loss in the sequence numbers */ });
    socks.push(s);
    return s;
  };

  /**
   * Hold the datagrams received so far against the asset with checkRtpStream,
   * each in its segment (a play() result). Datagrams younger than CHECK_DELAY_MS
   * wait, so that the play() result of a new segment has time to arrive.
   *
   * The engine also starts segments of its own that no play() result announces:
   * when no path was sending for a while (both failed) it restarts every playing
   * session's clock at its cursor (rebasePlayingSessions), which moves RTP
   * timestamps forward by the outage. Such a segment shows as a datagram whose
   * payload is right but whose timestamp is not; its parameters follow from that
   * datagram (start packet, RTP timestamp base, and start time = first start +
   * (base - initial timestamp) / 90), so it is added as an inferred segment,
   * counted, and checking goes on against it.
   */
  const CHECK_DELAY_MS = 200;
  const findSegment = (s: Sock, cursor: number): Segment | undefined => {
    for (let k = s.segments.length - 1; k >= 0; k--) {
      const cand = s.segments[k];
      if (cand.startCursor <= cursor) {
        const end = k + 1 < s.segments.length ? s.segments[k + 1].startCursor : cand.startCursor + segmentLength(cand, init.asset.packetCount);
        return cursor < end ? cand : undefined;
      }
    }
    return undefined;
  };
  const checkOne = (info: SessionInfo, seg: Segment, p: RtpPacket): { mismatched: number; firstMismatch: string | undefined } =>
    // Numbering cursors from the segment's first RTP sequence number keeps checkRtpStream's 16-bit arithmetic exact.
    checkRtpStream([p], { ...info, initialSeq: seg.play.seq }, seg.play, sample);
  const check = (final: boolean): void => {
    const horizon = Number(process.hrtime.bigint()) / 1e6 - CHECK_DELAY_MS;
    for (const s of socks) {
      if (!s.info || s.pending.length === 0) continue;
      const info = s.info;
      let k = 0;
      for (; k < s.pending.length; k++) {
        const { p, at } = s.pending[k];
        if (!final && at > horizon) break;
        const c16 = (p.sequence - info.initialSeq) & 0xffff;
        const cursor = s.maxCursor === undefined ? c16 : nearest16(c16, s.maxCursor);
        if (s.maxCursor === undefined || cursor > s.maxCursor) s.maxCursor = cursor;
        const seg = findSegment(s, cursor);
        if (!seg) {
          s.unplaced++;
          s.firstMismatch ??= `seq ${p.sequence} (cursor ${cursor}) belongs to no known segment`;
          continue;
        }
        let r = checkOne(info, seg, p);
        if (r.mismatched && r.firstMismatch?.startsWith('timestamp') && s.segments.length > 0) {
          const first = s.segments[0];
          const packet = seg.play.startPacket + TS_PER_DATAGRAM * (cursor - seg.startCursor);
          const inferred: Segment = {
            startCursor: cursor,
            play: { seq: p.sequence, rtptime: p.timestamp, startPacket: packet, startTimeMs: first.play.startTimeMs + ((p.timestamp - first.play.rtptime) >>> 0) / 90 },
            reason: 'rebase',
          };
          const again = checkOne(info, inferred, p);
          if (!again.mismatched && inferred.play.startTimeMs > seg.play.startTimeMs) {
            s.segments.push(inferred);
            s.segments.sort((x, y) => x.startCursor - y.startCursor);
            s.inferred++;
            r = again;
          }
        }
        s.mismatched += r.mismatched;
        s.firstMismatch ??= r.firstMismatch;
        s.checked++;
      }
      s.pending.splice(0, k);
    }
  };
  const timer = setInterval(() => check(false), 20);
  const liveTimer = setInterval(() => port.post({ type: 'live', last: socks.map((s) => s.last), counts: socks.map((s) => s.n) }), 50);

  port.onMessage((msg: ToReceiver) => {
    switch (msg.type) {
      case 'add': {
        const first = socks.length;
        void (async () => {
          const added: Sock[] = [];
          for (let k = 0; k < msg.count; k++) added.push(await addSocket());
          const reply: FromReceiver = { type: 'added', first, ports: added.map((s) => s.port), recvBuffer: added.map((s) => s.socket.getRecvBufferSize()) };
          port.post(reply);
        })();
        break;
      }
      case 'session': socks[msg.sock].info = msg.info; break;
      case 'segment': {
        const segs = socks[msg.sock].segments;
        segs.push(msg.segment);
        segs.sort((x, y) => x.startCursor - y.startCursor);
        break;
      }
      case 'collect': {
        clearInterval(timer);
        clearInterval(liveTimer);
        check(true);
        const sockets: SocketData[] = socks.map((s, sock) => ({
          sock, port: s.port, count: s.n, seq: s.seq.slice(0, s.n), at: s.at.slice(0, s.n), mismatched: s.mismatched,
          firstMismatch: s.firstMismatch, checked: s.checked, unplaced: s.unplaced, malformed: s.malformed, segments: s.segments, inferredRebases: s.inferred,
        }));
        const reply: FromReceiver = { type: 'data', sockets };
        for (const s of socks) s.socket.close();
        port.post(reply, sockets.flatMap((d) => [d.seq.buffer, d.at.buffer]) as ArrayBuffer[]);
        port.close();
        break;
      }
      case 'init': break;
    }
  });
  const booted: FromReceiver = { type: 'booted', policy: priority.policy, policyError: priority.error };
  port.post(booted);
}

/** The bench's handle on the receiver, in a child process (default) or a worker thread of this process. */
class Receiver {
  readonly ports: number[] = [];
  readonly recvBuffer: number[] = [];
  private last: number[] = [];
  private handlers: Array<(m: FromReceiver) => void> = [];
  private policyInfo: { policy: string; policyError: string | undefined } = { policy: '?', policyError: undefined };

  private constructor(
    private readonly post: (msg: ToReceiver) => void,
    private readonly stop: () => Promise<void>,
    readonly kind: 'process' | 'thread',
  ) {}

  get policy(): string {
    return this.policyInfo.policy;
  }

  get policyError(): string | undefined {
    return this.policyInfo.policyError;
  }

  static async open(kind: 'process' | 'thread', asset: EngineAsset, times: Uint32Array, rt: boolean): Promise<Receiver> {
    const init: ReceiverInit = { role: 'receiver', asset, times, rt };
    let receiver: Receiver;
    if (kind === 'thread') {
      const worker = new Worker(new URL(import.meta.url), { workerData: init, name: 'bench-receiver' });
      receiver = new Receiver((m) => worker.postMessage(m), async () => { await worker.terminate(); }, kind);
      worker.on('message', (m: FromReceiver) => receiver.dispatch(m));
      worker.on('error', (err) => receiver.fail(err));
    } else {
      const child = fork(fileURLToPath(import.meta.url), [], {
        serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, TWINFRAME_BENCH_ROLE: 'receiver' },
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      receiver = new Receiver((m) => { if (child.connected) child.send(m); }, async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill();
          await Promise.race([exited, sleep(2000)]);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      }, kind);
      child.on('message', (m: FromReceiver) => receiver.dispatch(m));
      child.on('error', (err) => receiver.fail(err));
      child.on('exit', (code, signal) => { if (code !== 0) receiver.fail(new Error(`receiver process exited (${code ?? signal})`)); });
      child.send({ type: 'init', init } satisfies ToReceiver);
    }
    try {
      const booted = await withTimeout(receiver.next('booted'), 15_000, 'receiver start');
      receiver.policyInfo = { policy: booted.policy, policyError: booted.policyError };
    } catch (err) {
      await receiver.stop();
      throw err;
    }
    return receiver;
  }

  private dispatch(m: FromReceiver): void {
    if (m.type === 'live') {
      this.last = m.last;
      return;
    }
    for (const h of [...this.handlers]) h(m);
  }

  private fail(err: Error): void {
    for (const h of [...this.handlers]) h({ type: 'error', message: err.message } as unknown as FromReceiver);
  }

  private next<T extends FromReceiver['type']>(type: T): Promise<FromReceiver & { type: T }> {
    return new Promise((resolve, reject) => {
      const h = (m: FromReceiver): void => {
        if ((m as { type: string }).type === 'error') {
          this.handlers = this.handlers.filter((x) => x !== h);
          reject(new Error((m as unknown as { message: string }).message));
        } else if (m.type === type) {
          this.handlers = this.handlers.filter((x) => x !== h);
          resolve(m as FromReceiver & { type: T });
        }
      };
      this.handlers.push(h);
    });
  }

  /** Bind `count` more sockets; returns their indices and ports. */
  async add(count: number): Promise<Array<{ sock: number; port: number }>> {
    const reply = this.next('added');
    this.post({ type: 'add', count });
    const added = await withTimeout(reply, 10_000, 'receiver sockets');
    this.ports.push(...added.ports);
    this.recvBuffer.push(...added.recvBuffer);
    return added.ports.map((port, k) => ({ sock: added.first + k, port }));
  }

  send(msg: ToReceiver): void {
    this.post(msg);
  }

  /** Last arrival on a socket (shared-clock ms, as of the last 'live' report, at most ~50 ms old). */
  lastArrivalMs(sock: number): number {
    return this.last[sock] ?? 0;
  }

  async collect(): Promise<SocketData[]> {
    const data = withTimeout(this.next('data'), 120_000, 'receiver data');
    this.post({ type: 'collect' });
    try {
      return (await data).sockets;
    } finally {
      await this.stop();
    }
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

// ─────────────────────────────────────────────────────────────────────────────
// Asset

interface BenchAsset {
  readonly asset: EngineAsset;
  readonly times: Uint32Array;
  readonly durationMs: number;
  readonly source: string;
  readonly note: string | undefined;
  readonly bitrate: number;
}

async function prepareAsset(o: Options, tmp: string): Promise<BenchAsset> {
  let file = o.asset;
  let note: string | undefined;
  let source = 'given';
  if (!file) {
    const script = path.join(ROOT, 'scripts/make-sample-asset.sh');
    const target = path.join(tmp, `sample-${o.muxrate}.ts`);
    const ffmpeg = spawnSync('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
    if (ffmpeg.error || ffmpeg.status !== 0) {
      note = `ffmpeg not available (${ffmpeg.error?.message ?? `exit ${ffmpeg.status}`}): falling back to the committed 3 Mbit/s assets/sample.ts`;
    } else {
      const r = spawnSync('bash', [script, target], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, MUXRATE: String(o.muxrate) } });
      if (r.status === 0 && existsSync(target)) {
        file = target;
        source = `generated by scripts/make-sample-asset.sh with MUXRATE=${o.muxrate}`;
      } else {
        note = `asset generation failed (${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim()}): falling back to the committed 3 Mbit/s assets/sample.ts`;
      }
    }
    if (!file) {
      file = path.join(ROOT, 'assets/sample.ts');
      source = 'committed assets/sample.ts (fallback)';
    }
  }
  const pool = new IndexPool();
  try {
    const indexed = await pool.index(file, path.join(tmp, 'index'));
    const index = readIndexFile(indexed.indexPath);
    const asset = await toEngineAsset(indexed);
    return { asset, times: index.times, durationMs: index.meta.durationMs, source, note, bitrate: asset.bitrate };
  } finally {
    await pool.close();
  }
}

// ─────────────────────────────────────────────────────────────────────────────
// One phase: N sessions, a baseline, then the faults. An engine that does not
// become protected again is recorded, closed and replaced by a fresh one (a new
// "generation" with new sessions on new receiver sockets), so one stuck engine
// does not spoil the rest of the run.

interface EventRecord {
  readonly pathName: string;
  readonly cause: string;
  readonly wasActive: boolean;
  readonly switchedToName: string | undefined;
  readonly failedAtMs: number;
  readonly detectedAtMs: number;
  readonly switchedAtMs: number | undefined;
  readonly switchLatencyMs: number | undefined;
  readonly receivedAtMs: number;
  readonly gen: number;
}

/** An engine 'handover' event (HandoverEvent; declared here so the bench also builds against an engine without it). */
interface HandoverRecord {
  readonly from: string;
  readonly to: string;
  readonly lateMs: number;
  /** When sending moved, on the shared clock. */
  readonly atMs: number;
  readonly receivedAtMs: number;
  readonly gen: number;
}

interface FaultRecord {
  readonly i: number;
  readonly gen: number;
  readonly kind: FaultKind;
  readonly target: 'active' | 'standby';
  readonly victim: string;
  readonly expectedCause: string;
  readonly injectedAtMs: number;
  /** How long the victim, and its partner, had been synchronized when the fault came. */
  readonly victimAgeMs: number | undefined;
  readonly partnerAgeMs: number | undefined;
  readonly events: EventRecord[];
  /** Handovers from this fault's injection until the next fault. */
  readonly handovers: HandoverRecord[];
  matched: EventRecord | undefined;
  protectedAtMs: number | undefined;
  failure: string | undefined;
}

interface StreamRec {
  readonly sock: number;
  readonly gen: number;
  readonly info: SessionInfo;
  readonly segments: Segment[];
  finalSent: number;
}

interface PhaseRun {
  sessions: number;
  streams: StreamRec[];
  data: SocketData[];
  faults: FaultRecord[];
  baselineEvents: EventRecord[];
  strayEvents: EventRecord[];
  baselineHandovers: HandoverRecord[];
  strayHandovers: HandoverRecord[];
  /** Sum of engine.status().handovers over the generations; undefined when the engine does not count handovers. */
  engineHandovers: number | undefined;
  baselineFromMs: number;
  baselineToMs: number;
  stalls: Array<{ sock: number; gen: number; atMs: number; state: string | undefined; sent: number | undefined }>;
  replayErrors: string[];
  problems: string[];
  restarts: Array<{ atMs: number; reason: string }>;
  snmpBefore: Record<string, number>;
  snmpAfter: Record<string, number>;
  stealMs: number;
  socketDrops: { drops: number; found: number };
  receiver: { kind: string; policy: string; policyError: string | undefined; recvBuffer: number[] };
  enginePolicies: Array<{ comm: string; policy: string; rtPriority: number }>;
  engineSentByPaths: number;
  heartbeat: { periodUs: number; maxMissed: number } | undefined;
  deadlineHit: boolean;
}

/** Set by SIGINT/SIGTERM: stop injecting, report what was measured, clean up. */
let interrupted = false;

/** Like sleep(), but returns early when the run is interrupted. */
async function sleepUnlessInterrupted(ms: number): Promise<void> {
  const end = monoNowMs() + ms;
  while (!interrupted && monoNowMs() < end) await sleep(Math.min(100, end - monoNowMs()));
}

async function runPhase(o: Options, a: BenchAsset, nSessions: number, nFaults: number, rand: () => number, logger: Logger, deadlineAtMs: number): Promise<PhaseRun> {
  const run: PhaseRun = {
    sessions: nSessions, streams: [], data: [], faults: [], baselineEvents: [], strayEvents: [], baselineHandovers: [], strayHandovers: [], engineHandovers: undefined, baselineFromMs: 0, baselineToMs: 0,
    stalls: [], replayErrors: [], problems: [], restarts: [], snmpBefore: {}, snmpAfter: {}, stealMs: 0, socketDrops: { drops: 0, found: 0 },
    receiver: { kind: o.receiver, policy: '', policyError: undefined, recvBuffer: [] }, enginePolicies: [], engineSentByPaths: 0, heartbeat: undefined, deadlineHit: false,
  };
  const receiver = await Receiver.open(o.receiver, a.asset, a.times, o.receiverRt);
  run.receiver = { kind: receiver.kind, policy: receiver.policy, policyError: receiver.policyError, recvBuffer: receiver.recvBuffer };
  let mode: 'start' | 'baseline' | 'faults' = 'start';
  let current: FaultRecord | undefined;
  /** First time each path incarnation of each engine generation was seen ready ('0:a:3' → ms). */
  const readySince = new Map<string, number>();

  interface Generation {
    readonly gen: number;
    readonly engine: Engine;
    readonly streams: StreamRec[];
    readonly replaying: boolean[];
    readonly lastPlayAt: number[];
    stopping: boolean;
    watchdog: NodeJS.Timeout | undefined;
  }
  let g: Generation | undefined;

  const noteReady = (eng: Engine, gen: number): void => {
    const now = monoNowMs();
    for (const p of eng.status().paths) {
      if (!p.ready) continue;
      const key = `${gen}:${p.path}:${p.incarnation}`;
      if (!readySince.has(key)) readySince.set(key, now);
    }
  };
  const waitProtected = async (eng: Engine, gen: number, timeoutMs: number): Promise<boolean> => {
    const deadline = monoNowMs() + timeoutMs;
    for (;;) {
      noteReady(eng, gen);
      if (eng.isProtected()) return true;
      if (monoNowMs() >= deadline) return false;
      await sleep(5);
    }
  };

  const play = async (gen: Generation, k: number, startPacket: number, reason: Segment['reason']): Promise<void> => {
    if (gen.replaying[k] || gen.stopping) return;
    gen.replaying[k] = true;
    const stream = gen.streams[k];
    try {
      for (let attempt = 0; attempt < 5 && !gen.stopping; attempt++) {
        try {
          const before = gen.engine.getSession(stream.info.id)?.sent ?? 0;
          const result = await gen.engine.play(stream.info.id, { startPacket });
          const startCursor = nearest16((result.seq - stream.info.initialSeq) & 0xffff, before);
          const segment: Segment = { startCursor, play: result, reason };
          stream.segments.push(segment);
          receiver.send({ type: 'segment', sock: stream.sock, segment });
          gen.lastPlayAt[k] = monoNowMs();
          return;
        } catch (err) {
          run.replayErrors.push(`gen ${gen.gen} session ${k} play(${startPacket}) attempt ${attempt}: ${(err as Error).message}`);
          await sleep(200);
        }
      }
    } finally {
      gen.replaying[k] = false;
    }
  };

  const bringUp = async (gen: number): Promise<Generation> => {
    const engine = await withTimeout(Engine.start({ faultInjection: true, logger }), 30_000, 'Engine.start');
    const sockets = await receiver.add(nSessions);
    const G: Generation = {
      gen, engine, streams: [], replaying: new Array<boolean>(nSessions).fill(false), lastPlayAt: new Array<number>(nSessions).fill(0),
      stopping: false, watchdog: undefined,
    };
    run.heartbeat ??= engine.status().heartbeat;
    engine.on('failover', (e: FailoverEvent) => {
      const rec: EventRecord = {
        pathName: e.pathName, cause: e.cause, wasActive: e.wasActive, switchedToName: e.switchedToName, failedAtMs: e.failedAtMs,
        detectedAtMs: e.detectedAtMs, switchedAtMs: e.switchedAtMs, switchLatencyMs: e.switchLatencyMs, receivedAtMs: monoNowMs(), gen,
      };
      if (G.stopping) return;
      if (mode === 'baseline') run.baselineEvents.push(rec);
      else if (current && current.gen === gen) current.events.push(rec);
      else run.strayEvents.push(rec);
    });
    engine.on('handover', (h: { from: string; to: string; lateMs: number; atMs: number }) => {
      if (G.stopping) return;
      const rec: HandoverRecord = { from: h.from, to: h.to, lateMs: h.lateMs, atMs: h.atMs, receivedAtMs: monoNowMs(), gen };
      if (mode === 'baseline') run.baselineHandovers.push(rec);
      else if (current && current.gen === gen) current.handovers.push(rec);
      else run.strayHandovers.push(rec);
    });
    for (let k = 0; k < nSessions; k++) {
      const info = await engine.openSession({ asset: a.asset, destination: { address: '127.0.0.1', port: sockets[k].port }, transport: 'rtp' });
      const stream: StreamRec = { sock: sockets[k].sock, gen, info, segments: [], finalSent: 0 };
      G.streams.push(stream);
      run.streams.push(stream);
      receiver.send({ type: 'session', sock: stream.sock, info });
    }
    const kOf = new Map(G.streams.map((s, k) => [s.info.id, k]));
    engine.on('session-ended', (e: { id: string }) => {
      const k = kOf.get(e.id);
      if (k !== undefined && !G.stopping) void play(G, k, 0, 'ended');
    });
    // First plays start at random places, so that the sessions do not all reach the end together.
    const maxStartDatagram = Math.max(1, Math.floor(a.asset.packetCount / TS_PER_DATAGRAM) - 400);
    for (let k = 0; k < nSessions; k++) await play(G, k, TS_PER_DATAGRAM * Math.floor(rand() * maxStartDatagram), 'first');
    // A session that should be playing but receives nothing for 1.5 s is stalled: record it and restart it.
    G.watchdog = setInterval(() => {
      if (G.stopping) return;
      const now = monoNowMs();
      for (let k = 0; k < nSessions; k++) {
        if (G.replaying[k]) continue;
        const stream = G.streams[k];
        if (now - Math.max(receiver.lastArrivalMs(stream.sock), G.lastPlayAt[k]) < 1500) continue;
        const s = engine.getSession(stream.info.id);
        run.stalls.push({ sock: stream.sock, gen, atMs: now, state: s?.state, sent: s?.sent });
        void play(G, k, 0, 'stall');
      }
    }, 250);
    noteReady(engine, gen);
    return G;
  };

  /** Stop a generation: pause its sessions, let the wire go quiet, read the cursors, close the engine. */
  const tearDown = async (G: Generation): Promise<void> => {
    G.stopping = true;
    clearInterval(G.watchdog);
    for (const s of G.streams) G.engine.pause(s.info.id);
    const quietDeadline = monoNowMs() + 5000;
    const lastOf = (): number => Math.max(0, ...G.streams.map((s) => receiver.lastArrivalMs(s.sock)));
    while (monoNowMs() < quietDeadline && monoNowMs() - lastOf() < 300) await sleep(20);
    for (const s of G.streams) s.finalSent = G.engine.getSession(s.info.id)?.sent ?? s.finalSent;
    const status = G.engine.status();
    run.engineSentByPaths += status.paths.reduce((sum, p) => sum + p.sent, 0);
    const handovers = handoverCount(status);
    if (handovers !== undefined) run.engineHandovers = (run.engineHandovers ?? 0) + handovers;
    await withTimeout(G.engine.close(), 20_000, 'engine.close').catch((err: unknown) => run.problems.push(`gen ${G.gen} engine.close: ${(err as Error).message}`));
  };

  const restart = async (reason: string): Promise<boolean> => {
    if (!g) return false;
    run.restarts.push({ atMs: monoNowMs(), reason });
    run.problems.push(`gen ${g.gen}: ${reason}; engine closed and started afresh`);
    const old = g;
    g = undefined;
    await tearDown(old);
    const maxRestarts = Math.max(10, Math.ceil(nFaults / 10));
    if (run.restarts.length > maxRestarts) {
      run.problems.push(`more than ${maxRestarts} engine restarts: phase stopped`);
      return false;
    }
    g = await bringUp(old.gen + 1);
    await sleep(1000);
    return true;
  };

  const steal0 = readStealMs();
  try {
    run.snmpBefore = readUdpSnmp();
    g = await bringUp(0);
    run.enginePolicies = threadPolicies().map(({ comm, policy, rtPriority }) => ({ comm, policy, rtPriority }));

    await sleepUnlessInterrupted(o.warmupMs);
    mode = 'baseline';
    run.baselineFromMs = monoNowMs();
    await sleepUnlessInterrupted(o.baselineS * 1000);
    run.baselineToMs = monoNowMs();
    mode = 'faults';

    const standbyEvery = o.standbyShare > 0 ? Math.max(1, Math.round(1 / o.standbyShare)) : 0;
    for (let i = 0; i < nFaults && g; i++) {
      if (interrupted) {
        run.problems.push(`interrupted after ${i} of ${nFaults} faults`);
        break;
      }
      if (monoNowMs() > deadlineAtMs) {
        run.deadlineHit = true;
        run.problems.push(`--deadline-min reached: stopped after ${i} of ${nFaults} faults`);
        break;
      }
      const kind = o.kinds[i % o.kinds.length];
      const target: 'active' | 'standby' = standbyEvery > 0 && i % standbyEvery === standbyEvery - 1 ? 'standby' : 'active';
      const eng = g.engine;
      const gen = g.gen;
      if (!(await waitProtected(eng, gen, o.recoveryTimeoutMs))) {
        if (!(await restart(`before fault ${i}: pair not protected after ${o.recoveryTimeoutMs} ms (${JSON.stringify(eng.status().paths.map((p) => p.named))})`))) break;
        i--; // the same fault again, on the fresh engine
        continue;
      }
      await sleep(o.settleMinMs + rand() * (o.settleMaxMs - o.settleMinMs));
      const status = eng.status();
      const victimStatus = status.paths.find((p) => (target === 'active' ? p.active : !p.active));
      const partnerStatus = status.paths.find((p) => p !== victimStatus);
      if (!victimStatus || !partnerStatus || !eng.isProtected()) {
        run.problems.push(`fault ${i}: no ${target} path to hit (${JSON.stringify(status.paths.map((p) => p.named))})`);
        i--;
        continue;
      }
      const now = monoNowMs();
      const age = (p: { path: string; incarnation: number }): number | undefined => {
        const since = readySince.get(`${gen}:${p.path}:${p.incarnation}`);
        return since === undefined ? undefined : now - since;
      };
      const rec: FaultRecord = {
        i, gen: g.gen, kind, target, victim: victimStatus.path, expectedCause: EXPECTED_CAUSE[kind], injectedAtMs: now,
        victimAgeMs: age(victimStatus), partnerAgeMs: age(partnerStatus), events: [], handovers: [], matched: undefined, protectedAtMs: undefined, failure: undefined,
      };
      run.faults.push(rec);
      current = rec;
      try {
        eng.injectFault(victimStatus.path, kind);
      } catch (err) {
        rec.failure = `injectFault threw: ${(err as Error).message}`;
        continue;
      }
      const deadline = monoNowMs() + o.recoveryTimeoutMs;
      while (!rec.matched && monoNowMs() < deadline) {
        rec.matched = rec.events.find((e) => e.pathName === rec.victim);
        if (!rec.matched) await sleep(2);
      }
      if (!rec.matched) {
        rec.failure = `no failover event for path ${rec.victim} within ${o.recoveryTimeoutMs} ms`;
        // A fault the engine did not notice leaves a broken path in place: start afresh.
        if (!(await restart(`fault ${i} (${kind} on the ${target} path ${rec.victim}) was never detected`))) break;
        continue;
      }
      if (await waitProtected(eng, gen, Math.max(0, deadline - monoNowMs()))) rec.protectedAtMs = monoNowMs();
      else {
        rec.failure = `pair not protected again within ${o.recoveryTimeoutMs} ms of the fault (${JSON.stringify(eng.status().paths.map((p) => p.named))})`;
        if (!(await restart(`fault ${i} (${kind} on the ${target} path ${rec.victim}) did not recover`))) break;
      }
      if ((i + 1) % 50 === 0) process.stderr.write(`  [${nSessions} sessions] ${i + 1}/${nFaults} faults\n`);
    }
    // Leave the last fault's window time to close before stopping.
    await sleep(GAP_AFTER_MS + 100);
    current = undefined;
  } catch (err) {
    run.problems.push(`phase aborted: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (g) await tearDown(g).catch((err: unknown) => run.problems.push(`tearDown: ${(err as Error).message}`));
    g = undefined;
    run.socketDrops = readSocketDrops(receiver.ports);
    run.snmpAfter = readUdpSnmp();
    run.stealMs = readStealMs() - steal0;
    try {
      run.data = await receiver.collect();
    } catch (err) {
      run.problems.push(`receiver data lost: ${(err as Error).message}`);
      await receiver.close().catch(() => {});
    }
  }
  return run;
}

// ─────────────────────────────────────────────────────────────────────────────
// Analysis

interface StreamIndex {
  readonly sock: number;
  readonly gen: number;
  readonly at: Float64Array;
  /** Cursor of each arrival (arrival order). */
  readonly cursor: Float64Array;
  /** First arrival of each cursor, NaN if never received. */
  readonly firstArrival: Float64Array;
  readonly schedule: Float64Array;
  /** Segment of each cursor (-1 outside every segment). */
  readonly segOf: Int32Array;
  readonly finalSent: number;
  readonly stats: { received: number; lost: number; duplicated: number; reordered: number; beyondCursor: number; mismatched: number; unplaced: number; malformed: number; firstMismatch: string | undefined; seqLost: number; inferredRebases: number };
  readonly lostCursors: number[];
  /** Cursors received more than once, with the arrival times of the copies. */
  readonly dupCursors: Array<{ cursor: number; arrivals: number[] }>;
}

function indexStream(d: SocketData, stream: StreamRec, a: BenchAsset): StreamIndex {
  const { info, finalSent } = stream;
  // The receiver's list: the play() results plus the segments the engine started by itself (inferred).
  const segs = [...(d.segments.length ? d.segments : stream.segments)].sort((x, y) => x.startCursor - y.startCursor);
  const n = d.count;
  const cursor = new Float64Array(n);
  let max: number | undefined;
  for (let k = 0; k < n; k++) {
    const c16 = (d.seq[k] - info.initialSeq) & 0xffff;
    const c = max === undefined ? c16 : nearest16(c16, max);
    cursor[k] = c;
    if (max === undefined || c > max) max = c;
  }
  const size = Math.max(finalSent, (max ?? -1) + 1);
  const firstArrival = new Float64Array(size).fill(Number.NaN);
  const schedule = new Float64Array(size).fill(Number.NaN);
  const segOf = new Int32Array(size).fill(-1);
  for (let s = 0; s < segs.length; s++) {
    const seg = segs[s];
    const end = Math.min(size, s + 1 < segs.length ? segs[s + 1].startCursor : seg.startCursor + segmentLength(seg, a.asset.packetCount));
    const t0 = a.times[seg.play.startPacket];
    for (let c = Math.max(0, seg.startCursor); c < end; c++) {
      const packet = seg.play.startPacket + TS_PER_DATAGRAM * (c - seg.startCursor);
      if (packet >= a.asset.packetCount) break;
      segOf[c] = s;
      schedule[c] = seg.play.startTimeMs + (a.times[packet] - t0) / 90;
    }
  }
  let beyond = 0;
  for (let k = 0; k < n; k++) {
    const c = cursor[k];
    if (c < 0 || c >= finalSent) beyond++;
    if (c >= 0 && c < size && Number.isNaN(firstArrival[c])) firstArrival[c] = d.at[k]!;
  }
  const lostCursors: number[] = [];
  for (let c = 0; c < finalSent; c++) if (Number.isNaN(firstArrival[c])) lostCursors.push(c);
  const copies = new Uint16Array(size);
  const dupCursors: Array<{ cursor: number; arrivals: number[] }> = [];
  for (let k = 0; k < n; k++) {
    const c = cursor[k];
    if (c < 0 || c >= size) continue;
    if (++copies[c] === 2) dupCursors.push({ cursor: c, arrivals: [] });
  }
  if (dupCursors.length) {
    const wanted = new Map(dupCursors.map((dc) => [dc.cursor, dc]));
    for (let k = 0; k < n; k++) wanted.get(cursor[k])?.arrivals.push(d.at[k]);
  }
  const seqStats = sequenceStats(Array.from(d.seq), { firstSeq: info.initialSeq });
  return {
    sock: stream.sock, gen: stream.gen, at: d.at, cursor, firstArrival, schedule, segOf, finalSent,
    stats: {
      received: n, lost: lostCursors.length, duplicated: seqStats.duplicated, reordered: seqStats.reordered, beyondCursor: beyond,
      mismatched: d.mismatched, unplaced: d.unplaced, malformed: d.malformed, firstMismatch: d.firstMismatch, seqLost: seqStats.lost,
      inferredRebases: d.inferredRebases,
    },
    lostCursors,
    dupCursors,
  };
}

/** Lateness of the first datagram due at or after `t`: arrival - schedule (and how many due datagrams before it never arrived). */
function latenessAt(s: StreamIndex, t: number): { lateMs: number; skipped: number; dueMs: number } | undefined {
  const sched = s.schedule;
  // Schedules rise with the cursor (segments follow each other in time): binary search, then skip gaps.
  let lo = 0;
  let hi = s.finalSent;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const v = sched[mid];
    if (Number.isNaN(v) || v < t) lo = mid + 1;
    else hi = mid;
  }
  for (let c = lo, skipped = 0; c < s.finalSent; c++) {
    if (Number.isNaN(sched[c])) continue;
    const arr = s.firstArrival[c];
    if (!Number.isNaN(arr)) return { lateMs: arr - sched[c], skipped, dueMs: sched[c] };
    skipped++;
    if (skipped > 1000) break;
  }
  return undefined;
}

/** Lateness of the first `count` datagrams due at or after `t` (NaN for one never received). */
function latenessSeries(s: StreamIndex, t: number, count: number): number[] {
  const out: number[] = [];
  let lo = 0;
  let hi = s.finalSent;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const v = s.schedule[mid];
    if (Number.isNaN(v) || v < t) lo = mid + 1;
    else hi = mid;
  }
  for (let c = lo; c < s.finalSent && out.length < count; c++) {
    if (Number.isNaN(s.schedule[c])) continue;
    out.push(s.firstArrival[c] - s.schedule[c]);
  }
  return out;
}

/** Largest inter-arrival gap touching [from, to], not counting the gap between two segments (end of asset → re-play). */
function maxGapIn(s: StreamIndex, from: number, to: number): number {
  const at = s.at;
  const n = at.length;
  if (n < 2) return Number.NaN;
  // k0: last arrival at or before `from` (or 0); walk until the first arrival at or after `to`.
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (at[mid] <= from) lo = mid + 1;
    else hi = mid;
  }
  let k = Math.max(0, lo - 1);
  let max = Number.NaN;
  for (; k + 1 < n; k++) {
    if (at[k] >= to) break;
    const c0 = s.cursor[k];
    const c1 = s.cursor[k + 1];
    const s0 = c0 >= 0 && c0 < s.segOf.length ? s.segOf[c0] : -1;
    const s1 = c1 >= 0 && c1 < s.segOf.length ? s.segOf[c1] : -1;
    if (s0 !== s1 || s0 < 0) continue;
    const gap = at[k + 1] - at[k];
    if (!(gap <= max)) max = gap;
  }
  return max;
}

interface FaultMeasure {
  readonly i: number;
  readonly gen: number;
  readonly victimAgeMs: number | undefined;
  readonly partnerAgeMs: number | undefined;
  /** The victim had been synchronized for less than YOUNG_VICTIM_MS (reported apart; the same rule judges it). */
  readonly youngVictim: boolean;
  readonly kind: FaultKind;
  readonly target: 'active' | 'standby';
  readonly victim: string;
  readonly cause: string | undefined;
  readonly expectedCause: string;
  readonly switchedTo: string | undefined;
  /** What moved sending away from the victim first: its failover, or a standby's handover. */
  readonly switchedBy: 'failover' | 'handover' | undefined;
  readonly wasActive: boolean | undefined;
  readonly faultAtMs: number;
  readonly switchMs: number | undefined;
  readonly detectMs: number | undefined;
  readonly recoveryMs: number | undefined;
  readonly lateWorstMs: number;
  /** When the worst session's first datagram was due, after the fault instant (ms). */
  readonly lateWorstDueAfterFaultMs: number;
  /** The worst session's first six datagrams due after the fault: their lateness (ms). */
  readonly lateWorstSeriesMs: number[];
  readonly lateBySession: number[];
  readonly lateSkipped: number;
  readonly gapWorstMs: number;
  readonly failure: string | undefined;
  readonly falseEvents: EventRecord[];
  readonly wrongCause: boolean;
  /** The handover away from the victim that this fault explains, if any. */
  readonly handover: HandoverRecord | undefined;
  /** Every other handover between this fault and the next. */
  readonly unexplainedHandovers: HandoverRecord[];
}

/**
 * The handover a fault explains: the first one away from the victim at or after
 * the injection, before the pair was protected again (a restarted victim is a
 * new path; a handover away from it later is not this fault's).
 */
function handoverAway(f: FaultRecord): HandoverRecord | undefined {
  const untilMs = f.protectedAtMs ?? Number.POSITIVE_INFINITY;
  let first: HandoverRecord | undefined;
  for (const h of f.handovers) {
    if (h.from === f.victim && h.atMs >= f.injectedAtMs && h.atMs <= untilMs && (!first || h.atMs < first.atMs)) first = h;
  }
  return first;
}

function measureInstant(streams: readonly StreamIndex[], t: number): { lateWorst: number; lateBy: number[]; skipped: number; gapWorst: number; worstDueAfterMs: number; worstSeries: number[] } {
  const lateBy: number[] = [];
  let worstDueAfterMs = Number.NaN;
  let worstLate = Number.NEGATIVE_INFINITY;
  let worstSeries: number[] = [];
  let skipped = 0;
  let gapWorst = Number.NaN;
  for (const s of streams) {
    // Only sessions that were streaming at t (another engine generation's sessions were not).
    if (s.at.length < 2 || t < s.at[0] || t > s.at[s.at.length - 1]) continue;
    const l = latenessAt(s, t);
    lateBy.push(l ? l.lateMs : Number.NaN);
    if (l && l.lateMs > worstLate) {
      worstLate = l.lateMs;
      worstDueAfterMs = l.dueMs - t;
      worstSeries = latenessSeries(s, t, 6);
    }
    if (l) skipped += l.skipped;
    const g = maxGapIn(s, t - GAP_BEFORE_MS, t + GAP_AFTER_MS);
    if (Number.isFinite(g) && !(g <= gapWorst)) gapWorst = g;
  }
  const finite = lateBy.filter(Number.isFinite);
  return { lateWorst: finite.length ? Math.max(...finite) : Number.NaN, lateBy, skipped, gapWorst, worstDueAfterMs, worstSeries };
}

interface KindSummary {
  readonly kind: FaultKind;
  readonly target: 'active' | 'standby';
  readonly n: number;
  readonly youngVictims: number;
  readonly failures: number;
  readonly falseFailovers: number;
  /** Faults switched away from by a handover before (or without) the victim's failover. */
  readonly switchedByHandover: number;
  readonly unexplainedHandovers: number;
  readonly switchMs: Dist;
  /** (a) split by whether the victim was young (YOUNG_VICTIM_MS). */
  readonly switchYoungMs: Dist;
  readonly switchOlderMs: Dist;
  readonly detectMs: Dist;
  readonly recoveryMs: Dist;
  readonly lateMs: Dist;
  readonly latePooledMs: Dist;
  readonly gapMs: Dist;
  readonly targetLateP50: boolean;
  readonly targetLateP99: boolean;
}

interface PhaseSummary {
  readonly sessions: number;
  readonly kinds: KindSummary[];
  readonly baseline: { instants: number; lateMs: Dist; latePooledMs: Dist; gapMs: Dist; failovers: number; handovers: number; fromMs: number; toMs: number };
  readonly totals: {
    expected: number; received: number; inferredRebases: number; lost: number; duplicated: number; reordered: number; mismatched: number; unplaced: number; malformed: number;
    beyondCursor: number; firstMismatch: string | undefined; falseFailovers: number; falseBreakdown: { wrongCause: number; extraInFaultWindow: number; extraWhilePartnerRespawning: number; extraSwitchedToNobody: number; strayBetweenFaults: number; baseline: number };
    handovers: { events: number; engineCounted: number | undefined; explained: number; unexplained: number; unexplainedBreakdown: { afterFault: number; strayBetweenFaults: number; beforeBaseline: number; baseline: number } };
    failures: number; faults: number; restarts: number; stalls: number; replayErrors: number; engineSentByPaths: number; extraSends: number;
    kernelRcvbufErrors: number; kernelInErrors: number; kernelSndbufErrors: number; receiverSocketDrops: number; receiverSocketsFound: number;
  };
  readonly dupDetail: Array<{ sock: number; gen: number; cursor: number; arrivals: number[]; scheduleMs: number; nearestFault: number | undefined; faultKind: string | undefined; faultTarget: string | undefined; fromFaultMs: number | undefined }>;
  readonly lostDetail: Array<{ sock: number; gen: number; cursor: number; scheduleMs: number; nearestFault: number | undefined; fromFaultMs: number | undefined }>;
}

function analyse(run: PhaseRun, a: BenchAsset, rand: () => number): { summary: PhaseSummary; faults: FaultMeasure[] } {
  const streams = run.streams.flatMap((st) => {
    const d = run.data[st.sock];
    return d ? [indexStream(d, st, a)] : [];
  });
  const faults: FaultMeasure[] = run.faults.map((f) => {
    const m = f.matched;
    const t = m?.failedAtMs ?? f.injectedAtMs;
    const inst = measureInstant(streams, t);
    const falseEvents = f.events.filter((e) => e !== m);
    const wrongCause = m !== undefined && m.cause !== f.expectedCause;
    const handover = handoverAway(f);
    // Sending left the victim at the earlier of its failover's switch and a handover away from it.
    const byHandover = handover !== undefined && !(m?.switchedAtMs !== undefined && m.switchedAtMs <= handover.atMs);
    const switchedAtMs = byHandover ? handover.atMs : m?.switchedAtMs;
    return {
      i: f.i, gen: f.gen, victimAgeMs: f.victimAgeMs, partnerAgeMs: f.partnerAgeMs, youngVictim: f.victimAgeMs !== undefined && f.victimAgeMs < YOUNG_VICTIM_MS,
      kind: f.kind, target: f.target, victim: f.victim, cause: m?.cause, expectedCause: f.expectedCause,
      switchedTo: byHandover ? handover.to : m?.switchedToName, switchedBy: byHandover ? 'handover' : switchedAtMs !== undefined ? 'failover' : undefined,
      wasActive: m?.wasActive, faultAtMs: t, switchMs: switchedAtMs === undefined ? undefined : switchedAtMs - t, detectMs: m ? m.detectedAtMs - m.failedAtMs : undefined,
      recoveryMs: m && f.protectedAtMs !== undefined ? f.protectedAtMs - m.failedAtMs : undefined,
      lateWorstMs: inst.lateWorst, lateWorstDueAfterFaultMs: inst.worstDueAfterMs, lateWorstSeriesMs: inst.worstSeries, lateBySession: inst.lateBy, lateSkipped: inst.skipped, gapWorstMs: inst.gapWorst,
      failure: f.failure, falseEvents, wrongCause, handover, unexplainedHandovers: f.handovers.filter((h) => h !== handover),
    };
  });

  // Baseline: the same measurements at random instants of the no-fault stretch.
  const baseInstants: number[] = [];
  const span = run.baselineToMs - run.baselineFromMs - GAP_BEFORE_MS - GAP_AFTER_MS;
  const nInstants = Math.max(100, Math.min(1000, run.faults.length));
  if (span > 0) for (let k = 0; k < nInstants; k++) baseInstants.push(run.baselineFromMs + GAP_BEFORE_MS + rand() * span);
  const baseMeasures = baseInstants.map((t) => measureInstant(streams, t));

  const kinds: KindSummary[] = [];
  for (const target of ['active', 'standby'] as const) {
    for (const kind of FaultKinds) {
      const fs = faults.filter((f) => f.kind === kind && f.target === target);
      if (fs.length === 0) continue;
      const late = dist(fs.map((f) => f.lateWorstMs));
      kinds.push({
        kind, target, n: fs.length, youngVictims: fs.filter((f) => f.youngVictim).length,
        failures: fs.filter((f) => f.failure !== undefined).length,
        falseFailovers: fs.reduce((s, f) => s + f.falseEvents.length + (f.wrongCause ? 1 : 0), 0),
        switchedByHandover: fs.filter((f) => f.switchedBy === 'handover').length,
        unexplainedHandovers: fs.reduce((s, f) => s + f.unexplainedHandovers.length, 0),
        switchMs: dist(fs.map((f) => f.switchMs ?? Number.NaN)),
        switchYoungMs: dist(fs.filter((f) => f.youngVictim).map((f) => f.switchMs ?? Number.NaN)),
        switchOlderMs: dist(fs.filter((f) => !f.youngVictim && f.victimAgeMs !== undefined).map((f) => f.switchMs ?? Number.NaN)),
        detectMs: dist(fs.map((f) => f.detectMs ?? Number.NaN)),
        recoveryMs: dist(fs.map((f) => f.recoveryMs ?? Number.NaN)),
        lateMs: late,
        latePooledMs: dist(fs.flatMap((f) => f.lateBySession)),
        gapMs: dist(fs.map((f) => f.gapWorstMs)),
        targetLateP50: late.p50 < TARGET_LATE_P50_MS,
        targetLateP99: late.p99 < TARGET_LATE_P99_MS,
      });
    }
  }

  const sum = (pick: (s: StreamIndex) => number): number => streams.reduce((acc, s) => acc + pick(s), 0);
  const wrongCause = faults.filter((f) => f.wrongCause).length;
  const extraInFaultWindow = faults.reduce((s, f) => s + f.falseEvents.length, 0);
  // The usual shape of an extra failover: the path that has just taken over fails too while its partner is being
  // respawned (before the pair is protected again), and as nobody is left to take over, every stream stops.
  const extraWhilePartnerRespawning = run.faults.reduce((sum, f) => sum + f.events.filter((e) => e !== f.matched && (f.protectedAtMs === undefined || e.receivedAtMs <= f.protectedAtMs)).length, 0);
  const extraSwitchedToNobody = run.faults.reduce((sum, f) => sum + f.events.filter((e) => e !== f.matched && e.wasActive && e.switchedToName === undefined).length, 0);
  const falseBreakdown = {
    wrongCause, extraInFaultWindow, extraWhilePartnerRespawning, extraSwitchedToNobody, strayBetweenFaults: run.strayEvents.length, baseline: run.baselineEvents.length,
  };
  const expected = run.streams.reduce((sum, st) => sum + st.finalSent, 0);
  const explainedHandovers = faults.filter((f) => f.handover !== undefined).length;
  const unexplainedAfterFault = faults.reduce((s, f) => s + f.unexplainedHandovers.length, 0);
  const handovers = {
    events: explainedHandovers + unexplainedAfterFault + run.strayHandovers.length + run.baselineHandovers.length,
    engineCounted: run.engineHandovers,
    explained: explainedHandovers,
    unexplained: unexplainedAfterFault + run.strayHandovers.length + run.baselineHandovers.length,
    unexplainedBreakdown: {
      afterFault: unexplainedAfterFault, strayBetweenFaults: run.strayHandovers.length,
      beforeBaseline: run.strayHandovers.filter((h) => h.atMs < run.baselineFromMs).length, baseline: run.baselineHandovers.length,
    },
  };

  // Where were losses? Next to which fault?
  const lostDetail: PhaseSummary['lostDetail'] = [];
  streams.forEach((s) => {
    for (const c of s.lostCursors) {
      if (lostDetail.length >= 500) return;
      const sched = s.schedule[c];
      let nearestFault: number | undefined;
      let fromFaultMs: number | undefined;
      for (const f of faults) {
        const d = sched - f.faultAtMs;
        if (fromFaultMs === undefined || Math.abs(d) < Math.abs(fromFaultMs)) { fromFaultMs = d; nearestFault = f.i; }
      }
      lostDetail.push({ sock: s.sock, gen: s.gen, cursor: c, scheduleMs: sched, nearestFault, fromFaultMs });
    }
  });

  const dupDetail: PhaseSummary['dupDetail'] = [];
  for (const s of streams) {
    for (const dc of s.dupCursors) {
      if (dupDetail.length >= 500) break;
      const first = dc.arrivals[0];
      let best: FaultMeasure | undefined;
      for (const f of faults) if (!best || Math.abs(first - f.faultAtMs) < Math.abs(first - best.faultAtMs)) best = f;
      dupDetail.push({
        sock: s.sock, gen: s.gen, cursor: dc.cursor, arrivals: dc.arrivals, scheduleMs: s.schedule[dc.cursor],
        nearestFault: best?.i, faultKind: best?.kind, faultTarget: best?.target, fromFaultMs: best ? first - best.faultAtMs : undefined,
      });
    }
  }

  const delta = (k: string): number => (run.snmpAfter[k] ?? 0) - (run.snmpBefore[k] ?? 0);
  const summary: PhaseSummary = {
    sessions: run.sessions,
    kinds,
    baseline: {
      instants: baseMeasures.length,
      lateMs: dist(baseMeasures.map((m) => m.lateWorst)),
      latePooledMs: dist(baseMeasures.flatMap((m) => m.lateBy)),
      gapMs: dist(baseMeasures.map((m) => m.gapWorst)),
      failovers: run.baselineEvents.length,
      handovers: run.baselineHandovers.length,
      fromMs: run.baselineFromMs,
      toMs: run.baselineToMs,
    },
    totals: {
      expected,
      received: sum((s) => s.stats.received),
      lost: sum((s) => s.stats.lost),
      duplicated: sum((s) => s.stats.duplicated),
      reordered: sum((s) => s.stats.reordered),
      mismatched: sum((s) => s.stats.mismatched),
      inferredRebases: sum((s) => s.stats.inferredRebases),
      unplaced: sum((s) => s.stats.unplaced),
      malformed: sum((s) => s.stats.malformed),
      beyondCursor: sum((s) => s.stats.beyondCursor),
      firstMismatch: streams.find((s) => s.stats.firstMismatch)?.stats.firstMismatch,
      falseFailovers: wrongCause + extraInFaultWindow + run.strayEvents.length + run.baselineEvents.length,
      falseBreakdown,
      handovers,
      failures: faults.filter((f) => f.failure !== undefined).length,
      faults: faults.length,
      restarts: run.restarts.length,
      stalls: run.stalls.length,
      replayErrors: run.replayErrors.length,
      engineSentByPaths: run.engineSentByPaths,
      extraSends: run.engineSentByPaths - expected,
      kernelRcvbufErrors: delta('RcvbufErrors'),
      kernelInErrors: delta('InErrors'),
      kernelSndbufErrors: delta('SndbufErrors'),
      receiverSocketDrops: run.socketDrops.drops,
      receiverSocketsFound: run.socketDrops.found,
    },
    lostDetail,
    dupDetail,
  };
  return { summary, faults };
}

// ─────────────────────────────────────────────────────────────────────────────
// Report

function mark(ok: boolean): string {
  return ok ? 'ok' : 'MISS';
}

function printPhase(s: PhaseSummary, run: PhaseRun, a: BenchAsset): void {
  const mbit = (a.bitrate / 1e6).toFixed(2);
  const hb = run.heartbeat;
  const t = s.totals;
  console.log('');
  console.log(`── ${s.sessions} session${s.sessions === 1 ? '' : 's'} × ${mbit} Mbit/s — heartbeat ${hb?.periodUs ?? '?'} µs × ${hb?.maxMissed ?? '?'}, ${t.faults} faults, baseline ${((s.baseline.toMs - s.baseline.fromMs) / 1000).toFixed(1)} s (${s.baseline.instants} instants), engine restarts ${t.restarts}`);
  console.log(`   receiver (${run.receiver.kind}): ${run.receiver.policy}${run.receiver.policyError ? ` (${run.receiver.policyError})` : ''}, SO_RCVBUF ${run.receiver.recvBuffer.length ? Math.min(...run.receiver.recvBuffer) : '?'} B; threads of this process under SCHED_FIFO: ${run.enginePolicies.filter((p) => p.policy === 'fifo').length} of ${run.enginePolicies.length}`);
  console.log('   (a) fault → sending moved away (failover switch or handover, whichever came first; ms)   (b) first datagram due at/after the fault: arrival − schedule (ms, worst session)   (c) largest inter-arrival gap in −50…+100 ms (ms, worst session)');
  console.log(`   n faults · fail = not recovered in time · false = false failovers · ho = switched by a handover · uho = unexplained handovers · yng = victim synchronized < ${YOUNG_VICTIM_MS} ms before`);
  const head = `   ${'kind'.padEnd(12)}${'hit'.padEnd(8)}${'n'.padStart(4)}${'fail'.padStart(5)}${'false'.padStart(6)}${'ho'.padStart(4)}${'uho'.padStart(4)}${'yng'.padStart(4)} │ ${'(a) p50    p99    max'.padStart(20)} │ ${'(b) p50    p99    max'.padStart(20)} │ ${'(c) p50    p99    max'.padStart(20)} │ b50<1 b99<33`;
  console.log(head);
  console.log('   ' + '─'.repeat(head.length - 3));
  for (const k of s.kinds) {
    const targets = k.target === 'active' ? `${mark(k.targetLateP50).padEnd(6)}${mark(k.targetLateP99)}` : '(standby)';
    console.log(`   ${k.kind.padEnd(12)}${k.target.padEnd(8)}${String(k.n).padStart(4)}${String(k.failures).padStart(5)}${String(k.falseFailovers).padStart(6)}${String(k.switchedByHandover).padStart(4)}${String(k.unexplainedHandovers).padStart(4)}${String(k.youngVictims).padStart(4)} │ ${fmtDist(k.switchMs)} │ ${fmtDist(k.lateMs)} │ ${fmtDist(k.gapMs)} │ ${targets}`);
  }
  const b = s.baseline;
  console.log(`   ${'baseline'.padEnd(12)}${'no fault'.padEnd(8)}${String(b.instants).padStart(4)}${'-'.padStart(5)}${String(b.failovers).padStart(6)}${'-'.padStart(4)}${String(b.handovers).padStart(4)}${'-'.padStart(4)} │ ${'-'.padStart(20)} │ ${fmtDist(b.lateMs)} │ ${fmtDist(b.gapMs)} │`);
  const split = s.kinds.filter((k) => k.target === 'active' && k.switchMs.n > 0)
    .map((k) => `${k.kind} ${fmt(k.switchYoungMs.p50)}/${fmt(k.switchOlderMs.p50)} (n ${k.switchYoungMs.n}/${k.switchOlderMs.n})`);
  if (split.length) console.log(`   (a) p50 with the victim young / older (synchronized < / ≥ ${YOUNG_VICTIM_MS} ms before the fault): ${split.join(', ')}`);
  console.log(`   datagrams: expected ${t.expected} (session cursors), received ${t.received}; sent by the paths ${t.engineSentByPaths} (${t.extraSends >= 0 ? '+' : ''}${t.extraSends} vs cursors)`);
  console.log(`   lost ${t.lost} (target 0: ${mark(t.lost === 0)})   duplicated ${t.duplicated} (target 0: ${mark(t.duplicated === 0)})   reordered ${t.reordered}   mismatched ${t.mismatched}${t.unplaced ? ` (+${t.unplaced} unplaced)` : ''}${t.inferredRebases ? `   engine clock restarts inferred from RTP timestamps ${t.inferredRebases}` : ''}${t.firstMismatch ? ` [first: ${t.firstMismatch}]` : ''}`);
  console.log(`   false failovers ${t.falseFailovers} (target 0: ${mark(t.falseFailovers === 0)}) [wrong cause ${t.falseBreakdown.wrongCause}, other failovers after a fault ${t.falseBreakdown.extraInFaultWindow} (${t.falseBreakdown.extraWhilePartnerRespawning} before the pair was protected again, ${t.falseBreakdown.extraSwitchedToNobody} leaving no sender), outside any fault ${t.falseBreakdown.strayBetweenFaults}, in the baseline ${t.falseBreakdown.baseline}]   unrecovered faults ${t.failures}   stalled-session restarts ${t.stalls}`);
  const h = t.handovers;
  console.log(`   handovers ${h.events} (engine counted ${h.engineCounted ?? '-'}): explained by a fault ${h.explained}, unexplained ${h.unexplained} (lossless by design; not false failovers) [after a fault ${h.unexplainedBreakdown.afterFault}, outside any fault ${h.unexplainedBreakdown.strayBetweenFaults} (${h.unexplainedBreakdown.beforeBaseline} of them while the sessions started, before the baseline), in the baseline ${h.unexplainedBreakdown.baseline}]`);
  console.log(`   CPU time the hypervisor stole from this VM during the phase: ${fmt(run.stealMs, 0)} ms (/proc/stat steal, both vCPUs)`);
  console.log(`   receiver-side drops (not server loss): Udp RcvbufErrors +${t.kernelRcvbufErrors} (whole host), the receiver sockets' own drop counters ${t.receiverSocketDrops} (${t.receiverSocketsFound}/${run.receiver.recvBuffer.length} sockets read); Udp InErrors +${t.kernelInErrors}, SndbufErrors +${t.kernelSndbufErrors}`);
  for (const d of s.dupDetail.slice(0, 5)) {
    console.log(`   duplicate: session socket ${d.sock} cursor ${d.cursor}, ${d.arrivals.length} copies ${fmt((d.arrivals.at(-1) ?? 0) - d.arrivals[0], 3)} ms apart, ${fmt(d.fromFaultMs ?? Number.NaN)} ms after fault ${d.nearestFault} (${d.faultKind} on the ${d.faultTarget} path)`);
  }
  for (const p of run.problems.slice(0, 8)) console.log(`   ! ${p}`);
  if (run.problems.length > 8) console.log(`   ! … ${run.problems.length - 8} more in the JSON`);
  if (run.replayErrors.length) console.log(`   ! ${run.replayErrors.length} play() errors, first: ${run.replayErrors[0]}`);
}

// ─────────────────────────────────────────────────────────────────────────────
// Main

/** Which engine was measured: the commit, and whether src/ had uncommitted changes (others edit it). */
function codeVersion(): string {
  // A run from a copy of dist/ (to keep concurrent rebuilds out of a long run) can say what it copied.
  if (process.env.TWINFRAME_BENCH_CODE_VERSION) return process.env.TWINFRAME_BENCH_CODE_VERSION;
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 });
  if (head.status !== 0) return 'unknown (no git)';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 });
  const changed = (dirty.stdout ?? '').split('\n').filter(Boolean).length;
  return `commit ${head.stdout.trim()}${changed ? ` + ${changed} uncommitted change(s) in src/` : ', src/ clean'}`;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const rand = mulberry32(o.seed);
  const tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-bench-'));
  const logger = o.log ? createLogger({ level: 'info', destination: o.log }) : silentLogger;
  const onSignal = (): void => {
    const quit = (): never => {
      rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    };
    if (interrupted) quit();
    interrupted = true;
    process.stderr.write('failover.bench: interrupted; stopping, reporting what was measured and cleaning up (again to quit at once)\n');
    // Bounded: the orderly stop gets 30 s.
    setTimeout(quit, 30_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const a = await prepareAsset(o, tmp);
    const load0 = loadavg();
    console.log(`twinframe failover bench — ${startedAt.toISOString()}, node ${process.version}, seed ${o.seed}`);
    console.log(`asset: ${a.source}, ${(a.bitrate / 1e6).toFixed(2)} Mbit/s, ${(a.durationMs / 1000).toFixed(1)} s, ${a.asset.packetCount} TS packets`);
    if (a.note) console.log(`NOTE: ${a.note}`);
    console.log(`faults: ${o.faults} over sessions ${o.sessions.join(',')}; kinds ${o.kinds.join(',')}; standby share ${o.standbyShare}; settle ${o.settleMinMs}-${o.settleMaxMs} ms; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`engine under test: ${codeVersion()}`);
    console.log(`targets: 0 lost, 0 duplicated, 0 false failovers; (b) p50 < ${TARGET_LATE_P50_MS} ms and p99 < ${TARGET_LATE_P99_MS} ms for every kind`);

    const deadlineAtMs = monoNowMs() + o.deadlineMin * 60_000;
    const phases: Array<{ summary: PhaseSummary; faults: FaultMeasure[]; run: PhaseRun }> = [];
    for (let p = 0; p < o.sessions.length && !interrupted; p++) {
      const n = o.sessions[p];
      const share = Math.floor(o.faults / o.sessions.length) + (p < o.faults % o.sessions.length ? 1 : 0);
      process.stderr.write(`phase ${p + 1}/${o.sessions.length}: ${n} sessions, ${share} faults\n`);
      const run = await runPhase(o, a, n, share, rand, logger, deadlineAtMs);
      const { summary, faults } = analyse(run, a, rand);
      phases.push({ summary, faults, run });
      printPhase(summary, run, a);
    }

    // Overall verdict.
    const all = phases.map((p) => p.summary.totals);
    const lost = all.reduce((s, t) => s + t.lost, 0);
    const dup = all.reduce((s, t) => s + t.duplicated, 0);
    const falseF = all.reduce((s, t) => s + t.falseFailovers, 0);
    const unexplainedHo = all.reduce((s, t) => s + t.handovers.unexplained, 0);
    const faultsDone = all.reduce((s, t) => s + t.faults, 0);
    const lateMisses = phases.flatMap((p) => p.summary.kinds.filter((k) => k.target === 'active' && (!k.targetLateP50 || !k.targetLateP99)).map((k) => `${k.kind}@${p.summary.sessions}`));
    const load1 = loadavg();
    console.log('');
    console.log(`overall: ${faultsDone} faults; lost ${lost} ${mark(lost === 0)}, duplicated ${dup} ${mark(dup === 0)}, false failovers ${falseF} ${mark(falseF === 0)}, unexplained handovers ${unexplainedHo}, (b) targets ${lateMisses.length === 0 ? 'ok' : `MISS for ${lateMisses.join(', ')}`}; load average ${load1.map((x) => x.toFixed(2)).join(' ')}`);

    mkdirSync(o.out, { recursive: true });
    const file = path.join(o.out, `failover-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = {
      bench: 'failover',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      node: process.version,
      code: codeVersion(),
      options: o,
      asset: { source: a.source, note: a.note, bitrate: a.bitrate, durationMs: a.durationMs, packetCount: a.asset.packetCount },
      loadavg: { start: load0, end: load1 },
      targets: { lost: 0, duplicated: 0, falseFailovers: 0, lateP50Ms: TARGET_LATE_P50_MS, lateP99Ms: TARGET_LATE_P99_MS },
      windows: { gapBeforeMs: GAP_BEFORE_MS, gapAfterMs: GAP_AFTER_MS },
      phases: phases.map(({ summary, faults, run }) => ({
        ...summary,
        heartbeat: run.heartbeat,
        receiver: run.receiver,
        engineThreads: run.enginePolicies,
        problems: run.problems,
        replayErrors: run.replayErrors,
        stalls: run.stalls,
        deadlineHit: run.deadlineHit,
        restarts: run.restarts,
        stealMs: run.stealMs,
        streams: run.streams.map((st) => ({
          sock: st.sock, gen: st.gen, ssrc: st.info.ssrc, initialSeq: st.info.initialSeq, finalSent: st.finalSent, received: run.data[st.sock]?.count,
          checkedByCheckRtpStream: run.data[st.sock]?.checked,
          segments: st.segments.map((seg) => ({ startCursor: seg.startCursor, reason: seg.reason, ...seg.play })),
        })),
        events: { baseline: run.baselineEvents, betweenFaults: run.strayEvents },
        handovers: { baseline: run.baselineHandovers, betweenFaults: run.strayHandovers },
        faults,
      })),
    };
    writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
    console.log(`JSON: ${path.relative(process.cwd(), file) || file}`);
    if (o.strict && (lost || dup || falseF || lateMisses.length)) process.exitCode = 1;
  } finally {
    await rm(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Whatever is left (a stuck worker), do not let it hold the process.
    setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  }
}

if (isMainThread && process.env.TWINFRAME_BENCH_ROLE === 'receiver') {
  // The receiver as a child process: its init comes over IPC.
  let pendingSends = 0;
  let closing = false;
  const disconnectWhenFlushed = (): void => {
    if (closing && pendingSends === 0 && process.connected) process.disconnect();
  };
  const channel: Channel = {
    post: (msg) => {
      if (!process.connected) return;
      pendingSends++;
      process.send!(msg, undefined, {}, () => { pendingSends--; disconnectWhenFlushed(); });
    },
    onMessage: (handler) => process.on('message', (m: ToReceiver) => handler(m)),
    close: () => { closing = true; disconnectWhenFlushed(); },
  };
  process.on('disconnect', () => process.exit(0)); // the bench went away: so do we
  process.once('message', (m: ToReceiver) => {
    if (m.type === 'init') runReceiver(m.init, channel);
  });
} else if (isMainThread) {
  await main();
} else if ((workerData as { role?: string } | null)?.role === 'receiver') {
  const port = parentPort!;
  runReceiver(workerData as ReceiverInit, {
    post: (msg, transfer) => port.postMessage(msg, transfer ?? []),
    onMessage: (handler) => port.on('message', handler),
    close: () => port.close(),
  });
}
