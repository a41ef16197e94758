// Run in a child process with TWINFRAME_NATIVE=off (and TWINFRAME_REALTIME as
// given): one engine, one stream, a hang and a crash of the active path; prints
// what the receiver saw as JSON. Lets the suite run the failover path without
// the native addon, the way a machine without a compiler runs it.

import { UdpReceiver } from './rtsp-client.js';
import { checkRtpStream, loadSample, sleep, startEngine, waitForRecovery } from './engine-fixture.js';
import { nativeAddon } from '../../src/shared/native.js';

const sample = await loadSample();
const engine = await startEngine();
const receiver = await UdpReceiver.open();
const failovers: Array<{ cause: string; wasActive: boolean; detectionMs: number }> = [];
engine.on('failover', (e) => failovers.push({ cause: e.cause, wasActive: e.wasActive, detectionMs: e.detectedAtMs - e.failedAtMs }));
try {
  const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport: 'rtp' });
  const play = await engine.play(session.id);
  for (const kind of ['hang', 'crash'] as const) {
    await sleep(300);
    const switches = engine.status().switches;
    engine.injectFault(engine.status().active!, kind);
    await waitForRecovery(engine, switches);
  }
  await sleep(300);
  engine.pause(session.id);
  await receiver.waitForQuiet(150, 5000);
  const check = checkRtpStream(receiver.packets, session, play, sample);
  process.stdout.write(JSON.stringify({
    addonLoaded: nativeAddon !== undefined,
    received: receiver.datagrams.length,
    sent: engine.getSession(session.id)!.sent,
    lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched,
    failovers,
  }));
} finally {
  await receiver.close();
  await engine.close();
  await sample.cleanup();
}
