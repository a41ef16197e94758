// Run inside a test's network namespace (ip netns exec <ns> node netns-multicast-broadcast.js <out-dir>),
// whose loopback is up with 224.0.0.0/4 routed to it: the whole server (the
// server object of src/server.ts, as the twinframe command starts it, from a
// configuration file), its broadcasts added with twinframectl to multicast
// groups, each heard by a receiver that joined its group. One server carries,
// one after the other:
//   faults  — scheduled 1 s ahead, through every failure fault of the sender;
//   pickup  — the standby crashes and restarts mid-broadcast, then the sender
//             fails: the restarted path carries the broadcast on;
//   loop    — looped, the sender crashed just before the loop point;
//   reload  — multicast.ttl changed in the file and reloaded: the group
//             broadcast that takes the server's TTL starts again with it;
//   resume  — the server is closed and started again from the file
//             twinframectl wrote: the broadcast resumes at its scheduled position.
// Writes the loop phase's capture (with and without its loop header) to
// <out-dir> for the test's players; prints the facts of every phase as JSON.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loopPlanOf } from '../../src/broadcast/loop-source.js';
import type { BroadcastView } from '../../src/broadcast/manager.js';
import type { ReloadResult } from '../../src/config/reload.js';
import { loadConfig, saveConfig, updateConfig } from '../../src/config/store.js';
import type { FailoverEvent, SessionInfo } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/log.js';
import type { LoopPlan } from '../../src/mpegts/loop.js';
import { packetAdaptationFieldControl, packetDiscontinuity, packetPcr, packetPid } from '../../src/mpegts/packet.js';
import { RTCP_BYE } from '../../src/rtsp/rtcp.js';
import { startServer, type TwinframeServer } from '../../src/server.js';
import { FailureFaultKinds } from '../../src/shared/commands.js';
import { checkBroadcastStream, packetOfPayload, type BroadcastCheck } from './broadcast-check.js';
import { loadSample, sleep, until } from './engine-fixture.js';
import { RtspClient, UdpReceiver, type ReceivedDatagram, type RtpPacket } from './rtsp-client.js';
import { parseCompound } from './rtcp.js';
import { TWINFRAMECTL, runToString } from './run.js';
import { largestGap } from './stream-pacing.js';

/** What a receiver joined to one broadcast's group got, held against the asset. */
export interface GroupStream {
  readonly check: BroadcastCheck;
  readonly received: number;
  /** Every source address:port the datagrams came from (both paths send from one). */
  readonly sources: string[];
  /** The broadcast session's own source, address:RTP port. */
  readonly source: string;
  /** The largest gap between arrivals, first to last (ms). */
  readonly largestGapMs: number;
  /** Failovers while it played, path:cause. */
  readonly failovers: string[];
  readonly rtcp: RtcpFacts;
}

/** The RTCP a receiver got from the broadcast's session (on the destination's port + 1). */
export interface RtcpFacts {
  /** Compound packets with the session's SSRC. */
  readonly reports: number;
  /** Where they came from, and the session's source address and RTCP port. */
  readonly sources: string[];
  readonly source: string;
  /** The last one ends with a BYE. */
  readonly bye: boolean;
  /** The largest difference between a report's wall clock and the arrival of the datagram its RTP timestamp names (ms). */
  readonly largestSkewMs: number;
  /** The last report's packet and octet counts, and the payload octets of that many datagrams as received. */
  readonly lastPackets: number;
  readonly lastOctets: number;
  readonly receivedOctets: number;
}

