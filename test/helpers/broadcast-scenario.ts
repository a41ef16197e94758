// Run inside a test's network namespace (ip netns exec <ns> node broadcast-scenario.js <dev>):
// two sessions play, one to 127.0.0.1 and one from 10.77.0.1 to 10.77.0.255,
// a unicast address of the /16 on <dev> when the session is set up. Then a
// /24 is added on <dev>: 10.77.0.255 becomes its broadcast address and every
// send of that session is refused with EACCES, on either path. Prints what
// happened as JSON.

import { execFileSync } from 'node:child_process';
import type { FailoverEvent, SessionFailedEvent } from '../../src/engine/engine.js';
import { UdpReceiver } from './rtsp-client.js';
import { checkRtpStream, loadSample, sleep, startEngine, until } from './engine-fixture.js';

const dev = process.argv[2];
if (dev === undefined) throw new Error('usage: broadcast-scenario <device>');

const sample = await loadSample();
const engine = await startEngine();
const receiver = await UdpReceiver.open();
const failovers: string[] = [];
const failed: SessionFailedEvent[] = [];
const errors: string[] = [];
engine.on('failover', (e: FailoverEvent) => failovers.push(`${e.pathName}:${e.cause}`));
engine.on('session-failed', (e: SessionFailedEvent) => failed.push(e));
engine.on('session-error', (e: { message: string }) => errors.push(e.message));
try {
  const incarnations = engine.status().paths.map((p) => p.incarnation);
  const healthy = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
  const play = await engine.play(healthy.id);
  const doomed = await engine.openSession({ asset: sample.asset, destination: { address: '10.77.0.255', port: 9 }, transport: 'rtp', source: '10.77.0.1' });
  await engine.play(doomed.id);
  await sleep(300);
  const sentBefore = engine.getSession(doomed.id)!.sent;
  execFileSync('ip', ['addr', 'add', '10.77.0.2/24', 'dev', dev]);
  const changedAt = Date.now();
  let endedAfterMs: number | undefined;
  await until(() => failed.length > 0, 'the session to end', 3000).then(() => { endedAfterMs = Date.now() - changedAt; }, () => undefined);
  await sleep(500);
  const doomedNow = engine.getSession(doomed.id)!;
  engine.pause(healthy.id);
  await receiver.waitForQuiet(150, 5000);
  const check = checkRtpStream(receiver.packets, healthy, play, sample);
  process.stdout.write(JSON.stringify({
    failovers,
    failed: failed.map((f) => ({ id: f.id === doomed.id ? 'doomed' : f.id, scope: f.scope, reason: f.reason })),
    errors,
    endedAfterMs,
    doomed: { state: doomedNow.state, sentBefore, sentAfter: doomedNow.sent },
    restarted: engine.status().paths.map((p, i) => p.incarnation !== incarnations[i]),
    protected: engine.isProtected(),
    healthy: { received: receiver.datagrams.length, sent: engine.getSession(healthy.id)!.sent, lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched },
  }));
} finally {
  await receiver.close();
  await engine.close();
  await sample.cleanup();
}
