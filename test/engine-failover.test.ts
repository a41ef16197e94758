// The dual data-path engine end to end: a real UDP receiver on 127.0.0.1 gets
// every datagram, in order, once, byte for byte what the asset dictates,
// across every kind of injected fault, repeated, and across manual switches.

import test from 'ava';
import type { FaultKind } from '../src/shared/commands.js';
import type { AssetFailedEvent, Engine, SessionFailedEvent } from '../src/engine/engine.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { ThreadReceiver } from './helpers/thread-receiver.js';
import { checkRtpStream, loadSample, sleep, startEngine, until, waitForRecovery, type SampleAsset } from './helpers/engine-fixture.js';

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

async function withStream<T>(engine: Engine, fn: (ctx: { receiver: UdpReceiver; sessionId: string }) => Promise<T>) {
  const receiver = await UdpReceiver.open();
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
    const play = await engine.play(session.id);
    const result = await fn({ receiver, sessionId: session.id });
    engine.pause(session.id);
    await receiver.waitForQuiet(150, 5000);
    const sent = engine.getSession(session.id)!.sent;
    const check = checkRtpStream(receiver.packets, session, play, sample);
    engine.closeSession(session.id);
    return { check, sent, received: receiver.datagrams.length, result };
  } finally {
    await receiver.close();
  }
}

test.serial('the standby sends nothing while the active path is on time, and the viewer gets every datagram', async (t) => {
  const engine = await startEngine();
  try {
    const before = engine.status().paths.map((p) => p.sent);
    const { check, sent, received } = await withStream(engine, () => sleep(1200));
    const status = engine.status();
    const sentBy = status.paths.map((p, i) => p.sent - before[i]);
    // A sender that runs late is handed over from (lossless, counted): then both sent, in turns.
    t.is(status.switches, 1 + status.handovers, 'the start-up hand-over to the first synchronized path, and handovers only');
    if (status.handovers === 0) t.is(Math.min(...sentBy), 0, 'with no handover the standby sent nothing');
    t.is(sentBy[0] + sentBy[1], sent, 'the paths together sent exactly the cursor count: nothing twice');
    t.true(received > 250, `received ${received}`);
    t.is(received, sent);
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, check.firstMismatch);
    t.deepEqual(status.paths.map((p) => p.named).sort(), ['Primary', 'Secondary']);
  } finally {
    await engine.close();
  }
});

const causeOfKind: Record<FaultKind, string> = {
  crash: 'exit', exception: 'exception', hang: 'heartbeat', socket: 'socket', disk: 'disk', temperature: 'temperature',
};

for (const kind of Object.keys(causeOfKind) as FaultKind[]) {
  test.serial(`a ${kind} fault of the active path loses and duplicates nothing, twice in a row`, async (t) => {
    const engine = await startEngine();
    const failovers: Array<{ path: string; cause: string; wasActive: boolean; to: string | undefined }> = [];
    engine.on('failover', (e) => failovers.push({ path: e.pathName, cause: e.cause, wasActive: e.wasActive, to: e.switchedToName }));
    const handovers: Array<{ from: string; to: string }> = [];
    engine.on('handover', (h) => handovers.push(h));
    try {
      const { check, sent, received } = await withStream(engine, async () => {
        for (let round = 0; round < 2; round++) {
          await sleep(300);
          const active = engine.status().active!;
          const seen = failovers.length;
          const handedOver = handovers.length;
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
        }
        await sleep(300);
      });
      t.true(received > 250, `received ${received}`);
      t.is(received, sent, 'every datagram the cursor counts arrived');
      t.deepEqual({ lost: check.lost, duplicated: check.duplicated, reordered: check.reordered, mismatched: check.mismatched }, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0 }, check.firstMismatch);
      // Each round above checked its own fault. A false failover (the bench counts
      // those) shares the cause 'heartbeat' with a hang, so only there is the total a floor.
      t.is(failovers.filter((f) => f.cause === causeOfKind[kind]).length, 2, JSON.stringify(failovers));
      t.is(failovers.length, 2, `no failover without a fault: ${JSON.stringify(failovers)}`);
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
    try {
      const { check, sent, received } = await withStream(engine, async () => {
        await sleep(300);
        const switches = engine.status().switches;
        const standby = engine.status().paths.find((p) => !p.active)!;
        const active = engine.status().active;
        engine.injectFault(standby.path, kind);
        const deadline = Date.now() + 3000;
        while (!failovers.some((f) => f.path === standby.path) && Date.now() < deadline) await sleep(5);
        t.true(failovers.some((f) => f.path === standby.path && f.cause === causeOfKind[kind] && !f.wasActive), JSON.stringify(failovers));
        t.is(engine.status().active, active, 'sending stayed where it was');
        t.is(engine.status().switches, switches);
        await engine.waitUntilProtected(10_000);
        t.is(engine.status().paths.find((p) => p.path === standby.path)!.incarnation, standby.incarnation + 1, 'the standby was restarted');
        await sleep(300);
      });
      t.is(received, sent);
      t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
    } finally {
      await engine.close();
    }
  });
}

