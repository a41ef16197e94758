// The failover benchmark's report: the header, one table per phase, the overall
// line, and the JSON file (fields and columns as in bench/README.md).

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Summary } from '../stats.js';
import type { FaultMeasure, PhaseSummary } from './analysis.js';
import {
  GAP_AFTER_MS, GAP_BEFORE_MS, TARGET_LATE_P50_MS, TARGET_LATE_P99_MS, YOUNG_VICTIM_MS, type BenchAsset, type Options, type PhaseRun,
} from './model.js';

/** A phase as measured and analysed. */
export interface PhaseResult {
  readonly summary: PhaseSummary;
  readonly faults: FaultMeasure[];
  readonly run: PhaseRun;
}

function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}

function fmtDist(d: Summary, width = 6, digits = 2): string {
  return [d.p50, d.p99, d.max].map((x) => fmt(x, digits).padStart(width)).join(' ');
}

function mark(ok: boolean): string {
  return ok ? 'ok' : 'MISS';
}

export function printPhase(s: PhaseSummary, run: PhaseRun, a: BenchAsset): void {
  const mbit = (a.bitrate / 1e6).toFixed(2);
  const hb = run.heartbeat;
  const t = s.totals;
  console.log('');
  console.log(`── ${s.sessions} session${s.sessions === 1 ? '' : 's'} × ${mbit} Mbit/s — heartbeat ${hb?.periodUs ?? '?'} µs × ${hb?.maxMissed ?? '?'}, ${t.faults} faults, baseline ${((s.baseline.toMs - s.baseline.fromMs) / 1000).toFixed(1)} s (${s.baseline.instants} instants), engine restarts ${t.restarts}`);
  console.log(`   receiver (${run.receiver.kind}): ${run.receiver.policy}${run.receiver.policyError ? ` (${run.receiver.policyError})` : ''}, SO_RCVBUF ${run.receiver.recvBuffer.length ? Math.min(...run.receiver.recvBuffer) : '?'} B; threads of this process under SCHED_FIFO: ${run.enginePolicies.filter((p) => p.policy === 'fifo').length} of ${run.enginePolicies.length}`);
  console.log('   (a) fault → sending moved away (failover switch or handover, whichever came first; ms)   (b) first datagram due at/after the fault: arrival − schedule (ms, worst session)   (c) largest inter-arrival gap in −50…+100 ms (ms, worst session)');
  console.log(`   n faults · fail = not recovered in time · false = false failovers · ho = switched by a handover · uho = unexplained handovers · yng = victim synchronized < ${YOUNG_VICTIM_MS} ms before`);
  const head = `   ${'kind'.padEnd(12)}${'hit'.padEnd(8)}${'n'.padStart(4)}${'fail'.padStart(5)}${'false'.padStart(6)}${'ho'.padStart(4)}${'uho'.padStart(4)}${'yng'.padStart(4)} │ ${'(a) p50    p99    max'.padStart(20)} │ ${'(b) p50    p99    max'.padStart(20)} │ ${'(c) p50    p99    max'.padStart(20)} │ b50<1 b99<33`;
  console.log(head);
  console.log('   ' + '─'.repeat(head.length - 3));
  for (const k of s.kinds) {
    const targets = k.target === 'active' ? `${mark(k.targetLateP50).padEnd(6)}${mark(k.targetLateP99)}` : '(standby)';
    console.log(`   ${k.kind.padEnd(12)}${k.target.padEnd(8)}${String(k.n).padStart(4)}${String(k.failures).padStart(5)}${String(k.falseFailovers).padStart(6)}${String(k.switchedByHandover).padStart(4)}${String(k.unexplainedHandovers).padStart(4)}${String(k.youngVictims).padStart(4)} │ ${fmtDist(k.switchMs)} │ ${fmtDist(k.lateMs)} │ ${fmtDist(k.gapMs)} │ ${targets}`);
  }
  const b = s.baseline;
  console.log(`   ${'baseline'.padEnd(12)}${'no fault'.padEnd(8)}${String(b.instants).padStart(4)}${'-'.padStart(5)}${String(b.failovers).padStart(6)}${'-'.padStart(4)}${String(b.handovers).padStart(4)}${'-'.padStart(4)} │ ${'-'.padStart(20)} │ ${fmtDist(b.lateMs)} │ ${fmtDist(b.gapMs)} │`);
  const split = s.kinds.filter((k) => k.target === 'active' && k.switchMs.n > 0)
    .map((k) => `${k.kind} ${fmt(k.switchYoungMs.p50)}/${fmt(k.switchOlderMs.p50)} (n ${k.switchYoungMs.n}/${k.switchOlderMs.n})`);
  if (split.length) console.log(`   (a) p50 with the victim young / older (synchronized < / ≥ ${YOUNG_VICTIM_MS} ms before the fault): ${split.join(', ')}`);
  console.log(`   datagrams: expected ${t.expected} (session cursors), received ${t.received}; sent by the paths ${t.engineSentByPaths} (${t.extraSends >= 0 ? '+' : ''}${t.extraSends} vs cursors)`);
  console.log(`   lost ${t.lost} (target 0: ${mark(t.lost === 0)})   duplicated ${t.duplicated} (target 0: ${mark(t.duplicated === 0)})   reordered ${t.reordered}   mismatched ${t.mismatched}${t.unplaced ? ` (+${t.unplaced} unplaced)` : ''}${t.inferredRebases ? `   engine clock restarts inferred from RTP timestamps ${t.inferredRebases}` : ''}${t.firstMismatch ? ` [first: ${t.firstMismatch}]` : ''}`);
  console.log(`   false failovers ${t.falseFailovers} (target 0: ${mark(t.falseFailovers === 0)}) [wrong cause ${t.falseBreakdown.wrongCause}, other failovers after a fault ${t.falseBreakdown.extraInFaultWindow} (${t.falseBreakdown.extraWhilePartnerRespawning} before the pair was protected again, ${t.falseBreakdown.extraSwitchedToNobody} leaving no sender), outside any fault ${t.falseBreakdown.strayBetweenFaults}, in the baseline ${t.falseBreakdown.baseline}]   unrecovered faults ${t.failures}   stalled-session restarts ${t.stalls}`);
  const h = t.handovers;
  console.log(`   handovers ${h.events} (engine counted ${h.engineCounted ?? '-'}): explained by a fault ${h.explained}, unexplained ${h.unexplained} (lossless by design; not false failovers) [after a fault ${h.unexplainedBreakdown.afterFault}, outside any fault ${h.unexplainedBreakdown.strayBetweenFaults} (${h.unexplainedBreakdown.beforeBaseline} of them while the sessions started, before the baseline), in the baseline ${h.unexplainedBreakdown.baseline}]`);
  console.log(`   CPU time the hypervisor stole from this VM during the phase: ${fmt(run.stealMs, 0)} ms (/proc/stat steal, both vCPUs)`);
  console.log(`   receiver-side drops (not server loss): Udp RcvbufErrors +${t.kernelRcvbufErrors} (whole host), the receiver sockets' own drop counters ${t.receiverSocketDrops} (${t.receiverSocketsFound}/${run.receiver.recvBuffer.length} sockets read); Udp InErrors +${t.kernelInErrors}, SndbufErrors +${t.kernelSndbufErrors}`);
  for (const d of s.dupDetail.slice(0, 5)) {
    console.log(`   duplicate: session socket ${d.sock} cursor ${d.cursor}, ${d.arrivals.length} copies ${fmt((d.arrivals.at(-1) ?? 0) - d.arrivals[0], 3)} ms apart, ${fmt(d.fromFaultMs ?? Number.NaN)} ms after fault ${d.nearestFault} (${d.faultKind} on the ${d.faultTarget} path)`);
  }
  for (const p of run.problems.slice(0, 8)) console.log(`   ! ${p}`);
  if (run.problems.length > 8) console.log(`   ! … ${run.problems.length - 8} more in the JSON`);
  if (run.replayErrors.length) console.log(`   ! ${run.replayErrors.length} play() errors, first: ${run.replayErrors[0]}`);
}

