// One phase of the failover benchmark: N sessions, a no-fault baseline, then the
// faults, one at a time. An engine that does not become protected again is
// recorded, closed and replaced by a fresh one (a new "generation" with new
// sessions on new receiver sockets), so one stuck engine does not spoil the
// rest of the run. What it records (PhaseRun) goes to analysis.ts.

import { Engine, type FailoverEvent, type HandoverEvent } from '../../src/engine/engine.js';
import { monoNowMs } from '../../src/shared/clock.js';
import type { Logger } from '../../src/log.js';
import { TS_PACKETS_PER_DATAGRAM } from '../../src/rtp/packetizer.js';
import { nearest16, readSocketDrops, readStealMs, readUdpSnmp, sleep, threadPolicies, withTimeout } from '../lib.js';
import {
  EXPECTED_CAUSE, GAP_AFTER_MS,
  type BenchAsset, type EventRecord, type FaultRecord, type HandoverRecord, type Options, type PhaseRun, type Segment, type StreamRec,
} from './model.js';
import { Receiver } from './receiver-link.js';

/** What a phase is asked to do. */
export interface PhaseSpec {
  readonly o: Options;
  readonly a: BenchAsset;
  readonly sessions: number;
  readonly faults: number;
  readonly rand: () => number;
  readonly logger: Logger;
  readonly deadlineAtMs: number;
  /** True once the run was interrupted (SIGINT/SIGTERM): stop injecting, report what was measured. */
  readonly interrupted: () => boolean;
}

/** One engine and its sessions. */
interface Generation {
  readonly gen: number;
  readonly engine: Engine;
  readonly streams: StreamRec[];
  readonly replaying: boolean[];
  readonly lastPlayAt: number[];
  stopping: boolean;
  watchdog: NodeJS.Timeout | undefined;
}

/** How one fault went: on to the next, the same fault again (on a fresh or settled engine), or the phase ends. */
type FaultOutcome = 'next' | 'again' | 'stop';

/** A session that should be playing but receives nothing this long is stalled: recorded and played again. */
const STALL_MS = 1500;

export async function runPhase(spec: PhaseSpec): Promise<PhaseRun> {
  const receiver = await Receiver.open(spec.o.receiver, spec.a.asset, spec.a.times, spec.o.receiverRt);
  return new Phase(spec, receiver).run();
}

class Phase {
  private readonly record: PhaseRun;
  private mode: 'start' | 'baseline' | 'faults' = 'start';
  private current: FaultRecord | undefined;
  /** First time each path incarnation of each engine generation was seen ready ('0:a:3' → ms). */
  private readonly onlineSince = new Map<string, number>();
  private g: Generation | undefined;

  constructor(private readonly spec: PhaseSpec, private readonly receiver: Receiver) {
    this.record = {
      sessions: spec.sessions, streams: [], data: [], faults: [], baselineEvents: [], strayEvents: [], baselineHandovers: [], strayHandovers: [],
      engineHandovers: undefined, baselineFromMs: 0, baselineToMs: 0, stalls: [], replayErrors: [], problems: [], restarts: [],
      snmpBefore: {}, snmpAfter: {}, stealMs: 0, socketDrops: { drops: 0, found: 0 },
      receiver: { kind: receiver.kind, policy: receiver.policy, policyError: receiver.policyError, recvBuffer: receiver.recvBuffer },
      enginePolicies: [], engineSentByPaths: 0, heartbeat: undefined, deadlineHit: false,
    };
  }

  async run(): Promise<PhaseRun> {
    const steal0 = readStealMs();
    try {
      this.record.snmpBefore = readUdpSnmp();
      this.g = await this.bringUp(0);
      this.record.enginePolicies = threadPolicies().map(({ comm, policy, rtPriority }) => ({ comm, policy, rtPriority }));
      await this.baseline();
      await this.injectFaults();
      // Leave the last fault's window time to close before stopping.
      await sleep(GAP_AFTER_MS + 100);
      this.current = undefined;
    } catch (err) {
      this.record.problems.push(`phase aborted: ${(err as Error).stack ?? String(err)}`);
    } finally {
      await this.finish(steal0);
    }
    return this.record;
  }

  private async baseline(): Promise<void> {
    await this.sleepUnlessInterrupted(this.spec.o.warmupMs);
    this.mode = 'baseline';
    this.record.baselineFromMs = monoNowMs();
    await this.sleepUnlessInterrupted(this.spec.o.baselineS * 1000);
    this.record.baselineToMs = monoNowMs();
    this.mode = 'faults';
  }

