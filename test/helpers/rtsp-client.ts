// Test-side peers of the server: an RTSP client over TCP (RtspClient) and an
// RTP/UDP receiver (UdpReceiver) that records every datagram and counts lost,
// duplicated and reordered packets. Everything that waits takes a timeout, so a
// test against a broken server fails with a message instead of hanging.

import dgram from 'node:dgram';
import net from 'node:net';

import type { HeaderInit } from '../../src/rtsp/message.js';
import { RtspResponseParser, serializeRequest, type RtspResponse } from './rtsp-message.js';
import { parseSession } from '../../src/rtsp/headers/session.js';

export const DEFAULT_TIMEOUT_MS = 5_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Waiter {
  readonly match: (r: RtspResponse) => boolean;
  readonly resolve: (r: RtspResponse) => void;
  readonly reject: (e: Error) => void;
}

export interface RtspClientOptions {
  readonly port: number;
  readonly host?: string;
  /** Default for every wait. */
  readonly timeoutMs?: number;
  /** Sent with every request. */
  readonly userAgent?: string;
  /** Connect from this local address (127.0.0.2: a client on another host, as the server sees it). */
  readonly localAddress?: string;
  /**
   * Receives every interleaved frame (RTP and RTCP on the connection) as it is
   * parsed, instead of the `frames` array: for a long-running client that must
   * not accumulate the stream (bench/capacity/receiver.ts).
   */
  readonly onFrame?: (channel: number, payload: Buffer) => void;
}

export interface RequestOptions {
  readonly headers?: HeaderInit;
  readonly body?: Buffer | string;
  /** Leave out the Session header even when the client has one. */
  readonly noSession?: boolean;
  readonly timeoutMs?: number;
}

/**
 * A minimal RTSP/1.0 client. It numbers requests with CSeq, remembers the
 * session id from the first reply that carries one and sends it back, and keeps
 * every response it did not ask for (such as the error reply to raw garbage) in
 * an inbox read by nextResponse().
 */
export class RtspClient {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** Session id from the last reply that had one; sent with later requests. */
  session: string | undefined;
  /** Every response received, in order. */
  readonly responses: RtspResponse[] = [];

  readonly #socket: net.Socket;
  /** Interleaved frames received between responses (RTP and RTCP on the connection), in order; empty when the options give onFrame. */
  readonly frames: Array<{ readonly channel: number; readonly payload: Buffer }> = [];
  readonly #parser: RtspResponseParser;
  readonly #userAgent: string;
  readonly #inbox: RtspResponse[] = [];
  #waiters: Waiter[] = [];
  #cseq = 0;
  #closed = false;
  #closeError: Error | undefined;
  readonly #closedPromise: Promise<void>;