export function codeVersion(root: string): string {
  // A run from a copy of dist/ (to keep concurrent rebuilds out of a long run) can say what it copied.
  if (process.env.TWINFRAME_BENCH_CODE_VERSION) return process.env.TWINFRAME_BENCH_CODE_VERSION;
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 5000 });
  if (head.status !== 0) return 'unknown (no git)';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8', timeout: 5000 });
  const changed = (dirty.stdout ?? '').split('\n').filter(Boolean).length;
  return `commit ${head.stdout.trim()}${changed ? ` + ${changed} uncommitted change(s) in src/` : ', src/ clean'}`;
}

export function printHeader(o: Options, a: BenchAsset, startedAt: Date, load: number[], code: string): void {
  console.log(`twinframe failover bench — ${startedAt.toISOString()}, node ${process.version}, seed ${o.seed}`);
  console.log(`asset: ${a.source}, ${(a.bitrate / 1e6).toFixed(2)} Mbit/s, ${(a.durationMs / 1000).toFixed(1)} s, ${a.asset.packetCount} TS packets`);
  if (a.note) console.log(`NOTE: ${a.note}`);
  console.log(`faults: ${o.faults} over sessions ${o.sessions.join(',')}; kinds ${o.kinds.join(',')}; standby share ${o.standbyShare}; settle ${o.settleMinMs}-${o.settleMaxMs} ms; load average ${loadText(load)}`);
  console.log(`engine under test: ${code}`);
  console.log(`targets: 0 lost, 0 duplicated, 0 false failovers; (b) p50 < ${TARGET_LATE_P50_MS} ms and p99 < ${TARGET_LATE_P99_MS} ms for every kind`);
}

