// What the liveness bench's receiver counts for one RTP session that is played
// again and again: lost, duplicated and reordered datagrams by RTP sequence
// number, MPEG-TS continuity-counter errors, and inter-arrival gaps.
//
// The engine numbers a session's datagrams on across its plays (a PLAY's
// RTP-Info seq follows the last datagram sent before it), so one sequence space
// serves the whole session: every sequence number is extended past the 16-bit
// wrap and marked in a bitmap. Seen before → duplicated; lower than the highest
// so far → reordered; never seen between the first PLAY's RTP-Info seq and the
// last one the server sent → lost (a loss at the end of a play too). The last
// one sent comes from the server's final RTCP sender report (its packet count,
// RFC 3550 §6.4.1, counts the session's datagrams from its first play on); where
// there is none, or it does not fit, the highest received stands in for it. Datagrams are thus
// placed by their numbers, not by when the receiver read them: a receiver that
// was not scheduled for a while reads the end of a play after it sent the next
// PLAY, and that must not count as anything. A PLAY whose RTP-Info seq is not
// beyond everything read before it was sent means the numbering did not go on
// (`seqJumps`): then duplicates and losses around it are not to be trusted.
//
// Continuity counters are checked per PID in arrival order (what a player
// without a jitter buffer sees), per play: a datagram below the current play's
// RTP-Info seq is checked against the previous play's counters. Datagrams read
// while a PLAY's reply is outstanding wait for it (the Buffers Node handed over
// are kept, not copied). Gaps between arrivals go to a 0.1 ms histogram; the gap
// across a re-PLAY is left out.

import { nearest16 } from './lib.js';
import { quantileRank } from './stats.js';

const TS_PACKET = 188;
/** Gap histogram: 0.1 ms buckets up to 2 s, the last one for everything longer. */
const GAP_BUCKETS = 20_001;
/** The bitmap grows up to this many sequence numbers (about 16 h of one 3 Mbit/s session). */
const MAX_SEQS = 1 << 24;
/** Room below the first sequence number for datagrams that arrive before it. */
const ORIGIN_MARGIN = 4096;
/** Datagrams kept while a PLAY's reply is outstanding; later ones go unchecked for continuity. */
const MAX_PENDING = 50_000;

export interface SessionTotals {
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Datagrams below the first PLAY's RTP-Info seq, or beyond the bitmap. */
  outside: number;
  /** PLAYs whose RTP-Info seq did not go on from what was read before (see the header). */
  seqJumps: number;
  /** 1 when the end of the session came from the server's sender report, 0 when from the highest seq received. */
  endFromReport: number;
  ccErrors: number;
  /** Datagrams not checked for continuity (more than MAX_PENDING waited for a PLAY reply). */
  ccUnchecked: number;
  /** TS packets without the 0x47 sync byte where one was due. */
  syncErrors: number;
  plays: number;
}

/** One session's counts over all its plays. Nothing allocates per datagram. */
export class SessionCount {
  readonly totals: SessionTotals = {
    received: 0, lost: 0, duplicated: 0, reordered: 0, outside: 0, seqJumps: 0, endFromReport: 0, ccErrors: 0, ccUnchecked: 0, syncErrors: 0, plays: 0,
  };
  gapMaxMs = 0;
  private bits = new Uint8Array(1024);
  /** Extended seq of bit 0; NaN until the first number is seen. */
  private origin = Number.NaN;
  private maxExt = Number.NaN;
  /** Extended RTP-Info seq of the first and of the current play. */
  private firstStart = Number.NaN;
  private currentStart = Number.NaN;
  /** The highest extended seq read when the current PLAY was sent. */
  private maxAtPlay = Number.NaN;
  /** Last continuity counter per PID, −1: none yet; of the current play and of the one before. */
  private ccCurrent = new Int8Array(8192).fill(-1);
  private ccPrevious = new Int8Array(8192).fill(-1);
  /** Datagrams read while a PLAY's reply is outstanding, with their extended seqs. */
  private readonly pending: Buffer[] = [];
  private readonly pendingExt: number[] = [];
  private awaitingReply = false;
  private readonly gaps = new Uint32Array(GAP_BUCKETS);
  private lastArrivalMs = Number.NaN;

  /** One RTP datagram, read at `nowMs`. */
  onDatagram(buf: Buffer, nowMs: number): void {
    if (!Number.isNaN(this.lastArrivalMs)) {
      const gap = nowMs - this.lastArrivalMs;
      this.gaps[Math.min(GAP_BUCKETS - 1, Math.floor(gap * 10))]++;
      if (gap > this.gapMaxMs) this.gapMaxMs = gap;
    }
    this.lastArrivalMs = nowMs;
    if (buf.length < 12) return;
    const ext = this.extend(buf.readUInt16BE(2));
    this.mark(ext);
    if (!this.awaitingReply) this.checkContinuity(buf, ext);
    else if (this.pending.length < MAX_PENDING) {
      this.pending.push(buf);
      this.pendingExt.push(ext);
    } else this.totals.ccUnchecked++;
  }

  /** A PLAY is about to be sent. */
  beginPlay(): void {
    this.flushPending(Number.NEGATIVE_INFINITY); // a reply that never came: they belong to the play that was on
    this.totals.plays++;
    this.maxAtPlay = this.maxExt;
    this.awaitingReply = true;
    this.lastArrivalMs = Number.NaN;
  }

