// RTSP/1.0 message framing (RFC 2326 §4, §6, §7, §10.12): turns a TCP byte
// stream into requests and responses into bytes. The reader and the serializer
// are generic over the start line; the test client's response parser and
// request serializer (test/helpers/rtsp-message.ts) build on them.
//
// The reader is incremental because TCP has no message boundaries: one chunk may
// carry several pipelined requests, half of one, or end between the CR and the LF
// of a line end. Every buffer it keeps is bounded (head ≤ 8 KiB, body ≤ 64 KiB),
// so a client cannot make the server hold more than one request's worth of bytes.
// After the first error the reader is poisoned: the framing is lost, so the only
// safe thing left is to send the error reply and close the connection.

import { TwinframeError } from '../errors.js';

/** Bounds on what one message may make the reader buffer. */
export interface MessageLimits {
  /** Start line + header lines + the blank line that ends them, in bytes. */
  readonly maxHeadBytes: number;
  readonly maxHeaders: number;
  /** Largest Content-Length accepted. */
  readonly maxBodyBytes: number;
}

export const DEFAULT_LIMITS: MessageLimits = Object.freeze({
  maxHeadBytes: 8 * 1024,
  maxHeaders: 64,
  maxBodyBytes: 64 * 1024,
});

export const RTSP_VERSION = 'RTSP/1.0';

/**
 * Header fields of one message. Names are case-insensitive (RFC 2326 §4.2 via
 * RFC 2616 §4.2): lookups use the lower-case name, while `entries()` keeps the
 * names as the peer spelled them, in arrival order.
 */
export class RtspHeaders {
  readonly #byName = new Map<string, string[]>();
  readonly #entries: Array<readonly [string, string]> = [];

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [name, value] of init) this.append(name, value);
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const values = this.#byName.get(key);
    if (values) values.push(value);
    else this.#byName.set(key, [value]);
    this.#entries.push([name, value]);
  }

  /** The first value of `name`, or undefined. */
  get(name: string): string | undefined {
    return this.#byName.get(name.toLowerCase())?.[0];
  }

  /** Every value of `name`, in arrival order. */
  getAll(name: string): readonly string[] {
    return this.#byName.get(name.toLowerCase()) ?? [];
  }

  has(name: string): boolean {
    return this.#byName.has(name.toLowerCase());
  }

  /** Number of header lines (a repeated name counts once per line). */
  get size(): number {
    return this.#entries.length;
  }

  /** Lower-case names, each once. */
  names(): IterableIterator<string> {
    return this.#byName.keys();
  }

  /** [name as sent, value] pairs in arrival order. */
  entries(): IterableIterator<readonly [string, string]> {
    return this.#entries[Symbol.iterator]();
  }

  [Symbol.iterator](): IterableIterator<readonly [string, string]> {
    return this.entries();
  }
}

export interface RtspRequest {
  readonly method: string;
  /** Request-URI exactly as sent: '*' or an absolute rtsp:// URL (see url.ts). */
  readonly uri: string;
  readonly version: typeof RTSP_VERSION;
  /** Every request must carry one (RFC 2326 §12.17); the reader enforces it. */
  readonly cseq: number;
  readonly headers: RtspHeaders;
  readonly body: Buffer;
}

/**
 * What one push() produced. Messages that were complete before an error are
 * still returned, so the connection can answer them in order before it answers
 * the error and closes.
 */
export interface PushResult<M> {
  readonly messages: M[];
  /** Set when the stream is unusable; every later push() returns it again. */
  readonly error: TwinframeError | undefined;
}

const CR = 0x0d;
const LF = 0x0a;
const DOLLAR = 0x24;
const EMPTY = Buffer.alloc(0);

// RFC 2616 §2.2 token characters: what method names and header names are made of.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Header values may hold any octet except controls (HT is allowed).
const BAD_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;
export const URI_CHARS = /^[\x21-\x7e]+$/;
const DIGITS = /^[0-9]+$/;
const VERSION_SHAPE = /^[A-Za-z][A-Za-z0-9-]*\/[0-9]+\.[0-9]+$/;

/** Parsed start line + headers, before the body has arrived. */
interface Head<M> {
  readonly bodyLength: number;
  readonly build: (body: Buffer) => M;
}

/**
 * A growable byte window. Appending copies each chunk once and consuming only
 * moves an offset, so a head that trickles in one byte per segment costs
 * O(n) copies rather than the O(n²) of concatenating on every push.
 */
