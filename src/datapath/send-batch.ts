// One data-path turn's datagrams, sent together (README, "Batched sends"). The
// loop stages every datagram that falls due within the batch window, session by
// session (a session's datagrams are one run, claimed together); send() puts
// them all on the wire in ONE call into the native addon (one sendmmsg per
// socket), or, without the addon, one dgram send each in the same order.
// results[i] then says what became of datagram i: 0 sent, or the errno that
// refused it. The arrays are reused turn after turn and only ever grow.

import { nativeAddon, type NativeAddon } from '../shared/native.js';

/** The addon, when it is built with the batched send (a build older than it lacks it). */
export const nativeSender: NativeAddon | undefined = typeof nativeAddon?.sendBatch === 'function' ? nativeAddon : undefined;

/** What a run's datagrams leave through: a session's socket (PathSession), or the warm-up's. */
export interface BatchSocket {
  /** The native socket's descriptor, -1 when closed (or on the dgram fallback). */
  readonly fd: number;
  /** The fallback's send of one datagram: 0, or the errno that refused it. */
  sendDgram(buf: Buffer, length: number): number;
  /**
   * Set for a session whose datagrams go on its viewer's RTSP connection: put
   * datagrams first..first+count-1 of `batch` (the first one is cursor
   * `cursorLo`, low 32 bits) into its wire and flush it, writing their results.
   */
  readonly sendInterleaved?: (batch: SendBatch<BatchSocket>, first: number, count: number, cursorLo: number) => void;
}

export class SendBatch<S extends BatchSocket> {
  /** Datagrams staged this turn. */
  count = 0;
  /** Runs staged this turn: one per session, its datagrams consecutive. */
  runs = 0;
  readonly buffers: Buffer[] = [];
  lengths = new Int32Array(256);
  private fds = new Int32Array(256);
  results = new Int32Array(256);
  /** Run r: session, index of its first datagram, and the control word (halves) it was claimed at. */
  readonly runSession: S[] = [];
  runStart = new Int32Array(64);
  runHi = new Int32Array(64);
  runLo = new Int32Array(64);

  /** Start a run for session `s`, claimed at control word (hi, lo); its datagrams follow with add(). */
  openRun(s: S, hi: number, lo: number): void {
    if (this.runs === this.runStart.length) {
      this.runStart = grow(this.runStart);
      this.runHi = grow(this.runHi);
      this.runLo = grow(this.runLo);
    }
    this.runSession[this.runs] = s;
    this.runStart[this.runs] = this.count;
    this.runHi[this.runs] = hi;
    this.runLo[this.runs] = lo;
    this.runs++;
  }

  add(buffer: Buffer, length: number): void {
    if (this.count === this.lengths.length) {
      this.lengths = grow(this.lengths);
      this.fds = grow(this.fds);
      this.results = grow(this.results);
    }
    this.buffers[this.count] = buffer;
    this.lengths[this.count] = length;
    this.count++;
  }

  /** One past run r's last datagram. */
  runEnd(r: number): number {
    return r + 1 < this.runs ? this.runStart[r + 1] : this.count;
  }

  /**
   * Send every staged datagram. Each session's socket is looked up now, not when
   * it was staged: a session closed meanwhile has fd -1 and sends nothing (its
   * old descriptor number may already belong to another file of the process).
   */
  send(): void {
    let interleavedRuns = 0;
    for (let r = 0; r < this.runs; r++) {
      const s = this.runSession[r];
      const end = this.runEnd(r);
      if (s.sendInterleaved) {
        interleavedRuns++;
        for (let i = this.runStart[r]; i < end; i++) this.fds[i] = -1; // not on a UDP socket
      } else if (nativeSender) {
        const fd = s.fd;
        for (let i = this.runStart[r]; i < end; i++) this.fds[i] = fd;
      } else {
        for (let i = this.runStart[r]; i < end; i++) this.results[i] = s.sendDgram(this.buffers[i], this.lengths[i]);
      }
    }
    if (nativeSender && interleavedRuns < this.runs) nativeSender.sendBatch(this.fds, this.buffers, this.lengths, this.count, this.results);
    if (interleavedRuns === 0) return;
    for (let r = 0; r < this.runs; r++) {
      const s = this.runSession[r];
      if (s.sendInterleaved) s.sendInterleaved(this, this.runStart[r], this.runEnd(r) - this.runStart[r], this.runLo[r]);
    }
  }

  /** Forget the turn, and let go of its sessions and buffers (a closed session must not stay reachable). */
  clear(): void {
    this.runSession.fill(undefined as unknown as S, 0, this.runs);
    this.buffers.fill(undefined as unknown as Buffer, 0, this.count);
    this.count = 0;
    this.runs = 0;
  }
}

function grow(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(a.length * 2);
  bigger.set(a);
  return bigger;
}
