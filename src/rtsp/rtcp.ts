// RTCP (RFC 3550 §6) as far as an MPEG-TS VOD sender needs it: compound
// packets of a sender report (SR), a source description with a CNAME (SDES),
// and, at the end of the asset or at TEARDOWN, a BYE. Players use the SR to
// map RTP time to wall-clock time, and ffmpeg ends a UDP session only when it
// has a BYE for every stream (it never notices the end of the media by itself).
//
// This module only builds bytes and times them; the socket is the server's
// (see RtcpSender), bound to the session's odd server port so that the reports
// come from the port the SETUP reply named.

import { createSocket, type Socket } from 'node:dgram';

export const RTCP_VERSION = 2;
export const RTCP_SR = 200;
const RTCP_SDES = 202;
export const RTCP_BYE = 203;
const SDES_CNAME = 1;

/** Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface SenderReport {
  readonly ssrc: number;
  /** Wall-clock time of the report, Unix ms (fractional allowed). */
  readonly wallMs: number;
  /** RTP timestamp corresponding to wallMs. */
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
}

/** 64-bit NTP timestamp of a Unix time in ms: [seconds, fraction]. */
function ntpTimestamp(wallMs: number): [number, number] {
  const seconds = Math.floor(wallMs / 1000);
  const fraction = Math.floor(((wallMs - seconds * 1000) / 1000) * 0x1_0000_0000);
  return [(seconds + NTP_UNIX_OFFSET_S) >>> 0, Math.min(fraction, 0xffffffff) >>> 0];
}

function header(buf: Buffer, offset: number, count: number, type: number, lengthWords: number): void {
  buf[offset] = (RTCP_VERSION << 6) | (count & 0x1f);
  buf[offset + 1] = type;
  buf.writeUInt16BE(lengthWords, offset + 2);
}

/** SR with no report blocks (we receive nothing): 28 bytes. */
function buildSenderReport(sr: SenderReport): Buffer {
  const buf = Buffer.alloc(28);
  header(buf, 0, 0, RTCP_SR, 6);
  buf.writeUInt32BE(sr.ssrc >>> 0, 4);
  const [sec, frac] = ntpTimestamp(sr.wallMs);
  buf.writeUInt32BE(sec, 8);
  buf.writeUInt32BE(frac, 12);
  buf.writeUInt32BE(sr.rtpTimestamp >>> 0, 16);
  buf.writeUInt32BE(sr.packetCount >>> 0, 20);
  buf.writeUInt32BE(sr.octetCount >>> 0, 24);
  return buf;
}

/** SDES with one chunk holding the CNAME item, padded to a 32-bit boundary. */
function buildSdes(ssrc: number, cname: string): Buffer {
  const text = Buffer.from(cname, 'utf8').subarray(0, 255);
  // ssrc(4) + type(1) + length(1) + text + at least one null terminator, to a multiple of 4.
  const chunk = 4 + 2 + text.length + 1;
  const padded = Math.ceil(chunk / 4) * 4;
  const buf = Buffer.alloc(4 + padded);
  header(buf, 0, 1, RTCP_SDES, padded / 4);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  buf[8] = SDES_CNAME;
  buf[9] = text.length;
  text.copy(buf, 10);
  return buf;
}

function buildBye(ssrc: number): Buffer {
  const buf = Buffer.alloc(8);
  header(buf, 0, 1, RTCP_BYE, 1);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  return buf;
}

/** RFC 3550 §6.1: every compound packet starts with a report and carries a CNAME. */
export function compound(sr: SenderReport, cname: string, bye = false): Buffer {
  const parts = [buildSenderReport(sr), buildSdes(sr.ssrc, cname)];
  if (bye) parts.push(buildBye(sr.ssrc));
  return Buffer.concat(parts);
}

/** What a report needs from the session at the moment it is sent; undefined: nothing to report. */
export type ReportSource = () => Omit<SenderReport, 'ssrc'> | undefined;

