// RTSP sessions benchmark: the whole server (catalog, engine with both data
// paths, RTSP front end) driven over RTSP by this process, measuring what a
// viewer sees.
//
//   node dist/bench/rtsp-sessions.bench.js [--levels 1,4,8,...] [--seconds 3] [--samples 30] [--quick] [--out DIR]
//
// (a) SETUP → first datagram: from the moment the SETUP request is written to
//     the arrival of the first RTP datagram, with the PLAY sent as soon as the
//     SETUP reply is read (a player's fastest start); p50/p99 over --samples
//     sessions, with no other stream, and with 16 sessions streaming meanwhile.
//     The SETUP and PLAY round trips are reported apart.
// (b) Concurrency: for each level N, N RTP sessions of the bundled sample
//     (3.0 Mbit/s MPEG-TS; the issue's ~4 Mbit/s target is a different file, not
//     a different load per datagram: 7 TS packets per datagram either way, 285
//     datagrams/s per session here instead of ~380) are set up and played, and
//     every datagram's lateness is measured for --seconds after a 0.5 s warm-up:
//     arrival − schedule, where the schedule of a datagram is the play's
//     startTimeMs + (its RTP timestamp − the play's rtptime) / 90, exactly the
//     deadline the data path computes (PlayResult captured from engine.play).
//     The levels are scanned upward; the result is the largest N whose p99
//     lateness stays under 1 ms, and under 5 ms.
// Arrivals are stamped by one receiver thread (this file, role 'receiver') on
// the shared clock (process.hrtime), at SCHED_FIFO priority 5 when permitted
// (below the data paths' 10), with 4 MiB socket buffers, so a busy main thread
// is not mistaken for a late server. Both data paths run throughout (Primary +
// Secondary); any failover during a level is counted and shown.
//
// Bounded: every wait has a timeout, every level is torn down, the server and
// the receiver thread are closed and the temp directory removed, even on error.

import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import dgram from 'node:dgram';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseConfig } from '../src/config/schema.js';
import type { PlayResult } from '../src/engine/engine.js';
import { silentLogger } from '../src/log.js';
import { TICKS_HZ } from '../src/mpegts/packet.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { raiseThreadPriority } from '../src/shared/thread-priority.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { RtspClient, UdpReceiver } from '../test/helpers/rtsp-client.js';
import { Flags } from './flags.js';
import { sleep, withTimeout } from './lib.js';
import { quantile, sortedFinite, summarize, type Summary } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.basename(path.dirname(HERE)) === 'dist' ? path.resolve(HERE, '../..') : path.resolve(HERE, '..');
const RECEIVER_PRIORITY = 5;
const WARMUP_MS = 500;

// ─────────────────────────────────────────────────────────────────────────────
// Receiver thread

interface ReceiverMessage { readonly type: 'open'; readonly count: number } 
type ReceiverCommand = ReceiverMessage | { readonly type: 'collect' } | { readonly type: 'exit' };
interface Collected {
  /** Per socket: arrival ms (shared clock), RTP sequence number, RTP timestamp. */
  readonly sockets: Array<{ at: Float64Array; seq: Uint16Array; ts: Uint32Array }>;
}

