// A fault of an asset stays with that asset: the real server (catalog, engine
// with both data paths, RTSP, admin) streams two copies of the sample asset to
// real receivers on 127.0.0.1; one copy is truncated while it plays. Its
// sessions end with a reason (engine event, `watch`, RTCP BYE), no data path
// fails, the other copy's viewer gets every datagram byte for byte, and the
// catalog refuses the truncated asset until its file changes.

import { copyFile, mkdir, mkdtemp, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { AdminClient } from '../src/admin/client.js';
import type { WatchEvent } from '../src/admin/backend.js';
import { parseConfig } from '../src/config/schema.js';
import type { FailoverEvent, PlayResult, SessionFailedEvent, SessionInfo } from '../src/engine/engine.js';
import { silentLogger } from '../src/log.js';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import type { RtspResponse } from './helpers/rtsp-message.js';
import { RTCP_BYE } from '../src/rtsp/rtcp.js';
import { parseCompound } from './helpers/rtcp.js';
import { startServer, type TwinframeServer } from '../src/server.js';
import { SAMPLE_ASSET, checkRtpStream, loadSample, sleep, until, type SampleAsset } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

let sample: SampleAsset;
let tmp: string;
test.before(async () => {
  sample = await loadSample();
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-asset-fault-'));
});
test.after.always(async () => {
  await sample?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function playOf(r: RtspResponse): PlayResult {
  const [entry] = parseRtpInfo(r.headers.get('rtp-info') ?? '');
  if (entry?.seq === undefined || entry.rtptime === undefined) throw new Error(`no RTP-Info in ${r.headers.get('rtp-info')}`);
  return { seq: entry.seq, rtptime: entry.rtptime, startPacket: 0, startTimeMs: 0 };
}

interface Viewer {
  readonly client: RtspClient;
  readonly receiver: UdpReceiver;
  readonly info: SessionInfo;
  readonly play: PlayResult;
}

/** SETUP and PLAY `url`; the client and receiver go into `open` at once, for the clean-up. */
async function watch(server: TwinframeServer, url: string, open: Array<{ close(): Promise<void> }>): Promise<Viewer> {
  const client = await RtspClient.connect({ port: server.rtsp.port });
  open.push(client);
  const receiver = await UdpReceiver.open();
  open.push(receiver);
  const setup = await client.setup(`${url}/track1`, receiver.transportHeader());
  if (setup.status !== 200) throw new Error(`SETUP ${url} answered ${setup.status}`);
  const info = server.engine.getSession(client.session!)!;
  const play = await client.play(url);
  if (play.status !== 200) throw new Error(`PLAY ${url} answered ${play.status}`);
  return { client, receiver, info, play: playOf(play) };
}

function exact(viewer: Viewer) {
  const c = checkRtpStream(viewer.receiver.packets, viewer.info, viewer.play, sample);
  return { lost: c.lost, duplicated: c.duplicated, reordered: c.reordered, mismatched: c.mismatched, first: c.firstMismatch };
}

function hasBye(viewer: Viewer): boolean {
  return viewer.receiver.rtcpDatagrams.flatMap((d) => parseCompound(d.data)).some((p) => p.type === RTCP_BYE && p.ssrc === viewer.info.ssrc);
}

test('an asset truncated while it streams ends its own sessions only: no path fails, another asset\'s viewer loses nothing, the asset is refused until it changes', async (t) => {
  const dir = await mkdtemp(path.join(tmp, 'run-'));
  const mount = path.join(dir, 'media');
  await mkdir(mount);
  const doomedPath = path.join(mount, 'doomed.ts');
  await copyFile(SAMPLE_ASSET, doomedPath);
  await copyFile(SAMPLE_ASSET, path.join(mount, 'other.ts'));
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: mount }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
    log: { level: 'silent' },
  });
  const server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0, sessionTimeoutMs: 30_000 } });
  const open: Array<{ close(): Promise<void> }> = [];
  const admin = await AdminClient.connect(config.admin.socketPath);
  try {
    const failovers: FailoverEvent[] = [];
    const failed: SessionFailedEvent[] = [];
    server.engine.on('failover', (e: FailoverEvent) => failovers.push(e));
    server.engine.on('session-failed', (e: SessionFailedEvent) => failed.push(e));
    const watched: WatchEvent[] = [];
    const watching = (async () => { for await (const e of admin.watch()) watched.push(e); })();
    const incarnations = server.engine.status().paths.map((p) => p.incarnation);

    // Index both copies first: indexing takes a core for a while, and the streams should not compete with it.
    const probe = await RtspClient.connect({ port: server.rtsp.port });
    open.push(probe);
    for (const url of ['/doomed.ts', '/other.ts']) t.is((await probe.describe(url)).status, 200);
    const doomed = [await watch(server, '/doomed.ts', open), await watch(server, '/doomed.ts', open)];
    const other = await watch(server, '/other.ts', open);
    const viewers = [...doomed, other];
    await sleep(500);
    // Cut the file at about 3.6 s of its 12 s, in the middle of a packet, well ahead of what the paths have read.
    const { size } = await stat(doomedPath);
    await truncate(doomedPath, Math.floor(size * 0.3) + 100);

    await until(() => doomed.every((v) => failed.some((f) => f.id === v.info.id)), 'both sessions of the truncated asset to end');
    await until(() => doomed.every(hasBye), 'an RTCP BYE to both of its viewers');
    await until(() => server.rtsp.sessions().length === 1, 'the RTSP server to tear the ended sessions down');
    await sleep(1000);
    await other.client.pause('/other.ts');
    await Promise.all(viewers.map((v) => v.receiver.waitForQuiet(150, 5000)));

    t.deepEqual(failovers.map((f) => `${f.pathName}:${f.cause}`), [], 'no data path failed');
    const restarts = server.engine.status().paths.reduce((n, p, i) => n + p.incarnation - incarnations[i], 0);
    t.is(restarts, 0, 'no data path was restarted');
    await server.engine.waitUntilProtected(10_000);
    t.deepEqual(failed.map((f) => f.id).sort(), doomed.map((v) => v.info.id).sort(), 'each session of the truncated asset ended once; no other');
    for (const f of failed) {
      t.is(f.scope, 'asset');
      t.regex(f.reason, /was truncated: \d+ bytes now, its index covers \d+/);
    }
    const otherCheck = exact(other);
    t.true(other.receiver.datagrams.length > 1000, `the other asset's viewer received ${other.receiver.datagrams.length}`);
    t.is(other.receiver.datagrams.length, server.engine.getSession(other.info.id)!.sent, 'every datagram the engine counted arrived');
    t.deepEqual(otherCheck, { lost: 0, duplicated: 0, reordered: 0, mismatched: 0, first: undefined }, 'the other asset streamed byte for byte');
    for (const v of doomed) {
      // What left before the end was the asset, exactly; the stream stopped short of the cut.
      t.like(exact(v), { lost: 0, duplicated: 0, mismatched: 0 });
      t.true(v.receiver.datagrams.length > 500 && v.receiver.datagrams.length < 0.3 * sample.bytes.length / 1316, `received ${v.receiver.datagrams.length}`);
      t.is((await v.client.getParameter('/doomed.ts')).status, 454, 'the ended session is gone');
    }

    const failedEvents = watched.filter((e) => e.type === 'session' && e.change === 'failed');
    t.deepEqual(failedEvents.map((e) => e.type === 'session' && e.change === 'failed' && [e.id, e.scope, e.asset]).sort(),
      doomed.map((v) => [v.info.id, 'asset', '/doomed.ts']).sort(), '`watch` shows each ended session with its scope');
    t.like(watched.find((e) => e.type === 'asset'), { change: 'unavailable', asset: '/doomed.ts' });

    t.is((await probe.describe('/doomed.ts')).status, 404, 'the truncated asset is refused');
    t.is((await probe.describe('/other.ts')).status, 200);
    t.is((await probe.describe('/doomed.ts')).status, 404, 'still refused: the file has not changed');
    await copyFile(SAMPLE_ASSET, doomedPath);
    t.is((await probe.describe('/doomed.ts')).status, 200, 'the file changed: indexed afresh and served');
    admin.close();
    await watching;
  } finally {
    admin.close();
    for (const o of open) await o.close();
    await server.close();
  }
});

leakCheck(test);
