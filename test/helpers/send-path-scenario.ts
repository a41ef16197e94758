// Run in a child process with TWINFRAME_NATIVE as given: four sessions (three
// RTP, one raw MPEG-TS over UDP) stream the sample asset to real receivers, with
// a manual switch of the sending path among them. Prints each session's first
// datagrams as digests of their bytes, with the fields a session draws at random
// (SSRC, first sequence number, first RTP timestamp) replaced by their offsets
// from the play's: runs with and without the addon then compare byte for byte.

import { createHash } from 'node:crypto';
import { nativeSender } from '../../src/datapath/send-batch.js';
import type { PlayResult, SessionInfo } from '../../src/engine/engine.js';
import { UdpReceiver } from './rtsp-client.js';
import { loadSample, startEngine, until } from './engine-fixture.js';

/** Datagrams compared per session: the first argument. */
const COMPARED = Number(process.argv[2]);
if (!(COMPARED > 0)) throw new Error('usage: send-path-scenario <datagrams per session>');

const sample = await loadSample();
const engine = await startEngine();
const receivers: UdpReceiver[] = [];
try {
  const viewers: Array<{ receiver: UdpReceiver; session: SessionInfo; play: PlayResult }> = [];
  for (const transport of ['rtp', 'rtp', 'udp', 'rtp'] as const) {
    const receiver = await UdpReceiver.open({ mode: transport === 'rtp' ? 'rtp' : 'udp' });
    receivers.push(receiver);
    const session = await engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: receiver.rtpPort }, transport });
    viewers.push({ receiver, session, play: await engine.play(session.id) });
  }
  await until(() => receivers[0].datagrams.length >= COMPARED / 3, 'a third of the stream', 10_000);
  const switched = await engine.switchover();
  await until(() => receivers.every((r) => r.datagrams.length >= COMPARED), 'every stream', 20_000);
  for (const v of viewers) engine.pause(v.session.id);
  for (const r of receivers) await r.waitForQuiet(150, 5000);
  const sessions = viewers.map(({ receiver, session, play }) => ({
    transport: session.transport,
    received: receiver.datagrams.length,
    sent: engine.getSession(session.id)!.sent,
    digests: receiver.datagrams.slice(0, COMPARED).map((d) => {
      const bytes = Buffer.from(d.data);
      if (session.transport === 'rtp') {
        bytes.writeUInt16BE((bytes.readUInt16BE(2) - play.seq) & 0xffff, 2);
        bytes.writeUInt32BE((bytes.readUInt32BE(4) - play.rtptime) >>> 0, 4);
        bytes.writeUInt32BE((bytes.readUInt32BE(8) ^ session.ssrc) >>> 0, 8);
      }
      return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    }),
  }));
  process.stdout.write(JSON.stringify({ batchedNative: nativeSender !== undefined, switched, sessions }));
} finally {
  for (const r of receivers) await r.close();
  await engine.close();
  await sample.cleanup();
}
