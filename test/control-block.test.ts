// The shared control block: its layout is sound, and its compare-and-swap
// operations keep the promises the data paths rely on.

import test from 'ava';
import { ControlBlock, newCtrlState } from '../src/shared/control-block.js';
import {
  CTRL, FAILURE_CAUSE_CODES, FailureCause, I32, PATH_COUNT, PATH_F64, PATH_I32, SEGMENT_F64, SEGMENT_SLOTS, computeLayout,
  pathF64Index, pathI32Index, segmentF64Index,
} from '../src/shared/layout.js';

function fields(o: Record<string, number>, stride: string): number[] {
  return Object.entries(o).filter(([k]) => k !== stride).map(([, v]) => v);
}

test('every field index is unique and inside its region of the buffer', (t) => {
  const maxSessions = 7;
  const layout = computeLayout(maxSessions);
  const i32 = new Set<number>();
  for (const v of fields(I32, 'GLOBAL_WORDS')) i32.add(v);
  for (let p = 0; p < PATH_COUNT; p++) for (const f of fields(PATH_I32, 'STRIDE')) i32.add(pathI32Index(p as 0 | 1, f));
  const globalCount = fields(I32, 'GLOBAL_WORDS').length;
  t.is(i32.size, globalCount + PATH_COUNT * fields(PATH_I32, 'STRIDE').length, 'Int32 indices collide');
  t.true([...i32].every((i) => i >= 0 && i < layout.i32Words));
  t.true(fields(I32, 'GLOBAL_WORDS').every((i) => i < I32.GLOBAL_WORDS));
  t.true(fields(PATH_I32, 'STRIDE').every((i) => i < PATH_I32.STRIDE));

  const f64 = new Set<number>();
  for (let p = 0; p < PATH_COUNT; p++) for (const f of fields(PATH_F64, 'STRIDE')) f64.add(pathF64Index(p as 0 | 1, f));
  for (let s = 0; s < maxSessions; s++) for (let g = 0; g < SEGMENT_SLOTS; g++) for (const f of fields(SEGMENT_F64, 'STRIDE')) f64.add(segmentF64Index(s, g, f));
  t.is(f64.size, PATH_COUNT * fields(PATH_F64, 'STRIDE').length + maxSessions * SEGMENT_SLOTS * fields(SEGMENT_F64, 'STRIDE').length, 'Float64 indices collide');
  t.true([...f64].every((i) => i >= 0 && i < layout.f64Words));

  t.true(layout.f64Offset >= layout.i32Words * 4 && layout.f64Offset % 8 === 0, 'Float64 region starts after the Int32 one, aligned');
  t.true(layout.u64Offset >= layout.f64Offset + layout.f64Words * 8 && layout.u64Offset % 8 === 0);
  t.is(layout.byteLength, layout.u64Offset + maxSessions * 8);
  t.notThrows(() => ControlBlock.create(maxSessions));
});

test('a switch happens once per epoch: two detectors racing cannot both switch', (t) => {
  const cb = ControlBlock.create(4);
  const start = cb.activeWord();
  t.is(ControlBlock.ownerOf(start), undefined);
  t.true(cb.switchActive(start, 0));
  const word = cb.activeWord();
  t.is(ControlBlock.ownerOf(word), 0);
  t.true(cb.switchActive(word, 1), 'first detector switches');
  t.false(cb.switchActive(word, 1), 'second detector, holding the same word, does not');
  t.is(ControlBlock.epochOf(cb.activeWord()), ControlBlock.epochOf(word) + 1);
  t.is(cb.switchCount(), 2);
});

test('the cursor only moves forward: a deposed sender that wakes late cannot move it back', (t) => {
  const cb = ControlBlock.create(4);
  cb.resetSession(0);
  cb.startSegment(0, () => ({ startPacket: 0, startTimeMs: 0, rtpTsBase: 0, endPacket: 1000 }));
  const stale = cb.ctrl(0);
  t.true(cb.advanceCursor(0, stale));
  t.true(cb.advanceCursor(0, cb.ctrl(0)));
  t.false(cb.advanceCursor(0, stale), 'an advance from an old word fails');
  t.is(ControlBlock.cursorOf(cb.ctrl(0)), 2);
});

test('a pause landing between a send and its advance does not undo the advance', (t) => {
  const cb = ControlBlock.create(4);
  cb.resetSession(1);
  cb.startSegment(1, () => ({ startPacket: 0, startTimeMs: 0, rtpTsBase: 0, endPacket: 1000 }));
  const sent = cb.ctrl(1);
  cb.pauseSession(1);
  t.true(cb.advanceCursor(1, sent));
  const word = cb.ctrl(1);
  t.true(ControlBlock.isPaused(word));
  t.is(ControlBlock.cursorOf(word), 1);
});

