// Run in a child process with TWINFRAME_NATIVE=off (and TWINFRAME_REALTIME as
// given): one engine, one stream, a hang and a crash of the active path; prints
// what the receiver saw as JSON. Lets the suite run the failover path without
// the native addon, the way a machine without a compiler runs it.

import { UdpReceiver } from './rtsp-client.js';
import { checkRtpStream, loadSample, nowMs, sleep, startEngine, until } from './engine-fixture.js';
import { nativeAddon } from '../../src/shared/native.js';
import type { FailoverEvent, HandoverEvent } from '../../src/engine/engine.js';
import { largestGap, minDatagrams } from './stream-pacing.js';

const sample = await loadSample();
const engine = await startEngine();
const receiver = await UdpReceiver.open();
/**
 * movedSending: the failed path was sending, and sending left it (by the failure's switch, or a handover just before);
 * injected: the round's victim failed (any other failure is a late path's on a loaded machine).
 */
const failovers: Array<{ path: string; cause: string; movedSending: boolean; detectionMs: number; injected: boolean }> = [];
/** When each fault was injected, for the pacing after it. */
const injectedAt: number[] = [];
const handedOverFrom = new Set<string>();
const roundFailures: FailoverEvent[] = [];
engine.on('handover', (h: HandoverEvent) => handedOverFrom.add(h.from));
engine.on('failover', (e: FailoverEvent) => roundFailures.push(e));
try {
  const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
  const play = await engine.play(session.id);
  const playedAt = nowMs();
  for (const kind of ['hang', 'crash'] as const) {
    await sleep(300);
    const victim = engine.status().active!;
    handedOverFrom.clear();
    roundFailures.length = 0;
    injectedAt.push(nowMs());
    engine.injectFault(victim, kind);
    await until(() => roundFailures.some((f) => f.pathName === victim), 'the expected event', 5000);
    await engine.waitUntilProtected(10_000);
    // Judged once the round is over: the standby's handover and the supervisor's failure come from two threads.
    for (const e of roundFailures) {
      failovers.push({
        path: e.pathName, cause: e.cause, movedSending: (e.wasActive && e.switchedTo !== undefined) || handedOverFrom.has(e.pathName), detectionMs: e.detectedAtMs - e.failedAtMs,
        injected: e.pathName === victim,
      });
    }
  }
  await sleep(300);
  engine.pause(session.id);
  const pausedAt = nowMs();
  await receiver.waitForQuiet(150, 5000);
  const check = checkRtpStream(receiver.packets, session, play, sample);
  const arrivals = receiver.arrivalsMs();
  process.stdout.write(JSON.stringify({
    addonLoaded: nativeAddon !== undefined,
    received: receiver.datagrams.length,
    minDatagrams: minDatagrams(sample, pausedAt - playedAt),
    gapsMs: injectedAt.map((at, i) => largestGap(arrivals, at, injectedAt[i + 1] ?? pausedAt).maxMs),
    sent: engine.getSession(session.id)!.sent,
    lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched,
    failovers,
  }));
} finally {
  await receiver.close();
  await engine.close();
  await sample.cleanup();
}
