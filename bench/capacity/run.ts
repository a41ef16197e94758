// Capacity benchmark (issue 11): twinframe and the GStreamer RTSP server side by
// side in one invocation, same asset, same receivers, at rising session counts
// until each one's worst-session gap p99 exceeds nominal + 1 ms or it loses a
// datagram. See bench/README.md, section capacity.
//
//   node dist/bench/capacity/run.js [--levels 1,50,100] [--max-sessions N] [--window-s 20] [--trials 3]
//                                   [--transports udp,tcp] [--cold] [--slow-disk] … (--help)
//
// --transports udp,tcp measures each server twice, the media as RTP/UDP
// datagrams and as RTP frames interleaved on the RTSP connection
// (RTP/AVP/TCP;unicast;interleaved=0-1), side by side in the same invocation.
//
// Per level, per trial, per server, per transport: a fresh server process (only that one runs),
// then the receivers (child processes at normal priority, bench/capacity/
// receiver.ts) open their share of the sessions and play them from the start;
// after --warmup-s the measured window (--window-s): the server's CPU from
// /proc/<pid>/stat (utime + stime of the whole process, every thread) and from
// the threads' schedstat (time actually run), its RSS
// sampled every second, and every datagram's arrival, RTP seq and PCR in the
// receivers. Then the receivers analyse, tear down and report, and the server
// is stopped.
//
// Bounded: every wait has a timeout, every child dies with the bench (setpriv
// --pdeathsig), and children and temp dirs are cleaned up on every exit path.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Flags } from '../flags.js';
import { readLog } from '../server-log.js';
import { cpuSeconds, sleep } from '../lib.js';
import { levelHeld, medianOfTrials, summarizeLevel, TS_PACKET_BYTES, type SessionFigures } from './analysis.js';
import { prepareAsset, type CapacityAsset } from './asset.js';
import { memoryFits, memoryLines, table, targetLines, targets, transportCostLines, transportCosts, type Row, type Trial } from './report.js';
import { Scraper } from './scraper.js';
import {
  findPeerPython, processCpuSeconds, tail, rssMiB, startChild, startPeer, startTwinframe, stopAllChildren, stopChild,
  TRANSPORTS, type Child, type RunningServer, type ServerName, type Transport,
} from './servers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, from dist/bench/capacity/ (compiled) or bench/capacity/. */
const ROOT = path.basename(path.resolve(HERE, '../..')) === 'dist' ? path.resolve(HERE, '../../..') : path.resolve(HERE, '../..');
const RECEIVER = path.join(HERE, 'receiver.js');
const TS_PACKETS_PER_DATAGRAM = 7;
const SERVERS: readonly ServerName[] = ['twinframe', 'gstreamer'];

const USAGE = `usage: node dist/bench/capacity/run.js [options]
  --levels LIST        session counts, in order (default 1,50,100,150,… up to --max-sessions)
  --max-sessions N     the last default level (default 1000)
  --window-s S         measured window per phase (default 20)
  --warmup-s S         after every session plays, before the window (default 5)
  --trials N           trials per level and server; the table shows medians (default 3)
  --receivers N        receiver processes the sessions are spread over (default 2)
  --servers LIST       twinframe,gstreamer (default both)
  --transports LIST    udp,tcp: RTP/UDP and/or RTP interleaved on the RTSP connection, each server once per transport (default udp)
  --cold               drop the page cache before every phase (root: /proc/sys/vm/drop_caches)
  --slow-disk          inject the fault kind slow-disk into one twinframe path at the window's start
  --slow-disk-path P   the path it hits: a or b (default a)
  --asset FILE         play this CBR .ts instead of generating one (must outlast set-up + warm-up + window)
  --muxrate BPS        mux rate of the generated asset (default 3500000)
  --python PATH        the interpreter with GStreamer's bindings (default /usr/bin/python3, else python3)
  --peer-nodelay       the peer sets TCP_NODELAY on its RTSP connections (it leaves Nagle on by itself; twinframe sets it)
  --all-levels         run every level even after a server missed one (its later rows still say held NO)
  --quick              levels 1,50, 10 s window, 3 s warm-up, 1 trial, --all-levels
  --batch-window-us N  twinframe's pacing.batchWindowUs (default: its configured default)
  --scrape-ms N        also run every twinframe phase scraped: GET /metrics every N ms during the window
                       (rows 'scrape N ms'), right after the same phase unscraped, to show what metrics cost
  --out DIR            where the JSON goes (default bench/results)`;

