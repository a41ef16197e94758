// The capacity benchmark's analysis (bench/capacity/analysis.ts) on synthetic
// arrivals: one session of 200 datagrams due every 3 ms, the RTP sequence
// numbers wrapping inside the window, the PCR clock wrapping too, and on top of
// that one datagram lost, one duplicated, two swapped, one 2 ms late. Gaps,
// loss, duplicates, reordering and the PCR spread must come out exactly so; then
// the PCR reader on a built datagram, the level summary, the medians over
// trials, the held verdict, the asset's bit rate and the memory fit; and the
// report's per-transport figures (targets, memory fit, TCP against UDP).

import test from 'ava';
import { analyseSession, fitLine, levelHeld, medianOfTrials, readPcr, summarizeLevel, type SessionFigures } from '../bench/capacity/analysis.js';
import { pcrBitrate } from '../bench/capacity/asset.js';
import { memoryFits, targets, transportCostLines, transportCosts, type Row } from '../bench/capacity/report.js';
import type { ServerName, Transport } from '../bench/capacity/servers.js';
import { leakCheck } from './helpers/leak-check.js';

const PACKET_MS = 0.5;
const PCR_WRAP_MS = (2 ** 33 / 90_000) * 1000;
/** The stream's PCR time of datagram 0: 300 ms before the 33-bit wrap, so that it wraps at datagram 100. */
const PCR0_MS = PCR_WRAP_MS - 300;

/** Datagram d: due at 1000 + 3d ms, seq 65500 + d (mod 2^16); every 4th carries a PCR in packet d % 7. */
function datagram(d: number, arrivalMs: number): { arrivalMs: number; seq: number; pcrMs: number; pcrPacket: number } {
  const k = d % 7;
  const hasPcr = d % 4 === 0;
  return { arrivalMs, seq: (65_500 + d) & 0xffff, pcrMs: hasPcr ? (PCR0_MS + 3 * d + k * PACKET_MS) % PCR_WRAP_MS : Number.NaN, pcrPacket: hasPcr ? k : 0 };
}

function syntheticSession(): ReturnType<typeof datagram>[] {
  const due = (d: number): number => 1000 + 3 * d;
  const out: ReturnType<typeof datagram>[] = [];
  for (let d = 0; d < 200; d++) {
    if (d === 150) continue; // lost
    if (d === 170) continue; // arrives after 171
    if (d === 171) {
      out.push(datagram(171, due(170) + 0.5), datagram(170, due(170) + 1));
      continue;
    }
    out.push(datagram(d, due(d) + (d === 100 ? 2 : 0)));
    if (d === 61) out.push({ ...datagram(61, due(61) + 0.1), pcrMs: Number.NaN }); // the duplicate
  }
  return out;
}

function record(arrivals: ReturnType<typeof datagram>[]): Parameters<typeof analyseSession>[0] {
  return {
    count: arrivals.length,
    arrivalMs: Float64Array.from(arrivals, (a) => a.arrivalMs),
    seq: Uint16Array.from(arrivals, (a) => a.seq),
    pcrMs: Float64Array.from(arrivals, (a) => a.pcrMs),
    pcrPacket: Uint8Array.from(arrivals, (a) => a.pcrPacket),
  };
}

test('one session: loss, duplicate, reordering, gaps and PCR spread', (t) => {
  const f = analyseSession(record(syntheticSession()), PACKET_MS, 1000 + 3 * 199 + 10);
  t.is(f.received, 200);
  t.is(f.lost, 1);
  t.is(f.duplicated, 1);
  t.is(f.reordered, 1);
  // 199 gaps: 0.1, 0.5, 1, 2.9, 191 × 3, 3.5, 5, 5, 6 (nearest rank: p99 is rank 197).
  t.is(f.gapMs.p50, 3);
  t.true(Math.abs(f.gapMs.p99 - 5) < 1e-9, String(f.gapMs.p99));
  t.true(Math.abs(f.gapMs.max - 6) < 1e-9, String(f.gapMs.max));
  t.is(f.stalls, 0);
  // 50 datagrams carry a PCR; after taking out the PCR packet's place, all arrive on the PCR clock but one, 2 ms late.
  t.is(f.pcrCount, 50);
  t.true(Math.abs(f.pcrSpreadMs - 2) < 1e-6, String(f.pcrSpreadMs));
  t.true(Math.abs(f.silentAtEndMs - 10) < 1e-9);
});