  private async injectFaults(): Promise<void> {
    const { faults } = this.spec;
    for (let i = 0; i < faults && this.g; i++) {
      if (this.spec.interrupted()) {
        this.record.problems.push(`interrupted after ${i} of ${faults} faults`);
        return;
      }
      if (monoNowMs() > this.spec.deadlineAtMs) {
        this.record.deadlineHit = true;
        this.record.problems.push(`--deadline-min reached: stopped after ${i} of ${faults} faults`);
        return;
      }
      const outcome = await this.injectOne(i, this.g);
      if (outcome === 'stop') return;
      if (outcome === 'again') i--;
      else if ((i + 1) % 50 === 0) process.stderr.write(`  [${this.spec.sessions} sessions] ${i + 1}/${faults} faults\n`);
    }
  }

  /** Fault `i` on generation `G`: wait until protected, settle, inject, wait for the victim's failover and for protection again. */
  private async injectOne(i: number, G: Generation): Promise<FaultOutcome> {
    const { o, rand } = this.spec;
    const kind = o.kinds[i % o.kinds.length];
    const standbyEvery = o.standbyShare > 0 ? Math.max(1, Math.round(1 / o.standbyShare)) : 0;
    const target: 'active' | 'standby' = standbyEvery > 0 && i % standbyEvery === standbyEvery - 1 ? 'standby' : 'active';
    const eng = G.engine;
    if (!(await this.waitProtected(G, o.recoveryTimeoutMs))) {
      const restarted = await this.restart(`before fault ${i}: pair not protected after ${o.recoveryTimeoutMs} ms (${this.pathStates(eng)})`);
      return restarted ? 'again' : 'stop';
    }
    await sleep(o.settleMinMs + rand() * (o.settleMaxMs - o.settleMinMs));
    const status = eng.status();
    const victimStatus = status.paths.find((p) => (target === 'active' ? p.active : !p.active));
    const partnerStatus = status.paths.find((p) => p !== victimStatus);
    if (!victimStatus || !partnerStatus || !eng.isProtected()) {
      this.record.problems.push(`fault ${i}: no ${target} path to hit (${this.pathStates(eng)})`);
      return 'again';
    }
    const now = monoNowMs();
    const rec: FaultRecord = {
      i, gen: G.gen, kind, target, victim: victimStatus.path, expectedCause: EXPECTED_CAUSE[kind], injectedAtMs: now,
      victimAgeMs: this.age(G.gen, victimStatus, now), partnerAgeMs: this.age(G.gen, partnerStatus, now),
      events: [], handovers: [], matched: undefined, protectedAtMs: undefined, failure: undefined,
    };
    this.record.faults.push(rec);
    this.current = rec;
    try {
      eng.injectFault(victimStatus.path, kind);
    } catch (err) {
      rec.failure = `injectFault threw: ${(err as Error).message}`;
      return 'next';
    }
    return this.awaitRecovery(i, G, rec);
  }

  private async awaitRecovery(i: number, G: Generation, rec: FaultRecord): Promise<FaultOutcome> {
    const { o } = this.spec;
    const deadline = monoNowMs() + o.recoveryTimeoutMs;
    while (!rec.matched && monoNowMs() < deadline) {
      rec.matched = rec.events.find((e) => e.pathName === rec.victim);
      if (!rec.matched) await sleep(2);
    }
    const what = `fault ${i} (${rec.kind} on the ${rec.target} path ${rec.victim})`;
    if (!rec.matched) {
      rec.failure = `no failover event for path ${rec.victim} within ${o.recoveryTimeoutMs} ms`;
      // A fault the engine did not notice leaves a broken path in place: start afresh.
      return (await this.restart(`${what} was never detected`)) ? 'next' : 'stop';
    }
    if (await this.waitProtected(G, Math.max(0, deadline - monoNowMs()))) {
      rec.protectedAtMs = monoNowMs();
      return 'next';
    }
    rec.failure = `pair not protected again within ${o.recoveryTimeoutMs} ms of the fault (${this.pathStates(G.engine)})`;
    return (await this.restart(`${what} did not recover`)) ? 'next' : 'stop';
  }