function receiverMain(): void {
  const priority = raiseThreadPriority(RECEIVER_PRIORITY);
  let sockets: Array<{ socket: dgram.Socket; at: number[]; seq: number[]; ts: number[] }> = [];
  parentPort!.postMessage({ type: 'ready', policy: priority.policy });
  parentPort!.on('message', (cmd: ReceiverCommand) => {
    if (cmd.type === 'open') {
      let pending = cmd.count;
      const opened: number[] = [];
      const batch: typeof sockets = [];
      for (let i = 0; i < cmd.count; i++) {
        const socket = dgram.createSocket('udp4');
        const entry = { socket, at: [] as number[], seq: [] as number[], ts: [] as number[] };
        socket.on('message', (m: Buffer) => {
          entry.at.push(Number(process.hrtime.bigint()) / 1e6);
          entry.seq.push(m.readUInt16BE(2));
          entry.ts.push(m.readUInt32BE(4));
        });
        socket.bind(0, '127.0.0.1', () => {
          try { socket.setRecvBufferSize(4 * 1024 * 1024); } catch { /* capped by the kernel */ }
          opened[i] = socket.address().port;
          if (--pending === 0) parentPort!.postMessage({ type: 'opened', ports: opened });
        });
        batch.push(entry);
      }
      sockets = batch;
    } else if (cmd.type === 'collect') {
      const out: Collected = {
        sockets: sockets.map((s) => ({ at: Float64Array.from(s.at), seq: Uint16Array.from(s.seq), ts: Uint32Array.from(s.ts) })),
      };
      for (const s of sockets) s.socket.close();
      sockets = [];
      parentPort!.postMessage({ type: 'collected', data: out }, out.sockets.flatMap((s) => [s.at.buffer, s.seq.buffer, s.ts.buffer] as ArrayBuffer[]));
    } else {
      for (const s of sockets) s.socket.close();
      process.exit(0);
    }
  });
}

class ReceiverThread {
  private constructor(private readonly worker: Worker, readonly policy: string) {}

  static async start(): Promise<ReceiverThread> {
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'receiver' } });
    const policy = await withTimeout(new Promise<string>((resolve, reject) => {
      worker.once('message', (m: { policy: string }) => resolve(m.policy));
      worker.once('error', reject);
    }), 10_000, 'receiver thread start');
    return new ReceiverThread(worker, policy);
  }

  async open(count: number): Promise<number[]> {
    const reply = this.next<{ ports: number[] }>('opened');
    this.worker.postMessage({ type: 'open', count } satisfies ReceiverCommand);
    return (await withTimeout(reply, 10_000, 'receiver sockets')).ports;
  }

  async collect(): Promise<Collected> {
    const reply = this.next<{ data: Collected }>('collected');
    this.worker.postMessage({ type: 'collect' } satisfies ReceiverCommand);
    return (await withTimeout(reply, 10_000, 'receiver data')).data;
  }

  async stop(): Promise<void> {
    this.worker.postMessage({ type: 'exit' } satisfies ReceiverCommand);
    await withTimeout(new Promise((resolve) => this.worker.once('exit', resolve)), 5000, 'receiver exit').catch(() => this.worker.terminate());
  }

  private next<T>(type: string): Promise<T> {
    return new Promise((resolve) => {
      const on = (m: { type: string } & T): void => {
        if (m.type !== type) return;
        this.worker.off('message', on);
        resolve(m);
      };
      this.worker.on('message', on);
    });
  }
}

// ─────────────────────────────────────────────────────────────────────────────
// Options

interface Options {
  levels: number[];
  seconds: number;
  samples: number;
  out: string;
}

const USAGE = 'usage: node dist/bench/rtsp-sessions.bench.js [--levels 1,4,8] [--seconds 3] [--samples 30] [--quick] [--out DIR]\n  --quick  --levels 1,8,16 --seconds 1.5 --samples 10';

function parseOptions(argv: string[]): Options {
  const flags = Flags.parse(argv, { levels: 'string', seconds: 'string', samples: 'string', quick: 'boolean', out: 'string' }, USAGE);
  const quick = flags.has('quick');
  const levels = flags.list('levels')?.map(Number).filter((n) => Number.isInteger(n) && n > 0);
  return {
    levels: levels ?? (quick ? [1, 8, 16] : [1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 56, 64]),
    seconds: flags.number('seconds', { positive: true }) ?? (quick ? 1.5 : 3),
    samples: Math.floor(flags.number('samples', { positive: true }) ?? (quick ? 10 : 30)),
    out: path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results')),
  };
}

// ─────────────────────────────────────────────────────────────────────────────
// Measurements

interface Percentiles extends Summary { readonly p999: number }

function percentiles(values: ArrayLike<number>): Percentiles {
  return { ...summarize(values), p999: quantile(sortedFinite(values), 0.999) };
}