class ByteWindow {
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.length;
      const needed = live + chunk.length;
      if (needed <= this.#buf.length && this.#start >= live) {
        this.#buf.copy(this.#buf, 0, this.#start, this.#end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(needed, this.#buf.length * 2, 1024));
        this.#buf.copy(grown, 0, this.#start, this.#end);
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = live;
    }
    chunk.copy(this.#buf, this.#end);
    this.#end += chunk.length;
  }

  at(i: number): number {
    return this.#buf[this.#start + i];
  }

  /** A view, valid until the next append(). */
  view(from: number, to: number): Buffer {
    return this.#buf.subarray(this.#start + from, this.#start + to);
  }

  /** A copy the caller may keep. */
  copy(from: number, to: number): Buffer {
    return Buffer.from(this.view(from, to));
  }

  consume(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) this.clear();
  }

  clear(): void {
    this.#start = 0;
    this.#end = 0;
    // Drop a large buffer rather than pin it for the life of an idle connection.
    if (this.#buf.length > 16 * 1024) this.#buf = EMPTY;
  }
}

/**
 * The framing both directions share: skip stray line ends and interleaved
 * binary frames between messages, find the end of the head, read the body by
 * Content-Length. Subclasses only interpret the start line.
 */
export abstract class MessageReader<M> {
  readonly limits: MessageLimits;
  readonly #window = new ByteWindow();
  /** Where to resume looking for the blank line, so a trickling head is scanned once. */
  #scanFrom = 0;
  /** Bytes of an interleaved '$' frame still to discard. */
  #skipRemaining = 0;
  /** A start line has begun: CR, LF and '$' are no longer between-message bytes. */
  #headStarted = false;
  #head: Head<M> | undefined;
  #error: TwinframeError | undefined;
  #interleavedFrames = 0;
  readonly #onFrame: ((channel: number, payload: Buffer) => void) | undefined;

