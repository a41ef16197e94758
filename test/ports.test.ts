// Server port pairs: a range exactly as large as the sessions it must hold
// gives every one of them a pair (the last free pair is found however the held
// ones cluster), refuses the next with TF_PORTS_EXHAUSTED, and a released pair
// can be reserved again.

import test from 'ava';
import { reservePortPair, type PortPair } from '../src/engine/ports.js';
import { TwinframeError } from '../src/errors.js';
import { freeUdpPortRange } from './helpers/port-range.js';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

const PAIRS = 150;

test('every pair of a range is reserved, the next reservation is refused, a released pair is given again', async (t) => {
  const range = await freeUdpPortRange(2 * PAIRS);
  const held: PortPair[] = [];
  t.teardown(() => { for (const p of held) p.release(); });
  // Concurrent reservations, as SETUPs of many viewers arrive together.
  for (let i = 0; i < PAIRS; i += 25) {
    held.push(...await Promise.all(Array.from({ length: 25 }, () => reservePortPair('127.0.0.1', range))));
  }
  const ports = new Set(held.map((p) => p.rtpPort));
  t.is(ports.size, PAIRS, 'every session has its own pair');
  for (const p of held) {
    t.true(p.rtpPort >= range.first && p.rtcpPort <= range.last && p.rtpPort % 2 === 0 && p.rtcpPort === p.rtpPort + 1);
  }
  const refused = await t.throwsAsync(reservePortPair('127.0.0.1', range));
  t.is((refused as TwinframeError).code, 'TF_PORTS_EXHAUSTED');
  const freed = held.splice(PAIRS >> 1, 1)[0];
  freed.release();
  const again = await reservePortPair('127.0.0.1', range);
  held.push(again);
  t.is(again.rtpPort, freed.rtpPort);
});
