// Entry of the supervisor thread — the patent's kernel. One supervisor watches
// every pair of data paths (one control block per pair). It sleeps on the
// pairs' doorbells (any one wakes it) and checks each path of each pair: a
// critical-failure word written by a dying path (immediate: the dying path
// rings its pair's doorbell), and a path that makes no
// progress on work that is due (a hang). On a failure it switches ACTIVE
// itself, then tells the control plane, which terminates and respawns the
// failed worker. Imported by nothing: src/supervisor/index.ts spawns it.
//
// Liveness is judged only against due work: each path publishes when it next
// owes work (its next datagram deadline, or a command waiting in its queue). A
// path asleep until then is not silent, so with nothing due the supervisor
// sleeps until its doorbell rings, and while work is due it looks every half
// failure window (period × max missed / 2).
//
// A late path is not a dead one: on a shared machine even a SCHED_FIFO thread
// now and then runs milliseconds late, and a late sender is handed over from by
// its standby (see data-path.ts) without anyone failing. A path is failed here
// only on evidence that it cannot recover: its due work has made no progress for
// the failure window (period × max missed), and since then it ran on a CPU (its
// thread CPU clock moved) for HANG_CPU_MS, still without progress — a hang —, or it made no progress for
// STARVED_LIMIT_MS at all (blocked in a system call).

import { parentPort, workerData } from 'node:worker_threads';
import { ControlBlock } from '../shared/control-block.js';
import { FailureCause, PATH_COUNT, type PathId } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import type { FailureReport, StallEvidence, SupervisorToMain, SupervisorWorkerData } from '../shared/messages.js';
import { failPath } from './fail-path.js';
import { readThreadCpuNs } from './thread-cpu.js';
import { SUPERVISOR_PRIORITY, currentThreadId, demoteThread, nameThread, raiseThreadPriority, relaxThreadPriority } from '../shared/thread-priority.js';

interface Watch {
  incarnation: number;
  lastBeat: number;
  /** When the supervisor last saw the heartbeat move. */
  progressAtMs: number;
  /** When the stall was first seen (NaN: no stall), and the stalled thread's CPU time then. */
  stallSeenAtMs: number;
  stallCpuNs: number | undefined;
}

/** A path with due work and no progress for this long is failed even if it did not run (blocked in a system call). */
const STARVED_LIMIT_MS = 1000;
/**
 * CPU time a path must burn without progress on due work to be failed as hung,
 * however short the failure window. A healthy V8 thread stops now and then for
 * its own work — major GCs of worker heaps took up to 20 ms here, on a worker
 * just started — and a hang is forever: waiting longer only delays the
 * restart. Sending does not wait for it: the standby hands over from a late
 * sender one period after the datagram it misses.
 */
const HANG_CPU_MS = 40;
/** With nothing due anywhere the supervisor still looks this often (a bound, not a beat). */
const IDLE_WAKE_MS = 1000;

/** One pair as the supervisor watches it: its control block and what it saw of each path. */
interface WatchedPair {
  readonly index: number;
  readonly cb: ControlBlock;
  readonly watches: Watch[];
}

const data = workerData as SupervisorWorkerData;
const pairs: WatchedPair[] = data.controlBlocks.map((sab, index) => ({
  index,
  cb: ControlBlock.attach(sab, data.maxSessions),
  watches: Array.from({ length: PATH_COUNT }, () => ({
    incarnation: 0, lastBeat: 0, progressAtMs: 0, stallSeenAtMs: Number.NaN, stallCpuNs: undefined,
  })),
}));

function report(pair: WatchedPair, r: FailureReport | undefined): void {
  if (!r) return;
  const msg: SupervisorToMain = { type: 'path-failed', pair: pair.index, report: r };
  parentPort?.postMessage(msg);
}

