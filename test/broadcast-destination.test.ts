// A destination the kernel refuses to send to (a broadcast address: EACCES
// without SO_BROADCAST). Refused at SETUP when it is one already (RTSP 462);
// when it becomes one while the session plays (its subnet changed), the
// session ends with the reason, no path fails, and a neighbouring session
// loses nothing. The playing case runs in a network namespace the test makes
// and removes: its addresses and routes are nobody else's.

import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { netnsUnavailable, testNamespaceName } from './helpers/netns.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const ASSETS = path.resolve(here, '../../assets');

test.serial('SETUP to a broadcast destination is refused with 462 and leaves no session behind', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-bcast-'));
  const config = parseConfig({
    rtsp: { allowForeignDestination: true },
    media: { mounts: [{ prefix: '', dir: ASSETS }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
  });
  const server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 } });
  const receiver = await UdpReceiver.open();
  const client = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: 20_000 });
  try {
    const setup = await client.setup('/sample.ts/track1', `RTP/AVP;unicast;destination=127.255.255.255;client_port=${receiver.rtpPort}-${receiver.rtcpPort}`);
    t.is(setup.status, 462, 'Destination Unreachable');
    t.deepEqual(server.engine.listSessions(), []);
    t.deepEqual(server.rtsp.sessions(), []);
  } finally {
    await client.close();
    await receiver.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

interface Outcome {
  failovers: string[];
  failed: Array<{ id: string; scope: string; reason: string }>;
  errors: string[];
  endedAfterMs: number | undefined;
  doomed: { state: string; sentBefore: number; sentAfter: number };
  restarted: boolean[];
  protected: boolean;
  healthy: { received: number; sent: number; lost: number; duplicated: number; mismatched: number };
}

const unavailable = netnsUnavailable();
(unavailable === undefined ? test.serial : test.serial.skip)('a destination that becomes a broadcast address while playing: the session ends with EACCES, no path fails, the neighbour loses nothing', async (t) => {
  t.timeout(60_000);
  const tag = randomBytes(4).toString('hex');
  const ns = testNamespaceName(tag);
  const inNs = ['netns', 'exec', ns];
  t.teardown(() => run('ip', ['netns', 'del', ns]).then(() => undefined, () => undefined));
  await run('ip', ['netns', 'add', ns]);
  await run('ip', [...inNs, 'ip', 'link', 'set', 'lo', 'up']);
  // A veth pair inside the namespace: an interface with a subnet of our own (both ends go with the namespace).
  await run('ip', [...inNs, 'ip', 'link', 'add', 'bc0', 'type', 'veth', 'peer', 'name', 'bc1']);
  await run('ip', [...inNs, 'ip', 'link', 'set', 'bc0', 'up']);
  await run('ip', [...inNs, 'ip', 'link', 'set', 'bc1', 'up']);
  await run('ip', [...inNs, 'ip', 'addr', 'add', '10.77.0.1/16', 'dev', 'bc0']);

  const { stdout } = await run('ip', [...inNs, process.execPath, path.join(here, 'helpers/broadcast-scenario.js'), 'bc0'], { timeout: 50_000 });
  const r = JSON.parse(stdout) as Outcome;
  t.log(JSON.stringify(r));
  t.true(r.doomed.sentBefore > 50, `the session played before its destination became a broadcast address: ${r.doomed.sentBefore}`);
  t.deepEqual(r.failed.map((f) => [f.id, f.scope]), [['doomed', 'session']], 'that session, and only it, ended, once');
  t.regex(r.failed[0]?.reason ?? '', /EACCES/);
  t.is(r.doomed.state, 'failed');
  t.true(r.endedAfterMs !== undefined && r.endedAfterMs < 2000, `ended ${r.endedAfterMs} ms after the change`);
  t.deepEqual(r.failovers, [], 'no path failed');
  t.deepEqual(r.restarted, [false, false], 'no path restarted');
  t.true(r.protected);
  t.true(r.healthy.received > 200, `the neighbour received ${r.healthy.received}`);
  t.deepEqual(r.healthy, { received: r.healthy.sent, sent: r.healthy.sent, lost: 0, duplicated: 0, mismatched: 0 });
});

leakCheck(test);