  private constructor(socket: net.Socket, options: RtspClientOptions) {
    this.#socket = socket;
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#userAgent = options.userAgent ?? 'twinframe-test-client';
    this.#parser = new RtspResponseParser({ maxBodyBytes: 1024 * 1024 }, options.onFrame ?? ((channel, payload) => this.frames.push({ channel, payload })));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.#closed = true;
        this.#failWaiters(this.#closeError ?? new Error('connection closed'));
        resolve();
      });
    });
    socket.on('error', (err) => {
      this.#closeError = err;
    });
  }

  static async connect(options: RtspClientOptions): Promise<RtspClient> {
    const host = options.host ?? '127.0.0.1';
    const socket = net.connect({ host, port: options.port, ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}) });
    socket.setNoDelay(true);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      }),
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      `TCP connect to ${host}:${options.port}`,
    ).catch((err: unknown) => {
      socket.destroy();
      throw err;
    });
    return new RtspClient(socket, options);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop (or start again) reading from the connection: a viewer that falls behind. */
  setReading(reading: boolean): void {
    if (reading) this.#socket.resume();
    else this.#socket.pause();
  }

  /** Absolute URL for a path ('/sample.ts'); an rtsp:// URL or '*' is returned unchanged. */
  url(target: string): string {
    if (target === '*' || /^rtsps?:\/\//i.test(target)) return target;
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `rtsp://${host}:${this.port}${target.startsWith('/') ? '' : '/'}${target}`;
  }

  /** Send one request and wait for the response with the same CSeq. */
  async request(method: string, target: string, options: RequestOptions = {}): Promise<RtspResponse> {
    const cseq = ++this.#cseq;
    const headers: [string, string | number | readonly (string | number)[] | undefined][] = [
      ['CSeq', cseq],
      ['User-Agent', this.#userAgent],
    ];
    if (this.session !== undefined && !options.noSession) headers.push(['Session', this.session]);
    if (options.headers) {
      // A header given by the caller replaces the client's own (e.g. a forged CSeq).
      for (const [name, value] of Object.entries(headerObject(options.headers))) {
        const i = headers.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
        if (i >= 0) headers.splice(i, 1);
        headers.push([name, value]);
      }
    }
    const bytes = serializeRequest({ method, uri: this.url(target), headers, ...(options.body !== undefined ? { body: options.body } : {}) });
    if (this.#closed) throw this.#closeError ?? new Error('connection closed');
    const response = this.#take((r) => r.cseq === cseq, options.timeoutMs, `${method} response (CSeq ${cseq})`);
    this.sendRaw(bytes);
    const r = await response;
    const session = r.headers.get('session');
    if (session !== undefined) this.session = parseSession(session).id;
    return r;
  }

  options(target = '*', options?: RequestOptions): Promise<RtspResponse> {
    return this.request('OPTIONS', target, options);
  }

  describe(target: string, options?: RequestOptions): Promise<RtspResponse> {
    return this.request('DESCRIBE', target, { ...options, headers: { Accept: 'application/sdp', ...headerObject(options?.headers) } });
  }

  /** `transport` is the Transport header value, e.g. receiver.transportHeader(). */
  setup(target: string, transport: string, options?: RequestOptions): Promise<RtspResponse> {
    return this.request('SETUP', target, { ...options, headers: { Transport: transport, ...headerObject(options?.headers) } });
  }

  /** `range` is the Range header value, e.g. 'npt=5.000-'. */
  play(target: string, range?: string, options?: RequestOptions): Promise<RtspResponse> {
    return this.request('PLAY', target, { ...options, headers: { Range: range, ...headerObject(options?.headers) } });
  }

  pause(target: string, options?: RequestOptions): Promise<RtspResponse> {
    return this.request('PAUSE', target, options);
  }

  teardown(target: string, options?: RequestOptions): Promise<RtspResponse> {
    return this.request('TEARDOWN', target, options);
  }

  getParameter(target: string, body?: string, options?: RequestOptions): Promise<RtspResponse> {
    return this.request('GET_PARAMETER', target, {
      ...options,
      ...(body !== undefined ? { body, headers: { 'Content-Type': 'text/parameters', ...headerObject(options?.headers) } } : {}),
    });
  }

  /** Write bytes as they are: for malformed, split or pipelined input. */
  sendRaw(bytes: Buffer | string): void {
    if (this.#closed) throw new Error('connection closed');
    this.#socket.write(bytes);
  }

  /** The next response not claimed by request(), e.g. the reply to sendRaw(). */
  nextResponse(timeoutMs?: number): Promise<RtspResponse> {
    return this.#take(() => true, timeoutMs, 'a response');
  }

  /** Resolves when the server closes the connection. */
  waitForClose(timeoutMs?: number): Promise<void> {
    return withTimeout(this.#closedPromise, timeoutMs ?? this.timeoutMs, 'the server to close the connection');
  }

  /**
   * TEARDOWN the session this client has (if the connection is still open), then
   * close: for finally blocks, so a test that failed half-way leaves no session
   * for the next one to count.
   */
  async release(): Promise<void> {
    if (this.session !== undefined && !this.#closed) await this.teardown('/', { timeoutMs: 2_000 }).catch(() => undefined);
    await this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#socket.end();
    // A server that never closes its side must not hold the test: destroy after a grace.
    await withTimeout(this.#closedPromise, 1_000, 'close').catch(() => this.#socket.destroy());
    await this.#closedPromise;
  }

  #take(match: (r: RtspResponse) => boolean, timeoutMs: number | undefined, what: string): Promise<RtspResponse> {
    const i = this.#inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]);
    if (this.#closed) return Promise.reject(this.#closeError ?? new Error('connection closed'));
    let waiter!: Waiter;
    const p = new Promise<RtspResponse>((resolve, reject) => {
      waiter = { match, resolve, reject };
      this.#waiters.push(waiter);
    });
    return withTimeout(p, timeoutMs ?? this.timeoutMs, what).finally(() => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    });
  }

  #onData(chunk: Buffer): void {
    const { messages, error } = this.#parser.push(chunk);
    for (const r of messages) {
      this.responses.push(r);
      const w = this.#waiters.find((x) => x.match(r));
      if (w) {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.resolve(r);
      } else {
        this.#inbox.push(r);
      }
    }
    if (error) {
      this.#closeError = new Error(`unparsable response from server: ${error.message}`);
      this.#socket.destroy();
    }
  }

  #failWaiters(err: Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
  }
}

function headerObject(init: HeaderInit | undefined): Record<string, string | number | readonly (string | number)[] | undefined> {
  if (init === undefined) return {};
  if (Symbol.iterator in init) return Object.fromEntries(init as Iterable<readonly [string, string]>);
  return { ...init };
}

// ---------------------------------------------------------------------------
// UDP side

export interface RtpPacket {
  readonly version: number;
  readonly padding: boolean;
  readonly extension: boolean;
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly csrcs: readonly number[];
  readonly payload: Buffer;
}

/** RFC 3550 §5.1 fixed header, CSRC list, header extension and padding. Throws on malformed input. */
export function parseRtpPacket(buf: Buffer): RtpPacket {
  if (buf.length < 12) throw new Error(`RTP packet too short (${buf.length} bytes)`);
  const b0 = buf[0];
  const version = b0 >> 6;
  if (version !== 2) throw new Error(`RTP version ${version}`);
  const padding = (b0 & 0x20) !== 0;
  const extension = (b0 & 0x10) !== 0;
  const cc = b0 & 0x0f;
  let offset = 12 + 4 * cc;
  if (buf.length < offset) throw new Error('RTP CSRC list truncated');
  const csrcs: number[] = [];
  for (let i = 0; i < cc; i++) csrcs.push(buf.readUInt32BE(12 + 4 * i));
  if (extension) {
    if (buf.length < offset + 4) throw new Error('RTP extension header truncated');
    offset += 4 + 4 * buf.readUInt16BE(offset + 2);
    if (buf.length < offset) throw new Error('RTP extension truncated');
  }
  let end = buf.length;
  if (padding) {
    const pad = buf[buf.length - 1];
    if (pad === 0 || end - pad < offset) throw new Error('RTP padding invalid');
    end -= pad;
  }
  return {
    version,
    padding,
    extension,
    marker: (buf[1] & 0x80) !== 0,
    payloadType: buf[1] & 0x7f,
    sequence: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrcs,
    payload: buf.subarray(offset, end),
  };
}

export interface SequenceStats {
  /** Datagrams counted, duplicates included. */
  readonly received: number;
  /** Distinct sequence numbers. */
  readonly unique: number;
  /** Sequence numbers from the lowest to the highest seen (or from `firstSeq`). */
  readonly expected: number;
  readonly lost: number;
  /** Extra copies of a sequence number already seen. */
  readonly duplicated: number;
  /** Packets that arrived after one with a higher sequence number. */
  readonly reordered: number;
}

/**
 * Loss, duplication and reordering from RTP sequence numbers in arrival order.
 * Each number is extended past the 16-bit wrap the way RFC 3550 A.1 does: taken
 * as the nearest value (±32768) to the highest extended number so far.
 * `firstSeq` (e.g. RTP-Info seq) counts packets lost before the first arrival;
 * with it, an empty stream counts as lost, never as clean.
 */
export function sequenceStats(seqs: readonly number[], options: { firstSeq?: number } = {}): SequenceStats {
  if (seqs.length === 0) {
    // A stream known to start at firstSeq that delivered nothing lost at least that first packet.
    const missing = options.firstSeq === undefined ? 0 : 1;
    return { received: 0, unique: 0, expected: missing, lost: missing, duplicated: 0, reordered: 0 };
  }
  const nearest = (seq: number, ref: number): number => {
    let delta = (seq - ref) & 0xffff;
    if (delta >= 0x8000) delta -= 0x10000;
    return ref + delta;
  };
  const first = seqs[0] & 0xffff;
  let max = first;
  let min = first;
  const seen = new Set<number>([first]);
  let duplicated = 0;
  let reordered = 0;
  for (let i = 1; i < seqs.length; i++) {
    const ext = nearest(seqs[i] & 0xffff, max);
    if (seen.has(ext)) duplicated += 1;
    else {
      if (ext < max) reordered += 1;
      seen.add(ext);
    }
    if (ext > max) max = ext;
    if (ext < min) min = ext;
  }
  if (options.firstSeq !== undefined) min = Math.min(min, nearest(options.firstSeq & 0xffff, first));
  const expected = max - min + 1;
  return { received: seqs.length, unique: seen.size, expected, lost: expected - seen.size, duplicated, reordered };
}

export interface ReceivedDatagram {
  readonly data: Buffer;
  /** process.hrtime.bigint() at arrival: the clock every twinframe thread shares. */
  readonly arrivalNs: bigint;
  /** Sender as address:port: one source whichever data path sends. */
  readonly from: string;
  /** Parsed header, in 'rtp' mode when the datagram is valid RTP. */
  readonly rtp: RtpPacket | undefined;
}

export interface UdpReceiverOptions {
  /** 'rtp' (default) parses RTP headers; 'udp' records bare MPEG-TS datagrams. */
  readonly mode?: 'rtp' | 'udp';
  readonly host?: string;
}

/**
 * Receives a stream on a port pair of 127.0.0.1: RTP on an even port, RTCP on
 * the next (RFC 3550 §11). In 'udp' mode the first port gets the TS datagrams.
 */
export class UdpReceiver {
  readonly mode: 'rtp' | 'udp';
  readonly host: string;
  readonly datagrams: ReceivedDatagram[] = [];
  readonly rtcpDatagrams: ReceivedDatagram[] = [];
  /** Datagrams that failed to parse as RTP in 'rtp' mode. */
  malformed = 0;

  readonly #rtp: dgram.Socket;
  readonly #rtcp: dgram.Socket;
  #listeners: Array<() => void> = [];

  private constructor(rtp: dgram.Socket, rtcp: dgram.Socket, options: UdpReceiverOptions) {
    this.mode = options.mode ?? 'rtp';
    this.host = options.host ?? '127.0.0.1';
    this.#rtp = rtp;
    this.#rtcp = rtcp;
    rtp.on('message', (data: Buffer, rinfo: dgram.RemoteInfo) => {
      const arrivalNs = process.hrtime.bigint();
      let rtpPacket: RtpPacket | undefined;
      if (this.mode === 'rtp') {
        try {
          rtpPacket = parseRtpPacket(data);
        } catch {
          this.malformed += 1;
        }
      }
      this.datagrams.push({ data, arrivalNs, from: `${rinfo.address}:${rinfo.port}`, rtp: rtpPacket });
      this.#notify();
    });
    rtcp.on('message', (data: Buffer, rinfo: dgram.RemoteInfo) => {
      this.rtcpDatagrams.push({ data, arrivalNs: process.hrtime.bigint(), from: `${rinfo.address}:${rinfo.port}`, rtp: undefined });
    });
  }

  /** A receiver on a free even/odd port pair (openPortPair). */
  static async open(options: UdpReceiverOptions = {}): Promise<UdpReceiver> {
    const { rtp, rtcp } = await openPortPair(options.host ?? '127.0.0.1');
    // A big receive buffer keeps bursts (a failover catch-up) from being
    // dropped by the kernel and miscounted as server loss.
    try {
      rtp.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      // The kernel may cap it; the default still works for short streams.
    }
    return new UdpReceiver(rtp, rtcp, options);
  }

  get rtpPort(): number {
    return this.#rtp.address().port;
  }

  /** Join a multicast group, RTP and RTCP port, on the interface that has `iface` (the receiver must be bound to 0.0.0.0 to hear it). */
  joinGroup(group: string, iface: string): void {
    this.#rtp.addMembership(group, iface);
    this.#rtcp.addMembership(group, iface);
  }

  /** Send an RTCP packet from the receiver's RTCP port (a receiver report) to the server's. */
  sendRtcp(packet: Buffer, serverRtcpPort: number, host = '127.0.0.1'): void {
    this.#rtcp.send(packet, serverRtcpPort, host);
  }

  get rtcpPort(): number {
    return this.#rtcp.address().port;
  }

  /** The Transport header value asking for this receiver's ports. */
  transportHeader(): string {
    return this.mode === 'rtp'
      ? `RTP/AVP;unicast;client_port=${this.rtpPort}-${this.rtcpPort}`
      : `MP2T/H2221/UDP;unicast;destination=${this.host};client_port=${this.rtpPort}`;
  }

  /** RTP packets in arrival order (valid ones only). */
  get packets(): RtpPacket[] {
    return this.datagrams.flatMap((d) => (d.rtp ? [d.rtp] : []));
  }

  /** Arrival times in ms of the shared clock, for largestGap(). */
  arrivalsMs(): number[] {
    return this.datagrams.map((d) => Number(d.arrivalNs) / 1e6);
  }

  /** Resolves once `count` datagrams have arrived in total. */
  waitForCount(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.#waitFor(() => this.datagrams.length >= count, timeoutMs, () => `${count} datagrams (got ${this.datagrams.length})`);
  }

  /**
   * Resolves once nothing has arrived for `quietMs` (counted from the later of
   * the last arrival and this call); rejects if the stream is still flowing after
   * `timeoutMs`.
   */
  waitForQuiet(quietMs: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const since = process.hrtime.bigint();
    const quietNs = BigInt(Math.round(quietMs * 1e6));
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const deadline = setTimeout(() => {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`stream still flowing after ${timeoutMs} ms (wanted ${quietMs} ms of quiet)`));
      }, timeoutMs);
      let timer: NodeJS.Timeout;
      const check = (): void => {
        if (settled) return;
        const last = this.datagrams.at(-1)?.arrivalNs ?? since;
        const from = last > since ? last : since;
        const left = from + quietNs - process.hrtime.bigint();
        if (left <= 0n) {
          // Judge after this turn's I/O: datagrams that queued while the thread was stalled come first.
          setImmediate(() => {
            if ((this.datagrams.at(-1)?.arrivalNs ?? since) > from) {
              check();
              return;
            }
            settled = true;
            clearTimeout(deadline);
            resolve();
          });
        } else {
          timer = setTimeout(check, Math.max(1, Math.ceil(Number(left) / 1e6)));
        }
      };
      check();
    });
  }

  /** Sequence-number accounting over everything received so far ('rtp' mode). */
  stats(options: { firstSeq?: number } = {}): SequenceStats {
    if (this.mode !== 'rtp') throw new Error('sequence statistics need RTP');
    return sequenceStats(
      this.packets.map((p) => p.sequence),
      options,
    );
  }

  /**
   * The transport stream as a player would reassemble it: in 'rtp' mode the
   * payloads in sequence order with duplicates dropped; in 'udp' mode the
   * datagrams in arrival order.
   */
  tsPayload(): Buffer {
    if (this.mode === 'udp') return Buffer.concat(this.datagrams.map((d) => d.data));
    const packets = this.packets;
    if (packets.length === 0) return Buffer.alloc(0);
    // Order by extended sequence number so a wrap past 65535 sorts correctly.
    const base = packets[0].sequence;
    let max = base;
    const keyed = new Map<number, Buffer>();
    for (const p of packets) {
      let delta = (p.sequence - max) & 0xffff;
      if (delta >= 0x8000) delta -= 0x10000;
      const ext = max + delta;
      if (ext > max) max = ext;
      if (!keyed.has(ext)) keyed.set(ext, p.payload);
    }
    return Buffer.concat([...keyed.entries()].sort((a, b) => a[0] - b[0]).map(([, payload]) => payload));
  }

  async close(): Promise<void> {
    await Promise.all([closeSocket(this.#rtp), closeSocket(this.#rtcp)]);
    this.#notify();
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }

  #waitFor(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const listener = (): void => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== listener);
      };
      this.#listeners.push(listener);
    });
  }
}

/** RTP on a free even port of `host`, RTCP on the next (RFC 3550 §11); retried because another process can take port+1 first. */
export async function openPortPair(host: string): Promise<{ rtp: dgram.Socket; rtcp: dgram.Socket }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const rtp = dgram.createSocket('udp4');
    try {
      await bind(rtp, 0, host);
    } catch (err) {
      rtp.close();
      throw err;
    }
    const port = rtp.address().port;
    if (port % 2 !== 0 || port >= 65535) {
      rtp.close();
      continue;
    }
    const rtcp = dgram.createSocket('udp4');
    try {
      await bind(rtcp, port + 1, host);
    } catch {
      rtcp.close();
      rtp.close();
      continue;
    }
    return { rtp, rtcp };
  }
  throw new Error('could not bind a free UDP port pair after 50 attempts');
}

function bind(socket: dgram.Socket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
