// The dual data-path engine end to end: a real UDP receiver on 127.0.0.1 gets
// every datagram, in order, once, byte for byte what the asset dictates,
// across every kind of injected fault, repeated, and across manual switches.

import test from 'ava';
import type { FailureFaultKind } from '../src/shared/commands.js';
import type { AssetFailedEvent, Engine, FailoverEvent, SessionFailedEvent } from '../src/engine/engine.js';
import type { ExecutionContext } from 'ava';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { ThreadReceiver } from './helpers/thread-receiver.js';
import { checkRtpStream, loadSample, nowMs, sleep, startEngine, until, waitForRecovery, type SampleAsset } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { PACING_BOUND_MS, largestGap, minDatagrams } from './helpers/stream-pacing.js';

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

/**
 * One RTP session played while `fn` runs. `mark()` notes a moment (a fault
 * injected, a switch): the pacing from each mark to the next (or the pause) is
 * returned as the largest gap between arrivals.
 */
async function withStream<T>(engine: Engine, fn: (ctx: { receiver: UdpReceiver; sessionId: string; mark: () => void }) => Promise<T>) {
  const receiver = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    try {
      const play = await engine.play(session.id);
      const playedAt = nowMs();
      const marks: number[] = [];
      const result = await fn({ receiver, sessionId: session.id, mark: () => marks.push(nowMs()) });
      engine.pause(session.id);
      const pausedAt = nowMs();
      await receiver.waitForQuiet(150, 5000);
      const sent = engine.getSession(session.id)!.sent;
      const check = checkRtpStream(receiver.packets, session, play, sample);
      const arrivals = receiver.arrivalsMs();
      const gaps = marks.map((at, i) => largestGap(arrivals, at, marks[i + 1] ?? pausedAt).maxMs);
      return { check, sent, received: receiver.datagrams.length, result, playedMs: pausedAt - playedAt, gaps };
    } finally {
      engine.closeSession(session.id);
    }
  } finally {
    await receiver.close();
  }
}

/** The stream happened: at least half of what the bitrate carries in the time played, all of what the engine counted, and paced after every mark. */
function assertDelivered(t: ExecutionContext, r: { sent: number; received: number; playedMs: number; gaps: number[] }): void {
  const min = minDatagrams(sample, r.playedMs);
  t.true(r.received >= min, `received ${r.received} datagrams in ${r.playedMs.toFixed(0)} ms of playing, at least ${min} expected`);
  t.is(r.received, r.sent, 'every datagram the cursor counts arrived');
  t.true(r.gaps.every((g) => g < PACING_BOUND_MS), `largest gap after each fault/switch under ${PACING_BOUND_MS} ms: ${r.gaps.map((g) => g.toFixed(1)).join(', ')} ms`);
}

/**
 * A path the loaded machine kept late past the liveness rules can be failed
 * without an injected fault: lossless, so legal, and it can only be 'heartbeat'.
 * Any other cause names a fault that did not happen. Returns the legal ones.
 */
function spuriousFailovers<F extends { cause: string }>(t: ExecutionContext, unexpected: readonly F[]): F[] {
  t.deepEqual(unexpected.filter((f) => f.cause !== 'heartbeat'), [], 'no failover with a cause no fault had');
  if (unexpected.length > 0) t.log(`failed without a fault (a late path on a loaded machine): ${JSON.stringify(unexpected)}`);
  return [...unexpected];
}

test.serial('the standby sends nothing while the active path is on time, and the viewer gets every datagram', async (t) => {
  const engine = await startEngine();
  const failovers: Array<{ path: string; cause: string; switched: boolean }> = [];
  engine.on('failover', (e: FailoverEvent) => failovers.push({ path: e.pathName, cause: e.cause, switched: e.wasActive && e.switchedTo !== undefined }));
  try {
    const before = engine.status().paths.map((p) => p.sent);
    const delivered = await withStream(engine, () => sleep(1200));
    const { check, sent } = delivered;
    const status = engine.status();
    const sentBy = status.paths.map((p, i) => p.sent - before[i]);
    // A sender that runs late is handed over from (lossless, counted): then both sent, in turns.
    const spurious = spuriousFailovers(t, failovers);
    t.is(status.switches, 1 + status.handovers + spurious.filter((f) => f.switched).length, 'the start-up hand-over to the first synchronized path, then handovers and failovers only');
    if (status.handovers === 0 && spurious.length === 0) t.is(Math.min(...sentBy), 0, 'with no handover the standby sent nothing');
    t.is(sentBy[0] + sentBy[1], sent, 'the paths together sent exactly the cursor count: nothing twice');
    assertDelivered(t, delivered);
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, check.firstMismatch);
    t.deepEqual(status.paths.map((p) => p.named).sort(), ['Primary', 'Secondary']);
  } finally {
    await engine.close();
  }
});