  /** Stop the engine still running, then read the counters and the receiver's data. */
  private async finish(steal0: number): Promise<void> {
    const run = this.record;
    if (this.g) await this.tearDown(this.g).catch((err: unknown) => run.problems.push(`tearDown: ${(err as Error).message}`));
    this.g = undefined;
    run.socketDrops = readSocketDrops(this.receiver.ports);
    run.snmpAfter = readUdpSnmp();
    run.stealMs = readStealMs() - steal0;
    try {
      run.data = await this.receiver.collect();
    } catch (err) {
      run.problems.push(`receiver data lost: ${(err as Error).message}`);
      await this.receiver.close().catch(() => {});
    }
  }

  // ── engine generations

  private async bringUp(gen: number): Promise<Generation> {
    const engine = await withTimeout(Engine.start({ faultInjection: true, logger: this.spec.logger }), 30_000, 'Engine.start');
    const n = this.spec.sessions;
    const G: Generation = {
      gen, engine, streams: [], replaying: new Array<boolean>(n).fill(false), lastPlayAt: new Array<number>(n).fill(0), stopping: false, watchdog: undefined,
    };
    this.record.heartbeat ??= engine.status().heartbeat;
    this.listen(G);
    await this.openSessions(G);
    // First plays start at random places, so that the sessions do not all reach the end together.
    const maxStartDatagram = Math.max(1, Math.floor(this.spec.a.asset.packetCount / TS_PACKETS_PER_DATAGRAM) - 400);
    for (let k = 0; k < n; k++) await this.play(G, k, TS_PACKETS_PER_DATAGRAM * Math.floor(this.spec.rand() * maxStartDatagram), 'first');
    G.watchdog = setInterval(() => this.restartStalled(G), 250);
    this.noteOnline(G);
    return G;
  }

  /** Failover and handover events go to the baseline, the current fault, or the strays. */
  private listen(G: Generation): void {
    const run = this.record;
    G.engine.on('failover', (e: FailoverEvent) => {
      if (G.stopping) return;
      const rec: EventRecord = {
        pathName: e.pathName, cause: e.cause, wasActive: e.wasActive, switchedToName: e.switchedToName, failedAtMs: e.failedAtMs,
        detectedAtMs: e.detectedAtMs, switchedAtMs: e.switchedAtMs, switchLatencyMs: e.switchLatencyMs, receivedAtMs: monoNowMs(), gen: G.gen,
      };
      if (this.mode === 'baseline') run.baselineEvents.push(rec);
      else if (this.current?.gen === G.gen) this.current.events.push(rec);
      else run.strayEvents.push(rec);
    });
    G.engine.on('handover', (h: HandoverEvent) => {
      if (G.stopping) return;
      const rec: HandoverRecord = { from: h.from, to: h.to, lateMs: h.lateMs, atMs: h.atMs, receivedAtMs: monoNowMs(), gen: G.gen };
      if (this.mode === 'baseline') run.baselineHandovers.push(rec);
      else if (this.current?.gen === G.gen) this.current.handovers.push(rec);
      else run.strayHandovers.push(rec);
    });
  }

  /** One session per new receiver socket; each is played again from packet 0 when it ends. */
  private async openSessions(G: Generation): Promise<void> {
    const sockets = await this.receiver.add(this.spec.sessions);
    for (const { sock, port } of sockets) {
      const info = await G.engine.openSession({ asset: this.spec.a.asset, destination: { address: '127.0.0.1', port }, transport: 'rtp' });
      const stream: StreamRec = { sock, gen: G.gen, info, segments: [], finalSent: 0 };
      G.streams.push(stream);
      this.record.streams.push(stream);
      this.receiver.send({ type: 'session', sock, info });
    }
    const kOf = new Map(G.streams.map((s, k) => [s.info.id, k]));
    G.engine.on('session-ended', (e: { id: string }) => {
      const k = kOf.get(e.id);
      if (k !== undefined && !G.stopping) void this.play(G, k, 0, 'ended');
    });
  }

  /** Play session k from `startPacket` (up to 5 attempts) and tell the receiver the new segment. */
  private async play(G: Generation, k: number, startPacket: number, reason: Segment['reason']): Promise<void> {
    if (G.replaying[k] || G.stopping) return;
    G.replaying[k] = true;
    const stream = G.streams[k];
    try {
      for (let attempt = 0; attempt < 5 && !G.stopping; attempt++) {
        try {
          const before = G.engine.getSession(stream.info.id)?.sent ?? 0;
          const result = await G.engine.play(stream.info.id, { startPacket });
          const startCursor = nearest16((result.seq - stream.info.initialSeq) & 0xffff, before);
          const segment: Segment = { startCursor, play: result, reason };
          stream.segments.push(segment);
          this.receiver.send({ type: 'segment', sock: stream.sock, segment });
          G.lastPlayAt[k] = monoNowMs();
          return;
        } catch (err) {
          this.record.replayErrors.push(`gen ${G.gen} session ${k} play(${startPacket}) attempt ${attempt}: ${(err as Error).message}`);
          await sleep(200);
        }
      }
    } finally {
      G.replaying[k] = false;
    }
  }

