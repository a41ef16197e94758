// Entry of the supervisor thread — the patent's kernel. It sleeps on its
// doorbell with a timeout of one heartbeat period and, on every wake, checks
// each path: a critical-failure word written by a dying path (immediate), and
// heartbeats that stopped for period × max_missed (a hang). On a failure it
// switches ACTIVE itself, then tells the control plane, which terminates and
// respawns the failed worker. Imported by nothing: src/supervisor/index.ts spawns it.
//
// Missed heartbeats alone cannot tell a hung path from one the machine did not
// run: on this class of machine (two shared virtual CPUs) even a SCHED_FIFO
// thread now and then wakes milliseconds late. So when the window has passed,
// the supervisor asks the kernel how much CPU the silent thread used since it
// fell silent: a path that ran but did not beat is hung and fails at once; a
// path that did not run is given up to SILENT_LIMIT_MS (well under a frame)
// before it is failed all the same (it may be blocked in a syscall).

import { parentPort, workerData } from 'node:worker_threads';
import { ControlBlock } from '../shared/control-block.js';
import { FailureCause, PATH_COUNT, type PathId } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import { failPath, type FailureReport } from './fail-path.js';
import { readThreadCpuNs } from './thread-cpu.js';
import { SUPERVISOR_PRIORITY, demoteThread, raiseThreadPriority } from '../shared/thread-priority.js';

export interface SupervisorWorkerData {
  readonly controlBlock: SharedArrayBuffer;
  readonly maxSessions: number;
}

interface Watch {
  incarnation: number;
  lastBeat: number;
  lastChangeMs: number;
  /** Until here (warm-up), only silence past SILENT_LIMIT_MS is a failure. */
  monitorFromMs: number;
  /** The silent thread's CPU time when it was first seen late, and when. */
  lateCpuNs: number | undefined;
  lateAtMs: number;
}

/** A silent path that is not even running is failed after this long (or the window, if longer). */
export const SILENT_LIMIT_MS = 10;
/**
 * The only sending path, with no ready twin, is failed for silence only after
 * this long: failing it cannot hand the streams to anyone, so acting on a
 * heuristic would turn a pause (the twins run the same code in lockstep and can
 * pause together, e.g. in GC) into an outage. A real hang is restarted all the same.
 */
export const SOLE_SENDER_SILENT_LIMIT_MS = 200;
/** Share of the silent time spent on the CPU that marks a path as hung rather than starved. */
const BUSY_SHARE = 0.5;

const data = workerData as SupervisorWorkerData;
const cb = ControlBlock.attach(data.controlBlock, data.maxSessions);
const watches: Watch[] = Array.from({ length: PATH_COUNT }, () => ({
  incarnation: 0, lastBeat: 0, lastChangeMs: 0, monitorFromMs: 0, lateCpuNs: undefined, lateAtMs: 0,
}));

function report(r: FailureReport | undefined): void {
  if (r) parentPort?.postMessage({ type: 'path-failed', report: r });
}

function check(path: PathId, now: number, periodMs: number, maxMissed: number, graceMs: number): void {
  const incarnation = cb.incarnation(path);
  if (incarnation === 0 || cb.failureClaimed(path)) return;
  const critical = cb.critical(path);
  if (critical) {
    report(failPath(cb, path, incarnation, critical.cause, critical.atMs));
    return;
  }
  const w = watches[path]!;
  if (!cb.isReady(path)) {
    w.incarnation = 0; // not monitored until it has synchronized
    return;
  }
  const beat = cb.heartbeat(path);
  if (w.incarnation !== incarnation) {
    Object.assign(w, { incarnation, lastBeat: beat, lastChangeMs: now, monitorFromMs: now + graceMs, lateCpuNs: undefined });
    return;
  }
  if (beat !== w.lastBeat) {
    w.lastBeat = beat;
    w.lastChangeMs = now;
    w.lateCpuNs = undefined;
    return;
  }
  const silentMs = now - w.lastChangeMs;
  if (silentMs < periodMs) return;
  // The only sender with no ready twin: failing it would hand the streams to nobody.
  if (ControlBlock.ownerOf(cb.activeWord()) === path && !cb.isReady((1 - path) as PathId)) {
    if (silentMs >= SOLE_SENDER_SILENT_LIMIT_MS) failSilentPath(path, incarnation, w.lastChangeMs);
    return;
  }
  // Warm-up (JIT, first heap growth), or the path is in Node's event loop, where V8
  // runs its GC tasks (a mark-compact takes milliseconds): only silence past the
  // hard limit counts.
  if (now < w.monitorFromMs || cb.inEventLoop(path)) {
    if (silentMs >= SILENT_LIMIT_MS) failSilentPath(path, incarnation, w.lastChangeMs);
    return;
  }
  const tid = cb.threadId(path);
  if (w.lateCpuNs === undefined) {
    w.lateCpuNs = readThreadCpuNs(tid);
    w.lateAtMs = now;
  }
  const windowMs = periodMs * maxMissed;
  if (silentMs < windowMs) return;

  const cpuNs = readThreadCpuNs(tid);
  const observedMs = now - w.lateAtMs;
  // Without CPU figures, fall back to the plain heartbeat rule.
  const hung = cpuNs === undefined || w.lateCpuNs === undefined
    || (observedMs >= periodMs && (cpuNs - w.lateCpuNs) / 1e6 >= observedMs * BUSY_SHARE);
  if (hung || silentMs >= Math.max(SILENT_LIMIT_MS, windowMs)) failSilentPath(path, incarnation, w.lastChangeMs);
}

/**
 * Fail a path for silence. Switch first, then fence its CPU: a path spinning
 * under SCHED_FIFO would otherwise keep a core from its twin until the control
 * plane terminates it.
 */
function failSilentPath(path: PathId, incarnation: number, lastBeatMs: number): void {
  const r = failPath(cb, path, incarnation, FailureCause.HEARTBEAT, lastBeatMs);
  if (r) demoteThread(cb.threadId(path));
  report(r);
}

const priority = raiseThreadPriority(SUPERVISOR_PRIORITY);
parentPort?.postMessage({ type: 'booted', policy: priority.policy, priorityError: priority.error });

let lastWakeMs = monoNowMs();
while (!cb.isShutdown()) {
  const bell = cb.supervisorDoorbell();
  const { periodUs, maxMissed, warmupGraceMs } = cb.heartbeatSettings();
  const periodMs = periodUs / 1000;
  const now = monoNowMs();
  // If this thread itself was descheduled for longer than the detection window,
  // the silence it saw is the machine's, not a path's: start counting afresh.
  if (now - lastWakeMs > periodMs * maxMissed) {
    for (const w of watches) w.lastChangeMs = now;
  }
  lastWakeMs = now;
  for (let path = 0 as PathId; path < PATH_COUNT; path = (path + 1) as PathId) check(path, now, periodMs, maxMissed, warmupGraceMs);
  cb.waitSupervisorDoorbell(bell, periodMs);
}