const causeOfKind: Record<FailureFaultKind, string> = {
  crash: 'exit', exception: 'exception', hang: 'heartbeat', socket: 'socket', disk: 'disk', temperature: 'temperature',
};

for (const kind of Object.keys(causeOfKind) as FailureFaultKind[]) {
  test.serial(`a ${kind} fault of the active path loses and duplicates nothing, twice in a row`, async (t) => {
    const engine = await startEngine();
    const failovers: Array<{ path: string; cause: string; wasActive: boolean; to: string | undefined }> = [];
    engine.on('failover', (e) => failovers.push({ path: e.pathName, cause: e.cause, wasActive: e.wasActive, to: e.switchedToName }));
    const handovers: Array<{ from: string; to: string }> = [];
    engine.on('handover', (h) => handovers.push(h));
    const injected: typeof failovers = [];
    try {
      const delivered = await withStream(engine, async ({ mark }) => {
        for (let round = 0; round < 2; round++) {
          await sleep(300);
          const active = engine.status().active!;
          const seen = failovers.length;
          const handedOver = handovers.length;
          mark();
          engine.injectFault(active, kind);
          await until(() => failovers.slice(seen).some((f) => f.path === active), 'the expected event', 3000);
          await engine.waitUntilProtected(10_000);
          // Sending left the faulted path: by the failover's own switch, or a hung sender's
          // standby took over first (a handover) and the path was failed after.
          const mine = failovers.slice(seen).find((f) => f.path === active && f.cause === causeOfKind[kind]);
          const movedBySwitch = mine !== undefined && mine.wasActive && mine.to !== undefined;
          const movedByHandover = handovers.slice(handedOver).some((h) => h.from === active);
          t.true(mine !== undefined && (movedBySwitch || movedByHandover),
            `round ${round}: the faulted path ${active} failed with cause ${causeOfKind[kind]} and sending moved to its twin: ${JSON.stringify({ failovers, handovers })}`);
          if (mine) injected.push(mine);
        }
        await sleep(300);
      });
      const { check } = delivered;
      assertDelivered(t, delivered);
      t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, check.firstMismatch);
      // Each round above checked its own fault; every other failover is a late path's.
      t.is(injected.length, 2, JSON.stringify(failovers));
      spuriousFailovers(t, failovers.filter((f) => !injected.includes(f)));
      t.deepEqual(engine.status().paths.map((p) => p.named).sort(), ['Primary', 'Secondary']);
    } finally {
      await engine.close();
    }
  });
}

for (const kind of ['crash', 'socket', 'hang'] as const) {
  test.serial(`a ${kind} fault of the standby path is detected, the path restarted, and the stream undisturbed`, async (t) => {
    const engine = await startEngine();
    const failovers: Array<{ path: string; cause: string; wasActive: boolean }> = [];
    engine.on('failover', (e) => failovers.push({ path: e.pathName, cause: e.cause, wasActive: e.wasActive }));
    let handovers = 0;
    engine.on('handover', () => { handovers++; });
    try {
      const delivered = await withStream(engine, async ({ mark }) => {
        await sleep(300);
        const switches = engine.status().switches;
        const handoversBefore = handovers;
        const standby = engine.status().paths.find((p) => !p.active)!;
        const active = engine.status().active;
        mark();
        engine.injectFault(standby.path, kind);
        await until(() => failovers.some((f) => f.path === standby.path), `the standby ${standby.path} to fail`, 3000);
        t.true(failovers.some((f) => f.path === standby.path && f.cause === causeOfKind[kind] && !f.wasActive), JSON.stringify(failovers));
        // A late sender may be handed over from at any time (lossless, counted); the standby's fault moves nothing.
        const handedOver = handovers - handoversBefore;
        if (handedOver === 0) t.is(engine.status().active, active, 'sending stayed where it was');
        t.is(engine.status().switches - switches, handedOver, 'no switch but handovers');
        await engine.waitUntilProtected(10_000);
        t.is(engine.status().paths.find((p) => p.path === standby.path)!.incarnation, standby.incarnation + 1, 'the standby was restarted');
        await sleep(300);
      });
      const { check } = delivered;
      assertDelivered(t, delivered);
      spuriousFailovers(t, failovers.filter((f) => f.wasActive || f.cause !== causeOfKind[kind]));
      t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
    } finally {
      await engine.close();
    }
  });
}