  /**
   * `onFrame`: given each interleaved frame between messages whole (RTCP
   * receiver reports on a server; the media on a client); without it they are
   * skipped as they arrive.
   */
  constructor(limits: Partial<MessageLimits> = {}, onFrame?: (channel: number, payload: Buffer) => void) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.#onFrame = onFrame;
  }

  /** The error that poisoned this reader, if any. */
  get error(): TwinframeError | undefined {
    return this.#error;
  }

  /** Interleaved binary frames ('$' channel length data) skipped so far. */
  get interleavedFramesSkipped(): number {
    return this.#interleavedFrames;
  }

  /** Bytes held while waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.#window.length;
  }

  /**
   * Between messages: no body or interleaved frame is half read, so what is
   * buffered is the start of the next message as received (takeBuffered).
   */
  get atBoundary(): boolean {
    return this.#head === undefined && this.#skipRemaining === 0 && this.#error === undefined;
  }

  /** The buffered bytes, taken: at a boundary, the start of the next message (a process pair's role switch hands it on). */
  takeBuffered(): Buffer {
    const w = this.#window;
    const bytes = w.copy(0, w.length);
    w.clear();
    this.#scanFrom = 0;
    this.#headStarted = false;
    return bytes;
  }

  push(chunk: Buffer): PushResult<M> {
    const messages: M[] = [];
    if (this.#error) return { messages, error: this.#error };
    try {
      this.#window.append(chunk);
      this.#drain(messages);
      return { messages, error: undefined };
    } catch (err) {
      if (!(err instanceof TwinframeError)) throw err;
      this.#error = err;
      this.#window.clear();
      this.#head = undefined;
      return { messages, error: err };
    }
  }

  protected abstract parseStartLine(line: string): StartLine<M>;

  #drain(out: M[]): void {
    const w = this.#window;
    for (;;) {
      if (this.#skipRemaining > 0) {
        const n = Math.min(this.#skipRemaining, w.length);
        w.consume(n);
        this.#skipRemaining -= n;
        if (this.#skipRemaining > 0) return;
        continue;
      }

      if (this.#head) {
        const need = this.#head.bodyLength;
        if (w.length < need) return;
        const body = w.copy(0, need);
        w.consume(need);
        const head = this.#head;
        this.#head = undefined;
        out.push(head.build(body));
        continue;
      }

      if (w.length === 0) return;

      // Between messages: RFC 2616 §4.1 asks servers to ignore empty lines
      // before a request line (some clients send a CRLF after each body).
      if (!this.#headStarted) {
        const first = w.at(0);
        if (first === CR || first === LF) {
          w.consume(1);
          continue;
        }
        if (first === DOLLAR) {
          // RFC 2326 §10.12: '$', one byte channel, two bytes length, data.
          if (w.length < 4) return;
          const length = (w.at(2) << 8) | w.at(3);
          if (this.#onFrame) {
            if (w.length < 4 + length) return; // at most 64 KiB + 4 held
            const channel = w.at(1);
            const payload = w.copy(4, 4 + length);
            w.consume(4 + length);
            this.#interleavedFrames += 1;
            this.#onFrame(channel, payload);
            continue;
          }
          w.consume(4);
          this.#skipRemaining = length;
          this.#interleavedFrames += 1;
          continue;
        }
        this.#headStarted = true;
      }

      const headEnd = this.#findHeadEnd();
      if (headEnd < 0) {
        if (w.length >= this.limits.maxHeadBytes) {
          throw new TwinframeError('TF_RTSP_REQUEST_TOO_LARGE', 'message head exceeds the size limit', {
            limit: this.limits.maxHeadBytes,
          });
        }
        return;
      }
      this.#scanFrom = 0;
      this.#headStarted = false;
      if (headEnd > this.limits.maxHeadBytes) {
        throw new TwinframeError('TF_RTSP_REQUEST_TOO_LARGE', 'message head exceeds the size limit', {
          limit: this.limits.maxHeadBytes,
          size: headEnd,
        });
      }
      // latin1 maps each byte to one UTF-16 unit, so string offsets stay byte offsets
      // and no byte sequence can fail to decode.
      const text = w.view(0, headEnd).toString('latin1');
      w.consume(headEnd);
      const head = this.#parseHead(text);
      if (head.bodyLength === 0) out.push(head.build(EMPTY));
      else this.#head = head;
    }
  }

  /**
   * Offset just past the blank line that ends the head, or -1. Accepts CRLF and,
   * leniently, bare LF line ends: "\n\n" or "\n\r\n" after the last header line.
   */
  #findHeadEnd(): number {
    const w = this.#window;
    const n = w.length;
    for (let i = this.#scanFrom; i < n; i++) {
      if (w.at(i) !== LF) continue;
      if (i + 1 >= n) {
        this.#scanFrom = i;
        return -1;
      }
      const next = w.at(i + 1);
      if (next === LF) return i + 2;
      if (next === CR) {
        if (i + 2 >= n) {
          this.#scanFrom = i;
          return -1;
        }
        if (w.at(i + 2) === LF) return i + 3;
      }
    }
    this.#scanFrom = n;
    return -1;
  }

  #parseHead(text: string): Head<M> {
    const lines = text.split('\n');
    // The head ends with a blank line, so the split leaves two trailing entries.
    lines.length -= 2;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.endsWith('\r')) lines[i] = line.slice(0, -1);
    }
    const cseqHint = bestEffortCSeq(lines);
    const fail = (code: 'TF_RTSP_BAD_REQUEST' | 'TF_RTSP_REQUEST_TOO_LARGE', message: string): never => {
      throw new TwinframeError(code, message, cseqHint === undefined ? {} : { cseq: cseqHint });
    };

    const headers = new RtspHeaders();
    let lastName: string | undefined;
    /** The value's pieces: its line, then continuation lines (joined once, at the end: linear). */
    let lastValue: string[] = [];
    const flush = (): void => {
      if (lastName !== undefined) headers.append(lastName, lastValue.length === 1 ? lastValue[0] : lastValue.filter((v) => v !== '').join(' '));
      lastName = undefined;
    };
    let count = 0;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      if (line.startsWith(' ') || line.startsWith('\t')) {
        // Obsolete line folding (RFC 2616 §2.2 LWS): the value continues.
        if (lastName === undefined) fail('TF_RTSP_BAD_REQUEST', 'header continuation without a header');
        const piece = trimLws(line);
        if (BAD_VALUE_CHAR.test(piece)) fail('TF_RTSP_BAD_REQUEST', 'control character in a header value');
        lastValue.push(piece);
        continue;
      }
      flush();
      count += 1;
      if (count > this.limits.maxHeaders) {
        fail('TF_RTSP_REQUEST_TOO_LARGE', `more than ${this.limits.maxHeaders} header fields`);
      }
      const colon = line.indexOf(':');
      if (colon <= 0) fail('TF_RTSP_BAD_REQUEST', 'malformed header line');
      const name = line.slice(0, colon).trimEnd();
      if (!TOKEN.test(name)) fail('TF_RTSP_BAD_REQUEST', 'malformed header name');
      const value = trimLws(line.slice(colon + 1));
      if (BAD_VALUE_CHAR.test(value)) fail('TF_RTSP_BAD_REQUEST', 'control character in a header value');
      lastName = name;
      lastValue = [value];
    }
    flush();

    const start = this.parseStartLine(lines[0]);
    if (start.error) fail(start.error.code, start.error.message);
    if (start.versionError) {
      throw new TwinframeError('TF_RTSP_VERSION_NOT_SUPPORTED', start.versionError, {
        ...(cseqHint === undefined ? {} : { cseq: cseqHint }),
      });
    }

    const lengths = headers.getAll('content-length');
    let bodyLength = 0;
    if (lengths.length > 0) {
      const first = lengths[0];
      // Two different lengths would let us and a peer disagree on where the
      // next message starts; refuse rather than guess.
      if (lengths.some((v) => v !== first)) fail('TF_RTSP_BAD_REQUEST', 'conflicting Content-Length headers');
      if (!DIGITS.test(first)) fail('TF_RTSP_BAD_REQUEST', 'malformed Content-Length');
      const digits = first.replace(/^0+(?=.)/, '');
      if (digits.length > 15 || Number(digits) > this.limits.maxBodyBytes) {
        fail('TF_RTSP_REQUEST_TOO_LARGE', 'body exceeds the size limit');
      }
      bodyLength = Number(digits);
    }

    const cseqValues = headers.getAll('cseq');
    let cseq: number | undefined;
    if (cseqValues.length > 0) {
      const first = cseqValues[0];
      if (cseqValues.some((v) => v !== first)) fail('TF_RTSP_BAD_REQUEST', 'conflicting CSeq headers');
      cseq = parseCSeq(first);
      if (cseq === undefined) fail('TF_RTSP_BAD_REQUEST', 'malformed CSeq');
    }
    if (start.requiresCSeq && cseq === undefined) fail('TF_RTSP_BAD_REQUEST', 'missing CSeq');

    return { bodyLength, build: (body) => start.build(headers, cseq, body) };
  }
}

