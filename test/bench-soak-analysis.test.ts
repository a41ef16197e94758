// The soak benchmark's analysis (bench/soak/analysis.ts): RSS flatness and slope
// on synthetic series, and which failovers the injected faults caused.

import test from 'ava';
import { attributeFailovers, compactSeries, FLAT_MIN_MIB, rssTrend, type InjectedFault, type RssSample } from '../bench/soak/analysis.js';
import type { LogFailure, LogHandover } from '../bench/server-log.js';
import { leakCheck } from './helpers/leak-check.js';

/** One sample every 10 s for `minutes`, `mib(tS)` each. */
function series(minutes: number, mib: (tS: number) => number): RssSample[] {
  return Array.from({ length: minutes * 6 + 1 }, (_, i) => ({ tS: i * 10, mib: mib(i * 10) }));
}

test('a flat RSS with noise and spikes is flat; its slope is near 0', (t) => {
  const trend = rssTrend(series(60, (s) => 120 + ((s / 10) % 3) + (s === 1800 ? 60 : 0)));
  t.is(trend.windowS, 600);
  t.is(trend.firstMedianMiB, 121);
  t.is(trend.lastMedianMiB, 121);
  t.true(trend.flat);
  t.true(Math.abs(trend.slopeMiBPerHour) < 2);
  t.is(trend.maxMiB, 180);
});

test('a steady climb of 12 MiB an hour is not flat; the slope says so', (t) => {
  const trend = rssTrend(series(60, (s) => 120 + (12 * s) / 3600));
  t.is(Math.round(trend.slopeMiBPerHour * 1000) / 1000, 12);
  t.is(Math.round(trend.growthMiB), 10); // the windows' medians are 50 min apart
  t.is(Math.round(trend.toleranceMiB * 100) / 100, 6.05); // 5 % of the first median, 121 MiB
  t.false(trend.flat);
});

test('a short run compares its first and last thirds; one sample judges nothing', (t) => {
  const trend = rssTrend(series(3, (s) => (s < 60 ? 100 : 106))); // 1 MiB over the 5 % allowed
  t.is(trend.windowS, 60);
  t.is(trend.firstMedianMiB, 100);
  t.is(trend.toleranceMiB, Math.max(FLAT_MIN_MIB, 5));
  t.false(trend.flat);
  t.is(rssTrend([{ tS: 0, mib: 100 }]).flat, undefined);
  t.is(rssTrend([]).flat, undefined);
});

test('the compact series has at most the asked points, each a median', (t) => {
  const c = compactSeries(series(60, (s) => 100 + Math.floor(s / 600)), 40);
  t.true(c.points.length <= 40);
  t.is(c.everyS, 100); // 361 samples in runs of 10
  t.is(c.points[0], 100);
  t.is(c.points.at(-1), 106);
});

test('failovers of the faulted path within the window are the faults\'; every other one is false', (t) => {
  const fault = (i: number, kind: string, path: string, at: number, expectedCause: string, ok = true): InjectedFault => ({ i, kind, path, requestedAtMs: at, expectedCause, ok });
  const faults = [
    fault(0, 'crash', 'a', 10_000, 'exit'),
    fault(1, 'hang', 'b', 70_000, 'heartbeat'),
    fault(2, 'disk', 'a', 130_000, 'disk'), // nothing answers it
    fault(3, 'socket', 'b', 190_000, 'socket', false), // refused: it causes nothing
  ];
  const failures: LogFailure[] = [
    { time: 10_150, path: 'a', cause: 'exit', wasActive: true },
    { time: 10_400, path: 'b', cause: 'heartbeat' }, // the partner, right after: false
    { time: 40_000, path: 'a', cause: 'heartbeat' }, // between faults: false
    { time: 70_200, path: 'b', cause: 'exit', wasActive: true }, // the fault's, with another cause
    { time: 70_300, path: 'b', cause: 'heartbeat' }, // the same path again: false
    { time: 190_100, path: 'b', cause: 'socket' }, // after a refused fault: false
  ];
  const handovers: LogHandover[] = [{ time: 10_050, from: 'a', to: 'b', cause: 'late' }, { time: 100_000, from: 'b', to: 'a', cause: 'read-wait' }];
  const a = attributeFailovers(faults, failures, handovers, 10_000);
  t.deepEqual(a.failovers.map((x) => x.fault ?? x.falseReason), [
    0, 'not the faulted path', 'outside any fault window', 1, 'a second failover after one fault', 'outside any fault window',
  ]);
  t.is(a.injected, 2);
  t.is(a.wrongCause, 1);
  t.is(a.false, 4);
  t.deepEqual(a.unanswered, [2]);
  t.deepEqual(a.handovers, { total: 2, byCause: { late: 1, 'read-wait': 1 }, inFaultWindow: 1 });
});

leakCheck(test);
