// Shared by the benchmarks: sleep and timeouts, a free TCP port, a seeded PRNG, 16-bit sequence
// extension, and the /proc counters they read around a measurement (steal, UDP
// drops). Statistics are in stats.ts, flag parsing in flags.ts.

import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`, or a rejection naming `what` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** A seeded PRNG in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Extend a 16-bit number to the value nearest `ref` (RFC 3550 A.1 style). */
export function nearest16(value16: number, ref: number): number {
  let d = (value16 - ref) & 0xffff;
  if (d >= 0x8000) d -= 0x10000;
  return ref + d;
}

/** CPU time stolen from this (virtual) machine by its host so far, ms (/proc/stat 'steal', USER_HZ = 100/s). */
export function readStealMs(): number {
  try {
    return Number(readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)[8] ?? 0) * 10;
  } catch {
    return Number.NaN;
  }
}

/** The host's UDP counters from /proc/net/snmp (RcvbufErrors, InErrors, …); empty off Linux. */
export function readUdpSnmp(): Record<string, number> {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0].split(/\s+/).slice(1);
    const values = lines[1].split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(names.map((n, i) => [n, values[i]]));
  } catch {
    return {};
  }
}

/** The UDP sockets bound to 127.0.0.1 (/proc/net/udp), by local port: bytes waiting to be read, and the kernel's drop counter (summed over sockets sharing a port). */
export function readLoopbackUdpSockets(): Map<number, { rxQueue: number; drops: number }> {
  const sockets = new Map<number, { rxQueue: number; drops: number }>();
  try {
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      const [addrHex, portHex] = cols[1].split(':');
      if (addrHex !== '0100007F') continue;
      const port = parseInt(portHex, 16);
      const s = sockets.get(port) ?? { rxQueue: 0, drops: 0 };
      s.rxQueue += parseInt(cols[4].split(':')[1], 16);
      s.drops += Number(cols[cols.length - 1]);
      sockets.set(port, s);
    }
  } catch {
    // not Linux: no sockets found
  }
  return sockets;
}

/** The kernel's per-socket drop counters (last column of /proc/net/udp) for local ports on 127.0.0.1. */
export function readSocketDrops(ports: readonly number[]): { drops: number; found: number } {
  const sockets = readLoopbackUdpSockets();
  let drops = 0;
  let found = 0;
  for (const port of ports) {
    const s = sockets.get(port);
    if (s === undefined) continue;
    found++;
    drops += s.drops;
  }
  return { drops, found };
}

/** Scheduling policies of a process's threads (from /proc), to show which ones run SCHED_FIFO. */
export function threadPolicies(pid: number = process.pid): Array<{ tid: number; comm: string; policy: string; rtPriority: number }> {
  const names: Record<number, string> = { 0: 'normal', 1: 'fifo', 2: 'rr', 3: 'batch', 5: 'idle' };
  const out: Array<{ tid: number; comm: string; policy: string; rtPriority: number }> = [];
  const dir = `/proc/${pid}/task`;
  let tids: number[] = [];
  try {
    tids = readdirSync(dir).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return out; // no /proc
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`${dir}/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is stat field 3 (state); rt_priority is field 40, policy field 41.
      out.push({ tid, comm, rtPriority: Number(fields[37]), policy: names[Number(fields[38])] ?? fields[38] });
    } catch {
      // thread gone
    }
  }
  return out;
}

/** A TCP port free on 127.0.0.1 right now (for a server child to listen on). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * CPU time of every live thread of `pid`, seconds; NaN once it is gone. From each
 * thread's schedstat (nanoseconds actually run), not utime + stime: those are
 * sampled at the scheduler tick, and a thread that wakes briefly is charged a
 * whole tick whenever the tick lands while it runs (an idle server measured
 * ~10 % that way against 0.07 % by schedstat in the same window). A thread that
 * exits during the window takes its time with it (the server's threads live as
 * long as it does).
 */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return Number.NaN;
  }
  let ns = 0;
  for (const tid of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e9;
}