interface StartupResult {
  readonly background: number;
  readonly setupToFirstDatagramMs: Percentiles;
  readonly setupRttMs: Percentiles;
  readonly playRttMs: Percentiles;
  readonly playToFirstDatagramMs: Percentiles;
}

/** (a): SETUP → first datagram, `samples` times, one session at a time. */
async function measureStartup(server: TwinframeServer, port: number, samples: number, background: number): Promise<StartupResult> {
  const client = await RtspClient.connect({ port, timeoutMs: 10_000 });
  const firsts: number[] = [];
  const setups: number[] = [];
  const plays: number[] = [];
  const playToFirst: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const receiver = await UdpReceiver.open();
      try {
        client.session = undefined;
        const t0 = process.hrtime.bigint();
        const setup = await client.setup('/sample.ts/track1', `RTP/AVP;unicast;client_port=${receiver.rtpPort}`);
        const t1 = process.hrtime.bigint();
        if (setup.status !== 200) throw new Error(`SETUP answered ${setup.status}`);
        const play = await client.play('/sample.ts', 'npt=0-');
        const t2 = process.hrtime.bigint();
        if (play.status !== 200) throw new Error(`PLAY answered ${play.status}`);
        await receiver.waitForCount(1, 5000);
        const first = receiver.datagrams[0].arrivalNs;
        firsts.push(Number(first - t0) / 1e6);
        setups.push(Number(t1 - t0) / 1e6);
        plays.push(Number(t2 - t1) / 1e6);
        playToFirst.push(Number(first - t1) / 1e6);
        await client.teardown('/sample.ts');
      } finally {
        await receiver.close();
      }
      await sleep(20);
    }
  } finally {
    await client.close();
  }
  void server;
  return {
    background,
    setupToFirstDatagramMs: percentiles(firsts),
    setupRttMs: percentiles(setups),
    playRttMs: percentiles(plays),
    playToFirstDatagramMs: percentiles(playToFirst),
  };
}

interface Running {
  readonly client: RtspClient;
  readonly ids: string[];
}

/** Set up and play `count` sessions to the given ports over one RTSP connection. */
async function startSessions(port: number, ports: readonly number[]): Promise<Running> {
  const client = await RtspClient.connect({ port, timeoutMs: 10_000 });
  const ids: string[] = [];
  for (const p of ports) {
    client.session = undefined;
    const r = await client.setup('/sample.ts/track1', `RTP/AVP;unicast;client_port=${p}`);
    if (r.status !== 200) throw new Error(`SETUP answered ${r.status}`);
    ids.push(client.session!);
  }
  for (const id of ids) {
    const r = await client.request('PLAY', '/sample.ts', { headers: { Session: id, Range: 'npt=0-' } });
    if (r.status !== 200) throw new Error(`PLAY answered ${r.status}`);
    parseRtpInfo(r.headers.get('rtp-info')!);
  }
  return { client, ids };
}

async function stopSessions(running: Running): Promise<void> {
  for (const id of running.ids) {
    await running.client.request('TEARDOWN', '/sample.ts', { headers: { Session: id } }).catch(() => undefined);
  }
  await running.client.close();
}

interface LevelResult {
  readonly sessions: number;
  readonly datagrams: number;
  readonly latenessMs: Percentiles;
  readonly lost: number;
  readonly duplicated: number;
  readonly failovers: number;
  readonly pairAfter: string[];
}

