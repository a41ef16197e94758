// Soak benchmark (issue 15): N RTSP sessions against the real `twinframe`
// process for a long time, a fault injected into the sending path every few
// minutes. Does memory stay flat, is anything lost or duplicated, does any
// failover happen that no fault caused, does any session fail? See
// bench/README.md, section soak.
//
//   node dist/bench/soak/run.js [--minutes 60] [--sessions 50] [--fault-every-s 180] … (--help)
//
// The server: bench/capacity/servers.ts startTwinframe (a temp config with the
// asset's dir as the only mount, limits above what the sessions need, fault
// injection on, its JSON log in a file). The clients: --receivers processes of
// bench/liveness-receiver.ts at normal priority, sharing the sessions; each
// session plays the asset from a random place and again from the start each
// time the server's RTCP BYE says it ended (the 12 s sample loops that way), and
// counts lost and duplicated datagrams by RTP sequence number across its plays.
// Every --rss-every-s the server's VmRSS; every --fault-every-s one fault, the
// kinds in turn, into the path `twinframectl status` shows sending, through
// `twinframectl inject-fault` on the admin socket (after waiting for the pair to
// be protected again). At the end the receivers tear down and report, and the
// server's log gives every failover and handover (analysis.ts attributes them).
//
// Bounded: every wait has a timeout, the receivers end by themselves after the
// run plus a margin, every child dies with the bench (setpriv --pdeathsig), and
// children and the temp dir are removed on every exit path, Ctrl-C included
// (which still reports what was measured).

import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { FailureFaultKinds, type FailureFaultKind } from '../../src/shared/commands.js';
import { pcrBitrate } from '../capacity/asset.js';
import { rssMiB, startTwinframe, stopAllChildren, stopChild, type RunningServer } from '../capacity/servers.js';
import { codeVersion } from '../failover/report.js';
import { Flags } from '../flags.js';
import { sleep } from '../lib.js';
import type { SessionTotals } from '../liveness-count.js';
import { readLog } from '../server-log.js';
import { attributeFailovers, compactSeries, rssTrend, type Attribution, type RssSample, type RssTrend } from './analysis.js';
import { ROOT, injectFault, startReceivers, status, stopReceivers, type FaultRecord, type ReceiverProc, type Status } from './server-control.js';

const SERIES_POINTS = 40;

const USAGE = `usage: node dist/bench/soak/run.js [options]
  --minutes M          how long the sessions play (default 60)
  --sessions N         concurrent RTSP sessions (default 50)
  --fault-every-s S    one fault this often, the first S seconds in (default 180)
  --faults LIST        fault kinds, injected in turn into the sending path (default ${FailureFaultKinds.join(',')})
  --fault-window-s S   a failover of the faulted path this soon after a fault is the fault's; any other is false (default 10)
  --rss-every-s S      server VmRSS sample period (default 10)
  --rss-warmup-s S     samples this early are shown but left out of the trend (start-up and first GCs; default 60)
  --receivers N        receiver processes the sessions are spread over (default 2)
  --asset FILE         the asset to play (default assets/sample.ts of this checkout, looped by re-PLAY)
  --seed N             where the sessions start in the asset (default: time)
  --logs DIR           keep the server's log there as soak-<time>.log
  --out DIR            where the JSON goes (default bench/results)
  --strict             exit 1 when a target is missed (RSS flat, 0 lost, 0 duplicated, 0 false failovers, 0 failed sessions)`;

interface Options {
  minutes: number;
  sessions: number;
  faultEveryS: number;
  faults: FailureFaultKind[];
  faultWindowS: number;
  rssEveryS: number;
  rssWarmupS: number;
  receivers: number;
  asset: string;
  seed: number;
  logs: string | undefined;
  out: string;
  strict: boolean;
}