/** What a reader makes of a message's first line. */
export interface StartLine<M> {
  readonly error?: { code: 'TF_RTSP_BAD_REQUEST'; message: string };
  readonly versionError?: string;
  readonly requiresCSeq: boolean;
  readonly build: (headers: RtspHeaders, cseq: number | undefined, body: Buffer) => M;
}

/**
 * Leading and trailing blanks off, in one pass from each end. (The regular
 * expression /^[ \t]+|[ \t]+$/g this replaces retried its second branch at every
 * blank of a long run: quadratic, seconds for a 1 MiB header of blanks.)
 */
function trimLws(s: string): string {
  let from = 0;
  let to = s.length;
  while (from < to && (s.charCodeAt(from) === 0x20 || s.charCodeAt(from) === 0x09)) from++;
  while (to > from && (s.charCodeAt(to - 1) === 0x20 || s.charCodeAt(to - 1) === 0x09)) to--;
  return from === 0 && to === s.length ? s : s.slice(from, to);
}

/** CSeq is 1*DIGIT; we bound it to 32 bits as every client we know does. */
function parseCSeq(value: string): number | undefined {
  if (!DIGITS.test(value) || value.length > 10) return undefined;
  const n = Number(value);
  return n <= 0xffffffff ? n : undefined;
}

/** CSeq as far as it can be read from a head that may be malformed elsewhere. */
function bestEffortCSeq(lines: readonly string[]): number | undefined {
  for (let i = 1; i < lines.length; i++) {
    const m = /^cseq[ \t]*:[ \t]*([0-9]+)[ \t]*$/i.exec(lines[i]);
    if (m) return parseCSeq(m[1]);
  }
  return undefined;
}

export function badStart<M>(message: string): StartLine<M> {
  return { error: { code: 'TF_RTSP_BAD_REQUEST', message }, requiresCSeq: false, build: () => undefined as never };
}

/** Server side: RTSP requests from a client connection. */
export class RtspRequestParser extends MessageReader<RtspRequest> {
  protected override parseStartLine(line: string): StartLine<RtspRequest> {
    const parts = line.split(' ');
    if (parts.length !== 3) return badStart('malformed request line');
    const [method, uri, version] = parts as [string, string, string];
    if (!TOKEN.test(method)) return badStart('malformed method');
    // Request-URIs are ASCII (RFC 3986); anything else is a malformed request.
    if (!URI_CHARS.test(uri)) return badStart('malformed request URI');
    if (version !== RTSP_VERSION) {
      if (!VERSION_SHAPE.test(version)) return badStart('malformed protocol version');
      return { versionError: `${version} is not supported`, requiresCSeq: false, build: () => undefined as never };
    }
    return {
      requiresCSeq: true,
      build: (headers, cseq, body) => ({ method, uri, version: RTSP_VERSION, cseq: cseq!, headers, body }),
    };
  }
}