/** (b): `count` sessions at once; lateness of every datagram due inside the window. */
async function measureLevel(server: TwinframeServer, port: number, receiver: ReceiverThread, count: number, seconds: number, plays: Map<string, PlayResult>): Promise<LevelResult> {
  const ports = await receiver.open(count);
  const switchesBefore = server.engine.status().switches;
  const running = await startSessions(port, ports);
  let data: Collected;
  let windowStart = 0;
  let windowEnd = 0;
  try {
    await sleep(WARMUP_MS);
    windowStart = Number(process.hrtime.bigint()) / 1e6;
    await sleep(seconds * 1000);
    windowEnd = Number(process.hrtime.bigint()) / 1e6;
    for (const id of running.ids) server.engine.pause(id); // stop the flow at once; TEARDOWN follows
    await sleep(100);
    data = await receiver.collect();
  } finally {
    await stopSessions(running);
  }
  const lateness: number[] = [];
  let lost = 0;
  let duplicated = 0;
  let datagrams = 0;
  running.ids.forEach((id, i) => {
    const play = plays.get(id)!;
    const s = data.sockets[i];
    const seen = new Set<number>();
    let minSeq = Infinity;
    let maxSeq = -Infinity;
    for (let k = 0; k < s.at.length; k++) {
      const due = play.startTimeMs + ((s.ts[k] - play.rtptime) >>> 0) / (TICKS_HZ / 1000);
      // Extended sequence number relative to the play's first (no wrap within a few seconds).
      const ext = (s.seq[k] - play.seq) & 0xffff;
      if (seen.has(ext)) duplicated++;
      seen.add(ext);
      if (due < windowStart || due > windowEnd) continue;
      datagrams++;
      minSeq = Math.min(minSeq, ext);
      maxSeq = Math.max(maxSeq, ext);
      lateness.push(s.at[k] - due);
    }
    if (maxSeq >= minSeq) {
      for (let q = minSeq; q <= maxSeq; q++) if (!seen.has(q)) lost++;
    }
  });
  const status = server.engine.status();
  return {
    sessions: count,
    datagrams,
    latenessMs: percentiles(lateness),
    lost,
    duplicated,
    failovers: status.switches - switchesBefore,
    pairAfter: status.paths.map((p) => `${p.path}:${p.named}`),
  };
}