/** Judge one path of a pair; true while it owes work (the supervisor must look again soon). */
function check(pair: WatchedPair, path: PathId, now: number, periodMs: number, maxMissed: number): boolean {
  const { cb } = pair;
  const incarnation = cb.incarnation(path);
  if (incarnation === 0 || cb.failureClaimed(path)) return false;
  const critical = cb.critical(path);
  if (critical) {
    report(pair, failPath(cb, path, incarnation, critical.cause, critical.atMs));
    return false;
  }
  const w = pair.watches[path];
  if (!cb.isOnline(path)) {
    w.incarnation = 0; // not judged until it has synchronized
    return false;
  }
  const beat = cb.heartbeat(path);
  if (w.incarnation !== incarnation || beat !== w.lastBeat) {
    Object.assign(w, { incarnation, lastBeat: beat, progressAtMs: now, stallSeenAtMs: Number.NaN });
  }
  const dueAt = Math.min(cb.nextDueMs(path), cb.commandsOwedSinceMs(path));
  if (dueAt === Number.POSITIVE_INFINITY) return false;
  const stalledMs = now - Math.max(dueAt, w.progressAtMs);
  // Suspect once stalled for the failure window; from then on its CPU time is the evidence.
  if (stalledMs < periodMs * maxMissed) {
    w.stallSeenAtMs = Number.NaN;
    return true;
  }
  const tid = cb.threadId(path);
  if (Number.isNaN(w.stallSeenAtMs)) {
    w.stallSeenAtMs = now;
    w.stallCpuNs = readThreadCpuNs(tid);
    return true;
  }
  const cpuNs = readThreadCpuNs(tid);
  const observedMs = now - w.stallSeenAtMs;
  const cpuMs = cpuNs === undefined || w.stallCpuNs === undefined ? undefined : (cpuNs - w.stallCpuNs) / 1e6;
  // Without CPU figures, the plain rule: no progress for as long as a hang would burn.
  const hung = cpuMs === undefined ? observedMs >= HANG_CPU_MS : cpuMs >= HANG_CPU_MS;
  if (hung || stalledMs >= STARVED_LIMIT_MS) {
    failStalledPath(pair, path, incarnation, Math.max(dueAt, w.progressAtMs), { stalledMs, observedMs, cpuMs });
  }
  return true;
}

/**
 * Fail a hung path. Switch first, then fence its CPU: a path spinning under
 * SCHED_FIFO would otherwise keep a core from its twin until the control plane
 * terminates it.
 */
function failStalledPath(pair: WatchedPair, path: PathId, incarnation: number, stalledSinceMs: number, stall: StallEvidence): void {
  const r = failPath(pair.cb, path, incarnation, FailureCause.HEARTBEAT, stalledSinceMs, stall);
  if (r) demoteThread(pair.cb.threadId(path));
  report(pair, r);
}

nameThread('tf-supervisor');
const priority = raiseThreadPriority(SUPERVISOR_PRIORITY);
const realtime = priority.policy === 'fifo';
const threadId = currentThreadId();
/** Given up while nothing is due anywhere (relaxThreadPriority), taken back once work is due. */
let relaxed = false;
const booted: SupervisorToMain = { type: 'booted', policy: priority.policy, priorityError: priority.error };
parentPort?.postMessage(booted);

/**
 * Look at every pair, then sleep until any pair's doorbell rings or the
 * shortest wait any pair asks for is over. The pairs share the heartbeat
 * settings (the engine sets them on every control block), but each is read
 * from its own block. The doorbells are read before the pairs are judged, so a
 * ring during the look wakes the wait at once.
 */
async function watchPairs(): Promise<void> {
  while (pairs.some((p) => !p.cb.isShutdown())) {
    const bells = pairs.map((p) => p.cb.supervisorDoorbell());
    const now = monoNowMs();
    let waitMs = IDLE_WAKE_MS;
    let owedAnywhere = false;
    for (const pair of pairs) {
      if (pair.cb.isShutdown()) continue;
      const { periodUs, maxMissed } = pair.cb.heartbeatSettings();
      const periodMs = periodUs / 1000;
      let owed = false;
      for (let path = 0 as PathId; path < PATH_COUNT; path = (path + 1) as PathId) {
        if (check(pair, path, now, periodMs, maxMissed)) owed = true;
      }
      if (owed) waitMs = Math.min(waitMs, (periodMs * maxMissed) / 2);
      owedAnywhere ||= owed;
    }
    if (realtime && owedAnywhere === relaxed) {
      if (relaxed) raiseThreadPriority(SUPERVISOR_PRIORITY);
      else relaxThreadPriority(threadId);
      relaxed = !relaxed;
    }
    await waitAnyDoorbell(bells, waitMs);
  }
}

/**
 * Until any pair's doorbell moves from what was read, or `waitMs`. The timer
 * also keeps the thread's event loop alive: a pending Atomics.waitAsync does
 * not, and the thread would end at its first wait.
 */
async function waitAnyDoorbell(bells: readonly number[], waitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); });
  try {
    await Promise.race([timeout, ...pairs.map((p, i) => p.cb.waitSupervisorDoorbellAsync(bells[i], waitMs))]);
  } finally {
    clearTimeout(timer);
  }
}

void watchPairs();