/** RFC 2326 §7.1.1 reason phrases. */
export const REASON_PHRASES: Readonly<Record<number, string>> = Object.freeze({
  100: 'Continue',
  200: 'OK',
  201: 'Created',
  250: 'Low on Storage Space',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  303: 'See Other',
  304: 'Not Modified',
  305: 'Use Proxy',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Time-out',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Large',
  415: 'Unsupported Media Type',
  451: 'Parameter Not Understood',
  452: 'Conference Not Found',
  453: 'Not Enough Bandwidth',
  454: 'Session Not Found',
  455: 'Method Not Valid in This State',
  456: 'Header Field Not Valid for Resource',
  457: 'Invalid Range',
  458: 'Parameter Is Read-Only',
  459: 'Aggregate operation not allowed',
  460: 'Only aggregate operation allowed',
  461: 'Unsupported transport',
  462: 'Destination unreachable',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Time-out',
  505: 'RTSP Version not supported',
  551: 'Option not supported',
});

/** The phrase for `status`, or the generic name of its class for codes RFC 2326 does not list. */
export function reasonPhrase(status: number): string {
  const known = REASON_PHRASES[status];
  if (known !== undefined) return known;
  const generic: Record<number, string> = {
    1: 'Informational',
    2: 'Success',
    3: 'Redirection',
    4: 'Client Error',
    5: 'Server Error',
  };
  return generic[Math.floor(status / 100)] ?? 'Unknown';
}

export type HeaderValue = string | number | readonly (string | number)[] | undefined;
/** Headers to send: an object (insertion order is kept) or [name, value] pairs. undefined values are skipped. */
export type HeaderInit = Readonly<Record<string, HeaderValue>> | Iterable<readonly [string, HeaderValue]>;

export interface ResponseInit {
  readonly status: number;
  readonly reason?: string;
  readonly headers?: HeaderInit;
  readonly body?: Buffer | string;
}

/**
 * Bytes of one response. Content-Length is computed from the body (any given
 * one is replaced), so it can never disagree with what is sent. Header names and
 * values are checked for CR/LF: a value echoed from a client must not be able to
 * inject header lines. Such a value is a bug in the caller, hence a TypeError.
 */
export function serializeResponse(init: ResponseInit): Buffer {
  if (!Number.isInteger(init.status) || init.status < 100 || init.status > 999) {
    throw new TypeError(`invalid RTSP status ${init.status}`);
  }
  const reason = init.reason ?? reasonPhrase(init.status);
  if (/[\r\n]/.test(reason)) throw new TypeError('reason phrase contains a line break');
  return serializeMessage(`${RTSP_VERSION} ${init.status} ${reason}`, init.headers, init.body);
}

/** Start line, headers (Content-Length computed from the body) and body. */
export function serializeMessage(startLine: string, headers: HeaderInit | undefined, body: Buffer | string | undefined): Buffer {
  const bodyBytes = body === undefined ? EMPTY : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let head = `${startLine}\r\n`;
  for (const [name, value] of headerPairs(headers)) {
    if (name.toLowerCase() === 'content-length') continue;
    head += `${name}: ${value}\r\n`;
  }
  if (bodyBytes.length > 0) head += `Content-Length: ${bodyBytes.length}\r\n`;
  head += '\r\n';
  const headBytes = Buffer.from(head, 'utf8');
  return bodyBytes.length === 0 ? headBytes : Buffer.concat([headBytes, bodyBytes]);
}

function* headerPairs(init: HeaderInit | undefined): Generator<[string, string]> {
  if (init === undefined) return;
  const pairs: Iterable<readonly [string, HeaderValue]> =
    Symbol.iterator in init ? (init as Iterable<readonly [string, HeaderValue]>) : Object.entries(init);
  for (const [name, value] of pairs) {
    if (value === undefined) continue;
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    const values = Array.isArray(value) ? value : [value];
    for (const v of values as (string | number)[]) {
      const text = String(v);
      if (/[\r\n\0]/.test(text)) throw new TypeError(`header ${name} value contains a line break or NUL`);
      yield [name, text];
    }
  }
}
