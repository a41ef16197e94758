// The multicast configuration (issue 16, item 3): a TTL that keeps a group on
// the local link unless the operator says otherwise, and an interface address.

import test from 'ava';
import { parseConfig } from '../src/config/schema.js';

test('multicast defaults to ttl 1 and the routing table\'s interface', (t) => {
  t.deepEqual(parseConfig({}).multicast, { ttl: 1 });
  t.deepEqual(parseConfig({ multicast: { ttl: 16, interface: '10.0.0.5' } }).multicast, { ttl: 16, interface: '10.0.0.5' });
});

for (const [what, multicast, pattern] of [
  ['a ttl over 255', { ttl: 256 }, /multicast\.ttl/],
  ['a fractional ttl', { ttl: 1.5 }, /multicast\.ttl/],
  ['an interface that is not an IPv4 address', { interface: 'eth0' }, /multicast\.interface/],
  ['an unknown field', { loop: false }, /loop/],
] as const) {
  test(`multicast config refuses ${what}`, (t) => {
    t.throws(() => parseConfig({ multicast }), { message: pattern });
  });
}