export interface MulticastBroadcastOutcome {
  readonly faults: GroupStream & {
    /** Its status right after `twinframectl broadcast add` (scheduled 1 s ahead). */
    readonly addedStatus: string;
    /** How long before its scheduled time the first datagram came (ms; ≤ 0: not before). */
    readonly earlyMs: number;
    readonly kinds: string[];
    /** The Transport header of the 200 a multicast SETUP of it got while it ran, and its session's SSRC (every datagram carries it). */
    readonly setupTransport: string | undefined;
    readonly ssrc: number;
    readonly group: string;
    readonly port: number;
  };
  readonly pickup: GroupStream & {
    /** The crashed standby restarted, synchronized, while the sender sent on untouched. */
    readonly senderUntouched: boolean;
    /** After the sender's crash, the path sending is the one that had restarted. */
    readonly carriedByRestarted: boolean;
    /** Datagrams received after the restarted path took over. */
    readonly afterTakeover: number;
  };
  readonly loop: GroupStream & {
    /** How long before the loop point the sender was crashed (ms; > 0: before). */
    readonly crashLeadMs: number;
    /** RTP timestamps that went back from one datagram to the next. */
    readonly timestampsBack: number;
    readonly plan: { readonly pids: number[]; readonly pcrPid: number; readonly pcr27: number };
    /** The loop header datagram: its PIDs (null packets aside), which carry the discontinuity flag, its PCR. */
    readonly header: { readonly pids: number[]; readonly flagged: number[]; readonly pcr27: number | null } | null;
  };
  readonly reload: {
    /** What `twinframectl reload` reported after multicast.ttl went from 1 to 2 in the file. */
    readonly applied: string[];
    readonly restartNeeded: string[];
    /** The c= line DESCRIBE answers, before and after. */
    readonly sdpBefore: string | undefined;
    readonly sdpAfter: string | undefined;
    /** The broadcast that takes the server's TTL started again (a new session); the one with its own TTL did not. */
    readonly restarted: boolean;
    readonly ownTtlUntouched: boolean;
    /** The restarted broadcast's new session, from its first datagram. */
    readonly stream: GroupStream;
  };
  readonly resume: {
    /** Per server run: where in the asset its first datagram was, and where the schedule said (ms). */
    readonly runs: Array<{ readonly playedMs: number; readonly scheduledMs: number }>;
    /** The table the restarted server read from the file twinframectl wrote. */
    readonly tableAfterRestart: string[];
    /** The restarted server's stream, from its first datagram. */
    readonly stream: GroupStream;
  };
}

const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets');
/** One group per phase, so a late datagram of one cannot land in the next. */
const GROUPS = { faults: '239.255.16.21', pickup: '239.255.16.22', loop: '239.255.16.23', resume: '239.255.16.24', ttl: '239.255.16.25', ownttl: '239.255.16.26' } as const;

const out = process.argv[2];
if (out === undefined) throw new Error('usage: netns-multicast-broadcast <out-dir>');
const sample = await loadSample();
const tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-mcast-bcast-'));
const configPath = path.join(tmp, 'twinframe.json');
await saveConfig(configPath, {
  media: { mounts: [{ prefix: '', dir: ASSETS }], cacheDir: path.join(tmp, 'cache') },
  admin: { socketPath: path.join(tmp, 'admin.sock'), faultInjection: true },
  metrics: { listen: '' },
  multicast: { ttl: 1 },
  log: { level: 'silent' },
});
const receivers: UdpReceiver[] = [];
const failovers: string[] = [];
let server: TwinframeServer | undefined;

/** The whole server from the configuration file, as the twinframe command starts it. */
async function start(): Promise<TwinframeServer> {
  const config = await loadConfig(configPath);
  const started = await startServer({ config, configPath, logger: silentLogger, loadConfig: () => loadConfig(configPath), rtsp: { host: '127.0.0.1', port: 0 } });
  started.engine.on('failover', (e: FailoverEvent) => failovers.push(`${e.pathName}:${e.cause}`));
  return started;
}

/** twinframectl --json against the server's admin socket, its answer parsed. */
async function ctl<T>(...args: string[]): Promise<T> {
  const stdout = await runToString([process.execPath, TWINFRAMECTL, '--socket', path.join(tmp, 'admin.sock'), '--json', ...args], 20_000);
  return JSON.parse(stdout) as T;
}