test.serial('manual switchovers back and forth are lossless, so both paths build byte-identical datagrams', async (t) => {
  const engine = await startEngine();
  try {
    const { check, sent, received } = await withStream(engine, async () => {
      for (let i = 0; i < 6; i++) {
        await sleep(150);
        await engine.switchover();
      }
      await sleep(150);
    });
    const sentByPath = engine.status().paths.map((p) => p.sent);
    t.true(sentByPath.every((n) => n > 50), `both paths sent: ${sentByPath.join(', ')}`);
    t.is(received, sent);
    // Every datagram, whichever path sent it, equals the one the asset dictates for its place.
    t.deepEqual({ lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
  } finally {
    await engine.close();
  }
});

test.serial('after a failover the respawned path resynchronizes mid-stream and a second failover back to it is lossless', async (t) => {
  const engine = await startEngine();
  try {
    const { check, sent, received } = await withStream(engine, async () => {
      await sleep(200);
      const first = engine.status().active!;
      let switches = engine.status().switches;
      engine.injectFault(first, 'crash');
      await waitForRecovery(engine, switches);
      const respawned = engine.status().paths.find((p) => p.path === first)!;
      t.is(respawned.incarnation, 2);
      t.is(respawned.named, 'Secondary');
      await sleep(200);
      switches = engine.status().switches;
      engine.injectFault(engine.status().active!, 'exception');
      await waitForRecovery(engine, switches);
      t.is(engine.status().active, first, 'sending went back to the respawned path');
      await sleep(200);
    });
    t.is(received, sent);
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
    const blockStart = Number(process.hrtime.bigint()) / 1e6;
    while (Number(process.hrtime.bigint()) / 1e6 - blockStart < 1000) { /* block the control plane */ }
    const blockEnd = Number(process.hrtime.bigint()) / 1e6;
    await sleep(500);
    engine.closeSession(session.id);
    const arrivals = await receiver.stop();
    const gaps = (from: number, to: number) => {
      const inside = arrivals.filter((a) => a.atMs >= from && a.atMs <= to);
      let max = 0;
      for (let i = 1; i < inside.length; i++) max = Math.max(max, inside[i].atMs - inside[i - 1].atMs);
      return { count: inside.length, max };
    };
    const during = gaps(blockStart, blockEnd);
    const before = gaps(blockStart - 1000, blockStart);
    // 3 Mbit/s in 1316-byte payloads is ~285 datagrams a second.
    t.true(during.count > 250, `datagrams while blocked: ${during.count}`);
    t.true(during.max < Math.max(20, before.max * 3), `largest gap while blocked ${during.max.toFixed(2)} ms vs ${before.max.toFixed(2)} ms before`);
  } finally {
    await engine.close();
  }
});

test.serial('raw MPEG-TS over UDP delivers the asset bytes exactly across a failover', async (t) => {
  const engine = await startEngine();
  const receiver = await UdpReceiver.open({ mode: 'udp' });
  try {
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'udp' });
    await engine.play(session.id);
    await sleep(300);
    const switches = engine.status().switches;
    engine.injectFault(engine.status().active!, 'disk');
    await waitForRecovery(engine, switches);
    await sleep(300);
    engine.pause(session.id);
    await receiver.waitForQuiet(150, 5000);
    const sent = engine.getSession(session.id)!.sent;
    const payload = receiver.tsPayload();
    t.is(receiver.datagrams.length, sent);
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
    await sleep(800);
    engine.pause(session.id);
    await healthy.waitForQuiet(150, 5000);
    t.deepEqual(failovers, [], 'no path failed');
    t.true(engine.isProtected());
    // The ICMP error reaches Node either through the socket's receive side (reported)
    // or through the next send, whose error Node drops without a send callback: at most once.
    t.true(sessionErrors.filter((m) => m.startsWith('ECONNREFUSED')).length <= 1, `reported at most once: ${sessionErrors.join('; ')}`);
    const refusedNow = engine.getSession(refused.id)!;
    t.is(refusedNow.state, 'playing', 'a viewer not listening yet is normal: its stream is not ended');
    t.true(refusedNow.sent > 200, `the refused stream went on: ${refusedNow.sent} datagrams`);
    const check = checkRtpStream(healthy.packets, session, play, sample);
    t.is(healthy.datagrams.length, engine.getSession(session.id)!.sent);
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
    await healthy.waitForQuiet(150, 5000);

    t.deepEqual(failovers, [], 'no path failed');
    t.deepEqual(engine.status().paths.map((p) => p.incarnation), incarnations, 'no path was restarted');
    t.true(engine.isProtected());
    t.deepEqual(engine.listSessions().map((s) => s.id), [session.id], 'nothing was left half-open');
    const check = checkRtpStream(healthy.packets, session, play, sample);
    t.true(healthy.datagrams.length > 200, `received ${healthy.datagrams.length}`);
    t.is(healthy.datagrams.length, engine.getSession(session.id)!.sent);
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
    t.is(failovers.length, 1, `the first path to fail was failed over, the second found its bit: ${failovers.join(', ')}`);
    t.regex(failovers[0], /:disk$/);
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
