// Process-failover benchmark (issue 17): a process pair of real `twinframe`
// processes carries N looping broadcasts of the sample asset to receivers in
// this process; again and again the primary process is SIGKILLed, the standby
// takes over, and a new standby joins the survivor. Side by side, in the same
// run and on the same streams, the sending data path of the current primary is
// crashed (an in-process failover, `twinframectl inject-fault <path> crash`).
//
//   node dist/bench/process-failover/run.js [--kills N] [--sessions 1,20] [--settle-ms 1000] [--watch thread,main] [--hog N] [--rtsp-viewers N] [--tcp-viewers N] [--quick]
//
// --watch: how the standby learns of the primary's death, in turn from one
// standby to the next (so each gets every other kill, under the same
// conditions): 'thread' (its takeover thread on the primary's life lock, the
// default) and 'main' (the main thread's 2 ms /proc poll, TWINFRAME_PAIR_WATCH=main).
// --hog N: N processes spinning at normal priority for the whole run (a CPU
// hog like `stress -c N`), so the machine is loaded.
//
// Per kill (process) and per crash (path), the worst session counts:
//   - first: from the kill (the signal sent) to the first datagram that arrived after it, ms;
//   - gap: the largest inter-arrival gap in [kill − 50 ms, kill + 500 ms], ms
//     (nominal spacing of the sample: ~3.5 ms);
// Totals per session over the whole run: lost and duplicated (RTP sequence
// numbers). RTSP control: --rtsp-viewers N (default 2) RTSP viewers set up a UDP
// session on the sample, play and pause it, and after each takeover send a
// keep-alive (GET_PARAMETER naming their session) on their own first connection;
// one not answered 200 within 3 s lost its RTSP control at that kill.
// RTP on the RTSP connection: --tcp-viewers N (default 1) RTSP viewers get the
// sample interleaved on their connection (RFC 2326 §10.12); each PLAYs it again
// from the start before every kill (a VOD session, not a loop), and after each
// takeover sends its keep-alive on that connection too. Their frames are counted
// like the broadcasts' datagrams (first after the kill, gap, lost, duplicated),
// apart; a frame stream the client cannot parse any more counts as corrupt.
//
// The receivers stamp arrivals in this process's event loop (CLOCK_MONOTONIC,
// the servers' clock too); nothing else runs in it during a measurement window.

import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../../src/admin/client.js';
import type { StatusResult } from '../../src/admin/backend.js';
import { pairRuntimeDir } from '../../src/pair-process/native-pair.js';
import { Flags } from '../flags.js';
import { freePort, nearest16, sleep } from '../lib.js';
import { summarize, type Summary } from '../stats.js';
import { SERVER_NODE_FLAGS } from '../../src/shared/node-flags.js';
import { RtspClient, UdpReceiver } from '../../test/helpers/rtsp-client.js';

const TWINFRAME = fileURLToPath(new URL('../../src/cli/twinframe.js', import.meta.url));
const USAGE = 'usage: node dist/bench/process-failover/run.js [--kills N] [--sessions 1,20] [--settle-ms 1000] [--watch thread,main] [--hog N] [--rtsp-viewers N] [--tcp-viewers N] [--quick]';
/** How long a viewer's keep-alive after a takeover may take to be answered. */
const KEEPALIVE_TIMEOUT_MS = 3000;
type Watch = 'thread' | 'main';
const SECRET = 'the process-failover benchmark pair secret';
/** Measurement window after a kill. */
const WINDOW_BEFORE_MS = 50;
const WINDOW_AFTER_MS = 500;
const READY_TIMEOUT_MS = 30_000;

/** Sequence numbers and arrivals of one session's RTP packets, growing without holding the payloads. */
class Arrivals {
  seqs = new Uint16Array(1 << 16);
  arrivals = new Float64Array(1 << 16);
  count = 0;

  /** An RTP packet arrived now. */
  add(packet: Buffer): void {
    const at = Number(process.hrtime.bigint()) / 1e6;
    if (packet.length < 12) return;
    if (this.count === this.seqs.length) this.grow();
    this.seqs[this.count] = packet.readUInt16BE(2);
    this.arrivals[this.count++] = at;
  }

  private grow(): void {
    const seqs = new Uint16Array(this.seqs.length * 2);
    seqs.set(this.seqs);
    const arrivals = new Float64Array(this.arrivals.length * 2);
    arrivals.set(this.arrivals);
    this.seqs = seqs;
    this.arrivals = arrivals;
  }