  /** The PLAY's reply, with its RTP-Info seq: the first datagram of the new play. */
  played(seq: number): void {
    const start = this.extend(seq);
    if (Number.isNaN(this.firstStart)) this.firstStart = start;
    else if (!(start > this.maxAtPlay)) this.totals.seqJumps++;
    const older = this.ccPrevious;
    this.ccPrevious = this.ccCurrent;
    this.ccCurrent = older.fill(-1);
    this.currentStart = start;
    this.flushPending(start);
  }

  /** The PLAY failed: what arrives still belongs to the play before. */
  playFailed(): void {
    this.flushPending(Number.NEGATIVE_INFINITY);
  }

  /**
   * Totals are final after this. `sentByReport`: the packet count of the server's
   * last sender report, once it stopped sending (undefined: none came).
   */
  finish(sentByReport: number | undefined): void {
    this.flushPending(Number.NEGATIVE_INFINITY);
    if (Number.isNaN(this.firstStart) || Number.isNaN(this.maxExt)) return;
    let end = this.maxExt;
    if (sentByReport !== undefined) {
      const last = this.firstStart + sentByReport - 1;
      if (last >= end && last - this.origin < MAX_SEQS) {
        end = last;
        this.totals.endFromReport = 1;
      }
    }
    let unique = 0;
    const from = Math.max(0, this.firstStart - this.origin);
    const to = Math.min(this.bits.length * 8 - 1, end - this.origin);
    for (let i = 0; i < from; i++) if (this.has(i)) this.totals.outside++;
    for (let i = from; i <= to; i++) if (this.has(i)) unique++;
    this.totals.lost = Math.max(0, end - this.firstStart + 1 - unique);
  }

  /** Nearest-rank quantile of the gaps (stats.ts's definition), to the histogram's 0.1 ms (its bucket's upper edge; NaN with no gap). */
  gapQuantileMs(q: number): number {
    let n = 0;
    for (const c of this.gaps) n += c;
    if (n === 0) return Number.NaN;
    const rank = quantileRank(n, q);
    let seen = 0;
    for (let b = 0; b < GAP_BUCKETS - 1; b++) {
      seen += this.gaps[b];
      if (seen >= rank) return (b + 1) / 10;
    }
    return this.gapMaxMs;
  }

  /** `seq` extended to the value nearest the highest so far (the first number anchors the space). */
  private extend(seq: number): number {
    if (Number.isNaN(this.origin)) {
      const anchor = seq + 0x10000; // keeps every extended value positive
      this.origin = anchor - ORIGIN_MARGIN;
      return anchor;
    }
    return nearest16(seq, Number.isNaN(this.maxExt) ? this.origin + ORIGIN_MARGIN : this.maxExt);
  }

  private has(i: number): boolean {
    return (this.bits[i >> 3] & (1 << (i & 7))) !== 0;
  }

  private mark(ext: number): void {
    this.totals.received++;
    const i = ext - this.origin;
    if (i < 0 || !this.fits(i)) {
      this.totals.outside++;
      return;
    }
    if (this.has(i)) {
      this.totals.duplicated++;
      return;
    }
    this.bits[i >> 3] |= 1 << (i & 7);
    if (ext < this.maxExt) this.totals.reordered++;
    else this.maxExt = ext;
  }

  /** Grows the bitmap to hold index i; false past MAX_SEQS. */
  private fits(i: number): boolean {
    if (i < this.bits.length * 8) return true;
    if (i >= MAX_SEQS) return false;
    const grown = new Uint8Array(Math.min(MAX_SEQS / 8, Math.max(this.bits.length * 2, (i >> 3) + 1)));
    grown.set(this.bits);
    this.bits = grown;
    return true;
  }

  /** Checks the datagrams that waited for a reply; those below `start` belong to the play before (−∞: none does). */
  private flushPending(start: number): void {
    this.awaitingReply = false;
    for (let k = 0; k < this.pending.length; k++) {
      const ext = this.pendingExt[k];
      this.checkContinuity(this.pending[k], ext, ext < start);
    }
    this.pending.length = 0;
    this.pendingExt.length = 0;
  }

  /** Every TS packet's continuity counter against the last one of its PID in its play (ISO 13818-1 §2.4.3.3). */
  private checkContinuity(buf: Buffer, ext: number, previousPlay = ext < this.currentStart): void {
    const cc = previousPlay ? this.ccPrevious : this.ccCurrent;
    const b0 = buf[0];
    let offset = 12 + 4 * (b0 & 0x0f);
    if ((b0 & 0x10) !== 0 && buf.length >= offset + 4) offset += 4 + 4 * buf.readUInt16BE(offset + 2);
    const end = (b0 & 0x20) !== 0 ? buf.length - buf[buf.length - 1] : buf.length;
    for (let p = offset; p + TS_PACKET <= end; p += TS_PACKET) {
      if (buf[p] !== 0x47) {
        this.totals.syncErrors++;
        continue;
      }
      const pid = ((buf[p + 1] & 0x1f) << 8) | buf[p + 2];
      if (pid === 0x1fff) continue; // null packets carry no counter
      const afc = (buf[p + 3] >> 4) & 3;
      if ((afc & 1) === 0) continue; // no payload: the counter does not advance
      const counter = buf[p + 3] & 0x0f;
      const discontinuity = (afc & 2) !== 0 && buf[p + 4] > 0 && (buf[p + 5] & 0x80) !== 0;
      const last = cc[pid];
      if (last >= 0 && !discontinuity && counter !== ((last + 1) & 0x0f)) this.totals.ccErrors++;
      cc[pid] = counter;
    }
  }
}
