// The malloc tuning for path restarts (src/engine/malloc-tuning.ts): the addon
// sets glibc's mmap threshold and trims the arenas. The memory it saves is
// measured by bench/soak/churn.ts (README, section soak), not here.

import test from 'ava';
import { nativeAddon } from '../src/shared/native.js';
import { releaseFreedMemory, tuneMallocForPathRestarts } from '../src/engine/malloc-tuning.js';

test('with the addon (glibc), the mmap threshold is set and the arenas can be trimmed', (t) => {
  t.truthy(nativeAddon, 'native/build/Release/twinframe_native.node did not load');
  t.true(tuneMallocForPathRestarts());
  t.notThrows(() => releaseFreedMemory());
  t.true([0, 1].includes(nativeAddon!.mallocTrim()));
});

test('setMmapThreshold refuses what is not a positive integer', (t) => {
  for (const bad of [0, -1, 'x']) t.throws(() => nativeAddon!.setMmapThreshold(bad as number), { instanceOf: TypeError, message: /setMmapThreshold\(bytes: positive integer\)/ });
});
