// The short, seeded form of the fuzzing (test/helpers/fuzz-targets.ts): every
// parser that takes outside bytes, a few hundred inputs each, the same ones on
// every run; and linear time on long runs of the pieces that made parsers
// quadratic before (blank runs, folded lines, separators). `npm run fuzz` runs
// the long form (a million inputs and more, new ones every run).

import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { fuzzTargets } from './helpers/fuzz-targets.js';
import { linearBound, linearityRatio } from './helpers/fuzz-linear.js';

const SEED = 20261130;
const RUNS = 300;

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-fuzz-'));
});
test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

for (const target of fuzzTargets()) {
  test(`fuzz (seeded, ${RUNS} inputs): ${target.name} returns or refuses with a coded error${target.name.includes('header') ? ', and round-trips' : ''}`, (t) => {
    fc.assert(target.property(tmp), { seed: SEED, numRuns: target.name === 'asset indexer' ? RUNS / 3 : RUNS });
    t.pass();
  });
}

/** What made a parser quadratic once, or could. */
const PIECES = [' ', '\t', ' \t', '\r\n ', ';', ',', '-', '=', '"', ':', 'a', '0', '/', '%', '$'];

for (const target of fuzzTargets().filter((x) => x.linear !== undefined)) {
  test.serial(`${target.name}: parse time grows linearly on long runs of blanks, separators and folds`, (t) => {
    for (const piece of PIECES) {
      // 16 times the input must cost under 16² / 2 = 128 times the time (a quadratic parser
      // costs 256 times): 64 KiB against 1 MiB, the fastest of repeated runs each.
      const ratio = linearityRatio(target.linear!, piece, 64 * 1024, 16);
      t.true(ratio < linearBound(16), `${JSON.stringify(piece)}: 16 × the input took ${ratio.toFixed(1)} × the time`);
    }
  });
}
