// What the soak (run.ts) and the restart churn (churn.ts) do to the running
// server: start the receiver processes that play its sessions, read its
// status, and inject a fault into its sending path once the pair is protected.

import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FailureFaultKind } from '../../src/shared/commands.js';
import { startChild, stopChild, type Child, type RunningServer } from '../capacity/servers.js';
import { EXPECTED_CAUSE } from '../failover/model.js';
import { sleep } from '../lib.js';
import type { InjectedFault } from './analysis.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root, from dist/bench/soak/ (compiled) or bench/soak/. */
export const ROOT = path.basename(path.resolve(HERE, '../..')) === 'dist' ? path.resolve(HERE, '../../..') : path.resolve(HERE, '../..');
const RECEIVER = path.resolve(HERE, '../liveness-receiver.js');
/** How long the pair may take to be protected again (Primary and Secondary) before a fault is skipped. */
const PROTECTED_WAIT_MS = 30_000;

// ─────────────────────────────────────────────────────────────────────────────
// Receivers

export interface ReceiverProc {
  readonly child: Child;
  readonly sessions: number;
  readonly messages: Array<{ type: string }>;
}

function startReceiver(i: number, port: number, sessions: number, asset: string, seed: number, deadlineS: number): ReceiverProc {
  const child = startChild(`receiver ${i}`, process.execPath, [RECEIVER, '--port', String(port), '--sessions', String(sessions), '--asset', asset,
    '--seed', String(seed), '--deadline-s', String(deadlineS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const messages: Array<{ type: string }> = [];
  createInterface({ input: child.proc.stdout! }).on('line', (line) => {
    try {
      messages.push(JSON.parse(line) as { type: string });
    } catch {
      process.stderr.write(`soak: receiver ${i}: ${line}\n`);
    }
  });
  return { child, sessions, messages };
}

/**
 * `sessions` sessions of `asset` over `count` receiver processes, each ending by
 * itself after `deadlineS`; resolves once every one plays (throws when one
 * does not within a bound, or `interrupted()`).
 */
export async function startReceivers(server: RunningServer, sessions: number, count: number, asset: string, seed: number, deadlineS: number,
  interrupted: () => boolean = () => false): Promise<ReceiverProc[]> {
  const port = Number(new URL(server.url).port);
  const receivers: ReceiverProc[] = [];
  for (let i = 0; i < count; i++) {
    const share = Math.floor(sessions / count) + (i < sessions % count ? 1 : 0);
    receivers.push(startReceiver(i, port, share, `/${path.basename(asset)}`, seed + i, deadlineS));
  }
  const end = Date.now() + 60_000 + 500 * sessions;
  const settled = (): boolean => receivers.every((r) => r.messages.some((m) => m.type === 'ready') || r.child.exit !== undefined);
  while (!settled() && !interrupted() && Date.now() < end) await sleep(100);
  if (!settled() || receivers.some((r) => r.child.exit !== undefined)) {
    const states = receivers.map((r) => r.child.exit ? `exited ${JSON.stringify(r.child.exit)}` : r.messages.some((m) => m.type === 'ready') ? 'ready' : 'starting');
    await stopReceivers(receivers);
    throw new Error(`receivers not playing (${states.join(', ')})`);
  }
  return receivers;
}

/** Asks each receiver to tear its sessions down and report, waits (bounded), then stops what is left. */
export async function stopReceivers(receivers: readonly ReceiverProc[]): Promise<void> {
  for (const r of receivers) if (r.child.exit === undefined) r.child.proc.stdin!.end('stop\n');
  await Promise.all(receivers.map((r) => Promise.race([r.child.exited, sleep(40_000)])));
  for (const r of receivers) await stopChild(r.child, 1000);
}

// ─────────────────────────────────────────────────────────────────────────────
// The server's status and faults

export interface Status {
  readonly active?: string;
  readonly handovers?: number;
  readonly paths?: Record<string, { namedState?: string; sending?: boolean; restarts?: number }>;
  readonly pairs?: Array<{ failovers?: number; handovers?: number }>;
}

export async function status(server: RunningServer): Promise<Status | undefined> {
  const r = await server.ctl!(['--json', 'status']);
  return r.ok ? (JSON.parse(r.stdout) as Status) : undefined;
}

export function protectedPair(s: Status | undefined): boolean {
  const states = Object.values(s?.paths ?? {}).map((p) => p.namedState).sort();
  return states.length === 2 && states[0] === 'Primary' && states[1] === 'Secondary';
}

/** The path that sends: the status's `active`, else the one marked sending. */
function sendingPath(s: Status | undefined): string | undefined {
  return s?.active ?? Object.entries(s?.paths ?? {}).find(([, p]) => p.sending === true)?.[0];
}

export interface FaultRecord extends InjectedFault {
  /** Seconds since the soak began. */
  readonly atS: number;
  readonly note: string;
}

/** The status once the pair is protected (Primary and Secondary), or the last one seen after PROTECTED_WAIT_MS or when `interrupted()`. */
export async function waitProtected(server: RunningServer, interrupted: () => boolean): Promise<Status | undefined> {
  let s = await status(server);
  const readyBy = Date.now() + PROTECTED_WAIT_MS;
  while (!protectedPair(s) && !interrupted() && Date.now() < readyBy) {
    await sleep(500);
    s = await status(server);
  }
  return s;
}

/** Waits for the pair to be protected (unless `interrupted()`), then injects `kind` into the sending path. */
export async function injectFault(server: RunningServer, i: number, kind: FailureFaultKind, atS: number, interrupted: () => boolean): Promise<FaultRecord> {
  const s = await waitProtected(server, interrupted);
  const target = sendingPath(s);
  const base = { i, kind, expectedCause: EXPECTED_CAUSE[kind], atS };
  if (!protectedPair(s) || target === undefined) {
    return { ...base, path: target ?? '?', requestedAtMs: Date.now(), ok: false, note: `skipped: the pair was not protected within ${PROTECTED_WAIT_MS / 1000} s` };
  }
  const requestedAtMs = Date.now();
  const r = await server.ctl!(['--json', 'inject-fault', target, kind]);
  return { ...base, path: target, requestedAtMs, ok: r.ok, note: r.ok ? 'injected' : `refused: ${r.stderr.trim().split('\n').join(' ')}` };
}
