// The capacity bench's table, memory fit, target lines and TCP-against-UDP
// comparison, from its rows. Tested in test/bench-capacity-analysis.test.ts.

import type { LevelFigures } from './analysis.js';
import { fitLine } from './analysis.js';
import type { LogFailure } from '../server-log.js';
import type { ScrapeFigures } from './scraper.js';
import type { ServerName, Transport } from './servers.js';

/** One trial of one server at one level. */
export interface Trial {
  readonly trial: number;
  figures: LevelFigures | undefined;
  windowS: number;
  /** utime + stime of /proc/<pid>/stat over the window, % of one core. */
  cpuPct: number;
  /** The same from the threads' schedstat (time actually run; see bench/lib.ts cpuSeconds). */
  schedCpuPct: number;
  rssMiB: number;
  receiverCpuPct: number;
  receiverSocketDrops: number;
  /** Datagrams beyond the receivers' preallocated arrays (not analysed). */
  overflow: number;
  receiverErrors: string[];
  problems: string[];
  /** --cold: whether the page cache was dropped before the phase. */
  cacheDropped: boolean | undefined;
  /** --slow-disk (twinframe): the injection's reply, the failures the log shows, the paths at the end. */
  slowDisk: { path: string; reply: string; failures: LogFailure[]; pathsEnd: unknown } | undefined;
  /** --scrape-ms (twinframe, the scraped phase): the scrapes made during the window. */
  scrape: ScrapeFigures | undefined;
}

/** One server over one transport at one level: its trials and their medians. */
export interface Row {
  readonly server: ServerName;
  readonly transport: Transport;
  readonly sessions: number;
  readonly cache: 'warm' | 'cold';
  readonly fault: string;
  readonly trials: Trial[];
  median: LevelFigures | undefined;
  cpuPct: number;
  schedCpuPct: number;
  rssMiB: number;
  receiverCpuPct: number;
  receiverSocketDrops: number;
  held: boolean;
  why: string;
}

