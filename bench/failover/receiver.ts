// The receiver: one UDP socket per session, every arrival stamped on the shared
// clock (CLOCK_MONOTONIC, as monoNowMs() and the engine's events), payloads
// checked against the asset as they come. Runs in a child process
// (receiver-process.ts) or a worker thread (receiver-thread.ts); it talks to the
// bench through a Channel either way.

import dgram from 'node:dgram';
import { TICKS_PER_MS } from '../../src/mpegts/packet.js';
import { readFileSync } from 'node:fs';
import type { SessionInfo } from '../../src/engine/engine.js';
import { TS_PACKETS_PER_DATAGRAM } from '../../src/rtp/packetizer.js';
import { raiseThreadPriority } from '../../src/shared/thread-priority.js';
import { checkRtpStream, type SampleAsset } from '../../test/helpers/engine-fixture.js';
import { parseRtpPacket, type RtpPacket } from '../../test/helpers/rtsp-client.js';
import { nearest16 } from '../lib.js';
import { RECEIVER_FIFO_PRIORITY, RECV_BUFFER_BYTES, segmentLength, type FromReceiver, type ReceiverInit, type Segment, type SocketData, type ToReceiver } from './model.js';

/** How the receiver talks to the bench: a worker's parentPort, or a child process's IPC channel. */
export interface Channel {
  post(msg: FromReceiver, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (msg: ToReceiver) => void): void;
  close(): void;
}

/**
 * The receiver. One socket per session (sockets are added per engine
 * generation, never reused), each stamping arrivals on the shared clock and
 * checking payloads against the asset in small batches.
 */
