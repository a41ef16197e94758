// Claims of the running server checked from outside, as a viewer and an
// operator see them: RTCP sender reports against the stream they describe,
// the configured server port range (exhaustion answered, ports freed at
// TEARDOWN), and a heartbeat change through twinframectl taking effect.

import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig } from '../src/config/schema.js';
import type { FailoverEvent } from '../src/engine/engine.js';
import { silentLogger } from '../src/log.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { parseTransport } from '../src/rtsp/headers/transport.js';
import { RTCP_BYE, RTCP_SR } from '../src/rtsp/rtcp.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { loadSample, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { freeUdpPortRange } from './helpers/port-range.js';
import { parseCompound, type ParsedRtcp } from './helpers/rtcp.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { TWINFRAMECTL } from './helpers/run.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ASSETS = path.resolve(here, '../../assets');
const run = promisify(execFile);
const RTCP_SDES = 202;

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

async function server(t: ExecutionContext, overrides: Record<string, unknown> = {}): Promise<TwinframeServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-claims-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: ASSETS }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
    ...overrides,
  });
  const s = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => s.close());
  return s;
}

async function viewer(t: ExecutionContext, s: TwinframeServer): Promise<{ client: RtspClient; receiver: UdpReceiver }> {
  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  // Generous: the first SETUP indexes the asset, on a busy machine.
  const client = await RtspClient.connect({ port: s.rtsp.port, timeoutMs: 20_000 });
  t.teardown(() => client.close());
  return { client, receiver };
}

interface Report {
  readonly from: string;
  readonly ntpMs: number;
  readonly rtp: number;
  readonly packets: number;
  readonly octets: number;
  readonly cname: string | undefined;
  readonly bye: boolean;
}

/** Sender reports as the viewer got them: SR fields, the CNAME of the same compound packet, BYE or not. */
function reports(receiver: UdpReceiver, ssrc: number): Report[] {
  return receiver.rtcpDatagrams.map((d) => {
    const parts = parseCompound(d.data);
    const sr = parts.find((p) => p.type === RTCP_SR && p.ssrc === ssrc);
    if (!sr) throw new Error('a compound packet without a sender report first');
    const sdes = parts.find((p: ParsedRtcp) => p.type === RTCP_SDES);
    const body = sr.body;
    return {
      from: d.from,
      ntpMs: (body.readUInt32BE(8) - 2_208_988_800) * 1000 + (body.readUInt32BE(12) / 2 ** 32) * 1000,
      rtp: body.readUInt32BE(16),
      packets: body.readUInt32BE(20),
      octets: body.readUInt32BE(24),
      cname: sdes && sdes.body[8] === 1 ? sdes.body.toString('utf8', 10, 10 + sdes.body[9]) : undefined,
      bye: parts.some((p) => p.type === RTCP_BYE && p.ssrc === ssrc),
    };
  });
}