function f(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

export function table(rows: readonly Row[]): string {
  const head = ['server', 'transport', 'cache', 'fault', 'sessions', 'trials', 'srv cpu%', 'sched', 'srv MiB', 'gap p50', 'p99 med', 'p99 worst', 'max med', 'max worst',
    'pcr med', 'pcr worst', 'lost', 'dup', 'stalls', 'rcv drop', 'rcv cpu%', 'held'];
  const cells = rows.map((r) => {
    const m = r.median;
    return [
      r.server, r.transport, r.cache, r.fault, String(r.sessions), String(r.trials.length), f(r.cpuPct), f(r.schedCpuPct), f(r.rssMiB, 0),
      f(m?.gapP50Ms.median, 2), f(m?.gapP99Ms.median, 2), f(m?.gapP99Ms.worst, 2), f(m?.gapMaxMs.median), f(m?.gapMaxMs.worst),
      f(m?.pcrSpreadMs.median, 2), f(m?.pcrSpreadMs.worst, 2), f(m?.lost, 0), f(m?.duplicated, 0), f(m?.stalls, 0), f(r.receiverSocketDrops, 0),
      f(r.receiverCpuPct), r.held ? 'yes' : `NO (${r.why})`,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: readonly string[]): string => c.map((x, i) => (i < 4 || i === c.length - 1 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ').trimEnd();
  return [line(head), '─'.repeat(widths.reduce((a, b) => a + b + 2, -2)), ...cells.map(line)].join('\n');
}

export interface MemoryFit {
  readonly server: ServerName;
  readonly transport: Transport;
  readonly baseMiB: number;
  readonly perSessionKiB: number;
  readonly points: Array<{ sessions: number; rssMiB: number }>;
}

/** Per server and transport: RSS ≈ base + per-session × n over the levels measured (median RSS of each level's trials). */
export function memoryFits(rows: readonly Row[], servers: readonly ServerName[], transports: readonly Transport[]): MemoryFit[] {
  return servers.flatMap((server) => transports.map((transport) => {
    const points = rows.filter((r) => r.server === server && r.transport === transport && Number.isFinite(r.rssMiB)).map((r) => ({ sessions: r.sessions, rssMiB: r.rssMiB }));
    const fit = fitLine(points.map((p) => ({ x: p.sessions, y: p.rssMiB })));
    return { server, transport, baseMiB: fit.base, perSessionKiB: fit.perUnit * 1024, points };
  }));
}

/** The largest level a server held over a transport with every level below it held too; `reachedEnd` when it held the last level it ran. */
export function sessionsHeld(rows: readonly Row[], server: ServerName, transport: Transport): { held: number; reachedEnd: boolean } {
  let held = 0;
  const mine = rows.filter((r) => r.server === server && r.transport === transport).sort((a, b) => a.sessions - b.sessions);
  for (const r of mine) {
    if (!r.held) return { held, reachedEnd: false };
    held = r.sessions;
  }
  return { held, reachedEnd: mine.length > 0 };
}

export interface Targets {
  /** At 50 sessions: twinframe's CPU at most half the peer's. */
  readonly cpuAt50: { ok: boolean | undefined; twinframe: number; gstreamer: number };
  /** At 50 sessions: twinframe's worst-session gap p99 no worse than the peer's. */
  readonly gapP99At50: { ok: boolean | undefined; twinframe: number; gstreamer: number };
  /** twinframe holds at least twice the peer's sessions. */
  readonly sessions: { ok: boolean | undefined; twinframe: number; gstreamer: number; note: string };
}

/** Issue 11's targets, twinframe against the peer, over one transport. */
export function targets(allRows: readonly Row[], transport: Transport): Targets {
  const rows = allRows.filter((r) => r.transport === transport);
  const at50 = (server: ServerName): Row | undefined => rows.find((r) => r.server === server && r.sessions === 50);
  const t50 = at50('twinframe');
  const g50 = at50('gstreamer');
  const cpu = { twinframe: t50?.cpuPct ?? Number.NaN, gstreamer: g50?.cpuPct ?? Number.NaN };
  const gap = { twinframe: t50?.median?.gapP99Ms.worst ?? Number.NaN, gstreamer: g50?.median?.gapP99Ms.worst ?? Number.NaN };
  const both = (a: number, b: number): boolean => Number.isFinite(a) && Number.isFinite(b);
  const th = sessionsHeld(rows, 'twinframe', transport);
  const gh = sessionsHeld(rows, 'gstreamer', transport);
  const measured = rows.some((r) => r.server === 'twinframe') && rows.some((r) => r.server === 'gstreamer');
  // A server that held every level it ran was not taken to its limit: its count is a lower bound.
  const note = [th.reachedEnd ? 'twinframe held every level it ran (a lower bound)' : '', gh.reachedEnd ? 'the peer held every level it ran (a lower bound)' : ''].filter(Boolean).join('; ');
  return {
    cpuAt50: { ok: both(cpu.twinframe, cpu.gstreamer) ? cpu.twinframe <= cpu.gstreamer / 2 : undefined, ...cpu },
    gapP99At50: { ok: both(gap.twinframe, gap.gstreamer) ? gap.twinframe <= gap.gstreamer : undefined, ...gap },
    sessions: {
      // Unknown while the peer's limit was not found (or it held no level), or twinframe was not taken far enough to pass.
      ok: !measured || gh.reachedEnd || gh.held === 0 || (th.reachedEnd && th.held < 2 * gh.held) ? undefined : th.held >= 2 * gh.held,
      twinframe: th.held, gstreamer: gh.held, note,
    },
  };
}

/** The target lines of one transport (`label` leads each line when the run had more than one). */
export function targetLines(t: Targets, label = ''): string[] {
  const mark = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? 'ok' : 'MISS');
  return [
    `at 50 sessions, twinframe's CPU at most half the peer's: ${mark(t.cpuAt50.ok)} (${f(t.cpuAt50.twinframe)} % vs ${f(t.cpuAt50.gstreamer)} %)`,
    `at 50 sessions, twinframe's gap p99 (worst session) no worse than the peer's: ${mark(t.gapP99At50.ok)} (${f(t.gapP99At50.twinframe, 2)} vs ${f(t.gapP99At50.gstreamer, 2)} ms)`,
    `twinframe holds at least twice the peer's sessions: ${mark(t.sessions.ok)} (${t.sessions.twinframe} vs ${t.sessions.gstreamer}${t.sessions.note ? `; ${t.sessions.note}` : ''})`,
  ].map((l) => label + l);
}

export function memoryLines(fits: readonly MemoryFit[]): string[] {
  return fits.map((m) => `memory ${m.server} ${m.transport}: RSS ≈ ${f(m.baseMiB)} MiB + ${f(m.perSessionKiB, 0)} KiB × sessions (least squares over ${m.points.length} level(s))`);
}

/** One server at one level over both transports: what carrying the media on the RTSP connection costs. */
export interface TransportCost {
  readonly server: ServerName;
  readonly sessions: number;
  /** Median server CPU, % of one core. */
  readonly cpuPct: { udp: number; tcp: number };
  /** tcp ÷ udp CPU (NaN when either is missing or udp is 0). */
  readonly cpuRatio: number;
  /** Worst session's gap p99 and gap max, ms (medians over the trials). */
  readonly gapP99WorstMs: { udp: number; tcp: number };
  readonly gapMaxWorstMs: { udp: number; tcp: number };
  readonly lost: { udp: number; tcp: number };
  readonly duplicated: { udp: number; tcp: number };
  readonly held: { udp: boolean; tcp: boolean };
}

/** Every server and level that has a row over both transports, in the rows' order. */
export function transportCosts(rows: readonly Row[]): TransportCost[] {
  const out: TransportCost[] = [];
  for (const udp of rows.filter((r) => r.transport === 'udp')) {
    const tcp = rows.find((r) => r.transport === 'tcp' && r.server === udp.server && r.sessions === udp.sessions);
    if (tcp === undefined) continue;
    const both = <T>(f: (r: Row) => T): { udp: T; tcp: T } => ({ udp: f(udp), tcp: f(tcp) });
    out.push({
      server: udp.server, sessions: udp.sessions,
      cpuPct: both((r) => r.cpuPct),
      cpuRatio: udp.cpuPct > 0 ? tcp.cpuPct / udp.cpuPct : Number.NaN,
      gapP99WorstMs: both((r) => r.median?.gapP99Ms.worst ?? Number.NaN),
      gapMaxWorstMs: both((r) => r.median?.gapMaxMs.worst ?? Number.NaN),
      lost: both((r) => r.median?.lost ?? Number.NaN),
      duplicated: both((r) => r.median?.duplicated ?? Number.NaN),
      held: both((r) => r.held),
    });
  }
  return out;
}

export function transportCostLines(costs: readonly TransportCost[]): string[] {
  const yn = (b: boolean): string => (b ? 'yes' : 'NO');
  return costs.map((c) => `${c.server} ${c.sessions} session(s), TCP against UDP: CPU ${f(c.cpuPct.tcp)} % vs ${f(c.cpuPct.udp)} % (× ${f(c.cpuRatio, 2)}), `
    + `gap p99 worst ${f(c.gapP99WorstMs.tcp, 2)} vs ${f(c.gapP99WorstMs.udp, 2)} ms, gap max worst ${f(c.gapMaxWorstMs.tcp)} vs ${f(c.gapMaxWorstMs.udp)} ms, `
    + `lost/dup ${f(c.lost.tcp, 0)}/${f(c.duplicated.tcp, 0)} vs ${f(c.lost.udp, 0)}/${f(c.duplicated.udp, 0)}, held ${yn(c.held.tcp)} vs ${yn(c.held.udp)}`);
}
