// The capacity bench's processes: the two servers under test (the built
// twinframe CLI with a temp config, and the GStreamer peer script), the
// receivers, and what /proc says about them. Every child is registered so that
// any exit path can stop it, and gets `setpriv --pdeathsig` where that exists so
// that it dies with the bench.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freeUdpPortRange } from '../../test/helpers/port-range.js';
import { freePort, sleep } from '../lib.js';
import { SERVER_NODE_FLAGS } from '../../src/shared/node-flags.js';

const execFileP = promisify(execFile);
const READY_MS = 30_000;
const STOP_GRACE_MS = 15_000;
const CTL_TIMEOUT_MS = 20_000;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const HAVE_SETPRIV = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

const children = new Set<Child>();

/** Spawns `command args…` (through setpriv --pdeathsig TERM when it exists). */
export function startChild(name: string, command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; stdio: Array<'ignore' | 'pipe' | 'inherit' | number> }): Child {
  const proc = HAVE_SETPRIV ? spawn('setpriv', ['--pdeathsig', 'TERM', command, ...args], options) : spawn(command, [...args], options);
  let resolveExit!: () => void;
  const child: Child = { name, proc, exit: undefined, exited: new Promise((resolve) => { resolveExit = resolve; }) };
  const ended = (code: number | null, signal: NodeJS.Signals | null): void => {
    child.exit ??= { code, signal };
    children.delete(child);
    resolveExit();
  };
  proc.on('exit', ended);
  proc.on('error', (err) => {
    process.stderr.write(`capacity: ${name}: ${err.message}\n`);
    ended(-1, null);
  });
  children.add(child);
  return child;
}

/** SIGTERM, then SIGKILL after the grace. */
export async function stopChild(c: Child, graceMs = STOP_GRACE_MS): Promise<void> {
  if (c.exit !== undefined) return;
  c.proc.kill('SIGTERM');
  if (!(await Promise.race([c.exited.then(() => true), sleep(graceMs).then(() => false)]))) {
    c.proc.kill('SIGKILL');
    await Promise.race([c.exited, sleep(5000)]);
  }
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, 2000)));
}

/** utime + stime of the whole process (every thread, live or ended), seconds, from /proc/<pid>/stat; NaN once it is gone. */
export function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is stat field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS of `pid`, MiB (NaN once it is gone). */
export function rssMiB(pid: number | undefined): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}

// ─────────────────────────────────────────────────────────────────────────────
// The servers

export type ServerName = 'twinframe' | 'gstreamer';
/** How the media reaches the receivers: RTP/UDP datagrams, or RTP frames interleaved on the RTSP connection. */
export type Transport = 'udp' | 'tcp';
export const TRANSPORTS: readonly Transport[] = ['udp', 'tcp'];

export interface RunningServer {
  readonly name: ServerName;
  readonly child: Child;
  /** The asset's RTSP URL. */
  readonly url: string;
  readonly logFile: string;
  /** twinframe only: `twinframectl --socket … args…`. */
  ctl?(args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }>;
  /** twinframe only: its GET /metrics URL (a free port of its own, so no phase meets another's listener). */
  readonly metricsUrl?: string;
}

export interface TwinframeSetup {
  readonly root: string;
  readonly assetDir: string;
  readonly assetName: string;
  readonly tmp: string;
  readonly maxStreams: number;
  readonly bandwidthKbps: number;
  readonly faultInjection: boolean;
  /** pacing.batchWindowUs; twinframe's default when undefined. */
  readonly batchWindowUs: number | undefined;
}

/**
 * `node dist/src/cli/twinframe.js` with a config in `tmp`: the asset's dir as the
 * only mount, limits raised so that admission does not cap the bench, a free
 * server port range below the ephemeral one (2 a session), fault injection when asked.
 * Resolves once both paths are up (Primary and Secondary).
 */
