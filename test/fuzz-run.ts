// `npm run fuzz`: the long form of test/fuzz.test.ts. Every target of
// test/helpers/fuzz-targets.ts with its share of --inputs (default 1,200,000 in
// all; the asset indexer, which writes a file per input, gets a tenth of a
// share), from a new random seed each run (printed, so a failure can be
// replayed with --seed), then the linear-time check on random pieces. Prints a
// table; exits 1 on any failure.
//
//   node dist/test/fuzz-run.js [--inputs N] [--seed S] [--pieces N]

import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fuzzTargets } from './helpers/fuzz-targets.js';
import { linearBound, linearityRatio } from './helpers/fuzz-linear.js';

const { values } = parseArgs({ options: { inputs: { type: 'string' }, seed: { type: 'string' }, pieces: { type: 'string' } } });
const total = Number(values.inputs ?? 1_200_000);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const pieces = Number(values.pieces ?? 100);
const targets = fuzzTargets();
const weight = (name: string): number => (name === 'asset indexer' ? 0.1 : 1);
const share = total / targets.reduce((sum, t) => sum + weight(t.name), 0);
const tmp = await mkdtemp(path.join(tmpdir(), 'twinframe-fuzz-'));
const rows: string[] = [];
let inputs = 0;
let failures = 0;
try {
  process.stdout.write(`fuzz: seed ${seed}, ${total} inputs over ${targets.length} targets\n`);
  for (const target of targets) {
    const numRuns = Math.ceil(share * weight(target.name));
    const t0 = performance.now();
    const details = fc.check(target.property(tmp), { seed, numRuns });
    const seconds = (performance.now() - t0) / 1000;
    inputs += details.numRuns;
    let linear = '-';
    if (target.linear) {
      // Random pieces (1-4 characters of what headers are made of) repeated to 64 KiB and 1 MiB.
      const sample = fc.sample(fc.string({ minLength: 1, maxLength: 4, unit: fc.constantFrom(' ', '\t', ';', ',', '=', '-', '"', ':', '/', 'a', '0', '\r\n ', '$', '%') }), { seed, numRuns: pieces });
      const worst = Math.max(...sample.map((piece) => linearityRatio(target.linear!, piece, 64 * 1024, 16)));
      linear = `${worst.toFixed(1)}×`;
      if (worst >= linearBound(16)) {
        failures++;
        process.stdout.write(`  ${target.name}: 16 × the input took ${worst.toFixed(1)} × the time\n`);
      }
    }
    if (details.failed) {
      failures++;
      process.stdout.write(`  ${target.name}: ${fc.defaultReportMessage(details)}\n`);
    }
    rows.push(`| ${target.name} | ${details.numRuns} | ${details.failed ? 'FAILED' : 0} | ${linear} | ${seconds.toFixed(1)} |`);
    process.stdout.write(`  ${target.name}: ${details.numRuns} inputs, ${details.failed ? 'FAILED' : 'ok'} (${seconds.toFixed(1)} s)\n`);
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
process.stdout.write(`\n| target | inputs | failures | worst time ratio, 16 × input | seconds |\n|---|---:|---:|---:|---:|\n${rows.join('\n')}\n`);
process.stdout.write(`\n${inputs} inputs, ${failures} failure(s), seed ${seed}\n`);
process.exit(failures === 0 ? 0 : 1);