async function joined(group: string): Promise<UdpReceiver> {
  const receiver = await UdpReceiver.open({ host: '0.0.0.0' });
  receivers.push(receiver);
  receiver.joinGroup(group, '127.0.0.1');
  return receiver;
}

/** `broadcast add` of the sample to the receiver's group and port. */
function add(name: keyof typeof GROUPS, receiver: UdpReceiver, atMs: number, ...more: string[]): Promise<BroadcastView> {
  return ctl<BroadcastView>('broadcast', 'add', name, '--asset', '/sample.ts', '--to', `${GROUPS[name]}:${receiver.rtpPort}`, '--at', new Date(atMs).toISOString(), ...more);
}

/** The broadcast's engine session once it plays (kept: it is gone from the engine once the broadcast is removed). */
async function playing(s: TwinframeServer, name: string): Promise<SessionInfo> {
  await until(() => s.broadcasts.find(name)?.sessionId !== undefined || s.broadcasts.list().some((b) => b.name === name && b.status === 'failed'), `broadcast ${name} playing`, 15_000);
  const id = s.broadcasts.find(name)!.sessionId;
  if (id === undefined) throw new Error(`broadcast ${name} failed: ${s.broadcasts.list().find((b) => b.name === name)?.error}`);
  return s.engine.getSession(id)!;
}

/** The stream from datagram `from` on, once the group is quiet, held against the asset. */
async function heard(receiver: UdpReceiver, session: SessionInfo, plan: LoopPlan | undefined, from = 0): Promise<GroupStream> {
  await receiver.waitForQuiet(150, 5000);
  const datagrams = receiver.datagrams.slice(from);
  const packets = datagrams.flatMap((d) => (d.rtp ? [d.rtp] : []));
  const arrivals = datagrams.map((d) => Number(d.arrivalNs) / 1e6);
  return {
    check: checkBroadcastStream(packets, session, sample, plan),
    received: datagrams.length,
    sources: [...new Set(datagrams.map((d) => d.from))],
    source: `${session.source.address}:${session.source.rtpPort}`,
    largestGapMs: arrivals.length < 2 ? 1e9 : largestGap(arrivals, arrivals[0], arrivals.at(-1)!).maxMs,
    failovers: [...failovers],
    rtcp: rtcpFacts(receiver, session, datagrams),
  };
}

/** Seconds between the NTP epoch (1900) and the Unix epoch. */
const NTP_UNIX_S = 2_208_988_800;

function rtcpFacts(receiver: UdpReceiver, session: SessionInfo, datagrams: readonly ReceivedDatagram[]): RtcpFacts {
  const hrNow = process.hrtime.bigint();
  const wallNow = Date.now();
  const rtp = datagrams.flatMap((d) => (d.rtp ? [{ packet: d.rtp, wallMs: wallNow - Number(hrNow - d.arrivalNs) / 1e6 }] : []));
  const reports = receiver.rtcpDatagrams
    .map((d) => ({ from: d.from, parts: parseCompound(d.data) }))
    .filter((r) => r.parts[0]?.ssrc === session.ssrc);
  let largestSkewMs = 0;
  let last = { packets: 0, octets: 0 };
  const off = (timestamp: number, from: number): number => Math.abs((timestamp - from) | 0);
  for (const { parts } of reports) {
    const sr = parts[0].body;
    const wallMs = (sr.readUInt32BE(8) - NTP_UNIX_S) * 1000 + (sr.readUInt32BE(12) / 2 ** 32) * 1000;
    const timestamp = sr.readUInt32BE(16);
    last = { packets: sr.readUInt32BE(20), octets: sr.readUInt32BE(24) };
    // The datagram stamped nearest the report's RTP time left when the report's clock said that time.
    const nearest = rtp.reduce<(typeof rtp)[number] | undefined>((best, r) => (best === undefined || off(r.packet.timestamp, timestamp) < off(best.packet.timestamp, timestamp) ? r : best), undefined);
    if (nearest !== undefined) largestSkewMs = Math.max(largestSkewMs, Math.abs(nearest.wallMs - wallMs - ((nearest.packet.timestamp - timestamp) | 0) / 90));
  }
  const receivedOctets = rtp.filter((r) => ((r.packet.sequence - session.initialSeq) & 0xffff) < last.packets).reduce((sum, r) => sum + r.packet.payload.length, 0);
  return {
    reports: reports.length, sources: [...new Set(reports.map((r) => r.from))], source: `${session.source.address}:${session.source.rtcpPort}`, bye: reports.at(-1)?.parts.some((p) => p.type === RTCP_BYE) ?? false,
    largestSkewMs, lastPackets: last.packets, lastOctets: last.octets, receivedOctets,
  };
}

