// Multicast delivery by the engine (issue 16, item 3): a session sent to a
// group reaches a receiver that joined it byte-exact, from one source
// address:port, through every failure fault of the active path; with the
// native addon and with the plain-Node fallback. The group traffic stays in a
// network namespace the test makes and removes (its loopback, with
// 224.0.0.0/4 routed to it). And what the route probe refuses, anywhere.

import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isTwinframeError } from '../src/errors.js';
import { probeRoute } from '../src/engine/ports.js';
import { FaultKinds } from '../src/shared/commands.js';
import { nativeAddon } from '../src/shared/native.js';
import type { MulticastRun } from './helpers/netns-multicast-engine.js';
import { netnsUnavailable } from './helpers/netns.js';
import { PACING_BOUND_MS } from './helpers/stream-pacing.js';
import { multicastNamespace } from './helpers/netns-multicast.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

const unavailable = netnsUnavailable();
const cases: Array<{ name: string; env: NodeJS.ProcessEnv; faults: string[]; skip?: string }> = [
  { name: 'native addon', env: {}, faults: ['all'], ...(nativeAddon ? {} : { skip: 'the native addon is not built' }) },
  { name: 'plain-Node fallback', env: { TWINFRAME_NATIVE: 'off' }, faults: ['crash', 'socket'] },
];
for (const c of cases) {
  const skip = unavailable ?? c.skip;
  const title = `a receiver joined to the group gets a multicast session byte-exact from one source port, healthy (by route, and from a named interface) and through ${c.faults.includes('all') ? 'every fault kind' : `${c.faults.join(', ')} faults`} (${c.name})`;
  (skip === undefined ? test.serial : test.serial.skip)(skip === undefined ? title : `${title} — SKIPPED, not passed: ${skip}`, async (t) => {
    t.timeout(90_000);
    const inNs = await multicastNamespace(t);
    const { stdout } = await run('ip', [...inNs, process.execPath, path.join(here, 'helpers/netns-multicast-engine.js'), ...c.faults], {
      timeout: 80_000, env: { ...process.env, ...c.env },
    });
    const runs = JSON.parse(stdout) as MulticastRun[];
    t.is(runs.length, 2 + (c.faults.includes('all') ? FaultKinds.length : c.faults.length));
    for (const r of runs) {
      const what = `${r.fault ?? `healthy, interface ${r.interface ?? 'by route'}`}: ${JSON.stringify(r)}`;
      t.true(r.received >= r.leastExpected, `the group carried the stream: ${r.received} datagrams, at least ${r.leastExpected} (${what})`);
      t.true(r.largestGapMs < PACING_BOUND_MS, `it kept its pace: largest gap ${r.largestGapMs} ms (${what})`);
      t.is(r.lost, 0, what);
      t.is(r.duplicated, 0, what);
      t.is(r.mismatched, 0, what);
      t.is(r.received, r.sent, `every datagram sent arrived once (${what})`);
      t.deepEqual(r.sources, [r.source], `both paths send from the session's one source address and port (${what})`);
      if (r.fault === 'slow-disk') t.true(r.handovers > 0, `the slow disk handed sending over (${what})`);
      else if (r.fault !== null) t.true(r.failovers.length > 0, `the fault failed a path over (${what})`);
    }
  });
}

test('the route probe refuses a group without multicast settings, settings without a group, and an interface that is not this host\'s', async (t) => {
  const refused = async (run: () => Promise<void>, code: string, pattern: RegExp): Promise<void> => {
    const err = await t.throwsAsync(run);
    t.true(isTwinframeError(err) && err.code === code, `${code}: ${err?.message}`);
    t.regex(err.message, pattern);
  };
  await refused(() => probeRoute('127.0.0.1', { address: '239.1.2.3', port: 5000 }), 'TF_RTSP_UNSUPPORTED_TRANSPORT', /only a broadcast/);
  await refused(() => probeRoute('127.0.0.1', { address: '127.0.0.1', port: 5000 }, { ttl: 1 }), 'TF_RTSP_UNSUPPORTED_TRANSPORT', /224\.0\.0\.0\/4/);
  await refused(() => probeRoute('127.0.0.1', { address: '239.1.2.3', port: 5000 }, { ttl: 256 }), 'TF_RTSP_UNSUPPORTED_TRANSPORT', /ttl/);
  // No datagram leaves: setting IP_MULTICAST_IF to an address of no interface fails at once.
  await refused(() => probeRoute('127.0.0.1', { address: '239.1.2.3', port: 5000 }, { ttl: 1, interface: '192.0.2.77' }), 'TF_RTSP_DESTINATION_UNREACHABLE', /EADDRNOTAVAIL/);
});
