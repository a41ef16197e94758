// The Range header (npt): one table of wire forms shared by parse and
// serialize, the statuses for bad ranges, and resolution against a duration.

import test from 'ava';

import { TwinframeError } from '../src/errors.js';
import { formatNptSeconds, parseRange, resolveRange, serializeRange, type NptRange } from '../src/rtsp/headers/range.js';

const CASES: Array<{ name: string; wire: string; range: NptRange }> = [
  { name: 'an open range from zero', wire: 'npt=0.000-', range: { unit: 'npt', start: 0 } },
  { name: 'an open range from a fraction', wire: 'npt=5.500-', range: { unit: 'npt', start: 5.5 } },
  { name: 'a closed range', wire: 'npt=5.500-10.000', range: { unit: 'npt', start: 5.5, end: 10 } },
  { name: 'now', wire: 'npt=now-', range: { unit: 'npt', start: 'now' } },
  { name: 'an end without a start', wire: 'npt=-10.000', range: { unit: 'npt', end: 10 } },
  { name: 'a range with a time parameter', wire: 'npt=12.345-;time=19970123T143720Z', range: { unit: 'npt', start: 12.345, time: '19970123T143720Z' } },
];

for (const c of CASES) {
  test(`Range parses ${c.name}`, (t) => {
    t.deepEqual(parseRange(c.wire), c.range);
  });
  test(`Range serializes ${c.name}`, (t) => {
    t.is(serializeRange(c.range), c.wire);
  });
}

/** Accepted forms that are not canonical: [input, parsed start, parsed end, canonical]. */
const LENIENT: Array<[string, NptRange['start'], NptRange['end'], string]> = [
  ['npt=5-', 5, undefined, 'npt=5.000-'],
  ['npt=0:01:05.5-', 65.5, undefined, 'npt=65.500-'],
  ['npt=1:00:00-1:00:10', 3600, 3610, 'npt=3600.000-3610.000'],
  ['npt=00:00:07.25-00:01:00', 7.25, 60, 'npt=7.250-60.000'],
  ['NPT = 5.-', 5, undefined, 'npt=5.000-'],
  [' npt=5 - 10 ', 5, 10, 'npt=5.000-10.000'],
  ['npt=now-30', 'now', 30, 'npt=now-30.000'],
  ['npt=0.0004-', 0.0004, undefined, 'npt=0.000-'],
];

for (const [input, start, end, canonical] of LENIENT) {
  test(`Range accepts ${JSON.stringify(input)}`, (t) => {
    const r = parseRange(input);
    t.is(r.start, start);
    t.is(r.end, end);
    t.is(serializeRange(r), canonical);
  });
}

function refusal(t: import('ava').ExecutionContext, fn: () => unknown): TwinframeError | undefined {
  return t.throws<TwinframeError>(fn, { instanceOf: TwinframeError });
}

const MALFORMED = [
  'npt=',
  'npt=-',
  'npt=abc-',
  'npt=5',
  'npt=10-5',
  'npt=5-5',
  'npt=0:60:00-',
  'npt=0:00:60-',
  'npt=1:2-',
  'npt=-5-',
  'npt=5--10',
  'npt=1e3-',
  'npt=.5-',
  'npt=+5-',
  '5-10',
  'bytes=0-100',
  'npt=5-;foo=bar',
];

for (const input of MALFORMED) {
  test(`Range ${JSON.stringify(input)} is refused with 457 Invalid Range`, (t) => {
    const err = refusal(t, () => parseRange(input));
    t.is(err?.code, 'TF_RANGE_INVALID');
    t.is(err?.rtspStatus, 457);
  });
}

const UNIMPLEMENTED = [
  'smpte=10:07:00-10:07:33:05.01',
  'smpte-25=10:07:00-',
  'smpte-30-drop=0:00:00-',
  'clock=19961108T142300Z-19961108T143520Z',
  'npt=0-5,10-15',
];

for (const input of UNIMPLEMENTED) {
  test(`Range ${JSON.stringify(input)} is refused with 501 Not Implemented`, (t) => {
    const err = refusal(t, () => parseRange(input));
    t.is(err?.code, 'TF_RTSP_NOT_IMPLEMENTED');
    t.is(err?.rtspStatus, 501);
  });
}

test('npt seconds are written with three decimals', (t) => {
  t.is(formatNptSeconds(0), '0.000');
  t.is(formatNptSeconds(12.0199), '12.020');
  t.throws(() => formatNptSeconds(-1), { instanceOf: RangeError });
  t.throws(() => formatNptSeconds(Number.NaN), { instanceOf: RangeError });
  t.throws(() => serializeRange({ unit: 'npt' }), { instanceOf: RangeError });
});

const DURATION = 12.02;

const RESOLVED: Array<[string, string | undefined, number, { start: number; end: number }]> = [
  ['no Range plays everything', undefined, 0, { start: 0, end: DURATION }],
  ['an open range plays to the end', 'npt=5-', 0, { start: 5, end: DURATION }],
  ['now starts at the current position', 'npt=now-', 3, { start: 3, end: DURATION }],
  ['a missing start is the current position', 'npt=-10', 2, { start: 2, end: 10 }],
  ['an end beyond the asset is clamped', 'npt=5-100', 0, { start: 5, end: DURATION }],
  ['a closed range inside the asset is kept', 'npt=1.5-2.5', 0, { start: 1.5, end: 2.5 }],
];

for (const [name, header, position, expected] of RESOLVED) {
  test(`resolving: ${name}`, (t) => {
    t.deepEqual(resolveRange(header === undefined ? undefined : parseRange(header), { duration: DURATION, position }), expected);
  });
}

const UNSATISFIABLE: Array<[string, string, number]> = [
  ['a start at the end', 'npt=12.020-', 0],
  ['a start beyond the end', 'npt=20-', 0],
  ['an end of now', 'npt=0-now', 0],
  ['now when the position is at the end', 'npt=now-', 12.02],
  ['an end before the current position', 'npt=-2', 5],
];

for (const [name, header, position] of UNSATISFIABLE) {
  test(`resolving ${name} is refused with 457`, (t) => {
    const err = refusal(t, () => resolveRange(parseRange(header), { duration: DURATION, position }));
    t.is(err?.code, 'TF_RANGE_INVALID');
  });
}