async function removeAndHear(name: string, receiver: UdpReceiver, session: SessionInfo, plan: LoopPlan | undefined): Promise<GroupStream> {
  await ctl('broadcast', 'remove', name);
  return heard(receiver, session, plan);
}

function incarnationOf(s: TwinframeServer, path: string): number {
  return s.engine.status().paths.find((p) => p.path === path)!.incarnation;
}

/** Fault the sender; resolves once the failed path was replaced and the pair is protected again. */
async function failSender(s: TwinframeServer, kind: (typeof FailureFaultKinds)[number]): Promise<void> {
  const target = s.engine.status().active!;
  const before = incarnationOf(s, target);
  s.engine.injectFault(target, kind);
  await until(() => incarnationOf(s, target) > before && s.engine.isProtected(), `recovery from ${kind}`, 15_000);
}

async function faultsPhase(s: TwinframeServer): Promise<MulticastBroadcastOutcome['faults']> {
  failovers.length = 0;
  const receiver = await joined(GROUPS.faults);
  const atMs = Date.now() + 1000;
  const added = await add('faults', receiver, atMs, '--loop');
  const session = await playing(s, 'faults');
  const setupTransport = await joinByRtsp(s, 'faults');
  await receiver.waitForCount(20, 15_000);
  const first = receiver.datagrams[0];
  const firstAtMs = Date.now() - Number(process.hrtime.bigint() - first.arrivalNs) / 1e6;
  for (const kind of FailureFaultKinds) {
    await failSender(s, kind);
    await receiver.waitForCount(receiver.datagrams.length + 20, 15_000);
  }
  const plan = await loopPlanOf(await s.catalog.resolve('/sample.ts'));
  return {
    ...(await removeAndHear('faults', receiver, session, plan)), addedStatus: added.status, earlyMs: atMs - firstAtMs, kinds: [...FailureFaultKinds],
    setupTransport, ssrc: session.ssrc, group: GROUPS.faults, port: receiver.rtpPort,
  };
}

/** A viewer's RTSP multicast SETUP of a running broadcast (then TEARDOWN): the Transport header of its 200. */
async function joinByRtsp(s: TwinframeServer, name: string): Promise<string | undefined> {
  const client = await RtspClient.connect({ port: s.rtsp.port });
  try {
    const reply = await client.setup(`/broadcast/${name}/track1`, 'RTP/AVP;multicast');
    await client.teardown(`/broadcast/${name}`);
    return reply.status === 200 ? reply.headers.get('transport') : `status ${reply.status}`;
  } finally {
    await client.close();
  }
}

async function pickupPhase(s: TwinframeServer): Promise<MulticastBroadcastOutcome['pickup']> {
  failovers.length = 0;
  const receiver = await joined(GROUPS.pickup);
  await add('pickup', receiver, Date.now(), '--loop');
  const session = await playing(s, 'pickup');
  await receiver.waitForCount(20, 15_000);
  const sender = s.engine.status().active!;
  const standby = sender === 'a' ? 'b' : 'a';
  const senderBefore = incarnationOf(s, sender);
  const before = incarnationOf(s, standby);
  s.engine.injectFault(standby, 'crash');
  await until(() => incarnationOf(s, standby) > before && s.engine.isProtected(), 'the standby restarted and synchronized', 15_000);
  const senderUntouched = s.engine.status().active === sender && incarnationOf(s, sender) === senderBefore;
  await receiver.waitForCount(receiver.datagrams.length + 20, 15_000);
  await failSender(s, 'crash');
  const carriedByRestarted = s.engine.status().active === standby;
  const takeover = receiver.datagrams.length;
  await receiver.waitForCount(takeover + 50, 15_000);
  const plan = await loopPlanOf(await s.catalog.resolve('/sample.ts'));
  const stream = await removeAndHear('pickup', receiver, session, plan);
  return { ...stream, senderUntouched, carriedByRestarted, afterTakeover: receiver.datagrams.length - takeover };
}