test.serial('manual switchovers back and forth are lossless, so both paths build byte-identical datagrams', async (t) => {
  const engine = await startEngine();
  try {
    const delivered = await withStream(engine, async ({ mark }) => {
      for (let i = 0; i < 6; i++) {
        await sleep(150);
        mark();
        await engine.switchover();
      }
      await sleep(150);
    });
    const { check } = delivered;
    const sentByPath = engine.status().paths.map((p) => p.sent);
    t.true(sentByPath.every((n) => n > 50), `both paths sent: ${sentByPath.join(', ')}`);
    assertDelivered(t, delivered);
    // Every datagram, whichever path sent it, equals the one the asset dictates for its place.
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
  } finally {
    await engine.close();
  }
});

test.serial('after a failover the respawned path resynchronizes mid-stream and a second failover back to it is lossless', async (t) => {
  const engine = await startEngine();
  try {
    const delivered = await withStream(engine, async ({ mark }) => {
      await sleep(200);
      const first = engine.status().active!;
      let switches = engine.status().switches;
      mark();
      engine.injectFault(first, 'crash');
      await waitForRecovery(engine, switches);
      const respawned = engine.status().paths.find((p) => p.path === first)!;
      t.is(respawned.incarnation, 2);
      t.is(respawned.named, 'Secondary');
      await sleep(200);
      switches = engine.status().switches;
      mark();
      engine.injectFault(engine.status().active!, 'exception');
      await waitForRecovery(engine, switches);
      t.is(engine.status().active, first, 'sending went back to the respawned path');
      await sleep(200);
    });
    const { check } = delivered;
    assertDelivered(t, delivered);
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
  } finally {
    await engine.close();
  }
});

test.serial('streams keep their pace while the main thread is blocked for one second', async (t) => {
  const engine = await startEngine();
  const receiver = await ThreadReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.port }, transport: 'rtp' });
    await engine.play(session.id);
    await sleep(1000);
    const blockStart = nowMs();
    while (nowMs() - blockStart < 1000) { /* block the control plane */ }
    const blockEnd = nowMs();
    await sleep(500);
    engine.closeSession(session.id);
    const arrivals = (await receiver.stop()).map((a) => a.atMs);
    const during = largestGap(arrivals, blockStart, blockEnd);
    const before = largestGap(arrivals, blockStart - 1000, blockStart);
    // A data path that waited for the main thread would be silent for the whole second.
    const min = minDatagrams(sample, blockEnd - blockStart);
    t.true(during.count >= min, `datagrams while blocked: ${during.count}, at least ${min} expected`);
    t.true(during.maxMs < PACING_BOUND_MS, `largest gap while blocked ${during.maxMs.toFixed(2)} ms (${before.maxMs.toFixed(2)} ms in the second before)`);
  } finally {
    await receiver.close();
    await engine.close();
  }
});

test.serial('raw MPEG-TS over UDP delivers the asset bytes exactly across a failover', async (t) => {
  const engine = await startEngine();
  const receiver = await UdpReceiver.open({ mode: 'udp' });
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'udp' });
    await engine.play(session.id);
    const playedAt = nowMs();
    await sleep(300);
    const switches = engine.status().switches;
    const injectedAt = nowMs();
    engine.injectFault(engine.status().active!, 'disk');
    await waitForRecovery(engine, switches);
    await sleep(300);
    engine.pause(session.id);
    const pausedAt = nowMs();
    await receiver.waitForQuiet(150, 5000);
    const sent = engine.getSession(session.id)!.sent;
    const payload = receiver.tsPayload();
    assertDelivered(t, { sent, received: receiver.datagrams.length, playedMs: pausedAt - playedAt, gaps: [largestGap(receiver.arrivalsMs(), injectedAt, pausedAt).maxMs] });
    t.true(receiver.datagrams.every((d) => d.data.length === 1316));
    t.true(payload.equals(sample.bytes.subarray(0, payload.length)), 'received bytes are the asset prefix, in order');
  } finally {
    await receiver.close();
    await engine.close();
  }
});