  /** Lost and duplicated over the whole run (sequence numbers extended past their wrap). */
  totals(): { received: number; lost: number; duplicated: number } {
    const seen = new Set<number>();
    let max = this.count > 0 ? this.seqs[0] : 0;
    let min = max;
    let duplicated = 0;
    for (let i = 0; i < this.count; i++) {
      const ext = nearest16(this.seqs[i], max);
      if (seen.has(ext)) duplicated++;
      else seen.add(ext);
      if (ext > max) max = ext;
      if (ext < min) min = ext;
    }
    return { received: this.count, lost: this.count === 0 ? 0 : max - min + 1 - seen.size, duplicated };
  }

  /** After `atMs`: how long until the first arrival, and the largest gap around it. */
  around(atMs: number): { firstMs: number; gapMs: number } {
    let firstMs = Number.NaN;
    let gapMs = 0;
    for (let i = 1; i < this.count; i++) {
      const t = this.arrivals[i];
      if (t < atMs - WINDOW_BEFORE_MS) continue;
      if (t > atMs + WINDOW_AFTER_MS) break;
      if (Number.isNaN(firstMs) && t >= atMs) firstMs = t - atMs;
      gapMs = Math.max(gapMs, t - this.arrivals[i - 1]);
    }
    return { firstMs, gapMs };
  }
}

/** A broadcast's receiver: its RTP port and the RTCP port above it. */
class Receiver {
  readonly rtp = new Arrivals();

  private constructor(readonly socket: dgram.Socket, readonly rtcp: dgram.Socket) {
    socket.on('message', (m: Buffer) => this.rtp.add(m));
  }

  static async open(): Promise<Receiver> {
    for (;;) {
      // Linux hands out odd ports for bind(0): take the even one below and the odd one above it.
      const free = await freePort();
      const port = free - (free % 2);
      const bind = (p: number): Promise<dgram.Socket | undefined> => new Promise((resolve) => {
        const s = dgram.createSocket('udp4');
        s.once('error', () => { s.close(); resolve(undefined); });
        s.bind(p, '127.0.0.1', () => resolve(s));
      });
      const rtp = await bind(port);
      const rtcp = rtp && await bind(port + 1);
      if (rtp && rtcp) {
        rtp.setRecvBufferSize(4 * 1024 * 1024);
        return new Receiver(rtp, rtcp);
      }
      rtp?.close();
    }
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): void {
    this.socket.close();
    this.rtcp.close();
  }
}

/** An RTSP viewer with RTP interleaved on its connection (channel 0), playing the sample. */
interface TcpViewer {
  readonly client: RtspClient;
  readonly rtp: Arrivals;
}

async function tcpViewer(rtspPort: number): Promise<TcpViewer> {
  const rtp = new Arrivals();
  const client = await RtspClient.connect({ port: rtspPort, onFrame: (channel, payload) => { if (channel === 0) rtp.add(payload); } });
  try {
    const setup = await client.setup('/sample.ts/track1', 'RTP/AVP/TCP;unicast;interleaved=0-1');
    if (setup.status !== 200) throw new Error(`TCP viewer: SETUP answered ${setup.status}`);
    return { client, rtp };
  } catch (err) {
    await client.release();
    throw err;
  }
}

interface Member {
  readonly name: string;
  readonly child: ChildProcess;
  readonly admin: string;
  output(): string;
}

interface Event {
  readonly kind: 'process' | 'path';
  readonly atMs: number;
  readonly takeoverMs?: number;
  /** A process kill: how the standby that took over learned of it. */
  readonly watch?: Watch;
  /** A process kill: from the takeover's notice to sending switched, as the standby measured it (ms). */
  readonly switchMs?: number;
}

interface ProcessFigures { readonly watch: Watch; readonly first: Summary; readonly gap: Summary; readonly takeover: Summary; readonly switchMs: Summary }

interface LevelResult {
  readonly sessions: number;
  readonly kills: number;
  readonly process: readonly ProcessFigures[];
  readonly path: { readonly first: Summary; readonly gap: Summary };
  readonly lost: number;
  readonly duplicated: number;
  readonly received: number;
  /** Keep-alives after takeovers (viewers × kills) and those not answered 200. */
  readonly rtspControl: { readonly viewers: number; readonly checks: number; readonly lost: number };
  /** RTP on the RTSP connection: the worst viewer per kill, totals, and viewers whose frame stream broke (closed, or not parsed any more). */
  readonly tcp: { readonly viewers: number; readonly first: Summary; readonly gap: Summary; readonly lost: number; readonly duplicated: number; readonly received: number; readonly corrupt: number };
  /** Standbys that did not start (and were started again), with why. */
  readonly failedStarts: readonly string[];
}