/** RFC 3550 §6.2: at least 5 s between reports, randomized to [0.5, 1.5] × the interval. */
const REPORT_INTERVAL_MS = 5000;
/** The first report goes out soon after PLAY so a player can map timestamps at once. */
const FIRST_REPORT_MS = 250;

/**
 * Where a session's RTCP packets go: a UDP socket on the server's RTCP port
 * (RtcpSender.open), or the RTCP channel of the viewer's RTSP connection
 * (interleaved). send() resolves whatever happens: RTCP is advisory.
 */
export interface RtcpOutput {
  send(packet: Buffer): Promise<void>;
  close(): void;
}

/**
 * One RTP session's RTCP sending side. Over UDP the engine holds an RTCP socket
 * on the same port (SO_REUSEADDR); this one binds the port again the same way, so
 * the reports leave from the server_port the SETUP reply announced, and every
 * packet it receives from the viewer (receiver reports: RFC 3550 §6.4.2) calls
 * `onReceive` (the session's keep-alive). Every send error is ignored: RTCP is
 * advisory, and a viewer that is gone must not disturb anything.
 */
export class RtcpSender {
  readonly #out: RtcpOutput;
  readonly #ssrc: number;
  readonly #cname: string;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(out: RtcpOutput, ssrc: number, cname: string) {
    this.#out = out;
    this.#ssrc = ssrc;
    this.#cname = cname;
  }

  /** `configure`: socket options to set once bound (a broadcast's multicast TTL and interface); throwing fails the open. */
  static open(
    source: { address: string; port: number }, destination: { address: string; port: number }, ssrc: number, cname: string, onReceive: () => void,
    configure?: (socket: Socket) => void,
  ): Promise<RtcpSender> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: 'udp4', reuseAddr: true });
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind({ address: source.address, port: source.port, exclusive: false }, () => {
        socket.off('error', onError);
        try {
          configure?.(socket);
        } catch (err) {
          onError(err as Error);
          return;
        }
        socket.on('error', () => {}); // ICMP unreachable and the like: advisory traffic, ignore
        socket.on('message', (_packet, from) => {
          if (from.address === destination.address && from.port === destination.port) onReceive();
        });
        resolve(new RtcpSender(udpOutput(socket, destination), ssrc, cname));
      });
    });
  }

  /** Send reports while `source` has something to report: one soon, then every ~5 s. */
  start(source: ReportSource): void {
    this.stop();
    const schedule = (delay: number): void => {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#send(source, false); // resolves whatever happens: reports are advisory
        schedule(REPORT_INTERVAL_MS * (0.5 + Math.random()));
      }, delay);
      this.#timer.unref();
    };
    schedule(FIRST_REPORT_MS);
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A last SR + SDES + BYE: the stream is over (end of asset or TEARDOWN). Resolves once it has left. */
  bye(source: ReportSource): Promise<void> {
    this.stop();
    return this.#send(source, true);
  }

  close(): void {
    if (this.#closed) return;
    this.stop();
    this.#closed = true;
    this.#out.close();
  }

  #send(source: ReportSource, bye: boolean): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const now = source();
    // A BYE goes out even before anything was sent; it still needs a leading report.
    const report = now ?? (bye ? { wallMs: Date.now(), rtpTimestamp: 0, packetCount: 0, octetCount: 0 } : undefined);
    if (!report) return Promise.resolve();
    return this.#out.send(compound({ ssrc: this.#ssrc, ...report }, this.#cname, bye));
  }
}

function udpOutput(socket: Socket, destination: { address: string; port: number }): RtcpOutput {
  return {
    send: (packet) => new Promise((resolve) => {
      try {
        // Resolved whatever happens: closing the socket must not wait on advisory traffic.
        socket.send(packet, destination.port, destination.address, () => resolve());
      } catch {
        resolve(); // socket closing underneath
      }
    }),
    close: () => {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}