test('a new segment starts at the current cursor and its parameters read back whole', (t) => {
  const cb = ControlBlock.create(4);
  cb.resetSession(2);
  const first = cb.startSegment(2, () => ({ startPacket: 0, startTimeMs: 10, rtpTsBase: 5, endPacket: 1000 }));
  for (let i = 0; i < 5; i++) cb.advanceCursor(2, cb.ctrl(2));
  cb.pauseSession(2);
  const second = cb.startSegment(2, (cursor) => ({ startPacket: 7 * cursor + 700, startTimeMs: 20, rtpTsBase: 9, endPacket: 7 * cursor + 1400 }));
  t.is(second.id, first.id + 1);
  t.is(second.startCursor, 5);
  const word = cb.ctrl(2);
  t.false(ControlBlock.isPaused(word), 'starting a segment resumes');
  t.is(ControlBlock.segmentOf(word), second.id);
  const out = { id: -1, startCursor: 0, startPacket: 0, startTimeMs: 0, rtpTsBase: 0, endPacket: 0 };
  t.true(cb.readSegment(2, second.id, out));
  t.deepEqual(out, second);
  t.true(cb.readSegment(2, first.id, out), 'the previous segment is still readable in the other slot');
  cb.startSegment(2, () => ({ startPacket: 0, startTimeMs: 30, rtpTsBase: 0, endPacket: 1000 }));
  t.false(cb.readSegment(2, first.id, out), 'two segments later its slot holds another');
});

test('every failure cause survives the 8-bit critical word', (t) => {
  const cb = ControlBlock.create(4);
  for (const cause of FAILURE_CAUSE_CODES) {
    cb.reportCritical(1, cb.beginIncarnation(1), cause, 1);
    t.is(cb.critical(1)?.cause, cause);
  }
});

test('a critical-failure word from an older incarnation is ignored, and a failure is claimed once', (t) => {
  const cb = ControlBlock.create(4);
  const first = cb.beginIncarnation(0);
  cb.reportCritical(0, first, FailureCause.EXIT, 123);
  t.deepEqual(cb.critical(0), { cause: FailureCause.EXIT, atMs: 123 });
  t.true(cb.claimFailure(0, first));
  t.false(cb.claimFailure(0, first));
  const second = cb.beginIncarnation(0);
  t.is(cb.critical(0), undefined, 'the old word does not blame the new worker');
  t.false(cb.failureClaimed(0));
  cb.setOnline(0, second);
  t.true(cb.isOnline(0));
  cb.clearOnline(0);
  t.false(cb.isOnline(0));
});

test('control words keep cursor, flags and segment apart', (t) => {
  const word = (BigInt(0xabcd) << CTRL.SEGMENT_SHIFT) | CTRL.PAUSED | 123456789n;
  t.is(ControlBlock.cursorOf(word), 123456789);
  t.is(ControlBlock.segmentOf(word), 0xabcd);
  t.true(ControlBlock.isPaused(word));
  t.false(ControlBlock.isEnded(word));
});

test('the allocation-free control-word reader decodes exactly what the BigInt decoders do', (t) => {
  const cb = ControlBlock.create(4);
  const words = new BigUint64Array(cb.sab, cb.layout.u64Offset, cb.layout.u64Words);
  const out = newCtrlState();
  const samples = [0n, 1n, CTRL.CURSOR_MASK, CTRL.PAUSED | 7n, CTRL.ENDED | (1n << 35n), (0xffffn << CTRL.SEGMENT_SHIFT) | CTRL.PAUSED | CTRL.ENDED | ((1n << 40n) - 2n)];
  for (let i = 0; i < 200; i++) {
    samples.push((BigInt(Math.floor(Math.random() * 0x10000)) << CTRL.SEGMENT_SHIFT) | (Math.random() < 0.5 ? CTRL.PAUSED : 0n)
      | (Math.random() < 0.5 ? CTRL.ENDED : 0n) | (BigInt(Math.floor(Math.random() * 2 ** 40)) & CTRL.CURSOR_MASK));
  }
  for (const word of samples) {
    words[3] = word;
    cb.readCtrl(3, out);
    t.deepEqual(
      { cursor: out.cursor, segment: out.segment, paused: out.paused, ended: out.ended },
      { cursor: ControlBlock.cursorOf(word), segment: ControlBlock.segmentOf(word), paused: ControlBlock.isPaused(word), ended: ControlBlock.isEnded(word) },
      `word 0x${word.toString(16)}`,
    );
  }
  // And the compare-and-swap built from the halves advances that very word.
  words[3] = (5n << CTRL.SEGMENT_SHIFT) | 41n;
  cb.readCtrl(3, out);
  t.true(cb.advanceCursorFrom(3, out.hi, out.lo));
  t.is(ControlBlock.cursorOf(cb.ctrl(3)), 42);
});