/** Prints the overall line; returns whether a target was missed (for --strict). */
export function printOverall(phases: readonly PhaseResult[], load: number[]): boolean {
  const all = phases.map((p) => p.summary.totals);
  const total = (pick: (t: PhaseSummary['totals']) => number): number => all.reduce((s, t) => s + pick(t), 0);
  const lost = total((t) => t.lost);
  const dup = total((t) => t.duplicated);
  const falseF = total((t) => t.falseFailovers);
  const lateMisses = phases.flatMap((p) => p.summary.kinds.filter((k) => k.target === 'active' && (!k.targetLateP50 || !k.targetLateP99)).map((k) => `${k.kind}@${p.summary.sessions}`));
  console.log('');
  console.log(`overall: ${total((t) => t.faults)} faults; lost ${lost} ${mark(lost === 0)}, duplicated ${dup} ${mark(dup === 0)}, false failovers ${falseF} ${mark(falseF === 0)}, unexplained handovers ${total((t) => t.handovers.unexplained)}, (b) targets ${lateMisses.length === 0 ? 'ok' : `MISS for ${lateMisses.join(', ')}`}; load average ${loadText(load)}`);
  return lost > 0 || dup > 0 || falseF > 0 || lateMisses.length > 0;
}

/** Writes bench/results/failover-<time>.json (or under --out); returns its path. */
export function writeJson(o: Options, a: BenchAsset, phases: readonly PhaseResult[], run: { startedAt: Date; code: string; load: { start: number[]; end: number[] } }): string {
  mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, `failover-${run.startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    bench: 'failover',
    startedAt: run.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    code: run.code,
    options: o,
    asset: { source: a.source, note: a.note, bitrate: a.bitrate, durationMs: a.durationMs, packetCount: a.asset.packetCount },
    loadavg: run.load,
    targets: { lost: 0, duplicated: 0, falseFailovers: 0, lateP50Ms: TARGET_LATE_P50_MS, lateP99Ms: TARGET_LATE_P99_MS },
    windows: { gapBeforeMs: GAP_BEFORE_MS, gapAfterMs: GAP_AFTER_MS },
    phases: phases.map(({ summary, faults, run: r }) => ({
      ...summary,
      heartbeat: r.heartbeat,
      receiver: r.receiver,
      engineThreads: r.enginePolicies,
      problems: r.problems,
      replayErrors: r.replayErrors,
      stalls: r.stalls,
      deadlineHit: r.deadlineHit,
      restarts: r.restarts,
      stealMs: r.stealMs,
      streams: r.streams.map((st) => ({
        sock: st.sock, gen: st.gen, ssrc: st.info.ssrc, initialSeq: st.info.initialSeq, finalSent: st.finalSent, received: r.data[st.sock]?.count,
        checkedByCheckRtpStream: r.data[st.sock]?.checked,
        segments: st.segments.map((seg) => ({ startCursor: seg.startCursor, reason: seg.reason, ...seg.play })),
      })),
      events: { baseline: r.baselineEvents, betweenFaults: r.strayEvents },
      handovers: { baseline: r.baselineHandovers, betweenFaults: r.strayHandovers },
      faults,
    })),
  };
  writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  return file;
}

function loadText(load: number[]): string {
  return load.map((x) => x.toFixed(2)).join(' ');
}