test.serial('RTCP sender reports match the stream: NTP↔RTP mapping within a few ms of the data, counts exact, CNAME, from the RTCP server port', async (t) => {
  const s = await server(t);
  const { client, receiver } = await viewer(t, s);
  const setup = await client.setup('/sample.ts/track1', receiver.transportHeader());
  t.is(setup.status, 200);
  const [transport] = parseTransport(setup.headers.get('transport')!);
  const info = s.engine.getSession(client.session!)!;
  const play = await client.play('/sample.ts/', 'npt=0-');
  t.is(play.status, 200);
  // The receiver stamps arrivals on hrtime; this maps them to wall-clock time, as the reports' NTP is.
  const wallOffsetMs = Date.now() - Number(process.hrtime.bigint()) / 1e6;
  await until(() => receiver.rtcpDatagrams.length > 0, 'a first sender report', 5000);
  await sleep(300);
  t.is((await client.pause('/sample.ts')).status, 200);
  await receiver.waitForQuiet(150, 5000);
  t.is((await client.teardown('/sample.ts')).status, 200);
  await until(() => reports(receiver, info.ssrc).some((r) => r.bye), 'the BYE', 3000);

  const all = reports(receiver, info.ssrc);
  const rtcpSource = `${info.source.address}:${transport.serverPort!.last}`;
  t.deepEqual([...new Set(all.map((r) => r.from))], [rtcpSource], 'every report from the server_port the SETUP reply named for RTCP');
  t.true(all.every((r) => r.cname?.startsWith('twinframe@')), `CNAME in every report: ${all.map((r) => r.cname).join(', ')}`);
  const [first] = all;
  const packets = receiver.packets;
  const firstSeq = parseRtpInfo(play.headers.get('rtp-info')!)[0].seq!;
  const index = (seq: number): number => (seq - firstSeq) & 0xffff;

  // Mapping: datagram k says "my time is ts_k"; the report says wall ntpMs is RTP time rtp. So datagram k
  // was due at ntpMs + (ts_k − rtp) / 90 and cannot arrive before that; the earliest arrivals nearly on it.
  const offsets = receiver.datagrams.flatMap((d) => {
    const due = first.ntpMs + ((d.rtp!.timestamp - first.rtp) | 0) / 90;
    const arrived = Number(d.arrivalNs) / 1e6 + wallOffsetMs;
    return Math.abs(due - first.ntpMs) < 500 ? [arrived - due] : [];
  });
  const earliest = Math.min(...offsets);
  t.log(`${offsets.length} datagrams within 0.5 s of the first report: arrival − due from ${earliest.toFixed(2)} ms`);
  t.true(offsets.length > 100);
  t.true(earliest > -4 && earliest < 5, `the report's NTP↔RTP mapping is ${earliest.toFixed(2)} ms off the data's timestamps`);

  // Counts at the first report: what had been sent by then, the datagrams due by its RTP time (late ones aside).
  const sentBy = packets.filter((p) => index(p.sequence) < first.packets);
  const lastCounted = sentBy.reduce((m, p) => Math.max(m, ((p.timestamp - first.rtp) | 0) / 90), -Infinity);
  const firstUncounted = packets.filter((p) => index(p.sequence) >= first.packets).reduce((m, p) => Math.min(m, ((p.timestamp - first.rtp) | 0) / 90), Infinity);
  t.true(first.packets > 20, `first report counts ${first.packets} packets`);
  t.true(lastCounted <= 2, `the last datagram counted was due ${lastCounted.toFixed(2)} ms after the report's instant`);
  t.true(firstUncounted >= -50, `the first datagram not counted was due ${(-firstUncounted).toFixed(2)} ms before the report`);
  t.is(first.octets, sentBy.reduce((n, p) => n + p.payload.length, 0), 'octets: the payload bytes of the datagrams counted');

  // At the BYE everything sent has arrived: the counts equal what was received, exactly.
  const bye = all.find((r) => r.bye)!;
  t.is(bye.packets, receiver.datagrams.length);
  t.is(bye.octets, packets.reduce((n, p) => n + p.payload.length, 0));
});

test.serial('at the end of an asset whose last datagram is short, the BYE\'s octet count is still the payload received', async (t) => {
  const s = await server(t);
  const { client, receiver } = await viewer(t, s);
  const count = sample.asset.packetCount;
  // A key frame near the end from which the asset does not end on a whole datagram.
  const rap = [...sample.randomAccess].reverse().find((r) => (count - r.packet) % 7 !== 0 && count - r.packet > 7 * 50);
  if (!rap) throw new Error('the sample has no key frame that leaves a short last datagram');
  t.is((await client.setup('/sample.ts/track1', receiver.transportHeader())).status, 200);
  const info = s.engine.getSession(client.session!)!;
  t.is((await client.play('/sample.ts/', `npt=${(Math.ceil(rap.ticks / 90) / 1000).toFixed(3)}-`)).status, 200);
  await until(() => reports(receiver, info.ssrc).some((r) => r.bye), 'the BYE at the end of the asset', 10_000);
  await receiver.waitForQuiet(150, 5000);
  const bye = reports(receiver, info.ssrc).find((r) => r.bye)!;
  t.is(receiver.packets.at(-1)!.payload.length, ((count - rap.packet) % 7) * 188, 'the last datagram is short');
  t.is(bye.packets, receiver.datagrams.length);
  t.is(bye.octets, receiver.packets.reduce((n, p) => n + p.payload.length, 0));
});