  private restartStalled(G: Generation): void {
    if (G.stopping) return;
    const now = monoNowMs();
    G.streams.forEach((stream, k) => {
      if (G.replaying[k]) return;
      if (now - Math.max(this.receiver.lastArrivalMs(stream.sock), G.lastPlayAt[k]) < STALL_MS) return;
      const s = G.engine.getSession(stream.info.id);
      this.record.stalls.push({ sock: stream.sock, gen: G.gen, atMs: now, state: s?.state, sent: s?.sent });
      void this.play(G, k, 0, 'stall');
    });
  }

  /** Stop a generation: pause its sessions, let the wire go quiet, read the cursors, close the engine. */
  private async tearDown(G: Generation): Promise<void> {
    const run = this.record;
    G.stopping = true;
    clearInterval(G.watchdog);
    for (const s of G.streams) G.engine.pause(s.info.id);
    const quietDeadline = monoNowMs() + 5000;
    const lastOf = (): number => Math.max(0, ...G.streams.map((s) => this.receiver.lastArrivalMs(s.sock)));
    while (monoNowMs() < quietDeadline && monoNowMs() - lastOf() < 300) await sleep(20);
    for (const s of G.streams) s.finalSent = G.engine.getSession(s.info.id)?.sent ?? s.finalSent;
    const status = G.engine.status();
    run.engineSentByPaths += status.paths.reduce((sum, p) => sum + p.sent, 0);
    const handovers = handoverCount(status);
    if (handovers !== undefined) run.engineHandovers = (run.engineHandovers ?? 0) + handovers;
    await withTimeout(G.engine.close(), 20_000, 'engine.close').catch((err: unknown) => run.problems.push(`gen ${G.gen} engine.close: ${(err as Error).message}`));
  }

  /** Replace the current generation by a fresh engine; false when the phase has restarted too often. */
  private async restart(reason: string): Promise<boolean> {
    const old = this.g;
    if (!old) return false;
    const run = this.record;
    run.restarts.push({ atMs: monoNowMs(), reason });
    run.problems.push(`gen ${old.gen}: ${reason}; engine closed and started afresh`);
    this.g = undefined;
    await this.tearDown(old);
    const maxRestarts = Math.max(10, Math.ceil(this.spec.faults / 10));
    if (run.restarts.length > maxRestarts) {
      run.problems.push(`more than ${maxRestarts} engine restarts: phase stopped`);
      return false;
    }
    this.g = await this.bringUp(old.gen + 1);
    await sleep(1000);
    return true;
  }

  // ── small helpers

  private noteOnline(G: Generation): void {
    const now = monoNowMs();
    for (const p of G.engine.status().paths) {
      if (!p.online) continue;
      const key = `${G.gen}:${p.path}:${p.incarnation}`;
      if (!this.onlineSince.has(key)) this.onlineSince.set(key, now);
    }
  }

  private async waitProtected(G: Generation, timeoutMs: number): Promise<boolean> {
    const deadline = monoNowMs() + timeoutMs;
    for (;;) {
      this.noteOnline(G);
      if (G.engine.isProtected()) return true;
      if (monoNowMs() >= deadline) return false;
      await sleep(5);
    }
  }

  /** How long a path incarnation has been ready, or undefined if it was never seen ready. */
  private age(gen: number, p: { path: string; incarnation: number }, now: number): number | undefined {
    const since = this.onlineSince.get(`${gen}:${p.path}:${p.incarnation}`);
    return since === undefined ? undefined : now - since;
  }

  private pathStates(eng: Engine): string {
    return JSON.stringify(eng.status().paths.map((p) => p.named));
  }

  /** Like sleep(), but returns early when the run is interrupted. */
  private async sleepUnlessInterrupted(ms: number): Promise<void> {
    const end = monoNowMs() + ms;
    while (!this.spec.interrupted() && monoNowMs() < end) await sleep(Math.min(100, end - monoNowMs()));
  }
}

/** engine.status().handovers, or undefined for an engine that does not count handovers (the earlier design). */
function handoverCount(status: object): number | undefined {
  const n = (status as Record<string, unknown>).handovers;
  return typeof n === 'number' ? n : undefined;
}
