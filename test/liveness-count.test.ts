// The liveness bench's receiver counts (bench/liveness-count.ts): a stream played
// twice with known losses, a duplicate, a reordering and a sequence wrap must give
// exactly those figures, and a clean one none, also when the receiver reads the
// end of a play only after it sent the next PLAY.

import test from 'ava';
import { SessionCount } from '../bench/liveness-count.js';
import { leakCheck } from './helpers/leak-check.js';

const TS_PER_DATAGRAM = 7;
const PID = 0x100;

/** RTP header with `seq`, then 7 TS packets of one PID whose counters continue from datagram `index` of its play. */
function datagram(seq: number, index: number): Buffer {
  const buf = Buffer.alloc(12 + 188 * TS_PER_DATAGRAM);
  buf[0] = 0x80;
  buf[1] = 33;
  buf.writeUInt16BE(seq & 0xffff, 2);
  for (let k = 0; k < TS_PER_DATAGRAM; k++) {
    const p = 12 + 188 * k;
    buf[p] = 0x47;
    buf[p + 1] = PID >> 8;
    buf[p + 2] = PID & 0xff;
    buf[p + 3] = 0x10 | ((index * TS_PER_DATAGRAM + k) & 0x0f); // payload only
  }
  return buf;
}

/** Plays `n` datagrams from `firstSeq`, as the server numbers them; `order` lists which to deliver, in arrival order. */
function playInto(count: SessionCount, firstSeq: number, order: readonly number[], t0: number): number {
  count.beginPlay();
  let t = t0;
  for (const i of order) count.onDatagram(datagram(firstSeq + i, i), (t += 3.5));
  count.played(firstSeq & 0xffff); // the reply comes after the first datagrams, as it often does
  return t;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('a clean stream over two plays, across the 16-bit wrap: nothing lost, duplicated, reordered or discontinuous', (t) => {
  const count = new SessionCount();
  const end = playInto(count, 65_500, range(100), 0);
  playInto(count, 65_600, range(100), end + 20);
  count.finish(200); // the server's last sender report: 200 datagrams
  t.deepEqual(count.totals, { received: 200, lost: 0, duplicated: 0, reordered: 0, outside: 0, seqJumps: 0, endFromReport: 1, ccErrors: 0, ccUnchecked: 0, syncErrors: 0, plays: 2 });
  const p99 = count.gapQuantileMs(0.99); // the upper edge of the gap's 0.1 ms bucket
  t.true(p99 >= 3.5 && p99 <= 3.6, String(p99));
});

test('losses (also at the tail of a play), a duplicate and a reordering are each counted', (t) => {
  const count = new SessionCount();
  // Play 1: 100 datagrams sent; 10 and 11 lost, 20 twice, 31 before 30, 98 and 99 (the tail) lost.
  const order1 = range(98).filter((i) => i !== 10 && i !== 11 && i !== 30 && i !== 31);
  order1.splice(order1.indexOf(20) + 1, 0, 20);
  order1.splice(order1.indexOf(29) + 1, 0, 31, 30);
  const end = playInto(count, 1000, order1, 0);
  // Play 2 starts where the server's numbering went on: seq 1100; its first datagram is lost, and
  // its last 5 of the 55 the server sent (its sender report says 155 in all).
  playInto(count, 1100, range(50).slice(1), end + 20);
  count.finish(155);
  const c = count.totals;
  t.is(c.received, 96 + 1 + 49);
  t.is(c.lost, 2 + 2 + 1 + 5);
  t.is(c.duplicated, 1);
  t.is(c.reordered, 1);
  t.is(c.plays, 2);
  // Counters break where datagrams are missing, repeated or out of order (arrival order), not at the new play.
  t.is(c.ccErrors, 1 + 2 + 2);
});

test('the end of a play read after the next PLAY (a receiver that was not scheduled) is neither lost nor discontinuous', (t) => {
  const count = new SessionCount();
  let now = 0;
  const deliver = (firstSeq: number, indexes: readonly number[]): void => {
    for (const i of indexes) count.onDatagram(datagram(firstSeq + i, i), (now += 3.5));
  };
  count.beginPlay();
  deliver(40_000, range(5));
  count.played(40_000);
  deliver(40_000, range(90).slice(5));
  // The BYE was read before datagrams 90-99, still waiting in the socket: the next PLAY goes out.
  count.beginPlay();
  deliver(40_000, range(100).slice(90, 95)); // read while the reply is outstanding
  count.played(40_100);
  deliver(40_000, range(100).slice(95)); // and after it
  deliver(40_100, range(50));
  count.finish(undefined); // no sender report: the session ends at its highest seq
  t.deepEqual(count.totals, { received: 150, lost: 0, duplicated: 0, reordered: 0, outside: 0, seqJumps: 0, endFromReport: 0, ccErrors: 0, ccUnchecked: 0, syncErrors: 0, plays: 2 });
});

test('a PLAY whose RTP-Info seq does not go on from the last play is flagged', (t) => {
  const count = new SessionCount();
  playInto(count, 500, range(20), 0);
  playInto(count, 500, range(20), 100); // numbered again from the same seq: duplicates that are not
  count.finish(undefined);
  t.is(count.totals.seqJumps, 1);
});

leakCheck(test);
