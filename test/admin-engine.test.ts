// The operator's commands that change streaming, carried out by the real
// engine: admin client → admin server → EngineAdminBackend → Engine, with a
// viewer playing over RTSP and a real receiver holding every datagram against
// the asset. Also the real `assets` and `sessions` outputs (the fakes in
// twinframectl.test.ts cover the protocol and the tables).

import test from 'ava';
import type { AssetInfo, SessionView as AdminSession } from '../src/admin/backend.js';
import { AdminClient } from '../src/admin/client.js';
import type { PathName } from '../src/shared/layout.js';
import type { FailoverEvent, PlayResult } from '../src/engine/engine.js';
import { parseRange } from '../src/rtsp/headers/range.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { checkRtpStream, loadSample, sleep, type SampleAsset } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { startMediaServer } from './helpers/media-server.js';
import { largestGapMs, minDatagrams } from './helpers/stream-pacing.js';

let sample: SampleAsset;
test.before(async () => {
  sample = await loadSample();
});
test.after.always(async () => {
  await sample?.cleanup();
});

test.serial('stop-streaming of the Primary and of the Secondary, failover-unsync and failover through the admin socket are lossless on the real engine; assets and sessions tell the truth, position after a seek included', async (t) => {
  t.timeout(90_000);
  // spare.ts is never played, so never indexed.
  const { server, config, ctl } = await startMediaServer(t, ['sample.ts', 'spare.ts']);
  const failovers: FailoverEvent[] = [];
  server.engine.on('failover', (e: FailoverEvent) => failovers.push(e));
  /** When each command was given (hrtime ms), to place a gap in the stream. */
  const steps: Array<[string, number]> = [];
  const admin = await AdminClient.connect(config.admin.socketPath, { timeoutMs: 20_000 });
  t.teardown(() => admin.close());
  const states = async (command: 'stop_streaming' | 'start_streaming' | 'failover_sync' | 'failover_unsync', path: PathName): Promise<{ a: string; b: string }> => {
    steps.push([`${command} ${path}`, Number(process.hrtime.bigint()) / 1e6]);
    return (await admin.request(command, { path })).states;
  };
  const sentBy = (): number[] => server.engine.status().paths.map((p) => p.sent);

  const receiver = await UdpReceiver.open();
  t.teardown(() => receiver.close());
  const client = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: 20_000 });
  t.teardown(() => client.close());
  t.is((await client.setup('/sample.ts/track1', receiver.transportHeader())).status, 200);
  const info = server.engine.getSession(client.session!)!;
  const played = await client.play('/sample.ts/', 'npt=0-');
  t.is(played.status, 200);
  const playedAt = Date.now();
  const rtpInfo = parseRtpInfo(played.headers.get('rtp-info')!)[0];
  const play: PlayResult = { seq: rtpInfo.seq!, rtptime: rtpInfo.rtptime!, startPacket: 0, startTimeMs: 0 };
  await sleep(300);

  // Roles, not names: a late sender is handed over from (lossless), and the roles follow.
  const roles = (): { p: PathName; s: PathName } => {
    const primary = server.engine.status().paths.find((x) => x.named === 'Primary' || x.named === 'Primary_No_Secondary')!.path;
    return { p: primary, s: primary === 'a' ? 'b' : 'a' };
  };
  const pair = (p: PathName, pState: string, sState: string): { a: string; b: string } => (p === 'a' ? { a: pState, b: sState } : { a: sState, b: pState });

  // stop-streaming of the Primary: its partner takes over, lossless like any switch.
  let { p, s } = roles();
  t.deepEqual(await states('stop_streaming', p), pair(p, 'Primary_Offline', 'Secondary_No_Primary'));
  t.is(server.engine.status().active, s);
  await sleep(300);
  t.deepEqual(await states('start_streaming', p), pair(p, 'Primary', 'Secondary'));
  await sleep(300);

  // stop-streaming of the Secondary: the Primary goes on alone; the stopped path sends nothing.
  ({ p, s } = roles());
  t.deepEqual(await states('stop_streaming', s), pair(p, 'Primary_No_Secondary', 'Secondary_Synchronized'));
  const beforeAlone = sentBy();
  await sleep(300);
  const alone = sentBy();
  const [pi, si] = p === 'a' ? [0, 1] : [1, 0];
  t.is(server.engine.status().active, p);
  t.is(alone[si], beforeAlone[si], 'the stopped secondary sent nothing');
  t.true(alone[pi] - beforeAlone[pi] > 30, `the primary went on: ${alone[pi] - beforeAlone[pi]} datagrams`);

  // failover-unsync, then back to a protected pair, then a manual failover.
  t.deepEqual(await states('failover_unsync', s), pair(p, 'Primary_No_Secondary', 'Secondary_Offline'));
  await sleep(200);
  t.deepEqual(await states('failover_sync', s), pair(p, 'Primary_No_Secondary', 'Secondary_Synchronized'));
  t.deepEqual(await states('start_streaming', s), pair(p, 'Primary', 'Secondary'));
  await sleep(200);
  // From whichever path sends at that instant: a handover may have moved sending since roles().
  steps.push(['failover', Number(process.hrtime.bigint()) / 1e6]);
  const switched = await admin.request('failover');
  t.like(switched, { cause: 'manual' });
  t.deepEqual([switched.from, switched.to].sort(), ['a', 'b'], `switched from ${switched.from} to ${switched.to}`);
  const afterSwitch = sentBy();
  await sleep(300);
  const newSender = switched.to === 'a' ? 0 : 1;
  t.true(sentBy()[newSender] - afterSwitch[newSender] > 0, `${switched.to} sends after the failover`);

  t.is((await client.pause('/sample.ts')).status, 200);
  const playedMs = Date.now() - playedAt;
  await receiver.waitForQuiet(150, 5000);
  const check = checkRtpStream(receiver.packets, info, play, sample);
  const sent = server.engine.getSession(info.id)!.sent;
  const minimum = minDatagrams(sample, playedMs);
  t.true(receiver.datagrams.length >= minimum, `received ${receiver.datagrams.length}, at least ${minimum} in ${playedMs} ms`);
  t.deepEqual({ received: receiver.datagrams.length, lost: check.lost, duplicated: check.duplicated, mismatched: check.mismatched }, { received: sent, lost: 0, duplicated: 0, mismatched: 0 }, check.firstMismatch);
  const gap = largestGapMs(receiver.datagrams);
  const arrivals = receiver.datagrams.map((d) => Number(d.arrivalNs) / 1e6);
  const gapEnd = arrivals.find((ms, i) => i > 0 && ms - arrivals[i - 1] === gap) ?? 0;
  const during = steps.filter(([, at]) => at < gapEnd).at(-1);
  // Logged, not asserted: the receiver shares this thread with the whole server, so its arrival stamps can lag.
  t.log(`largest arrival gap ${gap.toFixed(1)} ms, ending ${during ? `${(gapEnd - during[1]).toFixed(0)} ms after '${during[0]}'` : 'before the first command'}`);
  t.deepEqual(failovers.map((f) => `${f.pathName}:${f.cause}`), [], 'no command failed a path');

  // assets: every asset with its duration (the npt range DESCRIBE announces) and bitrate, the never-played spare too.
  const assets = await ctl<AssetInfo[]>('assets');
  const known = { sizeBytes: sample.bytes.length, indexed: true, durationSec: Math.round(sample.presentationEndMs) / 1000, bitrateKbps: Math.round(sample.asset.bitrate / 1000) };
  t.deepEqual(assets, [{ name: '/sample.ts', ...known }, { name: '/spare.ts', ...known }]);

  // sessions: the paused session as it is.
  const [paused] = await ctl<AdminSession[]>('sessions');
  t.like(paused, {
    id: info.id, asset: '/sample.ts', client: `127.0.0.1:${receiver.rtpPort}`, transport: 'RTP/AVP', state: 'paused',
    datagramsSent: receiver.datagrams.length, bitrateKbps: Math.round(sample.asset.bitrate / 1000),
  });
  const pausedAt = (receiver.datagrams.length * 7 * 188 * 8) / sample.asset.bitrate;
  t.true(Math.abs(paused.positionSec - pausedAt) <= 0.2, `position ${paused.positionSec} s, paused after ${pausedAt.toFixed(2)} s of the asset`);

  // A seek: the position is where the stream is in the asset, not how much it has sent.
  const seek = await client.play('/sample.ts/', 'npt=8.000-');
  t.is(seek.status, 200);
  const seekStart = parseRange(seek.headers.get('range')!).start as number;
  const seekAt = Date.now();
  await sleep(500);
  const [playing] = await ctl<AdminSession[]>('sessions');
  const elapsed = (Date.now() - seekAt) / 1000;
  t.is(playing.state, 'playing');
  t.true(playing.positionSec >= seekStart + 0.2 && playing.positionSec <= seekStart + elapsed + 0.5,
    `position ${playing.positionSec} s, ${elapsed.toFixed(2)} s after a seek to ${seekStart} s`);
  t.is((await client.teardown('/sample.ts')).status, 200);
});

leakCheck(test);