async function status(member: Member): Promise<StatusResult> {
  const client = await AdminClient.connect(member.admin, { timeoutMs: 5000 });
  try {
    return await client.request('status', {});
  } finally {
    client.close();
  }
}

async function until(member: Member, done: (s: StatusResult) => boolean, what: string): Promise<StatusResult> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const s = await status(member).catch(() => undefined);
    if (s && done(s)) return s;
    if (Date.now() > deadline) throw new Error(`${member.name}: ${what} not reached: ${JSON.stringify(s?.processPair)}\n${member.output().slice(-2000)}`);
    await sleep(50);
  }
}

/** An RTSP viewer of the sample over UDP, played and paused: its session lives on without traffic. */
async function pausedViewer(rtspPort: number): Promise<{ client: RtspClient; receiver: UdpReceiver }> {
  const client = await RtspClient.connect({ port: rtspPort });
  const receiver = await UdpReceiver.open();
  const expect = (what: string, status: number): void => {
    if (status !== 200) throw new Error(`RTSP viewer: ${what} answered ${status}`);
  };
  try {
    expect('DESCRIBE', (await client.describe('/sample.ts')).status);
    expect('SETUP', (await client.setup('/sample.ts/track1', receiver.transportHeader())).status);
    expect('PLAY', (await client.play('/sample.ts')).status);
    expect('PAUSE', (await client.pause('/sample.ts')).status);
    return { client, receiver };
  } catch (err) {
    await client.release();
    await receiver.close();
    throw err;
  }
}