interface Options {
  levels: number[];
  windowS: number;
  warmupS: number;
  trials: number;
  receivers: number;
  servers: ServerName[];
  transports: Transport[];
  cold: boolean;
  slowDisk: 'a' | 'b' | undefined;
  asset: string | undefined;
  muxrate: number;
  python: string | undefined;
  /** The peer sets TCP_NODELAY on its connections (gst-peer.py --nodelay). */
  peerNodelay: boolean;
  allLevels: boolean;
  /** twinframe's pacing.batchWindowUs; its default when undefined. */
  batchWindowUs: number | undefined;
  /** --scrape-ms: every twinframe phase is run twice, unscraped and scraped this often. */
  scrapeMs: number | undefined;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const flags = Flags.parse(argv, {
    levels: 'string', 'max-sessions': 'string', 'window-s': 'string', 'warmup-s': 'string', trials: 'string', receivers: 'string', servers: 'string', transports: 'string',
    cold: 'boolean', 'slow-disk': 'boolean', 'slow-disk-path': 'string', asset: 'string', muxrate: 'string', python: 'string', 'all-levels': 'boolean', quick: 'boolean', out: 'string', 'peer-nodelay': 'boolean',
    'batch-window-us': 'string', 'scrape-ms': 'string',
  }, USAGE);
  const quick = flags.has('quick');
  const max = Math.floor(flags.number('max-sessions', { positive: true }) ?? 1000);
  const defaultLevels = quick ? [1, 50] : [1, ...Array.from({ length: Math.floor(max / 50) }, (_, i) => 50 * (i + 1))];
  const levels = (flags.list('levels') ?? defaultLevels.map(String)).map((l) => {
    const n = Number(l);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--levels: '${l}' is not a session count\n${USAGE}`);
    return n;
  });
  const servers = (flags.list('servers') ?? [...SERVERS]).map((s) => {
    if (!SERVERS.includes(s as ServerName)) throw new Error(`--servers: unknown server '${s}'\n${USAGE}`);
    return s as ServerName;
  });
  const transports = [...new Set(flags.list('transports') ?? ['udp'])].map((s) => {
    if (!TRANSPORTS.includes(s as Transport)) throw new Error(`--transports: unknown transport '${s}'\n${USAGE}`);
    return s as Transport;
  });
  const slowPath = flags.string('slow-disk-path') ?? 'a';
  if (slowPath !== 'a' && slowPath !== 'b') throw new Error(`--slow-disk-path must be a or b\n${USAGE}`);
  const asset = flags.string('asset');
  return {
    levels,
    windowS: flags.number('window-s', { positive: true }) ?? (quick ? 10 : 20),
    warmupS: Math.max(0, flags.number('warmup-s') ?? (quick ? 3 : 5)),
    trials: Math.max(1, Math.floor(flags.number('trials', { positive: true }) ?? (quick ? 1 : 3))),
    receivers: Math.max(1, Math.floor(flags.number('receivers', { positive: true }) ?? 2)),
    servers,
    transports,
    cold: flags.has('cold'),
    slowDisk: flags.has('slow-disk') ? slowPath : undefined,
    asset: asset === undefined ? undefined : path.resolve(asset),
    muxrate: Math.floor(flags.number('muxrate', { positive: true }) ?? 3_500_000),
    python: flags.string('python'),
    peerNodelay: flags.has('peer-nodelay'),
    allLevels: flags.has('all-levels') || quick,
    batchWindowUs: flags.number('batch-window-us', { positive: true }),
    scrapeMs: flags.number('scrape-ms', { positive: true }),
    out: path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results')),
  };
}

/** A failure that ends the whole run (not just one phase), with a message for the user. */
class FatalError extends Error {}

let interrupted = false;

function codeVersion(): string {
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

/** sync; echo 3 > /proc/sys/vm/drop_caches. */
function dropPageCache(): boolean {
  spawnSync('sync', { timeout: 60_000 });
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch (err) {
    process.stderr.write(`capacity: cannot drop the page cache (${(err as Error).message}): the phase runs warm\n`);
    return false;
  }
}

interface ReceiverResult {
  readonly sessions: SessionFigures[];
  readonly overflow: number;
  readonly socketDrops: { drops: number; found: number };
  readonly errors: string[];
  readonly errorCount: number;
}

interface ReceiverProc {
  readonly child: Child;
  readonly messages: Array<{ type: string }>;
}

function startReceiver(url: string, transport: Transport, sessions: number, capacity: number, packetMs: number, deadlineS: number, i: number): ReceiverProc {
  const child = startChild(`receiver ${i}`, process.execPath, [RECEIVER, '--url', url, '--transport', transport, '--sessions', String(sessions), '--capacity', String(capacity),
    '--packet-ms', String(packetMs), '--deadline-s', String(deadlineS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const messages: Array<{ type: string }> = [];
  createInterface({ input: child.proc.stdout! }).on('line', (line) => {
    try {
      messages.push(JSON.parse(line) as { type: string });
    } catch {
      process.stderr.write(`capacity: receiver ${i}: ${line}\n`);
    }
  });
  return { child, messages };
}

async function waitUntil(done: () => boolean, boundMs: number): Promise<boolean> {
  const end = Date.now() + boundMs;
  while (!done()) {
    if (Date.now() >= end) return false;
    await sleep(100);
  }
  return true;
}

/** One server, one transport, one level, one trial; `scrapeMs`: twinframe's metrics scraped this often during the window. */
async function runPhase(
  server: ServerName, transport: Transport, sessions: number, trialNo: number, o: Options, asset: CapacityAsset, python: string | undefined, scrapeMs: number | undefined,
): Promise<Trial> {
  const trial: Trial = {
    trial: trialNo, figures: undefined, windowS: 0, cpuPct: Number.NaN, schedCpuPct: Number.NaN, rssMiB: Number.NaN, receiverCpuPct: Number.NaN, receiverSocketDrops: 0,
    overflow: 0, receiverErrors: [], problems: [], cacheDropped: undefined, slowDisk: undefined, scrape: undefined,
  };
  const tmp = await mkdtemp(path.join(tmpdir(), 'tf-capacity-'));
  let srv: RunningServer | undefined;
  const receivers: ReceiverProc[] = [];
  try {
    srv = server === 'twinframe'
      ? await startTwinframe({
        root: ROOT, assetDir: asset.dir, assetName: asset.name, tmp, maxStreams: sessions + 10,
        // Every session's rate twice over, in kbit/s: admission must not cap the bench.
        bandwidthKbps: Math.ceil(((sessions + 10) * asset.bitsPerSecond * 2) / 1000), faultInjection: o.slowDisk !== undefined, batchWindowUs: o.batchWindowUs,
      })
      : await startPeer(ROOT, python!, asset.file, tmp, o.peerNodelay);
    const s = srv;
    if (o.cold) trial.cacheDropped = dropPageCache();

    const packetMs = (TS_PACKET_BYTES * 8 * 1000) / asset.bitsPerSecond;
    const perSecond = asset.bitsPerSecond / (TS_PACKET_BYTES * 8 * TS_PACKETS_PER_DATAGRAM);
    const capacity = Math.ceil(perSecond * o.windowS * 1.5) + 1000;
    const deadlineS = o.windowS + o.warmupS + 120 + sessions;
    const n = Math.min(o.receivers, sessions);
    for (let i = 0; i < n; i++) {
      const share = Math.floor(sessions / n) + (i < sessions % n ? 1 : 0);
      receivers.push(startReceiver(s.url, transport, share, capacity, packetMs, deadlineS, i));
    }
    const ready = await waitUntil(() => receivers.every((r) => r.messages.some((m) => m.type === 'ready') || r.child.exit !== undefined) || interrupted, 60_000 + 300 * sessions);
    const notReady = receivers.filter((r) => !r.messages.some((m) => m.type === 'ready'));
    if (!ready || notReady.length > 0) {
      const why = notReady.map((r) => (r.messages.find((m) => m.type === 'failed') as { error?: string } | undefined)?.error ?? (r.child.exit ? 'exited' : 'not ready in time'));
      throw new Error(`${notReady.length} receiver(s) did not get all their sessions playing: ${[...new Set(why)].join('; ')}`);
    }
    await sleep(o.warmupS * 1000);
    if (s.child.exit !== undefined) throw new Error(`server exited during the warm-up (${JSON.stringify(s.child.exit)})`);

    // The window.
    const pids = receivers.map((r) => r.child.proc.pid);
    const cpu0 = { server: processCpuSeconds(s.child.proc.pid), sched: cpuSeconds(s.child.proc.pid), receivers: pids.map(processCpuSeconds) };
    for (const r of receivers) r.child.proc.stdin!.write('start\n');
    const t0 = performance.now();
    const scraper = scrapeMs !== undefined && s.metricsUrl !== undefined ? new Scraper(s.metricsUrl, scrapeMs) : undefined;
    scraper?.start();
    if (o.slowDisk !== undefined && s.ctl !== undefined) {
      const r = await s.ctl(['inject-fault', o.slowDisk, 'slow-disk']);
      if (!r.ok) {
        throw new FatalError(`twinframe refused the fault kind slow-disk (twinframectl inject-fault ${o.slowDisk} slow-disk): ${r.stderr.trim().split('\n').join(' ')}\n`
          + 'This build has no slow-disk fault kind (src/shared/commands.ts FaultKinds); --slow-disk needs a twinframe that has it.');
      }
      trial.slowDisk = { path: o.slowDisk, reply: r.stdout.trim(), failures: [], pathsEnd: undefined };
    }
    let rss = 0;
    while (performance.now() - t0 < o.windowS * 1000 && !interrupted && s.child.exit === undefined) {
      await sleep(Math.min(1000, o.windowS * 1000 - (performance.now() - t0)));
      rss = Math.max(rss, rssMiB(s.child.proc.pid) || 0);
    }
    trial.windowS = (performance.now() - t0) / 1000;
    const cpu1 = { server: processCpuSeconds(s.child.proc.pid), sched: cpuSeconds(s.child.proc.pid), receivers: pids.map(processCpuSeconds) };
    trial.scrape = await scraper?.stop();
    for (const r of receivers) r.child.proc.stdin!.end('stop\n');
    trial.cpuPct = ((cpu1.server - cpu0.server) / trial.windowS) * 100;
    trial.schedCpuPct = ((cpu1.sched - cpu0.sched) / trial.windowS) * 100;
    trial.rssMiB = rss;
    trial.receiverCpuPct = (cpu1.receivers.reduce((a, c, i) => a + c - cpu0.receivers[i], 0) / trial.windowS) * 100;
    if (s.child.exit !== undefined) trial.problems.push(`server exited during the window (${JSON.stringify(s.child.exit)})`);
    if (interrupted) trial.problems.push('interrupted: window cut short');
    if (trial.slowDisk !== undefined && s.ctl !== undefined) {
      const st = await s.ctl(['--json', 'status']);
      trial.slowDisk.pathsEnd = st.ok ? (JSON.parse(st.stdout) as { paths?: unknown }).paths : `status failed: ${st.stderr.trim()}`;
    }

    await waitUntil(() => receivers.every((r) => r.child.exit !== undefined), 60_000);
    const all: SessionFigures[] = [];
    for (const [i, r] of receivers.entries()) {
      const result = r.messages.find((m) => m.type === 'result') as (ReceiverResult & { type: string }) | undefined;
      if (result === undefined) {
        trial.problems.push(`receiver ${i} gave no result (${JSON.stringify(r.child.exit ?? 'still running')})`);
        continue;
      }
      all.push(...result.sessions);
      trial.overflow += result.overflow;
      trial.receiverSocketDrops += result.socketDrops.drops;
      if (result.errorCount > 0) trial.receiverErrors.push(`receiver ${i}: ${result.errorCount} request error(s): ${result.errors.slice(0, 3).join('; ')}`);
    }
    if (all.length === sessions) trial.figures = summarizeLevel(all);
    else trial.problems.push(`${all.length} of ${sessions} sessions reported`);
    if (trial.overflow > 0) trial.problems.push(`${trial.overflow} datagram(s) beyond the receivers' arrays (not analysed)`);
  } catch (err) {
    if (err instanceof FatalError) throw err;
    trial.problems.push((err as Error).message);
  } finally {
    for (const r of receivers) await stopChild(r.child, 2000);
    if (srv !== undefined) {
      await stopChild(srv.child);
      if (trial.slowDisk !== undefined) trial.slowDisk.failures = readLog(srv.logFile).failures;
      // What the server said about a phase that went wrong.
      if (trial.problems.length > 0) {
        const warnings = Object.entries(readLog(srv.logFile).warnings).map(([msg, n]) => `${msg} ×${n}`);
        trial.problems.push(`server log: ${srv.name === 'twinframe' && warnings.length > 0 ? warnings.join('; ') : tail(srv.logFile)}`);
      }
    }
    await rm(tmp, { recursive: true, force: true });
  }
  return trial;
}

function rowOf(server: ServerName, transport: Transport, sessions: number, trials: Trial[], o: Options, nominalGapMs: number, scrapeMs: number | undefined): Row {
  const med = (f: (t: Trial) => number): number => {
    const v = trials.map(f).filter(Number.isFinite).sort((a, b) => a - b);
    return v.length ? v[Math.ceil(v.length / 2) - 1] : Number.NaN;
  };
  const measured = trials.map((t) => t.figures).filter((x) => x !== undefined);
  const median = measured.length > 0 ? medianOfTrials(measured) : undefined;
  const verdict = median === undefined || measured.length < trials.length ? { held: false, why: 'error' } : levelHeld(median, measured, nominalGapMs);
  return {
    server, transport, sessions, cache: o.cold ? 'cold' : 'warm',
    fault: [server === 'twinframe' && o.slowDisk ? `slow-disk ${o.slowDisk}` : '', scrapeMs !== undefined ? `scrape ${scrapeMs} ms` : ''].filter(Boolean).join(', ') || '-',
    trials, median, cpuPct: med((t) => t.cpuPct), schedCpuPct: med((t) => t.schedCpuPct), rssMiB: med((t) => t.rssMiB), receiverCpuPct: med((t) => t.receiverCpuPct),
    receiverSocketDrops: Math.max(0, ...trials.map((t) => t.receiverSocketDrops)), ...verdict,
  };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  process.on('SIGINT', () => { interrupted = true; process.stderr.write('capacity: interrupted; ending the phase and cleaning up\n'); });
  process.on('SIGTERM', () => { interrupted = true; });

  let python: string | undefined;
  let peerMissing: string | undefined;
  if (o.servers.includes('gstreamer')) {
    const found = findPeerPython(ROOT, o.python);
    if ('python' in found) python = found.python;
    else peerMissing = found.missing;
  }
  const servers = o.servers.filter((s) => s !== 'gstreamer' || python !== undefined);
  if (servers.length === 0) throw new FatalError(`nothing to measure: ${peerMissing ?? 'no server'}`);

  const maxLevel = Math.max(...o.levels);
  // Every session plays from the start when it is set up: the asset must outlast set-up, warm-up and window.
  const neededS = Math.ceil(o.warmupS + o.windowS + 30 + maxLevel / (10 * o.receivers));
  const tmp = await mkdtemp(path.join(tmpdir(), 'tf-capacity-asset-'));
  const load0 = loadavg();
  const rows: Row[] = [];
  let asset: CapacityAsset | undefined;
  try {
    process.stderr.write(`capacity: preparing a ${neededS} s asset…\n`);
    asset = prepareAsset(ROOT, tmp, o.asset, o.muxrate, neededS);
    if (asset.durationS < neededS - 1) throw new FatalError(`${asset.source}: ${asset.durationS.toFixed(1)} s long, the phases need ${neededS} s; give a longer asset or shorter --window-s`);
    const nominalGapMs = (TS_PACKET_BYTES * TS_PACKETS_PER_DATAGRAM * 8 * 1000) / asset.bitsPerSecond;

    console.log(`twinframe capacity bench — ${started.toISOString()}, node ${process.version}, ${cpus().length} CPUs, code ${codeVersion()}`);
    console.log(`  asset ${asset.source}: ${(asset.bitsPerSecond / 1e6).toFixed(3)} Mbit/s, ${asset.durationS.toFixed(1)} s; nominal gap ${nominalGapMs.toFixed(2)} ms, limit gap p99 ${(nominalGapMs + 1).toFixed(2)} ms`);
    console.log(`  servers ${servers.join(', ')}; transports ${o.transports.join(', ')}; levels ${o.levels.join(',')}; ${o.trials} trial(s); warm-up ${o.warmupS} s, window ${o.windowS} s; ${o.receivers} receiver process(es)`
      + `${o.peerNodelay ? '; the peer sets TCP_NODELAY' : ''}${o.cold ? '; page cache dropped before every phase' : ''}${o.slowDisk ? `; slow-disk injected into twinframe path ${o.slowDisk} at every window's start` : ''}`);
    if (peerMissing !== undefined) console.log(`  NOTE: ${peerMissing}; the peer is skipped`);
    console.log(`  load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}`);

    // Every server × transport, in that order within a trial; one leaves the run once it misses a level (unless --all-levels).
    const active = servers.flatMap((server) => o.transports.map((transport) => ({ server, transport })));
    for (const level of o.levels) {
      if (active.length === 0 || interrupted) break;
      // Each server × transport's phases: twinframe's twice with --scrape-ms (unscraped, then scraped), back to back.
      const phases = active.flatMap(({ server, transport }) => (server === 'twinframe' && o.scrapeMs !== undefined ? [undefined, o.scrapeMs] : [undefined])
        .map((scrapeMs) => ({ server, transport, scrapeMs, trials: [] as Trial[] })));
      for (let t = 1; t <= o.trials && !interrupted; t++) {
        for (const phase of phases) {
          if (interrupted) break;
          const what = `${phase.server} ${phase.transport}${phase.scrapeMs !== undefined ? ` (scraped every ${phase.scrapeMs} ms)` : ''}`;
          process.stderr.write(`capacity: ${what} ${level} session(s), trial ${t}/${o.trials}…\n`);
          const trial = await runPhase(phase.server, phase.transport, level, t, o, asset, python, phase.scrapeMs);
          phase.trials.push(trial);
          const fig = trial.figures;
          process.stderr.write(`capacity: ${what} ${level}: cpu ${trial.cpuPct.toFixed(1)} %, gap p99 worst ${fig?.gapP99Ms.worst.toFixed(2) ?? '-'} ms, lost ${fig?.lost ?? '-'}`
            + `${trial.scrape ? `, ${trial.scrape.scrapes} scrapes (p50 ${trial.scrape.p50Ms.toFixed(1)} ms)` : ''}${trial.problems.length ? `; ${trial.problems.join('; ')}` : ''}\n`);
        }
      }
      const missed = new Set<string>();
      for (const phase of phases) {
        const row = rowOf(phase.server, phase.transport, level, phase.trials, o, nominalGapMs, phase.scrapeMs);
        rows.push(row);
        if (!row.held && !o.allLevels && phase.scrapeMs === undefined) missed.add(`${phase.server} ${phase.transport}`);
      }
      for (let k = active.length - 1; k >= 0; k--) if (missed.has(`${active[k].server} ${active[k].transport}`)) active.splice(k, 1);
    }

    const load1 = loadavg();
    // The memory fit and the targets are the unscraped phases' (a scraped row repeats its level).
    const unscraped = rows.filter((r) => r.trials.every((tr) => tr.scrape === undefined));
    const fits = memoryFits(unscraped, servers, o.transports);
    const t = Object.fromEntries(o.transports.map((tr) => [tr, targets(unscraped, tr)]));
    const costs = transportCosts(unscraped);
    console.log('');
    console.log(table(rows));
    console.log('');
    console.log('Medians over the trials. srv cpu%: the server process, 100 = one core (utime+stime of /proc/<pid>/stat; sched: its threads\' schedstat);');
    console.log('srv MiB: its largest RSS. gap (ms): inter-arrival gaps per session, p50 of the median session, p99 and max of the median and the worst');
    console.log('session; pcr (ms): spread of arrival against the stream\'s PCR clock (p99 − p1 per session); lost/dup: RTP seq; stalls: gaps > 100 ms;');
    console.log(`rcv drop: datagrams the receivers' own sockets dropped (counted in lost too). held: gap p99 worst ≤ ${(nominalGapMs + 1).toFixed(2)} ms, no loss.`);
    if (o.transports.includes('tcp')) console.log('transport tcp: RTP interleaved on the RTSP connection; a frame\'s arrival is when the receiver\'s parser has it whole (rcv drop is 0: TCP drops nothing).');
    for (const r of rows) {
      for (const tr of r.trials) {
        const notes = [...tr.problems, ...tr.receiverErrors];
        if (tr.cacheDropped === false) notes.push('page cache NOT dropped');
        if (tr.figures && tr.figures.silentSessions > 0) notes.push(`${tr.figures.silentSessions} session(s) received nothing in the window's last second`);
        if (tr.scrape) {
          notes.push(`scraped ${tr.scrape.scrapes} times every ${tr.scrape.everyMs} ms (${tr.scrape.bytes} bytes, round trip p50 ${tr.scrape.p50Ms.toFixed(1)} ms, max ${tr.scrape.maxMs.toFixed(1)} ms)`
            + `${tr.scrape.failed > 0 ? `; ${tr.scrape.failed} failed: ${tr.scrape.firstError}` : ''}`);
        }
        if (tr.slowDisk) {
          const failed = tr.slowDisk.failures.map((x) => `${x.path ?? '?'} (${x.cause ?? '?'}${x.wasActive ? ', sending' : ''})`);
          notes.push(`slow-disk on path ${tr.slowDisk.path}: ${failed.length ? `failed: ${failed.join(', ')}` : 'no path failed'}; stalls ${tr.figures?.stalls ?? '-'}, lost ${tr.figures?.lost ?? '-'}, gap max ${tr.figures?.gapMaxMs.worst.toFixed(1) ?? '-'} ms`);
        }
        for (const n of notes) console.log(`  ! ${r.server} ${r.transport} ${r.sessions} trial ${tr.trial}: ${n}`);
      }
    }
    console.log('');
    for (const tr of o.transports) for (const l of targetLines(t[tr], o.transports.length > 1 ? `${tr.toUpperCase()}: ` : '')) console.log(l);
    for (const l of memoryLines(fits)) console.log(l);
    if (costs.length > 0) console.log('');
    for (const l of transportCostLines(costs)) console.log(l);
    console.log(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')} (CPU figures need a quiet machine)`);

    mkdirSync(o.out, { recursive: true });
    const file = path.join(o.out, `capacity-${stamp}.json`);
    const json = {
      bench: 'capacity', startedAt: started.toISOString(), finishedAt: new Date().toISOString(), node: process.version, cpus: cpus().length, code: codeVersion(),
      interrupted, options: o, peer: python !== undefined ? { python } : { missing: peerMissing ?? 'not asked for' },
      asset: { source: asset.source, bitsPerSecond: asset.bitsPerSecond, durationS: asset.durationS, nominalGapMs },
      loadavg: { start: load0, end: load1 }, rows, memory: fits, targets: t, transportCosts: costs,
    };
    // NaN, ±Infinity and undefined (a figure or target not measured) are written as null.
    writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => ((typeof v === 'number' && !Number.isFinite(v)) || v === undefined ? null : v), 1));
    console.log(`JSON: ${path.relative(process.cwd(), file)}`);
    return interrupted ? 130 : 0;
  } finally {
    await stopAllChildren();
    await rm(tmp, { recursive: true, force: true });
  }
}

main().then((code) => process.exit(code), async (err: Error) => {
  process.stderr.write(`capacity: ${err instanceof FatalError ? err.message : err.stack ?? err.message}\n`);
  await stopAllChildren();
  process.exit(1);
});
