// Broadcasts end to end on 127.0.0.1 (unicast push; runs anywhere): a whole
// server carries a scheduled broadcast of the sample asset to a UDP receiver,
// byte for byte, through every fault kind (a restarted path picks the
// broadcast up and sends it after the next fault); a looped one plays through
// its loop point with RTP sequence numbers and timestamps continuous, the
// discontinuity flagged, and ffmpeg's demuxer finding no continuity error.

import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailureFaultKinds } from '../src/shared/commands.js';
import type { TwinframeConfigInput } from '../src/config/schema.js';
import { checkBroadcastStream, packetOfPayload } from './helpers/broadcast-check.js';
import { SAMPLE_ASSET, loadSample, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { startFileServer } from './helpers/media-server.js';
import { UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { runToString } from './helpers/run.js';
import { loopPlanOf } from '../src/broadcast/loop-source.js';
import { packetAdaptationFieldControl, packetDiscontinuity, packetPcr, packetPid } from '../src/mpegts/packet.js';
import type { TwinframeServer } from '../src/server.js';

leakCheck(test);

let sample: SampleAsset;
let tmp: string;
test.before(async () => {
  sample = await loadSample();
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-broadcast-'));
});
test.after.always(async () => {
  await sample?.cleanup();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

const MEDIA = path.dirname(SAMPLE_ASSET);
type BroadcastInput = NonNullable<TwinframeConfigInput['broadcasts']>[number];

async function withBroadcast(
  name: string,
  def: Omit<BroadcastInput, 'name' | 'to'>,
  fn: (ctx: { server: TwinframeServer; receiver: UdpReceiver; sessionId: string }) => Promise<void>,
): Promise<void> {
  const receiver = await UdpReceiver.open();
  const dir = await mkdtemp(path.join(tmp, `${name}-`));
  let server: TwinframeServer | undefined;
  try {
    server = await startFileServer(MEDIA, dir, { admin: { faultInjection: true }, broadcasts: [{ name, to: `127.0.0.1:${receiver.rtpPort}`, ...def }] });
    const manager = server.broadcasts;
    await until(() => manager.find(name)?.sessionId !== undefined || manager.list()[0]?.status === 'failed', `broadcast ${name} playing`);
    const view = manager.list()[0];
    if (view.status === 'failed') throw new Error(`broadcast failed: ${view.error}`);
    await fn({ server, receiver, sessionId: manager.find(name)!.sessionId! });
  } finally {
    await server?.close();
    await receiver.close();
  }
}

test.serial('a scheduled broadcast reaches its receiver byte-exact through every fault kind; a restarted path carries it after the next fault', async (t) => {
  await withBroadcast('faults', { asset: '/sample.ts', loop: true, at: new Date(Date.now() - 500).toISOString() }, async ({ server, receiver, sessionId }) => {
    const { engine } = server;
    const session = engine.getSession(sessionId)!;
    t.is(session.broadcast, 'faults');
    await receiver.waitForCount(20);
    for (const kind of FailureFaultKinds) {
      const before = engine.status().switches;
      engine.injectFault(engine.status().active!, kind);
      await until(() => engine.status().switches > before && engine.isProtected(), `recovery from ${kind}`, 15_000);
      const count = receiver.datagrams.length;
      await receiver.waitForCount(count + 20);
    }
    await server.broadcasts.apply([]); // removed: its session closes
    await receiver.waitForQuiet(150, 5000);
    const plan = await loopPlanOf(await server.catalog.resolve('/sample.ts'));
    const check = checkBroadcastStream(receiver.packets, session, sample, plan, 500 * 90);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.duplicated, 0);
    t.is(check.mismatched, 0, check.firstMismatch);
    t.true(check.startPacket > 0, 'started where its schedule said (500 ms in), not at the beginning');
    t.is(engine.listSessions().length, 0);
  });
});

test.serial('a looped broadcast plays through its loop point: RTP continuous, discontinuity flagged with the new PCR, no continuity error for ffmpeg', async (t) => {
  // Scheduled so that the asset's end comes 1.5 s after it starts.
  const offsetTicks = (sample.durationMs - 1500) * 90;
  const at = new Date(Date.now() - offsetTicks / 90).toISOString();
  await withBroadcast('loop', { asset: '/sample.ts', loop: true, at }, async ({ server, receiver, sessionId }) => {
    const session = server.engine.getSession(sessionId)!;
    const plan = await loopPlanOf(await server.catalog.resolve('/sample.ts'));
    await until(() => checkBroadcastStream(receiver.packets, session, sample, plan, offsetTicks).headers > 0, 'the loop point', 15_000);
    const count = receiver.datagrams.length;
    await receiver.waitForCount(count + 200);
    await server.broadcasts.apply([]);
    await receiver.waitForQuiet(150, 5000);
    const packets = receiver.packets;
    const check = checkBroadcastStream(packets, session, sample, plan, offsetTicks);
    t.is(check.lost, 0, JSON.stringify(check));
    t.is(check.mismatched, 0, check.firstMismatch);
    t.is(check.headers, 1, 'one loop header datagram (the sample has two PIDs besides PAT and PMT: four in all)');
    // RTP timestamps never go back across the loop point.
    for (let i = 1; i < packets.length; i++) t.true(((packets[i].timestamp - packets[i - 1].timestamp) | 0) >= 0, `timestamp of seq ${packets[i].sequence} goes back`);
    // The header datagram: every PID of the asset, discontinuity flagged, the new PCR on the PCR PID.
    const header = packets.find((p) => packetAdaptationFieldControl(p.payload, 0) === 2 && packetDiscontinuity(p.payload, 0))!;
    const pids: number[] = [];
    for (let o = 0; o < header.payload.length; o += 188) {
      const pid = packetPid(header.payload, o);
      if (pid === 0x1fff) continue;
      pids.push(pid);
      t.true(packetDiscontinuity(header.payload, o), `discontinuity_indicator on PID ${pid}`);
      if (pid === plan.pcrPid) t.is(packetPcr(header.payload, o), plan.pcr27);
    }
    t.deepEqual(pids, [...plan.pids]);
    t.true(plan.pids.includes(plan.pcrPid));

    // ffmpeg's demuxer checks every PID's continuity counter (logged at debug level).
    const ts = Buffer.concat(packets.map((p) => p.payload));
    const capture = path.join(tmp, 'loop.ts');
    await writeFile(capture, ts);
    const log = await ffmpegLog(capture);
    t.false(/Continuity check failed/.test(log), log.split('\n').filter((l) => /Continuity/.test(l)).slice(0, 5).join('\n'));
    // The same capture without the loop header: ffmpeg does see the counters jump (the check has teeth).
    const bare = Buffer.concat(packets.filter((p) => p !== header).map((p) => p.payload));
    await writeFile(capture, bare);
    t.true(/Continuity check failed/.test(await ffmpegLog(capture)), 'without the header the loop point is a continuity error');
  });
});

/** ffmpeg's debug log of demuxing and decoding a file. */
async function ffmpegLog(file: string): Promise<string> {
  const script = `ffmpeg -nostdin -hide_banner -v debug -i '${file}' -f null - 2>&1; true`;
  return runToString(['sh', '-c', script], 60_000);
}

test.serial('a server restart resumes a broadcast at its scheduled position', async (t) => {
  const receiver = await UdpReceiver.open();
  const atMs = Date.now() - 4000;
  const def: BroadcastInput = { name: 'resume', asset: '/sample.ts', to: `127.0.0.1:${receiver.rtpPort}`, loop: true, at: new Date(atMs).toISOString() };
  try {
    for (let run = 0; run < 2; run++) {
      const dir = await mkdtemp(path.join(tmp, `resume-${run}-`));
      const server = await startFileServer(MEDIA, dir, { broadcasts: [def] });
      try {
        const from = receiver.datagrams.length;
        await receiver.waitForCount(from + 1, 15_000);
        const first = receiver.datagrams[from];
        const arrivedMs = Date.now() - (Number(process.hrtime.bigint() - first.arrivalNs) / 1e6);
        const scheduledMs = (arrivedMs - atMs) % sample.durationMs;
        const packet = packetOfPayload(sample, first.rtp!.payload, scheduledMs * 90);
        const playedMs = sample.times[packet] / 90;
        t.true(Math.abs(playedMs - scheduledMs) < 1000, `run ${run}: at ${playedMs.toFixed(0)} ms of the asset, the schedule says ${scheduledMs.toFixed(0)} ms`);
      } finally {
        await server.close();
      }
      await receiver.waitForQuiet(100, 5000);
      await sleep(1000); // the schedule moves on while no server runs
    }
  } finally {
    await receiver.close();
  }
});