// ─────────────────────────────────────────────────────────────────────────────
// Main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-bench-rtsp-'));
  let server: TwinframeServer | undefined;
  let receiver: ReceiverThread | undefined;
  const started = new Date();
  const loadBefore = loadavg();
  try {
    const config = parseConfig({
      media: { mounts: [{ prefix: '', dir: path.join(ROOT, 'assets') }], cacheDir: path.join(tmp, 'cache') },
      admin: { socketPath: path.join(tmp, 'admin.sock') },
      log: { level: 'silent' },
    });
    server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { port: 0 } });
    const port = server.rtsp.port;
    // The exact schedule of each session: the engine's PlayResult (the RTSP reply carries only seq and rtptime).
    const plays = new Map<string, PlayResult>();
    const engine = server.engine;
    const play = engine.play.bind(engine);
    engine.play = async (id, o) => {
      const r = await play(id, o);
      plays.set(id, r);
      return r;
    };
    receiver = await ReceiverThread.start();
    const maxSessions = 64; // the engine's default session table, as startServer builds it
    const levels = options.levels.filter((n) => n <= maxSessions);

    process.stderr.write(`rtsp-sessions: receiver thread ${receiver.policy}; SETUP→first datagram, ${options.samples} samples…\n`);
    // Index the asset first: a cold index cache is a one-time cost per asset, not a SETUP's.
    const warm = await RtspClient.connect({ port });
    await warm.describe('/sample.ts');
    await warm.close();
    const startup: StartupResult[] = [await measureStartup(server, port, options.samples, 0)];
    {
      const ports = await receiver.open(16);
      const running = await startSessions(port, ports);
      try {
        await sleep(300);
        startup.push(await measureStartup(server, port, options.samples, 16));
      } finally {
        await stopSessions(running);
        await receiver.collect();
      }
    }

    const results: LevelResult[] = [];
    let overFive = 0;
    for (const n of levels) {
      process.stderr.write(`rtsp-sessions: ${n} concurrent session(s)…\n`);
      const r = await measureLevel(server, port, receiver, n, options.seconds, plays);
      results.push(r);
      await sleep(300);
      overFive = r.latenessMs.p99 >= 5 ? overFive + 1 : 0;
      if (overFive >= 2) break; // two levels in a row past the looser bound: no point going higher
    }
    const meets = (r: LevelResult, limitMs: number): boolean => r.latenessMs.p99 < limitMs && r.lost === 0 && r.duplicated === 0;
    // Sustained: every level up to N met the bound. Largest: the highest level that met it at all
    // (on a noisy box a level can miss by a scheduler stall and the next one pass: see the table).
    const sustained = (limitMs: number): number => {
      let best = 0;
      for (const r of results) {
        if (!meets(r, limitMs)) break;
        best = r.sessions;
      }
      return best;
    };
    const largest = (limitMs: number): number => results.reduce((best, r) => (meets(r, limitMs) ? Math.max(best, r.sessions) : best), 0);
    const summary = {
      under1ms: sustained(1), under5ms: sustained(5), largestUnder1ms: largest(1), largestUnder5ms: largest(5),
      testedUpTo: results.at(-1)?.sessions ?? 0, sessionTableLimit: maxSessions,
    };

    const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
    const lines: string[] = [];
    lines.push(`SETUP → first datagram (ms), ${options.samples} sessions one after another (asset index warm); sample asset 3.0 Mbit/s`);
    lines.push('| streams meanwhile | SETUP→first p50 | p99 | max | SETUP RTT p50 | PLAY RTT p50 | PLAY→first p50 | p99 |');
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of startup) {
      lines.push(`| ${s.background} | ${f(s.setupToFirstDatagramMs.p50)} | ${f(s.setupToFirstDatagramMs.p99)} | ${f(s.setupToFirstDatagramMs.max)} | ${f(s.setupRttMs.p50)} | ${f(s.playRttMs.p50)} | ${f(s.playToFirstDatagramMs.p50)} | ${f(s.playToFirstDatagramMs.p99)} |`);
    }
    lines.push('');
    lines.push(`Pacing lateness per datagram (arrival − schedule, ms), ${options.seconds} s per level after ${WARMUP_MS} ms warm-up, both data paths running`);
    lines.push('| sessions | Mbit/s | datagrams | p50 | p99 | p99.9 | max | lost | dup | failovers |');
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      lines.push(`| ${r.sessions} | ${(r.sessions * 3.0).toFixed(0)} | ${r.datagrams} | ${f(r.latenessMs.p50)} | ${f(r.latenessMs.p99)} | ${f(r.latenessMs.p999)} | ${f(r.latenessMs.max)} | ${r.lost} | ${r.duplicated} | ${r.failovers} |`);
    }
    lines.push('');
    lines.push(`Sustained (every level up to N) with p99 lateness < 1 ms: ${summary.under1ms} sessions; < 5 ms: ${summary.under5ms} sessions.`);
    lines.push(`Largest single level meeting it: < 1 ms: ${summary.largestUnder1ms}; < 5 ms: ${summary.largestUnder5ms} (tested up to ${summary.testedUpTo}; the session table holds ${maxSessions}).`);
    lines.push(`failovers = ACTIVE switches during the level (false heartbeat failovers; no fault is injected). Load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}.`);
    const table = lines.join('\n');
    process.stdout.write(`${table}\n`);

    mkdirSync(options.out, { recursive: true });
    const file = path.join(options.out, `rtsp-sessions-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = {
      bench: 'rtsp-sessions', started: started.toISOString(), options,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
      receiverPolicy: receiver.policy, startup, levels: results, summary, table,
    };
    writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
    process.stderr.write(`rtsp-sessions: wrote ${path.relative(process.cwd(), file)}\n`);
  } finally {
    await receiver?.stop().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'receiver') {
  receiverMain();
} else if (isMainThread) {
  // A hard bound on the whole run, whatever hangs.
  const guard = setTimeout(() => {
    process.stderr.write('rtsp-sessions: did not finish within 10 minutes; giving up\n');
    process.exit(2);
  }, 10 * 60_000);
  guard.unref();
  main().then(() => process.exit(0), (err: Error) => {
    process.stderr.write(`rtsp-sessions: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