export function runReceiver(init: ReceiverInit, port: Channel): void {
  const priority = init.rt ? raiseThreadPriority(RECEIVER_FIFO_PRIORITY) : { policy: 'normal', error: 'disabled (--receiver-rt off)' };
  const sample: SampleAsset = {
    asset: init.asset, bytes: readFileSync(init.asset.assetPath), times: init.times, randomAccess: [], durationMs: 0, presentationEndMs: 0, pictures: new Uint32Array(0), cleanup: async () => {},
  };

  interface Sock {
    socket: dgram.Socket;
    port: number;
    seq: Uint16Array;
    at: Float64Array;
    n: number;
    pending: Array<{ p: RtpPacket; at: number }>;
    info: SessionInfo | undefined;
    segments: Segment[];
    maxCursor: number | undefined;
    mismatched: number;
    firstMismatch: string | undefined;
    checked: number;
    unplaced: number;
    malformed: number;
    inferred: number;
    last: number;
  }
  const socks: Sock[] = [];

  const addSocket = async (): Promise<Sock> => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => { socket.off('error', reject); resolve(); });
    });
    try { socket.setRecvBufferSize(RECV_BUFFER_BYTES); } catch { /* capped by net.core.rmem_max: the size is reported */ }
    const s: Sock = {
      socket, port: socket.address().port, seq: new Uint16Array(1 << 14), at: new Float64Array(1 << 14), n: 0, pending: [],
      info: undefined, segments: [], maxCursor: undefined, mismatched: 0, firstMismatch: undefined, checked: 0, unplaced: 0, malformed: 0, inferred: 0, last: 0,
    };
    socket.on('message', (data: Buffer) => {
      const atMs = Number(process.hrtime.bigint()) / 1e6;
      if (s.n === s.seq.length) {
        const seq = new Uint16Array(s.seq.length * 2); seq.set(s.seq); s.seq = seq;
        const at = new Float64Array(s.at.length * 2); at.set(s.at); s.at = at;
      }
      s.seq[s.n] = data.length >= 4 ? data.readUInt16BE(2) : 0;
      s.at[s.n] = atMs;
      s.n++;
      s.last = atMs;
      try {
        s.pending.push({ p: parseRtpPacket(data), at: atMs });
      } catch {
        s.malformed++;
      }
    });
    socket.on('error', () => { /* a receive error shows up as loss in the sequence numbers */ });
    socks.push(s);
    return s;
  };

  /**
   * Hold the datagrams received so far against the asset with checkRtpStream,
   * each in its segment (a play() result). Datagrams younger than CHECK_DELAY_MS
   * wait, so that the play() result of a new segment has time to arrive.
   *
   * The engine also starts segments of its own that no play() result announces:
   * when no path was sending for a while (both failed) it restarts every playing
   * session's clock at its cursor (rebasePlayingSessions), which moves RTP
   * timestamps forward by the outage. Such a segment shows as a datagram whose
   * payload is right but whose timestamp is not; its parameters follow from that
   * datagram (start packet, RTP timestamp base, and start time = first start +
   * (base - initial timestamp) / 90), so it is added as an inferred segment,
   * counted, and checking goes on against it.
   */
  const CHECK_DELAY_MS = 200;
  const findSegment = (s: Sock, cursor: number): Segment | undefined => {
    for (let k = s.segments.length - 1; k >= 0; k--) {
      const cand = s.segments[k];
      if (cand.startCursor <= cursor) {
        const end = k + 1 < s.segments.length ? s.segments[k + 1].startCursor : cand.startCursor + segmentLength(cand, init.asset.packetCount);
        return cursor < end ? cand : undefined;
      }
    }
    return undefined;
  };
  const checkOne = (info: SessionInfo, seg: Segment, p: RtpPacket): { mismatched: number; firstMismatch: string | undefined } =>
    // Numbering cursors from the segment's first RTP sequence number keeps checkRtpStream's 16-bit arithmetic exact.
    checkRtpStream([p], { ...info, initialSeq: seg.play.seq }, seg.play, sample);
  const check = (final: boolean): void => {
    const horizon = Number(process.hrtime.bigint()) / 1e6 - CHECK_DELAY_MS;
    for (const s of socks) {
      if (!s.info || s.pending.length === 0) continue;
      const info = s.info;
      let k = 0;
      for (; k < s.pending.length; k++) {
        const { p, at } = s.pending[k];
        if (!final && at > horizon) break;
        const c16 = (p.sequence - info.initialSeq) & 0xffff;
        const cursor = s.maxCursor === undefined ? c16 : nearest16(c16, s.maxCursor);
        if (s.maxCursor === undefined || cursor > s.maxCursor) s.maxCursor = cursor;
        const seg = findSegment(s, cursor);
        if (!seg) {
          s.unplaced++;
          s.firstMismatch ??= `seq ${p.sequence} (cursor ${cursor}) belongs to no known segment`;
          continue;
        }
        let r = checkOne(info, seg, p);
        if (r.mismatched && r.firstMismatch?.startsWith('timestamp') && s.segments.length > 0) {
          const first = s.segments[0];
          const packet = seg.play.startPacket + TS_PACKETS_PER_DATAGRAM * (cursor - seg.startCursor);
          const inferred: Segment = {
            startCursor: cursor,
            play: { seq: p.sequence, rtptime: p.timestamp, startPacket: packet, startTimeMs: first.play.startTimeMs + ((p.timestamp - first.play.rtptime) >>> 0) / TICKS_PER_MS },
            reason: 'rebase',
          };
          const again = checkOne(info, inferred, p);
          if (!again.mismatched && inferred.play.startTimeMs > seg.play.startTimeMs) {
            s.segments.push(inferred);
            s.segments.sort((x, y) => x.startCursor - y.startCursor);
            s.inferred++;
            r = again;
          }
        }
        s.mismatched += r.mismatched;
        s.firstMismatch ??= r.firstMismatch;
        s.checked++;
      }
      s.pending.splice(0, k);
    }
  };
  const timer = setInterval(() => check(false), 20);
  const liveTimer = setInterval(() => port.post({ type: 'live', last: socks.map((s) => s.last), counts: socks.map((s) => s.n) }), 50);

  port.onMessage((msg: ToReceiver) => {
    switch (msg.type) {
      case 'add': {
        const first = socks.length;
        void (async () => {
          const added: Sock[] = [];
          for (let k = 0; k < msg.count; k++) added.push(await addSocket());
          const reply: FromReceiver = { type: 'added', first, ports: added.map((s) => s.port), recvBuffer: added.map((s) => s.socket.getRecvBufferSize()) };
          port.post(reply);
        })();
        break;
      }
      case 'session': socks[msg.sock].info = msg.info; break;
      case 'segment': {
        const segs = socks[msg.sock].segments;
        segs.push(msg.segment);
        segs.sort((x, y) => x.startCursor - y.startCursor);
        break;
      }
      case 'collect': {
        clearInterval(timer);
        clearInterval(liveTimer);
        check(true);
        const sockets: SocketData[] = socks.map((s, sock) => ({
          sock, port: s.port, count: s.n, seq: s.seq.slice(0, s.n), at: s.at.slice(0, s.n), mismatched: s.mismatched,
          firstMismatch: s.firstMismatch, checked: s.checked, unplaced: s.unplaced, malformed: s.malformed, segments: s.segments, inferredRebases: s.inferred,
        }));
        const reply: FromReceiver = { type: 'data', sockets };
        for (const s of socks) s.socket.close();
        port.post(reply, sockets.flatMap((d) => [d.seq.buffer, d.at.buffer]) as ArrayBuffer[]);
        port.close();
        break;
      }
      case 'init': break;
    }
  });
  const booted: FromReceiver = { type: 'booted', policy: priority.policy, policyError: priority.error };
  port.post(booted);
}

