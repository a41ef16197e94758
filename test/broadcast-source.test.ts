// Where a broadcast's datagrams leave from, and the destination rules for rows
// in the configuration file. Nothing is sent: a source is found by connecting an
// unbound UDP socket (the kernel picks the route's address), and a refused row
// never opens a session.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkDestination } from '../src/broadcast/destination.js';
import { isTwinframeError } from '../src/errors.js';
import { SAMPLE_ASSET, until } from './helpers/engine-fixture.js';
import { startFileServer } from './helpers/media-server.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

const GROUP = { address: '239.1.2.3', port: 5004 };
const NO_SETTINGS = { allowForeignDestination: false, streamIp: undefined, multicastInterface: undefined };

/** What `ip route get` says the source for `address` is, or undefined when there is no route. */
function kernelSource(address: string): string | undefined {
  try {
    return /\bsrc (\S+)/.exec(execFileSync('ip', ['-o', 'route', 'get', address], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

test('a group with neither network.streamIp nor multicast.interface leaves from the route\'s address, not 127.0.0.1', async (t) => {
  const expected = kernelSource(GROUP.address);
  if (expected === undefined) {
    const err = await t.throwsAsync(checkDestination(GROUP, NO_SETTINGS));
    t.true(isTwinframeError(err, 'TF_BROADCAST_DESTINATION'), String(err));
    t.log('no route to the group on this machine: refused, as it should be');
    return;
  }
  t.deepEqual(await checkDestination(GROUP, NO_SETTINGS), { kind: 'multicast', source: expected });
});

test('network.streamIp, else multicast.interface, names a group\'s source; a unicast destination on this host leaves from loopback', async (t) => {
  t.deepEqual(await checkDestination(GROUP, { ...NO_SETTINGS, streamIp: '127.0.0.1', multicastInterface: '127.0.0.9' }), { kind: 'multicast', source: '127.0.0.1' });
  t.deepEqual(await checkDestination(GROUP, { ...NO_SETTINGS, multicastInterface: '127.0.0.9' }), { kind: 'multicast', source: '127.0.0.9' });
  t.deepEqual(await checkDestination({ address: '127.0.0.1', port: 5004 }, NO_SETTINGS), { kind: 'unicast', source: '127.0.0.1' });
});

test.serial('a row in the configuration file aimed at another host is refused like an `add` is: failed with the reason, no session opened', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-bsource-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // 198.51.100.0/24 is TEST-NET-2: never this host; refused before anything is sent. The
  // streams' source is loopback, so even a regression could not put a datagram off this host.
  const server = await startFileServer(path.dirname(SAMPLE_ASSET), dir, {
    network: { streamIp: '127.0.0.1' },
    broadcasts: [{ name: 'away', asset: '/sample.ts', to: '198.51.100.7:5004' }],
  });
  t.teardown(() => server.close());
  await until(() => server.broadcasts.list()[0]?.status === 'failed', 'the foreign row to be refused', 10_000);
  const view = server.broadcasts.list()[0];
  t.regex(view.error ?? '', /allowForeignDestination is off/);
  t.is(server.engine.status().sessions, 0, 'no session was opened');
});