function parseOptions(argv: string[]): Options {
  const flags = Flags.parse(argv, {
    minutes: 'string', sessions: 'string', 'fault-every-s': 'string', faults: 'string', 'fault-window-s': 'string', 'rss-every-s': 'string', 'rss-warmup-s': 'string',
    receivers: 'string', asset: 'string', seed: 'string', logs: 'string', out: 'string', strict: 'boolean',
  }, USAGE);
  const faults = flags.list('faults') ?? [...FailureFaultKinds];
  for (const k of faults) if (!(FailureFaultKinds as readonly string[]).includes(k)) throw new Error(`unknown fault kind '${k}'\n${USAGE}`);
  const logs = flags.string('logs');
  const sessions = Math.floor(flags.number('sessions', { positive: true }) ?? 50);
  return {
    minutes: flags.number('minutes', { positive: true }) ?? 60,
    sessions,
    faultEveryS: flags.number('fault-every-s', { positive: true }) ?? 180,
    faults: faults as FailureFaultKind[],
    faultWindowS: flags.number('fault-window-s', { positive: true }) ?? 10,
    rssEveryS: flags.number('rss-every-s', { positive: true }) ?? 10,
    rssWarmupS: Math.max(0, flags.number('rss-warmup-s') ?? 60),
    receivers: Math.min(sessions, Math.floor(flags.number('receivers', { positive: true }) ?? 2)),
    asset: path.resolve(flags.string('asset') ?? path.join(ROOT, 'assets/sample.ts')),
    seed: Math.floor(flags.number('seed') ?? Date.now() % 2 ** 31),
    logs: logs === undefined ? undefined : path.resolve(logs),
    out: path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results')),
    strict: flags.has('strict'),
  };
}

/** Set by SIGINT/SIGTERM: the soak ends early, what was measured is reported. */
let interrupted = false;

// ─────────────────────────────────────────────────────────────────────────────
// Receivers

type PerSession = SessionTotals & { stalls: number; errors: number; gapP99Ms: number | null; gapMaxMs: number };

interface ReceiverResult {
  readonly perSession: PerSession[];
  readonly socketDrops: { drops: number; found: number };
  readonly errors: string[];
  readonly errorCount: number;
}

// ─────────────────────────────────────────────────────────────────────────────
// Report

interface Report {
  rss: RssTrend;
  series: { everyS: number; points: number[] };
  wire: { received: number; lost: number; duplicated: number; reordered: number; stalls: number; plays: number; endFromReport: number; seqJumps: number };
  failedSessions: number;
  attribution: Attribution;
}

function f(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function sessionTable(perSession: readonly PerSession[]): string {
  const head = ['session', 'received', 'lost', 'dup', 'reord', 'plays', 'stalls', 'errors', 'gap max', 'state'];
  const cells = perSession.map((p, i) => [String(i), String(p.received), String(p.lost), String(p.duplicated), String(p.reordered), String(p.plays),
    String(p.stalls), String(p.errors), f(p.gapMaxMs), sessionFailed(p) ? 'FAILED' : 'ok']);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: readonly string[]): string => c.map((x, i) => x.padStart(widths[i])).join('  ');
  return [line(head), '─'.repeat(widths.reduce((a, b) => a + b + 2, -2)), ...cells.map(line)].join('\n');
}

/** A session failed when it never received anything or a request of it failed (a re-PLAY refused leaves it silent). */
function sessionFailed(p: PerSession): boolean {
  return p.received === 0 || p.errors > 0;
}