test('a stall and a silent session', (t) => {
  const arrivals = [datagram(0, 0), datagram(1, 3), datagram(2, 250), datagram(3, 253)];
  const f = analyseSession(record(arrivals), PACKET_MS, 2000);
  t.is(f.stalls, 1);
  t.is(f.gapMs.max, 247);
  const empty = analyseSession(record([]), PACKET_MS, 2000);
  t.is(empty.received, 0);
  t.is(empty.lost, 0);
  t.true(Number.isNaN(empty.pcrSpreadMs));
  const level = summarizeLevel([f, empty]);
  t.is(level.silentSessions, 2); // one ended 1747 ms before the window's end, one received nothing
});

/** Makes the TS packet at `off` carry an adaptation field with this PCR (27 MHz ticks). */
function writePcr(ts: Uint8Array, off: number, pcr: number): void {
  const base = Math.floor(pcr / 300);
  const ext = pcr % 300;
  ts[off + 3] = 0x30;
  ts[off + 4] = 7;
  ts[off + 5] = 0x10;
  ts[off + 6] = Math.floor(base / 2 ** 25) & 0xff;
  ts[off + 7] = Math.floor(base / 2 ** 17) & 0xff;
  ts[off + 8] = Math.floor(base / 2 ** 9) & 0xff;
  ts[off + 9] = Math.floor(base / 2) & 0xff;
  ts[off + 10] = ((base % 2) << 7) | 0x7e | (ext >> 8); // the 6 reserved bits set
  ts[off + 11] = ext & 0xff;
}

test('readPcr finds the first PCR of a datagram, after CSRCs', (t) => {
  const csrc = 1;
  const dg = new Uint8Array(12 + 4 * csrc + 7 * 188);
  dg[0] = 0x80 | csrc;
  for (let k = 0; k < 7; k++) {
    const off = 12 + 4 * csrc + k * 188;
    dg[off] = 0x47;
    dg[off + 3] = 0x10; // payload only
  }
  // Packet 3: adaptation field with a PCR of base 2^32 + 5, extension 7.
  const off = 12 + 4 * csrc + 3 * 188;
  const base = 2 ** 32 + 5;
  writePcr(dg, off, base * 300 + 7);
  const out = new Float64Array(2);
  t.true(readPcr(dg, out));
  t.is(out[1], 3);
  t.true(Math.abs(out[0] - (base * 300 + 7) / 27_000) < 1e-9);
  dg[off + 5] = 0; // no PCR flag any more
  t.false(readPcr(dg, out));
});

test('level summary, medians over trials, the held verdict and the memory fit', (t) => {
  const session = (p99: number, lost: number): SessionFigures => ({
    received: 100, lost, duplicated: 0, reordered: 0, gapMs: { p50: 3, p99, max: p99 * 2 }, stalls: 0, pcrSpreadMs: p99, pcrCount: 10, silentAtEndMs: 5,
  });
  const a = summarizeLevel([session(3.5, 0), session(3.9, 0), session(3.6, 0)]);
  t.deepEqual(a.gapP99Ms, { median: 3.6, worst: 3.9 });
  t.is(a.lost, 0);
  const b = summarizeLevel([session(3.2, 0), session(4.5, 0), session(3.3, 0)]);
  const c = summarizeLevel([session(3.4, 0), session(3.7, 1), session(3.5, 0)]);
  const med = medianOfTrials([a, b, c]);
  t.deepEqual(med.gapP99Ms, { median: 3.5, worst: 3.9 });
  t.is(med.lost, 0);
  t.deepEqual(levelHeld(medianOfTrials([a, b]), [a, b], 3), { held: true, why: '' }); // worst p99 median 3.9 ≤ 4
  t.false(levelHeld(med, [a, b, c], 3).held); // a datagram lost in one trial
  t.false(levelHeld(a, [a], 2.5).held); // 3.9 > 3.5
  const fit = fitLine([{ x: 1, y: 30.5 }, { x: 50, y: 55 }, { x: 100, y: 80 }]);
  t.true(Math.abs(fit.perUnit - 0.5) < 1e-9 && Math.abs(fit.base - 30) < 1e-9, JSON.stringify(fit));
  t.true(Number.isNaN(fitLine([{ x: 5, y: 1 }]).perUnit));
});

