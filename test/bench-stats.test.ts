// The benchmarks' statistics helper (bench/stats.ts): nearest-rank quantiles on
// known samples, and summaries that leave out NaN and infinities.

import test from 'ava';
import { quantile, quantileRank, sortedFinite, summarize } from '../bench/stats.js';

test('nearest rank: the value of rank ⌈q·n⌉, never an interpolation', (t) => {
  const v = Float64Array.from({ length: 100 }, (_, i) => i + 1); // 1…100
  t.is(quantile(v, 0.5), 50);
  t.is(quantile(v, 0.99), 99);
  t.is(quantile(v, 0.999), 100);
  t.is(quantile(v, 1), 100);
  t.is(quantile(v, 0), 1);
  t.is(quantile([1, 2, 3, 4], 0.5), 2, 'p50 of an even count is the lower middle value');
  t.is(quantile([1, 2, 3, 4, 5], 0.99), 5, 'p99 of fewer than 100 values is the maximum');
  t.true(Number.isNaN(quantile([], 0.5)));
  t.is(quantileRank(1000, 0.99), 990);
  t.is(quantileRank(3, 0), 1);
});

test('summarize: count, median, p99, max and mean of the finite values, in any order', (t) => {
  const s = summarize([5, Number.NaN, 1, 3, Number.POSITIVE_INFINITY, 2, 4, Number.NEGATIVE_INFINITY]);
  t.deepEqual(s, { n: 5, p50: 3, p99: 5, max: 5, mean: 3 });
  t.deepEqual(Array.from(sortedFinite([10, -1, Number.NaN, 2])), [-1, 2, 10], 'a numeric sort, not a string sort');
});

test('summarize: an empty or all-NaN sample gives n 0 and NaN figures', (t) => {
  for (const values of [[], [Number.NaN]]) {
    const s = summarize(values);
    t.is(s.n, 0);
    t.true([s.p50, s.p99, s.max, s.mean].every(Number.isNaN));
  }
});