function printReport(o: Options, r: Report, faults: readonly FaultRecord[], perSession: readonly PerSession[], expectedSessions: number): void {
  console.log('');
  console.log(`server RSS, MiB, one point per ${f(r.series.everyS, 0)} s (median of its samples): ${r.series.points.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  from ${o.rssWarmupS} s on: first ${f(r.rss.windowS / 60)} min median ${f(r.rss.firstMedianMiB)} MiB, last ${f(r.rss.windowS / 60)} min median ${f(r.rss.lastMedianMiB)} MiB: growth ${r.rss.growthMiB >= 0 ? '+' : ''}${f(r.rss.growthMiB)} MiB`
    + ` (flat: at most ${f(r.rss.toleranceMiB)}); slope ${f(r.rss.slopeMiBPerHour)} MiB/h; min ${f(r.rss.minMiB)}, max ${f(r.rss.maxMiB)}; ${r.rss.samples} samples`);
  console.log('');
  console.log(`faults (every ${o.faultEveryS} s, into the sending path):`);
  for (const x of faults) {
    const answer = r.attribution.failovers.find((a) => a.fault === x.i);
    const outcome = answer ? `failover ${answer.path} ${answer.cause ?? '?'}${answer.causeMatches ? '' : ` (expected ${x.expectedCause})`} ${f(answer.time - x.requestedAtMs, 0)} ms after the request (twinframectl's start included)` : x.ok ? 'NO failover' : '';
    console.log(`  #${String(x.i).padEnd(3)} ${f(x.atS, 0).padStart(6)} s  ${x.kind.padEnd(11)} path ${x.path}  ${x.note}${outcome ? `; ${outcome}` : ''}`);
  }
  const a = r.attribution;
  console.log(`failovers: ${a.injected} caused by an injected fault${a.wrongCause ? ` (${a.wrongCause} with another cause than expected)` : ''}, ${a.false} false`
    + `${a.unanswered.length ? `; faults no failover answered: ${a.unanswered.map((i) => `#${i}`).join(' ')}` : ''}`);
  for (const x of a.failovers.filter((y) => y.fault === undefined)) console.log(`  ! false failover: path ${x.path ?? '?'} ${x.cause ?? '?'} at ${new Date(x.time).toISOString()} (${x.falseReason})`);
  const causes = Object.entries(a.handovers.byCause).map(([c, n]) => `${c} ${n}`).join(', ');
  console.log(`handovers (a late sender relieved, nobody failed; not failures): ${a.handovers.total}${causes ? ` (${causes})` : ''}, ${a.handovers.inFaultWindow} within a fault's window`);
  console.log('');
  console.log(sessionTable(perSession));
  const w = r.wire;
  console.log(`all sessions: received ${w.received}, lost ${w.lost}, duplicated ${w.duplicated}, reordered ${w.reordered}, plays ${w.plays}, stalls ${w.stalls};`
    + ` ${r.failedSessions} failed session(s) of ${expectedSessions}${perSession.length < expectedSessions ? ` (${expectedSessions - perSession.length} without a result)` : ''}`);
  if (w.seqJumps > 0) console.log(`  ! ${w.seqJumps} PLAY(s) whose RTP-Info seq did not go on from the datagrams before: lost/dup around them are suspect`);
  if (w.endFromReport < perSession.length) console.log(`  ! ${perSession.length - w.endFromReport} session(s) without the server's final sender report: a loss at their very end is not counted`);
}