test.serial('pause and resume keep RTP sequence numbers continuous; a seek restarts at the requested packet', async (t) => {
  const engine = await startEngine();
  const receiver = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    const first = await engine.play(session.id);
    await sleep(300);
    engine.pause(session.id);
    await receiver.waitForQuiet(100, 3000);
    const pausedAt = receiver.datagrams.length;
    await sleep(200);
    t.is(receiver.datagrams.length, pausedAt, 'nothing is sent while paused');
    const resumed = await engine.play(session.id);
    t.is(resumed.seq, (first.seq + pausedAt) & 0xffff, 'resume continues the sequence');
    t.is(resumed.startPacket, 7 * pausedAt, 'resume continues where it paused');
    await sleep(200);
    const rap = sample.randomAccess[5];
    const seek = await engine.play(session.id, { startPacket: rap.packet });
    await sleep(200);
    engine.pause(session.id);
    await receiver.waitForQuiet(100, 3000);
    const packets = receiver.packets;
    const stats = checkRtpStream(packets.filter((p) => ((p.sequence - seek.seq) & 0xffff) < 0x8000), session, seek, sample);
    t.deepEqual({ lost: stats.lost, duplicated: stats.duplicated, mismatched: stats.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, stats.firstMismatch);
    const firstAfterSeek = packets.find((p) => p.sequence === seek.seq)!;
    t.true(firstAfterSeek.payload.equals(sample.bytes.subarray(rap.packet * 188, (rap.packet + 7) * 188)), 'first datagram after the seek starts at the random-access packet');
    const all = checkRtpStream(packets, session, first, sample);
    t.is(all.lost + all.duplicated, 0, 'sequence numbers are continuous over pause, resume and seek');
  } finally {
    await receiver.close();
    await engine.close();
  }
});

test.serial('a session that reaches the end of its asset is reported ended after its last datagram', async (t) => {
  const engine = await startEngine();
  const receiver = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    const ended = new Promise<void>((resolve) => engine.on('session-ended', (e: { id: string }) => { if (e.id === session.id) resolve(); }));
    const startPacket = sample.asset.packetCount - 7 * 60 - 4; // a short last datagram of 4 packets
    const play = await engine.play(session.id, { startPacket });
    await ended;
    await receiver.waitForQuiet(100, 3000);
    t.is(receiver.datagrams.length, 61);
    t.is(receiver.packets.at(-1)!.payload.length, 4 * 188);
    const check = checkRtpStream(receiver.packets, session, play, sample);
    t.is(check.mismatched + check.lost, 0, check.firstMismatch);
    t.is(engine.getSession(session.id)!.state, 'ended');
  } finally {
    await receiver.close();
    await engine.close();
  }
});

test.serial('fault injection is refused unless the configuration enables it', async (t) => {
  const engine = await startEngine({ faultInjection: false });
  try {
    const err = t.throws(() => engine.injectFault('a', 'crash'));
    t.is((err as { code?: string }).code, 'TF_FAULT_INJECTION_DISABLED');
  } finally {
    await engine.close();
  }
});

test.serial('a viewer that is not listening (ECONNREFUSED) is reported at most once, its stream goes on, and no path fails', async (t) => {
  const engine = await startEngine();
  const failovers: string[] = [];
  const sessionErrors: string[] = [];
  engine.on('failover', (e) => failovers.push(`${e.pathName}:${e.cause}`));
  engine.on('session-error', (e: { message: string }) => sessionErrors.push(e.message));
  const healthy = await UdpReceiver.open();
  try {
    // Nobody listens on this port: every datagram draws ICMP port unreachable (ECONNREFUSED).
    const gone = await UdpReceiver.open();
    const port = gone.rtpPort;
    await gone.close();
    const refused = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port }, transport: 'rtp' });
    await engine.play(refused.id);
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: healthy.rtpPort }, transport: 'rtp' });
    const play = await engine.play(session.id);
    const playedAt = nowMs();
    await sleep(800);
    engine.pause(session.id);
    const playedMs = nowMs() - playedAt;
    await healthy.waitForQuiet(150, 5000);
    const spurious = spuriousFailovers(t, failovers.map((f) => ({ cause: f.slice(f.indexOf(':') + 1), path: f })));
    if (spurious.length === 0) t.true(engine.isProtected());
    // The ICMP error reaches Node either through the socket's receive side (reported)
    // or through the next send, whose error Node drops without a send callback: at most once.
    t.true(sessionErrors.filter((m) => m.startsWith('ECONNREFUSED')).length <= 1, `reported at most once: ${sessionErrors.join('; ')}`);
    const refusedNow = engine.getSession(refused.id)!;
    t.is(refusedNow.state, 'playing', 'a viewer not listening yet is normal: its stream is not ended');
    t.true(refusedNow.sent > 200, `the refused stream went on: ${refusedNow.sent} datagrams`);
    const check = checkRtpStream(healthy.packets, session, play, sample);
    assertDelivered(t, { sent: engine.getSession(session.id)!.sent, received: healthy.datagrams.length, playedMs, gaps: [] });
    t.is(check.lost + check.duplicated + check.mismatched, 0, check.firstMismatch);
  } finally {
    await healthy.close();
    await engine.close();
  }
});