async function loopPhase(s: TwinframeServer): Promise<MulticastBroadcastOutcome['loop']> {
  failovers.length = 0;
  const receiver = await joined(GROUPS.loop);
  // Its schedule puts the asset's end 2.5 s after now (twinframectl itself takes a few hundred ms).
  const atMs = Date.now() - (sample.durationMs - 2500);
  await add('loop', receiver, atMs, '--loop');
  const session = await playing(s, 'loop');
  const plan = await loopPlanOf(await s.catalog.resolve('/sample.ts'));
  // The sender crashes just before the loop point: its twin carries the broadcast across it.
  const loopAtMs = atMs + sample.durationMs;
  await sleep(Math.max(0, loopAtMs - 30 - Date.now()));
  const crashLeadMs = loopAtMs - Date.now();
  const switches = s.engine.status().switches;
  s.engine.injectFault(s.engine.status().active!, 'crash');
  await until(() => s.engine.status().switches > switches, 'the failover');
  const isHeader = (p: RtpPacket): boolean => packetAdaptationFieldControl(p.payload, 0) === 2 && packetDiscontinuity(p.payload, 0);
  await until(() => receiver.packets.some(isHeader), 'the loop point', 15_000);
  await receiver.waitForCount(receiver.datagrams.length + 200, 15_000);
  const stream = await removeAndHear('loop', receiver, session, plan);
  const packets = receiver.packets;
  let timestampsBack = 0;
  for (let i = 1; i < packets.length; i++) if (((packets[i].timestamp - packets[i - 1].timestamp) | 0) < 0) timestampsBack++;
  const header = packets.find(isHeader);
  // For the test's players: the capture as received, and without the loop header datagram.
  await writeFile(path.join(out, 'loop.ts'), Buffer.concat(packets.map((p) => p.payload)));
  await writeFile(path.join(out, 'loop-bare.ts'), Buffer.concat(packets.filter((p) => p !== header).map((p) => p.payload)));
  return {
    ...stream, crashLeadMs, timestampsBack,
    plan: { pids: [...plan.pids], pcrPid: plan.pcrPid, pcr27: plan.pcr27 },
    header: header === undefined ? null : headerFacts(header.payload, plan.pcrPid),
  };
}

function headerFacts(payload: Buffer, pcrPid: number): NonNullable<MulticastBroadcastOutcome['loop']['header']> {
  const pids: number[] = [];
  const flagged: number[] = [];
  let pcr27: number | null = null;
  for (let o = 0; o < payload.length; o += 188) {
    const pid = packetPid(payload, o);
    if (pid === 0x1fff) continue;
    pids.push(pid);
    if (packetDiscontinuity(payload, o)) flagged.push(pid);
    if (pid === pcrPid) pcr27 = packetPcr(payload, o);
  }
  return { pids, flagged, pcr27 };
}

/** Where in the asset (ms) the datagram that arrived first from `from` on is, and where the schedule said. */
function position(receiver: UdpReceiver, from: number, atMs: number): { playedMs: number; scheduledMs: number } {
  const first = receiver.datagrams[from];
  const arrivedMs = Date.now() - Number(process.hrtime.bigint() - first.arrivalNs) / 1e6;
  const scheduledMs = (arrivedMs - atMs) % sample.durationMs;
  const packet = packetOfPayload(sample, first.rtp!.payload, scheduledMs * 90);
  return { playedMs: packet < 0 ? -1 : sample.times[packet] / 90, scheduledMs };
}