// ─────────────────────────────────────────────────────────────────────────────
// Main

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const durationMs = o.minutes * 60_000;
  const bitsPerSecond = pcrBitrate(readFileSync(o.asset));
  if (!Number.isFinite(bitsPerSecond)) throw new Error(`${o.asset}: no two PCRs to take its bit rate from`);
  const code = codeVersion(ROOT);
  const load0 = loadavg();
  console.log(`twinframe soak bench — ${started.toISOString()}, node ${process.version}, ${cpus().length} CPUs, ${code}, seed ${o.seed}`);
  console.log(`  ${o.sessions} sessions over ${o.receivers} receiver process(es), ${o.minutes} min, a fault every ${o.faultEveryS} s (${o.faults.join(', ')}), `
    + `asset ${o.asset} ${(bitsPerSecond / 1e6).toFixed(2)} Mbit/s; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('soak: interrupted; ending the run and reporting what was measured\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Every child has its own deadline; this ends the bench if something else hangs.
  const boundMs = durationMs + 10 * 60_000;
  setTimeout(() => {
    process.stderr.write(`soak: no end after ${boundMs / 1000} s; stopping everything\n`);
    void stopAllChildren().finally(() => process.exit(2));
  }, boundMs).unref();

  const tmp = await mkdtemp(path.join(tmpdir(), 'tf-soak-'));
  const rss: RssSample[] = [];
  const faults: FaultRecord[] = [];
  let receivers: ReceiverProc[] = [];
  const problems: string[] = [];
  let server: RunningServer | undefined;
  let statusEnd: Status | undefined;
  let soakStartMs = Date.now();
  let playedS = 0;
  try {
    const maxStreams = o.sessions + 10;
    server = await startTwinframe({
      root: ROOT, assetDir: path.dirname(o.asset), assetName: path.basename(o.asset), tmp, maxStreams,
      bandwidthKbps: Math.ceil((maxStreams * bitsPerSecond * 2) / 1000), faultInjection: true, batchWindowUs: undefined,
    });
    const srv = server;
    receivers = await startReceivers(srv, o.sessions, o.receivers, o.asset, o.seed, o.minutes * 60 + 300, () => interrupted);
    process.stderr.write(`soak: ${o.sessions} sessions play; ${o.minutes} min…\n`);

    soakStartMs = Date.now();
    let nextRssMs = 0;
    let nextFaultMs = o.faultEveryS * 1000;
    let lastProgressMs = 0;
    for (;;) {
      const t = Date.now() - soakStartMs;
      if (t >= durationMs || interrupted) break;
      if (srv.child.exit !== undefined) throw new Error(`the server exited (${JSON.stringify(srv.child.exit)})`);
      const gone = receivers.find((r) => r.child.exit !== undefined);
      if (gone) throw new Error(`${gone.child.name} exited (${JSON.stringify(gone.child.exit)})`);
      if (t >= nextRssMs) {
        rss.push({ tS: t / 1000, mib: rssMiB(srv.child.proc.pid) });
        nextRssMs += o.rssEveryS * 1000;
      }
      // A fault only while its whole attribution window still fits in the run.
      if (t >= nextFaultMs) {
        nextFaultMs += o.faultEveryS * 1000;
        if (t + o.faultWindowS * 1000 <= durationMs) {
          const kind = o.faults[faults.length % o.faults.length];
          const x = await injectFault(srv, faults.length, kind, t / 1000, () => interrupted);
          faults.push(x);
          process.stderr.write(`soak: ${f(x.atS, 0)} s fault #${x.i} ${kind} path ${x.path}: ${x.note}\n`);
        }
      }
      if (t - lastProgressMs >= 60_000) {
        lastProgressMs = t;
        process.stderr.write(`soak: ${f(t / 60_000)} min, RSS ${f(rss.at(-1)?.mib ?? Number.NaN)} MiB, ${faults.length} fault(s)\n`);
      }
      await sleep(Math.max(0, Math.min(nextRssMs, nextFaultMs, durationMs) - (Date.now() - soakStartMs)));
    }
    playedS = (Date.now() - soakStartMs) / 1000;
    statusEnd = await status(srv);
  } catch (err) {
    problems.push((err as Error).message);
    playedS = (Date.now() - soakStartMs) / 1000;
  } finally {
    await stopReceivers(receivers);
    if (server) await stopChild(server.child);
  }

  const results = receivers.map((r) => r.messages.find((m) => m.type === 'result') as (ReceiverResult & { type: string }) | undefined);
  results.forEach((x, i) => { if (x === undefined) problems.push(`receiver ${i} gave no result (${JSON.stringify(receivers[i].child.exit ?? 'still running')})`); });
  const perSession = results.flatMap((x) => x?.perSession ?? []);
  const log = server ? readLog(server.logFile) : { failures: [], handovers: [], warnings: {}, other: [] };
  if (server && o.logs !== undefined) {
    mkdirSync(o.logs, { recursive: true });
    cpSync(server.logFile, path.join(o.logs, `soak-${stamp}.log`));
  }
  await rm(tmp, { recursive: true, force: true });

  const sum = (k: keyof PerSession): number => perSession.reduce((a, p) => a + Number(p[k] ?? 0), 0);
  const report: Report = {
    rss: rssTrend(rss.filter((x) => x.tS >= o.rssWarmupS)),
    series: compactSeries(rss, SERIES_POINTS),
    wire: { received: sum('received'), lost: sum('lost'), duplicated: sum('duplicated'), reordered: sum('reordered'), stalls: sum('stalls'), plays: sum('plays'), endFromReport: sum('endFromReport'), seqJumps: sum('seqJumps') },
    failedSessions: perSession.filter(sessionFailed).length + (o.sessions - perSession.length),
    attribution: attributeFailovers(faults, log.failures, log.handovers, o.faultWindowS * 1000),
  };
  printReport(o, report, faults, perSession, o.sessions);
  const statusFailovers = statusEnd?.pairs?.reduce((a, p) => a + (p.failovers ?? 0), 0);
  if (statusFailovers !== undefined && statusFailovers !== log.failures.length) problems.push(`twinframectl status counts ${statusFailovers} failover(s), the log ${log.failures.length}`);
  const receiverErrors = results.flatMap((x) => x?.errors ?? []);
  const socketDrops = results.reduce((a, x) => a + (x?.socketDrops.drops ?? 0), 0);
  if (socketDrops > 0) problems.push(`the receivers' sockets dropped ${socketDrops} datagram(s) (buffer full): counted in 'lost', but the receivers' loss, not the server's`);
  if (log.other.length > 0) problems.push(`server stderr: ${log.other.slice(0, 3).join(' | ')}`);
  for (const p of [...problems, ...receiverErrors.slice(0, 10)]) console.log(`  ! ${p}`);
  const warnings = Object.entries(log.warnings).map(([m, n]) => `${m} ×${n}`).join('; ');
  if (warnings) console.log(`server warnings: ${warnings}`);

  const targets = {
    rssFlat: report.rss.flat === true, noLoss: report.wire.lost === 0, noDuplicates: report.wire.duplicated === 0,
    noFalseFailovers: report.attribution.false === 0, noFailedSessions: report.failedSessions === 0, fullLength: !interrupted && problems.length === 0 && playedS >= o.minutes * 60 - 1,
  };
  const load1 = loadavg();
  console.log('');
  console.log(`targets: RSS flat ${mark(targets.rssFlat)}, 0 lost ${mark(targets.noLoss)}, 0 duplicated ${mark(targets.noDuplicates)}, 0 false failovers ${mark(targets.noFalseFailovers)}, `
    + `0 failed sessions ${mark(targets.noFailedSessions)}; ran ${f(playedS / 60)} of ${o.minutes} min`);
  console.log(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')}`);

  mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, `soak-${stamp}.json`);
  const json = {
    bench: 'soak', startedAt: started.toISOString(), finishedAt: new Date().toISOString(), node: process.version, cpus: cpus().length, code, interrupted,
    options: o, asset: { file: o.asset, bitsPerSecond }, playedS, loadavg: { start: load0, end: load1 }, targets,
    rss: { trend: report.rss, series: report.series, samples: rss }, faults, failovers: report.attribution, wire: report.wire,
    failedSessions: report.failedSessions, perSession, statusEnd, warnings: log.warnings, problems, receiverErrors,
  };
  writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  console.log(`JSON: ${path.relative(process.cwd(), file)}`);
  const missed = Object.values(targets).some((ok) => !ok);
  return interrupted ? 130 : o.strict && missed ? 1 : 0;
}

function mark(ok: boolean): string {
  return ok ? 'ok' : 'MISS';
}

main().then((exitCode) => process.exit(exitCode), (err: Error) => {
  process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
  void stopAllChildren().finally(() => process.exit(1));
});