test.serial('a destination that cannot be connected to is refused at open, before any path sees it; another session streams losslessly and no path fails', async (t) => {
  const engine = await startEngine();
  const failovers: string[] = [];
  engine.on('failover', (e) => failovers.push(`${e.pathName}:${e.cause}`));
  const incarnations = engine.status().paths.map((p) => p.incarnation);
  const healthy = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: healthy.rtpPort }, transport: 'rtp' });
    const play = await engine.play(session.id);
    const playedAt = nowMs();
    await sleep(200);
    // The loopback broadcast address: connect() refuses it (EACCES), so nothing is ever sent there.
    const broadcast = await t.throwsAsync(engine.openSession({ asset: sample.asset, destination: { address: '127.255.255.255', port: 9 }, transport: 'rtp' }));
    t.like(broadcast, { code: 'TF_RTSP_DESTINATION_UNREACHABLE', rtspStatus: 462 });
    t.regex(broadcast.message, /127\.255\.255\.255:9.*EACCES/);
    // No socket can connect to port 0.
    const portZero = await t.throwsAsync(engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: 0 }, transport: 'rtp' }));
    t.like(portZero, { code: 'TF_RTSP_DESTINATION_UNREACHABLE' });
    await sleep(600);
    engine.pause(session.id);
    const playedMs = nowMs() - playedAt;
    await healthy.waitForQuiet(150, 5000);

    const spurious = spuriousFailovers(t, failovers.map((f) => ({ cause: f.slice(f.indexOf(':') + 1), path: f })));
    if (spurious.length === 0) {
      t.deepEqual(engine.status().paths.map((p) => p.incarnation), incarnations, 'no path was restarted');
      t.true(engine.isProtected());
    }
    t.deepEqual(engine.listSessions().map((s) => s.id), [session.id], 'nothing was left half-open');
    const check = checkRtpStream(healthy.packets, session, play, sample);
    assertDelivered(t, { sent: engine.getSession(session.id)!.sent, received: healthy.datagrams.length, playedMs, gaps: [] });
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, check.firstMismatch);
  } finally {
    await healthy.close();
    await engine.close();
  }
});

test.serial('a read error both paths get ends the asset\'s sessions after one path failure, not a loop of them', async (t) => {
  const engine = await startEngine();
  const failovers: string[] = [];
  const failed: SessionFailedEvent[] = [];
  const assets: AssetFailedEvent[] = [];
  engine.on('failover', (e) => failovers.push(`${e.pathName}:${e.cause}`));
  engine.on('session-failed', (e: SessionFailedEvent) => failed.push(e));
  engine.on('asset-failed', (e: AssetFailedEvent) => assets.push(e));
  const receiver = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    const play = await engine.play(session.id);
    await sleep(300);
    // Both paths lose their files of this session at once: what a real read error of the asset looks like to them.
    engine.injectFault('a', 'disk');
    engine.injectFault('b', 'disk');
    await until(() => failed.length > 0, 'the session to fail');
    await engine.waitUntilProtected(10_000);
    await sleep(500);
    await receiver.waitForQuiet(150, 5000);
    const disk = failovers.filter((f) => f.endsWith(':disk'));
    t.is(disk.length, 1, `the first path to fail was failed over, the second found its bit: ${failovers.join(', ')}`);
    spuriousFailovers(t, failovers.filter((f) => !disk.includes(f)).map((f) => ({ cause: f.slice(f.indexOf(':') + 1), path: f })));
    t.deepEqual(failed.map((f) => [f.id, f.scope]), [[session.id, 'asset']]);
    t.regex(failed[0].reason, /read of .* failed at byte/);
    t.is(assets.length, 1);
    t.is(assets[0].assetPath, sample.asset.assetPath);
    t.is(engine.getSession(session.id)!.state, 'failed');
    const check = checkRtpStream(receiver.packets, session, play, sample);
    t.true(receiver.datagrams.length > 50, `received ${receiver.datagrams.length}`);
    t.is(receiver.datagrams.length, engine.getSession(session.id)!.sent, 'what was sent before the end arrived');
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
  } finally {
    await receiver.close();
    await engine.close();
  }
});

leakCheck(test);