test('pcrBitrate: bytes between the first and the last PCR over their time', (t) => {
  // 1000 packets at 1 Mbit/s (1.504 ms each), a PCR every 10th packet.
  const ts = new Uint8Array(1000 * 188);
  for (let p = 0; p < 1000; p++) {
    const off = p * 188;
    ts[off] = 0x47;
    if (p % 10 !== 0) continue;
    writePcr(ts, off, p * 188 * 8 * 27); // 27 MHz ticks at 1 bit/µs
  }
  t.true(Math.abs(pcrBitrate(ts) - 1e6) < 1, String(pcrBitrate(ts)));
});

/** A report row with just the figures the report reads. */
function row(server: ServerName, transport: Transport, sessions: number, cpuPct: number, p99Worst: number, rssMiB: number, held = true): Row {
  const session: SessionFigures = {
    received: 100, lost: held ? 0 : 2, duplicated: 0, reordered: 0, gapMs: { p50: 3, p99: p99Worst, max: 2 * p99Worst }, stalls: 0, pcrSpreadMs: 1, pcrCount: 10, silentAtEndMs: 5,
  };
  return {
    server, transport, sessions, cache: 'warm', fault: '-', trials: [], median: summarizeLevel([session]),
    cpuPct, schedCpuPct: cpuPct, rssMiB, receiverCpuPct: 1, receiverSocketDrops: 0, held, why: held ? '' : 'lost 2',
  };
}

test('report: targets and memory per transport, TCP against UDP per server and level', (t) => {
  const rows = [
    row('twinframe', 'udp', 1, 10, 3.3, 130), row('twinframe', 'tcp', 1, 12, 3.5, 131),
    row('gstreamer', 'udp', 1, 4, 3.2, 26), row('gstreamer', 'tcp', 1, 4, 3.4, 26),
    row('twinframe', 'udp', 50, 30, 3.6, 150), row('twinframe', 'tcp', 50, 45, 3.9, 160),
    row('gstreamer', 'udp', 50, 66, 3.3, 51), row('gstreamer', 'tcp', 50, 80, 5, 56, false),
    row('twinframe', 'udp', 100, 45, 3.7, 170), // no TCP row at 100: no comparison there
  ];
  const udp = targets(rows, 'udp');
  t.deepEqual(udp.cpuAt50, { ok: true, twinframe: 30, gstreamer: 66 });
  t.is(udp.sessions.gstreamer, 50);
  const tcp = targets(rows, 'tcp');
  t.deepEqual(tcp.cpuAt50, { ok: false, twinframe: 45, gstreamer: 80 });
  t.deepEqual(tcp.gapP99At50, { ok: true, twinframe: 3.9, gstreamer: 5 });
  t.is(tcp.sessions.gstreamer, 1, 'the peer missed 50 over TCP');

  const fits = memoryFits(rows, ['twinframe'], ['udp', 'tcp']);
  t.deepEqual(fits.map((m) => [m.transport, m.points.length]), [['udp', 3], ['tcp', 2]]);
  t.true(Math.abs(fits[1].perSessionKiB - (29 / 49) * 1024) < 1e-6, String(fits[1].perSessionKiB));

  const costs = transportCosts(rows);
  t.deepEqual(costs.map((c) => `${c.server} ${c.sessions}`), ['twinframe 1', 'gstreamer 1', 'twinframe 50', 'gstreamer 50']);
  const tf50 = costs[2];
  t.is(tf50.cpuRatio, 1.5);
  t.deepEqual(tf50.gapP99WorstMs, { udp: 3.6, tcp: 3.9 });
  t.deepEqual(costs[3].held, { udp: true, tcp: false });
  t.deepEqual(costs[3].lost, { udp: 0, tcp: 2 });
  t.is(transportCostLines([tf50])[0], 'twinframe 50 session(s), TCP against UDP: CPU 45.0 % vs 30.0 % (× 1.50), gap p99 worst 3.90 vs 3.60 ms, '
    + 'gap max worst 7.8 vs 7.2 ms, lost/dup 0/0 vs 0/0, held yes vs yes');
});

leakCheck(test);
