// Failover benchmark: injects many faults of every kind into a running engine
// that streams 1 and 20 concurrent ~4 Mbit/s RTP sessions to a receiver on
// 127.0.0.1, and measures what a viewer would see.
//
//   node dist/bench/failover/run.js [--faults N] [--sessions 1,20] [--quick] ...
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
// The modules: this runner (options, phases in turn, signals), phase.ts (one
// engine run with its faults), receiver.ts (the receiver, started as a child
// process by receiver-process.ts, the default, or as a worker thread by
// receiver-thread.ts; receiver-link.ts is the bench's handle on it),
// analysis.ts (pure: datagrams and events → counts and measures), report.ts
// (tables and JSON). A separate receiver process shares nothing with the
// engine's process (V8 platform threads, allocator, mmap lock), as a real viewer
// would not; CLOCK_MONOTONIC is one clock for every process of the host, so its
// stamps compare directly.
//
// Everything is bounded: a fault that does not recover within
// --recovery-timeout-ms (10 s) is recorded as a failure, the engine is replaced
// and the run goes on; the engine, sockets, worker threads and temp files are
// always cleaned up and the process exits by itself.

import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monoNowMs } from '../../src/shared/clock.js';
import { FailureFaultKinds, type FailureFaultKind } from '../../src/shared/commands.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { Flags } from '../flags.js';
import { mulberry32 } from '../lib.js';
import { analyse } from './analysis.js';
import { prepareAsset } from './asset.js';
import { RECEIVER_FIFO_PRIORITY, type Options } from './model.js';
import { runPhase } from './phase.js';
import { codeVersion, printHeader, printOverall, printPhase, writeJson, type PhaseResult } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, from dist/bench/failover/ (compiled) or bench/failover/. */
const ROOT = path.resolve(HERE, path.basename(path.resolve(HERE, '../..')) === 'dist' ? '../../..' : '../..');

const USAGE = `usage: node dist/bench/failover/run.js [options]
  --faults N               faults in total, split evenly over the session counts (default 1000; --quick 120)
  --sessions 1,20          concurrent session counts, one engine each (default 1,20)
  --kinds a,b              failure fault kinds (default all: ${FailureFaultKinds.join(',')})
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
  const flags = Flags.parse(argv, {
    faults: 'string', sessions: 'string', kinds: 'string', 'standby-share': 'string', 'baseline-s': 'string', 'warmup-ms': 'string',
    'settle-ms': 'string', 'recovery-timeout-ms': 'string', muxrate: 'string', asset: 'string', seed: 'string', receiver: 'string',
    'receiver-rt': 'string', log: 'string', 'deadline-min': 'string', out: 'string', quick: 'boolean', strict: 'boolean',
  }, USAGE);
  const quick = flags.has('quick');
  const kinds = flags.list('kinds') ?? [...FailureFaultKinds];
  for (const k of kinds) if (!(FailureFaultKinds as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${k}`);
  const sessions = (flags.list('sessions') ?? []).map((s) => Math.max(1, Math.floor(Number(s)))).filter((n) => Number.isFinite(n));
  const receiver = flags.string('receiver') ?? 'process';
  if (receiver !== 'process' && receiver !== 'thread') throw new Error(`--receiver process|thread\n${USAGE}`);
  const [settleMin, settleMax] = (flags.string('settle-ms') ?? '150-350').split('-').map(Number);
  if (!Number.isFinite(settleMin)) throw new Error('--settle-ms MIN-MAX');
  const asset = flags.string('asset');
  const log = flags.string('log');
  return {
    faults: Math.max(0, Math.floor(flags.number('faults') ?? (quick ? 120 : 1000))),
    sessions: sessions.length ? sessions : [1, 20],
    kinds: kinds as FailureFaultKind[],
    standbyShare: Math.min(1, Math.max(0, flags.number('standby-share') ?? 0.2)),
    baselineS: Math.max(1, flags.number('baseline-s') ?? (quick ? 8 : 20)),
    warmupMs: Math.max(0, flags.number('warmup-ms') ?? 2000),
    settleMinMs: settleMin,
    settleMaxMs: Number.isFinite(settleMax) ? Math.max(settleMin, settleMax) : settleMin,
    recoveryTimeoutMs: Math.max(100, flags.number('recovery-timeout-ms') ?? 10_000),
    muxrate: Math.max(100_000, flags.number('muxrate') ?? 4_000_000),
    asset: asset === undefined ? undefined : path.resolve(asset),
    seed: Math.floor(flags.number('seed') ?? Date.now() % 2 ** 31),
    out: path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results')),
    receiverRt: flags.string('receiver-rt') !== 'off',
    receiver,
    log: log === undefined ? undefined : path.resolve(log),
    deadlineMin: Math.max(0.1, flags.number('deadline-min') ?? 30),
    quick,
    strict: flags.has('strict'),
  };
}

/** Set by SIGINT/SIGTERM: stop injecting, report what was measured, clean up. */
let interrupted = false;

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
    process.stderr.write('failover bench: interrupted; stopping, reporting what was measured and cleaning up (again to quit at once)\n');
    // Bounded: the orderly stop gets 30 s.
    setTimeout(quit, 30_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const a = await prepareAsset(o, ROOT, tmp);
    const load0 = loadavg();
    const code = codeVersion(ROOT);
    printHeader(o, a, startedAt, load0, code);

    const deadlineAtMs = monoNowMs() + o.deadlineMin * 60_000;
    const phases: PhaseResult[] = [];
    for (let p = 0; p < o.sessions.length && !interrupted; p++) {
      const sessions = o.sessions[p];
      const faults = Math.floor(o.faults / o.sessions.length) + (p < o.faults % o.sessions.length ? 1 : 0);
      process.stderr.write(`phase ${p + 1}/${o.sessions.length}: ${sessions} sessions, ${faults} faults\n`);
      const run = await runPhase({ o, a, sessions, faults, rand, logger, deadlineAtMs, interrupted: () => interrupted });
      const { summary, faults: measured } = analyse(run, { packetCount: a.asset.packetCount, times: a.times }, rand);
      phases.push({ summary, faults: measured, run });
      printPhase(summary, run, a);
    }

    const load1 = loadavg();
    const missed = printOverall(phases, load1);
    const file = writeJson(o, a, phases, { startedAt, code, load: { start: load0, end: load1 } });
    console.log(`JSON: ${path.relative(process.cwd(), file) || file}`);
    if (o.strict && missed) process.exitCode = 1;
  } finally {
    await rm(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Whatever is left (a stuck worker), do not let it hold the process.
    setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  }
}

await main();
