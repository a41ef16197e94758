// The seamless loop's arithmetic (src/mpegts/loop.ts) and a broadcast's
// schedule (src/broadcast/schedule.ts): pure functions, checked on their own.

import test from 'ava';
import { readFile } from 'node:fs/promises';
import { LoopScanner, buildLoopHeaderDatagram, loopElapsedTicks, loopHeaderDatagrams, newLoopPlace, placeLoopDatagram, type LoopPlan } from '../src/mpegts/loop.js';
import { START_SLACK_MS, packetAtTicks, scheduleNow, startOffsetMs } from '../src/broadcast/schedule.js';
import { packetContinuityCounter, packetDiscontinuity, packetPcr, packetPid } from '../src/mpegts/packet.js';
import { SAMPLE_ASSET } from './helpers/engine-fixture.js';

const PLAN: LoopPlan = { pids: [0, 0x20, 0x100, 0x101, 0x102, 0x103, 0x104, 0x105], headerCc: [15, 3, 0, 7, 1, 2, 3, 4], pcrPid: 0x100, pcr27: 123_456_789, packetCount: 100, periodTicks: 9000 };

test('datagrams cover the first pass from the start packet, then header datagrams and the whole asset, pass after pass', (t) => {
  t.is(loopHeaderDatagrams(PLAN), 2, 'eight PIDs take two datagrams of seven packets');
  const place = newLoopPlace();
  const seen: string[] = [];
  let next = 30;
  let pass = 0;
  let lastTicks = -Infinity;
  for (let d = 0; d < 60; d++) {
    placeLoopDatagram(PLAN, 30, d, place);
    if (place.pass !== pass) {
      t.is(place.pass, pass + 1, `datagram ${d} opens the next pass`);
      t.is(next, 100, 'the previous pass reached the asset\'s end');
      pass = place.pass;
      next = 0;
    }
    if (place.header >= 0) {
      seen.push(`h${place.pass}.${place.header}`);
      t.is(next, 0, 'header datagrams come before the pass\'s first packet');
    } else {
      t.is(place.first, next, `datagram ${d} continues where the last one ended`);
      t.is(place.count, Math.min(7, 100 - place.first));
      next = place.first + place.count;
    }
    // Send times (packet k at k·10 ticks here) never go back.
    const ticks = loopElapsedTicks(PLAN, place, place.header >= 0 ? 0 : place.first * 10, 300);
    t.true(ticks >= lastTicks, `datagram ${d}: ${ticks} after ${lastTicks}`);
    lastTicks = ticks;
  }
  t.deepEqual(seen, ['h1.0', 'h1.1', 'h2.0', 'h2.1', 'h3.0', 'h3.1'], 'first pass: 10 datagrams; then 17 a pass');
});

test('a header datagram flags every PID\'s discontinuity, sets its continuity counter, and carries the new PCR on the PCR PID', (t) => {
  const out = new Uint8Array(2 * 7 * 188);
  buildLoopHeaderDatagram(PLAN, 0, out, 0);
  buildLoopHeaderDatagram(PLAN, 1, out, 7 * 188);
  for (let i = 0; i < 14; i++) {
    const o = i * 188;
    if (i >= PLAN.pids.length) {
      t.is(packetPid(out, o), 0x1fff);
      continue;
    }
    t.is(packetPid(out, o), PLAN.pids[i]);
    t.true(packetDiscontinuity(out, o));
    t.is(packetContinuityCounter(out, o), PLAN.headerCc[i]);
    t.is(packetPcr(out, o), PLAN.pids[i] === PLAN.pcrPid ? PLAN.pcr27 : -1);
  }
});

test('the scanner finds every PID of the sample, the counter before each one\'s first packet, and its first PCR', async (t) => {
  const bytes = await readFile(SAMPLE_ASSET);
  const scanner = new LoopScanner(0x100);
  scanner.push(bytes);
  const program = scanner.program(0);
  const inFile = new Set<number>();
  for (let o = 0; o < bytes.length; o += 188) inFile.add(packetPid(bytes, o));
  inFile.delete(0x1fff);
  t.deepEqual(program.pids, [...inFile].sort((a, b) => a - b), 'every PID but the null PID, ascending');
  t.true(program.pids.includes(0x100) && program.pids.includes(0x101) && program.pids.includes(0));
  for (const [i, pid] of program.pids.entries()) {
    let o = 0;
    while (packetPid(bytes, o) !== pid) o += 188;
    const hasPayload = (bytes[o + 3] & 0x10) !== 0;
    t.is((program.headerCc[i] + (hasPayload ? 1 : 0)) & 0x0f, packetContinuityCounter(bytes, o), `PID ${pid}`);
  }
  t.true(scanner.firstPcr.pcr27 >= 0);
});

test('a schedule: pending before its time, then the offset (modulo the duration when looping), ended after its end', (t) => {
  t.deepEqual(scheduleNow(10_000, 4_000, 5_000, false), { kind: 'pending', inMs: 6_000 });
  t.deepEqual(scheduleNow(10_000, 12_500, 5_000, false), { kind: 'playing', offsetMs: 2_500 });
  t.deepEqual(scheduleNow(10_000, 15_000, 5_000, false), { kind: 'ended' });
  t.deepEqual(scheduleNow(10_000, 23_500, 5_000, true), { kind: 'playing', offsetMs: 3_500 });
});

test('a start within the slack of its time begins at the asset\'s start', (t) => {
  t.is(startOffsetMs(3), 0);
  t.is(startOffsetMs(START_SLACK_MS - 1), 0);
  t.is(startOffsetMs(START_SLACK_MS), START_SLACK_MS);
  t.is(startOffsetMs(4000), 4000);
});

test('packetAtTicks finds the first packet sent at or after a time', async (t) => {
  const times = [0, 0, 10, 20, 20, 30];
  const ticksOf = (p: number): Promise<number> => Promise.resolve(times[p]);
  t.is(await packetAtTicks(0, times.length, ticksOf), 0);
  t.is(await packetAtTicks(15, times.length, ticksOf), 3);
  t.is(await packetAtTicks(20, times.length, ticksOf), 3);
  t.is(await packetAtTicks(99, times.length, ticksOf), 5);
});