export async function startTwinframe(s: TwinframeSetup): Promise<RunningServer> {
  const cli = path.join(s.root, 'dist/src/cli/twinframe.js');
  const ctlJs = path.join(s.root, 'dist/src/cli/twinframectl.js');
  for (const f of [cli, ctlJs]) if (!existsSync(f)) throw new Error(`${f} does not exist: npm run build first`);
  const metricsPort = await freePort();
  const config = {
    media: { mounts: [{ prefix: '', dir: s.assetDir }], cacheDir: path.join(s.tmp, 'cache') },
    metrics: { listen: `127.0.0.1:${metricsPort}` },
    limits: { maxStreams: s.maxStreams, mpegBandwidthKbps: s.bandwidthKbps, serverBandwidthKbps: s.bandwidthKbps },
    // Every receiver is on 127.0.0.1: one address may hold every session of the bench.
    rtsp: { serverPortRange: await freeUdpPortRange(2 * s.maxStreams), maxConnectionsPerAddress: s.maxStreams + 16, maxSessionsPerAddress: s.maxStreams },
    admin: { faultInjection: s.faultInjection },
    ...(s.batchWindowUs === undefined ? {} : { pacing: { batchWindowUs: s.batchWindowUs } }),
  };
  writeFileSync(path.join(s.tmp, 'config.json'), JSON.stringify(config));
  const port = await freePort();
  const socket = path.join(s.tmp, 'admin.sock');
  const logFile = path.join(s.tmp, 'twinframe.log');
  // The server's own environment, without TWINFRAME_* overrides.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TWINFRAME_')));
  const logFd = openSync(logFile, 'w');
  let child: Child;
  try {
    child = startChild('twinframe', process.execPath, [...SERVER_NODE_FLAGS, cli, '--config', path.join(s.tmp, 'config.json'), '--port', String(port), '--admin-socket', socket, '--log-level', 'info'],
      { cwd: s.root, env, stdio: ['ignore', 'ignore', logFd] });
  } finally {
    closeSync(logFd);
  }
  const ctl = async (args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> => {
    try {
      const r = await execFileP(process.execPath, [ctlJs, '--socket', socket, '--timeout', String(CTL_TIMEOUT_MS), ...args], { timeout: CTL_TIMEOUT_MS + 5000 });
      return { ok: true, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr || e.message };
    }
  };
  const server: RunningServer = { name: 'twinframe', child, url: `rtsp://127.0.0.1:${port}/${s.assetName}`, logFile, ctl, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
  const readyBy = Date.now() + READY_MS;
  while (child.exit === undefined && Date.now() < readyBy) {
    await sleep(250);
    const r = await ctl(['--json', 'status']);
    if (!r.ok) continue;
    const states = Object.values((JSON.parse(r.stdout) as { paths?: Record<string, { namedState?: string }> }).paths ?? {}).map((p) => p.namedState).sort();
    if (states.length === 2 && states[0] === 'Primary' && states[1] === 'Secondary') return server;
  }
  await stopChild(child);
  throw new Error(`twinframe not up within ${READY_MS} ms (${child.exit ? `exited ${JSON.stringify(child.exit)}` : 'still starting'}); log: ${tail(logFile)}`);
}

/** The interpreter that has GStreamer's Python bindings, or a message saying what to install. */
export function findPeerPython(root: string, given: string | undefined): { python: string } | { missing: string } {
  const script = path.join(root, 'bench/capacity/gst-peer.py');
  const tried: string[] = [];
  for (const python of given !== undefined ? [given] : ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, [script, '--check'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status === 0) return { python };
    tried.push(`${python}: ${(r.error?.message ?? r.stderr.trim().split('\n').pop()) || `exit ${r.status}`}`);
  }
  return {
    missing: `the GStreamer peer is not available (${tried.join('; ')}). Install it with: apt-get update && apt-get install -y python3-gi `
      + 'gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-bad gstreamer1.0-plugins-good',
  };
}

/** The GStreamer peer on a free port (`nodelay`: TCP_NODELAY on its connections); resolves once it prints 'ready'. */
export async function startPeer(root: string, python: string, asset: string, tmp: string, nodelay: boolean): Promise<RunningServer> {
  const port = await freePort();
  const logFile = path.join(tmp, 'gst-peer.log');
  const logFd = openSync(logFile, 'w');
  let child: Child;
  try {
    child = startChild('gst-peer', python, [path.join(root, 'bench/capacity/gst-peer.py'), String(port), asset, ...(nodelay ? ['--nodelay'] : [])], { stdio: ['ignore', 'pipe', logFd] });
  } finally {
    closeSync(logFd);
  }
  let ready = false;
  child.proc.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('ready')) ready = true; });
  const readyBy = Date.now() + READY_MS;
  while (!ready && child.exit === undefined && Date.now() < readyBy) await sleep(100);
  if (!ready) {
    await stopChild(child);
    throw new Error(`GStreamer peer not up within ${READY_MS} ms (${child.exit ? `exited ${JSON.stringify(child.exit)}` : 'still starting'}); log: ${tail(logFile)}`);
  }
  return { name: 'gstreamer', child, url: `rtsp://127.0.0.1:${port}/capacity`, logFile };
}

/** The last lines of a log, on one line. */
export function tail(file: string, lines = 3): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}
