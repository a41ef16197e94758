// Run inside a test's network namespace (ip netns exec <ns> node netns-multicast-engine.js),
// whose loopback is up with 224.0.0.0/4 routed to it: an engine session sent to
// a multicast group, heard by a receiver that joined the group: healthy (once
// by route, once with the interface named), then through each fault of the
// active path named on the command line ('all': every failure fault, then a
// slow disk, which hands sending over without failing the path, and stays, so
// it runs last). Prints the outcome of each run as JSON.

import { createSocket } from 'node:dgram';
import { FailureFaultKinds, type FaultKind } from '../../src/shared/commands.js';
import type { FailoverEvent, HandoverEvent } from '../../src/engine/engine.js';
import { checkRtpStream, loadSample, nowMs, sleep, startEngine, waitForRecovery } from './engine-fixture.js';
import { largestGap, minDatagrams } from './stream-pacing.js';
import { parseRtpPacket, type RtpPacket } from './rtsp-client.js';

const GROUP = '239.255.16.3';

export interface MulticastRun {
  readonly fault: FaultKind | null;
  /** The multicast interface the session named (undefined: by route). */
  readonly interface: string | undefined;
  readonly failovers: string[];
  /** Sending moved to the twin without a failure (a slow disk). */
  readonly handovers: number;
  readonly received: number;
  readonly sent: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly mismatched: number;
  readonly firstMismatch: string | undefined;
  /** Every source address:port the datagrams came from (both paths send from one). */
  readonly sources: string[];
  /** The session's own source, address:RTP port. */
  readonly source: string;
  /** The fewest datagrams the time it played must have carried (stream-pacing.ts). */
  readonly leastExpected: number;
  /** The largest gap between arrivals while it played (ms). */
  readonly largestGapMs: number;
}

const sample = await loadSample();
const engine = await startEngine();
const failovers: string[] = [];
engine.on('failover', (e: FailoverEvent) => failovers.push(`${e.pathName}:${e.cause}`));
let handovers = 0;
engine.on('handover', (_e: HandoverEvent) => { handovers++; });
const receiver = createSocket({ type: 'udp4', reuseAddr: true });
const packets: RtpPacket[] = [];
const arrivals: number[] = [];
const sources = new Set<string>();
receiver.on('message', (data, rinfo) => {
  packets.push(parseRtpPacket(data));
  arrivals.push(nowMs());
  sources.add(`${rinfo.address}:${rinfo.port}`);
});
const runs: MulticastRun[] = [];
try {
  await new Promise<void>((resolve) => receiver.bind({ port: 0, address: '0.0.0.0' }, resolve));
  receiver.addMembership(GROUP, '127.0.0.1');
  receiver.setRecvBufferSize(4 * 1024 * 1024);
  const port = receiver.address().port;
  const named = process.argv.slice(2);
  const faults: FaultKind[] = named.includes('all') ? [...FailureFaultKinds, 'slow-disk'] : FailureFaultKinds.filter((k) => named.includes(k));
  const plan = [{ fault: null, iface: undefined }, { fault: null, iface: '127.0.0.1' }, ...faults.map((fault) => ({ fault, iface: undefined }))];
  for (const { fault, iface } of plan) {
    packets.length = 0;
    arrivals.length = 0;
    sources.clear();
    failovers.length = 0;
    handovers = 0;
    const session = await engine.openSession({
      asset: sample.asset, destination: { address: GROUP, port }, transport: 'rtp', source: '127.0.0.1',
      multicast: { ttl: 1, ...(iface === undefined ? {} : { interface: iface }) },
    });
    const play = await engine.play(session.id);
    const playedFrom = nowMs();
    await sleep(400);
    if (fault === 'slow-disk') {
      // Every read of the active path now misses its deadline: its twin takes sending over.
      engine.injectFault(engine.status().active!, fault, 0, 400);
      await sleep(1200);
    } else if (fault !== null) {
      const before = engine.status();
      engine.injectFault(before.active!, fault);
      await waitForRecovery(engine, before.switches);
      await sleep(300);
    }
    engine.pause(session.id);
    const playedTo = nowMs();
    // Everything sent has arrived once the group is quiet for a while; the count is read then, as
    // the path takes the pause from its queue and may send a datagram or two before it does.
    let seen = -1;
    while (seen !== packets.length) {
      seen = packets.length;
      await sleep(200);
    }
    const sent = engine.getSession(session.id)!.sent;
    const check = checkRtpStream(packets, session, play, sample);
    runs.push({
      fault, interface: iface, failovers: [...failovers], handovers, received: packets.length, sent, lost: check.lost, duplicated: check.duplicated,
      mismatched: check.mismatched, firstMismatch: check.firstMismatch, sources: [...sources],
      source: `${session.source.address}:${session.source.rtpPort}`,
      leastExpected: minDatagrams(sample, playedTo - playedFrom),
      // From the first arrival: the start of a play is not what a fault can delay.
      largestGapMs: arrivals.length === 0 ? playedTo - playedFrom : largestGap(arrivals, arrivals[0], playedTo).maxMs,
    });
    engine.closeSession(session.id);
  }
  process.stdout.write(JSON.stringify(runs));
} finally {
  receiver.close();
  await engine.close();
  await sample.cleanup();
}
