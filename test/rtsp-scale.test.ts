// The Scale header: what a PLAY may ask for, and how a reply says it.

import test from 'ava';
import { TwinframeError } from '../src/errors.js';
import { formatScale, parseScale, playScale } from '../src/rtsp/headers/scale.js';

test('Scale parses signed decimals', (t) => {
  for (const [wire, scale] of [['1', 1], ['2', 2], ['-4', -4], ['+16', 16], ['0.5', 0.5], ['-1.0', -1], [' 8 ', 8], ['.5', 0.5]] as const) {
    t.is(parseScale(wire), scale, wire);
  }
});

test('a Scale that is not a non-zero number is a bad request (400)', (t) => {
  for (const wire of ['0', '-0.0', '', 'fast', '2x', '1e3', 'NaN', 'Infinity', '--2', '1,5']) {
    const err = t.throws(() => parseScale(wire), { instanceOf: TwinframeError }, wire);
    t.is(err?.code, 'TF_RTSP_BAD_REQUEST', wire);
  }
});

test('a reply writes integers without decimals', (t) => {
  t.is(formatScale(1), '1');
  t.is(formatScale(-16), '-16');
  t.is(formatScale(0.5), '0.5');
  t.throws(() => formatScale(0), { instanceOf: RangeError });
});

test('the server plays 1 and ±2, ±4, ±8, ±16; any other scale is 456', (t) => {
  for (const scale of [1, 2, 4, 8, 16, -2, -4, -8, -16]) t.is(playScale(scale), scale);
  for (const scale of [3, 0.5, 32, -1, 1.5, -32]) {
    const err = t.throws(() => playScale(scale), { instanceOf: TwinframeError }, String(scale));
    t.is(err?.code, 'TF_RTSP_HEADER_NOT_VALID', String(scale));
    t.is(err?.rtspStatus, 456);
  }
});