async function runLevel(sessions: number, kills: number, settleMs: number, watches: readonly Watch[], rtspViewers: number, tcpViewers: number): Promise<LevelResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-pfo-'));
  const children: ChildProcess[] = [];
  const receivers: Receiver[] = [];
  const viewers: Array<{ client: RtspClient; receiver: UdpReceiver }> = [];
  const tcp: TcpViewer[] = [];
  try {
    for (let i = 0; i < sessions; i++) receivers.push(await Receiver.open());
    const rtspPort = await freePort();
    const link = path.join(dir, 'link.sock');
    const start = async (role: 'primary' | 'standby', name: string, watch: Watch = 'thread'): Promise<Member> => {
      const configPath = path.join(dir, `${name}.json`);
      const admin = path.join(dir, `${name}.sock`);
      await writeFile(configPath, JSON.stringify({
        rtsp: { port: rtspPort },
        media: { cacheDir: path.join(dir, `${name}-cache`) },
        admin: { socketPath: admin, faultInjection: true },
        metrics: { listen: '' },
        log: { level: 'warn', format: 'json' },
        pair: { role, link, secret: SECRET },
        ...(role === 'primary' ? { broadcasts: receivers.map((r, i) => ({ name: `b${i}`, asset: '/sample.ts', to: `127.0.0.1:${r.port}`, loop: true })) } : {}),
      }));
      const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, TWINFRAME, '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TWINFRAME_PAIR_WATCH: watch } });
      children.push(child);
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { out = (out + c.toString()).slice(-100_000); });
      return { name, child, admin, output: () => out };
    };
    /** A new standby, following; one that fails to start (it happens on a loaded machine) is counted and started again. */
    const startFollowing = async (name: string, watch: Watch): Promise<Member> => {
      for (let attempt = 1; ; attempt++) {
        const member = await start('standby', attempt === 1 ? name : `${name}-${attempt}`, watch);
        try {
          await until(member, (s) => s.processPair?.state === 'Secondary' && s.sessions === sessions + rtspViewers + tcpViewers, 'following');
          return member;
        } catch (err) {
          member.child.kill('SIGKILL');
          failedStarts.push((err as Error).message.split('\n').slice(0, 3).join(' | '));
          process.stderr.write(`  a standby failed to start: ${failedStarts.at(-1)}\n`);
          if (attempt === 3) throw err;
        }
      }
    };
    const failedStarts: string[] = [];
    let primary = await start('primary', 'p0');
    await until(primary, (s) => s.sessions === sessions, 'every broadcast open');
    for (let i = 0; i < rtspViewers; i++) viewers.push(await pausedViewer(rtspPort));
    for (let i = 0; i < tcpViewers; i++) tcp.push(await tcpViewer(rtspPort));
    const rtspControl = { viewers: rtspViewers + tcpViewers, checks: 0, lost: 0 };
    let standby = await startFollowing('s1', watches[0]);
    const events: Event[] = [];
    for (let k = 0; k < kills; k++) {
      // The 12 s sample from its start again: streaming at the crash and at the kill.
      for (const v of tcp) {
        const play = v.client.closed ? undefined : await v.client.play('/sample.ts', 'npt=0-').catch(() => undefined);
        if (play?.status !== 200) throw new Error(`TCP viewer: PLAY before kill ${k + 1} answered ${play?.status ?? 'nothing'}`);
      }
      await sleep(settleMs);
      // In process: crash the primary's sending path; its twin takes over.
      const before = await status(primary);
      const sending = before.active;
      if (sending !== null) {
        const atMs = Number(process.hrtime.bigint()) / 1e6;
        const client = await AdminClient.connect(primary.admin, { timeoutMs: 5000 });
        try {
          await client.request('inject_fault', { path: sending, kind: 'crash', pair: 0 });
        } finally {
          client.close();
        }
        events.push({ kind: 'path', atMs });
        await sleep(settleMs);
        await until(primary, (s) => s.pairs[0].failovers > before.pairs[0].failovers && s.active !== null && Object.values(s.paths).every((p) => p.namedState.startsWith('Primary') || p.namedState === 'Secondary'), 'protected again');
      }
      // The whole process: SIGKILL the primary; the standby takes over.
      const atMs = Number(process.hrtime.bigint()) / 1e6;
      const killedAt = Date.now();
      primary.child.kill('SIGKILL');
      await sleep(WINDOW_AFTER_MS);
      const took = await until(standby, (s) => s.processPair?.state === 'Secondary_No_Primary', 'took over');
      const takeover = took.processPair!.takeover!;
      events.push({ kind: 'process', atMs, takeoverMs: Date.parse(takeover.at) - killedAt, watch: watches[k % watches.length], switchMs: takeover.switchMs });
      for (const v of [...viewers, ...tcp]) {
        rtspControl.checks++;
        const answer = v.client.closed ? undefined : await v.client.getParameter('/sample.ts', undefined, { timeoutMs: KEEPALIVE_TIMEOUT_MS }).catch(() => undefined);
        if (answer?.status !== 200) rtspControl.lost++;
      }
      const next = await startFollowing(`s${k + 2}`, watches[(k + 1) % watches.length]);
      primary = standby;
      standby = next;
      process.stderr.write(`  ${sessions} session(s): kill ${k + 1}/${kills}\n`);
    }
    await sleep(WINDOW_AFTER_MS);
    const worstOf = (arrivals: readonly Arrivals[], e: Event) => arrivals.map((r) => r.around(e.atMs)).reduce((a, b) => ({ firstMs: Math.max(a.firstMs, b.firstMs), gapMs: Math.max(a.gapMs, b.gapMs) }));
    const worst = (e: Event) => worstOf(receivers.map((r) => r.rtp), e);
    const measured = (kind: Event['kind'], watch?: Watch) => events.filter((e) => e.kind === kind && e.watch === watch)
      .map((e) => ({ ...worst(e), takeoverMs: e.takeoverMs ?? Number.NaN, switchMs: e.switchMs ?? Number.NaN }));
    const processFigures = (watch: Watch): ProcessFigures => {
      const proc = measured('process', watch);
      return { watch, first: summarize(proc.map((m) => m.firstMs)), gap: summarize(proc.map((m) => m.gapMs)), takeover: summarize(proc.map((m) => m.takeoverMs)), switchMs: summarize(proc.map((m) => m.switchMs)) };
    };
    const paths = measured('path');
    const totals = receivers.map((r) => r.rtp.totals());
    const tcpKills = tcp.length === 0 ? [] : events.filter((e) => e.kind === 'process').map((e) => worstOf(tcp.map((v) => v.rtp), e));
    const tcpTotals = tcp.map((v) => v.rtp.totals());
    return {
      sessions, kills,
      process: [...new Set(watches)].map(processFigures),
      path: { first: summarize(paths.map((m) => m.firstMs)), gap: summarize(paths.map((m) => m.gapMs)) },
      lost: totals.reduce((a, t) => a + t.lost, 0),
      duplicated: totals.reduce((a, t) => a + t.duplicated, 0),
      received: totals.reduce((a, t) => a + t.received, 0),
      failedStarts,
      rtspControl,
      tcp: {
        viewers: tcp.length, first: summarize(tcpKills.map((m) => m.firstMs)), gap: summarize(tcpKills.map((m) => m.gapMs)),
        lost: tcpTotals.reduce((a, t) => a + t.lost, 0), duplicated: tcpTotals.reduce((a, t) => a + t.duplicated, 0),
        received: tcpTotals.reduce((a, t) => a + t.received, 0), corrupt: tcp.filter((v) => v.client.closed).length,
      },
    };
  } finally {
    for (const v of viewers) {
      await v.client.release();
      await v.receiver.close();
    }
    for (const v of tcp) await v.client.release();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())));
    for (const r of receivers) r.close();
    const shm = pairRuntimeDir();
    const pids = children.map((c) => `-${c.pid}-`);
    for (const file of await readdir(shm)) if (pids.some((p) => file.includes(p))) await rm(path.join(shm, file), { force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

/** Processes that spin at normal priority until killed or orphaned (a CPU hog, like `stress -c N`). */
function startHogs(count: number): ChildProcess[] {
  const spin = `const parent = ${process.pid}; for (let i = 1; ; i++) if (i % 1e8 === 0 && process.ppid !== parent) process.exit(0);`;
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', spin], { stdio: 'ignore' }));
}

function row(label: string, s: Summary): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  return `| ${label} | ${s.n} | ${f(s.p50)} | ${f(s.p99)} | ${f(s.max)} |`;
}

async function main(): Promise<void> {
  const flags = Flags.parse(process.argv.slice(2), { kills: 'string', sessions: 'string', 'settle-ms': 'string', watch: 'string', hog: 'string', 'rtsp-viewers': 'string', 'tcp-viewers': 'string', quick: 'boolean' }, USAGE);
  const viewerCount = (name: string, fallback: number): number => {
    const n = flags.number(name) ?? fallback;
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: a whole number, 0 or more\n${USAGE}`);
    return n;
  };
  const rtspViewers = viewerCount('rtsp-viewers', 2);
  const tcpViewers = viewerCount('tcp-viewers', 1);
  const quick = flags.has('quick');
  const kills = flags.number('kills', { positive: true }) ?? (quick ? 5 : 100);
  const levels = (flags.list('sessions') ?? ['1', '20']).map(Number);
  const settleMs = flags.number('settle-ms', { positive: true }) ?? 1000;
  const watches = (flags.list('watch') ?? ['thread', 'main']).map((w) => {
    if (w !== 'thread' && w !== 'main') throw new Error(`--watch: thread or main, not ${w}\n${USAGE}`);
    return w;
  });
  const hogs = startHogs(flags.number('hog', { positive: true }) ?? 0);
  const results: LevelResult[] = [];
  const startedAt = new Date().toISOString();
  const load: number[] = [];
  const loadTimer = setInterval(() => load.push(loadavg()[0]), 10_000);
  try {
    for (const sessions of levels) results.push(await runLevel(sessions, kills, settleMs, watches, rtspViewers, tcpViewers));
  } finally {
    clearInterval(loadTimer);
    for (const hog of hogs) hog.kill('SIGKILL');
  }
  const loadRange = load.length > 0 ? `${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}` : loadavg()[0].toFixed(1);
  console.log(`process-failover: ${kills} SIGKILLs of the primary process and ${kills} crashes of its sending path per level, watches ${watches.join(',')} in turn, ${hogs.length} CPU hog(s); load average (1 min) ${loadRange} over the run`);
  for (const r of results) {
    const control = r.rtspControl;
    console.log(`\n${r.sessions} session(s): received ${r.received}, lost ${r.lost}, duplicated ${r.duplicated}; RTSP control: ${control.lost} of ${control.checks} keep-alives after a takeover not answered (${control.viewers} viewer(s)); standbys that failed to start (started again): ${r.failedStarts.length}`);
    for (const f of r.failedStarts) console.log(`  failed start: ${f}`);
    console.log('| worst session, ms | n | p50 | p99 | max |\n|---|---|---|---|---|');
    for (const p of r.process) {
      console.log(row(`process kill (${p.watch} watch) → first datagram after it`, p.first));
      console.log(row(`process kill (${p.watch} watch): largest gap`, p.gap));
      console.log(row(`process kill (${p.watch} watch) → takeover (wall clock)`, p.takeover));
      console.log(row(`process kill (${p.watch} watch): notice → switched (standby's figure)`, p.switchMs));
    }
    console.log(row('path crash → first datagram after it', r.path.first));
    console.log(row('path crash: largest gap', r.path.gap));
    if (r.tcp.viewers > 0) {
      const c = r.tcp;
      console.log(`RTP on the RTSP connection, ${c.viewers} viewer(s): received ${c.received}, lost ${c.lost}, duplicated ${c.duplicated}, frame streams broken ${c.corrupt}`);
      console.log(row('process kill → first interleaved frame after it (any watch)', c.first));
      console.log(row('process kill: largest gap between interleaved frames', c.gap));
    }
  }
  const resultsDir = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
  await mkdir(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `process-failover-${startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ startedAt, kills, settleMs, watches, hogs: hogs.length, load, levels: results }, null, 2));
  console.log(`\nresults: ${file}`);
}

main().then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`process-failover: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