test.serial('sessions get server ports inside serverPortRange; when it is used up SETUP is refused with 503 (TF_PORTS_EXHAUSTED); TEARDOWN frees the ports for a new session', async (t) => {
  const range = await freeUdpPortRange(4); // two RTP/RTCP pairs
  const s = await server(t, { rtsp: { serverPortRange: range } });
  const viewers = [await viewer(t, s), await viewer(t, s), await viewer(t, s)];
  const ports: number[][] = [];
  for (const v of viewers.slice(0, 2)) {
    const setup = await v.client.setup('/sample.ts/track1', v.receiver.transportHeader());
    t.is(setup.status, 200);
    const sp = parseTransport(setup.headers.get('transport')!)[0].serverPort!;
    ports.push([sp.first, sp.last!]);
  }
  t.deepEqual(ports.flat().sort((a, b) => a - b), [range.first, range.first + 1, range.first + 2, range.first + 3], 'both pairs, inside the range');
  // The first session streams from inside the range.
  t.is((await viewers[0].client.play('/sample.ts/')).status, 200);
  await viewers[0].receiver.waitForCount(20, 5000);
  t.deepEqual([...new Set(viewers[0].receiver.datagrams.map((d) => d.from))], [`127.0.0.1:${ports[0][0]}`]);

  const refused = await viewers[2].client.setup('/sample.ts/track1', viewers[2].receiver.transportHeader());
  t.is(refused.status, 503, 'no free server port pair');
  t.is(s.engine.listSessions().length, 2, 'the refused SETUP left nothing behind');

  t.is((await viewers[1].client.teardown('/sample.ts')).status, 200);
  const again = await viewers[2].client.setup('/sample.ts/track1', viewers[2].receiver.transportHeader());
  t.is(again.status, 200, 'the torn-down session\'s ports are free again');
  const sp = parseTransport(again.headers.get('transport')!)[0].serverPort!;
  t.deepEqual([sp.first, sp.last], ports[1], 'and reused');
  t.is((await viewers[2].client.play('/sample.ts/')).status, 200);
  await viewers[2].receiver.waitForCount(20, 5000);
  t.deepEqual([...new Set(viewers[2].receiver.datagrams.map((d) => d.from))], [`127.0.0.1:${ports[1][0]}`]);
});

async function ctl(socket: string, ...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [TWINFRAMECTL, '--socket', socket, '--json', ...args], { timeout: 20_000 });
  return JSON.parse(stdout);
}

test.serial('a heartbeat change through twinframectl takes effect in detection at once: a hang is failed sooner, then later, than the old window allows', async (t) => {
  const s = await server(t, { admin: { faultInjection: true } });
  const socket = s.config.admin.socketPath;
  const failovers: FailoverEvent[] = [];
  s.engine.on('failover', (e: FailoverEvent) => failovers.push(e));
  const { client, receiver } = await viewer(t, s);
  t.is((await client.setup('/sample.ts/track1', receiver.transportHeader())).status, 200);
  t.is((await client.play('/sample.ts/')).status, 200);
  const hang = async (label: string): Promise<number> => {
    const victim = s.engine.status().active!;
    const seen = failovers.length;
    await ctl(socket, 'inject-fault', victim, 'hang');
    await until(() => failovers.slice(seen).some((f) => f.pathName === victim), `${label}: the hung path to be failed`, 5000);
    const f = failovers.slice(seen).find((x) => x.pathName === victim)!;
    await s.engine.waitUntilProtected(10_000);
    const ms = f.detectedAtMs - f.failedAtMs;
    t.log(`${label}: hang failed after ${ms.toFixed(2)} ms`);
    return ms;
  };
  // A hang is suspected after the window (period × max missed), then failed after 40 ms of CPU:
  // default 2000 µs × 5, never before 50 ms. Down to 500 µs × 4 (a 2 ms window): about 42 ms.
  t.like(await ctl(socket, 'heartbeat', '--period-us', '500', '--max-missed', '4'), { periodUs: 500, maxMissed: 4 });
  // The old window makes < 50 ms impossible; a machine busy elsewhere can slow one detection, so up to three tries.
  const fast: number[] = [];
  while (fast.length < 3 && !fast.some((ms) => ms < 50)) fast.push(await hang('500 µs × 4'));
  t.true(fast.some((ms) => ms < 50), `failed after ${fast.map((ms) => ms.toFixed(2)).join(', ')} ms: one sooner than the old 10 ms window + 40 ms allows`);
  // Up to 4000 µs × 5: never before 20 + 40 ms.
  t.like(await ctl(socket, 'heartbeat', '--period-us', '4000', '--max-missed', '5'), { periodUs: 4000, maxMissed: 5 });
  const slow = await hang('4000 µs × 5');
  t.true(slow >= 59.5, `failed after ${slow.toFixed(2)} ms: not before the new 20 ms window + 40 ms`);
  t.like(await ctl(socket, 'status'), { heartbeat: { periodUs: 4000, maxMissed: 5 } });
});

leakCheck(test);