/** The c= line of a broadcast's SDP. */
async function connectionLine(s: TwinframeServer, name: string): Promise<string | undefined> {
  const client = await RtspClient.connect({ port: s.rtsp.port });
  try {
    return /^c=.*$/m.exec((await client.describe(`/broadcast/${name}`)).body.toString())?.[0].trim();
  } finally {
    await client.close();
  }
}

async function reloadPhase(s: TwinframeServer): Promise<MulticastBroadcastOutcome['reload']> {
  failovers.length = 0;
  const receiver = await joined(GROUPS.ttl);
  const own = await joined(GROUPS.ownttl);
  await add('ttl', receiver, Date.now(), '--loop');
  await add('ownttl', own, Date.now(), '--loop', '--ttl', '3');
  const before = await playing(s, 'ttl');
  const ownBefore = await playing(s, 'ownttl');
  await receiver.waitForCount(20, 15_000);
  const sdpBefore = await connectionLine(s, 'ttl');
  await updateConfig(configPath, { multicast: { ttl: 2 } });
  const result = await ctl<ReloadResult>('reload');
  await until(() => (s.broadcasts.find('ttl')?.sessionId ?? before.id) !== before.id, 'the broadcast to start again', 15_000);
  const after = await playing(s, 'ttl');
  await until(() => receiver.packets.filter((p) => p.ssrc === after.ssrc).length >= 50, 'the new session\'s datagrams', 15_000);
  const sdpAfter = await connectionLine(s, 'ttl');
  const ownTtlUntouched = s.broadcasts.find('ownttl')?.sessionId === ownBefore.id;
  await ctl('broadcast', 'remove', 'ttl');
  await ctl('broadcast', 'remove', 'ownttl');
  const plan = await loopPlanOf(await s.catalog.resolve('/sample.ts'));
  const stream = await heard(receiver, after, plan, receiver.datagrams.findIndex((d) => d.rtp?.ssrc === after.ssrc));
  return {
    applied: [...result.applied], restartNeeded: result.restartNeeded.map((r) => r.path), sdpBefore, sdpAfter,
    restarted: after.id !== before.id, ownTtlUntouched, stream,
  };
}

async function resumePhase(first: TwinframeServer): Promise<MulticastBroadcastOutcome['resume']> {
  failovers.length = 0;
  const receiver = await joined(GROUPS.resume);
  const atMs = Date.now() - 4000;
  await add('resume', receiver, atMs, '--loop');
  await receiver.waitForCount(1, 15_000);
  const runs = [position(receiver, 0, atMs)];
  await first.close();
  server = undefined;
  await receiver.waitForQuiet(100, 5000);
  await sleep(1000); // the schedule moves on while no server runs
  server = await start();
  const tableAfterRestart = server.broadcasts.table().map((b) => b.name);
  const from = receiver.datagrams.length;
  const session = await playing(server, 'resume');
  await receiver.waitForCount(from + 1, 15_000);
  runs.push(position(receiver, from, atMs));
  await receiver.waitForCount(from + 200, 15_000);
  const plan = await loopPlanOf(await server.catalog.resolve('/sample.ts'));
  await ctl('broadcast', 'remove', 'resume');
  return { runs, tableAfterRestart, stream: await heard(receiver, session, plan, from) };
}

try {
  server = await start();
  const faults = await faultsPhase(server);
  const pickup = await pickupPhase(server);
  const loop = await loopPhase(server);
  const reload = await reloadPhase(server);
  const resume = await resumePhase(server);
  const outcome: MulticastBroadcastOutcome = { faults, pickup, loop, reload, resume };
  process.stdout.write(JSON.stringify(outcome));
} finally {
  await server?.close();
  await Promise.all(receivers.map((r) => r.close()));
  await sample.cleanup();
  await rm(tmp, { recursive: true, force: true });
}
