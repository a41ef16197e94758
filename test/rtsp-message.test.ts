// RTSP message framing: pipelined and split requests, bounds, malformed input,
// interleaved binary frames, and the response serializer/parser pair.

import test from 'ava';

import {
  DEFAULT_LIMITS,
  REASON_PHRASES,
  RtspHeaders,
  RtspRequestParser,
  reasonPhrase,
  serializeResponse,
  type RtspRequest,
} from '../src/rtsp/message.js';
import { RtspResponseParser, serializeRequest } from './helpers/rtsp-message.js';

const OPTIONS = 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: test\r\n\r\n';
const DESCRIBE = 'DESCRIBE rtsp://127.0.0.1:8554/sample.ts RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n';
const SET_PARAMETER =
  'SET_PARAMETER rtsp://127.0.0.1:8554/sample.ts RTSP/1.0\r\nCSeq: 3\r\nContent-Type: text/parameters\r\nContent-Length: 12\r\n\r\nbarparam: 1\n';

/** A compact, comparable view of a request. */
function view(r: RtspRequest): { method: string; uri: string; cseq: number; headers: [string, string][]; body: string } {
  return {
    method: r.method,
    uri: r.uri,
    cseq: r.cseq,
    headers: [...r.headers.entries()].map(([n, v]) => [n, v]),
    body: r.body.toString('latin1'),
  };
}

function parseAll(chunks: Array<Buffer | string>): ReturnType<typeof view>[] {
  const parser = new RtspRequestParser();
  const out: RtspRequest[] = [];
  for (const c of chunks) {
    const { messages, error } = parser.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    if (error) throw error;
    out.push(...messages);
  }
  return out.map(view);
}

function errorOf(input: string | Buffer, limits?: Partial<typeof DEFAULT_LIMITS>): { code: string | undefined; details: Record<string, unknown> | undefined; messages: number } {
  const parser = new RtspRequestParser(limits);
  const { messages, error } = parser.push(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  return { code: error?.code, details: error ? { ...error.details } : undefined, messages: messages.length };
}

test('a single request is parsed with its method, URI, CSeq and headers', (t) => {
  const [r] = parseAll([DESCRIBE]);
  t.deepEqual(r, {
    method: 'DESCRIBE',
    uri: 'rtsp://127.0.0.1:8554/sample.ts',
    cseq: 2,
    headers: [
      ['CSeq', '2'],
      ['Accept', 'application/sdp'],
    ],
    body: '',
  });
});

test('header names are looked up case-insensitively and keep their spelling', (t) => {
  const parser = new RtspRequestParser();
  const { messages } = parser.push(Buffer.from('OPTIONS * RTSP/1.0\r\ncseq: 7\r\nX-Custom:  a  b \r\nx-custom: c\r\n\r\n'));
  const h = messages[0].headers;
  t.is(messages[0].cseq, 7);
  t.is(h.get('X-CUSTOM'), 'a  b');
  t.deepEqual(h.getAll('x-custom'), ['a  b', 'c']);
  t.true(h.has('CSeq'));
  t.false(h.has('Session'));
  t.deepEqual([...h.names()], ['cseq', 'x-custom']);
  t.deepEqual([...h.entries()].map(([n]) => n), ['cseq', 'X-Custom', 'x-custom']);
  t.is(h.size, 3);
});

test('pipelined requests in one chunk come out in order, bodies included', (t) => {
  const out = parseAll([OPTIONS + SET_PARAMETER + DESCRIBE]);
  t.deepEqual(
    out.map((r) => [r.method, r.cseq, r.body]),
    [
      ['OPTIONS', 1, ''],
      ['SET_PARAMETER', 3, 'barparam: 1\n'],
      ['DESCRIBE', 2, ''],
    ],
  );
});

// Every framing feature in one stream: stray line ends, an interleaved frame
// whose data looks like a request, a body that contains a blank line.
const FRAME = Buffer.concat([Buffer.from([0x24, 0x01, 0x00, 0x0c]), Buffer.from('OPTIONS \r\n\r\n', 'latin1')]);
const BODY_WITH_BLANK_LINE = 'SET_PARAMETER * RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 8\r\n\r\na\r\n\r\nbcd';
const STREAM = Buffer.concat([
  Buffer.from('\r\n'),
  Buffer.from(OPTIONS),
  FRAME,
  Buffer.from(BODY_WITH_BLANK_LINE),
  Buffer.from('\r\n'),
  FRAME,
  FRAME,
  Buffer.from(DESCRIBE),
]);
const EXPECTED = parseAll([STREAM]);

test('the reference stream parses to three requests', (t) => {
  t.deepEqual(
    EXPECTED.map((r) => [r.method, r.cseq, r.body]),
    [
      ['OPTIONS', 1, ''],
      ['SET_PARAMETER', 9, 'a\r\n\r\nbcd'],
      ['DESCRIBE', 2, ''],
    ],
  );
});

test('a stream split at every byte position parses the same as whole', (t) => {
  for (let i = 0; i <= STREAM.length; i++) {
    t.deepEqual(parseAll([STREAM.subarray(0, i), STREAM.subarray(i)]), EXPECTED, `split at ${i}`);
  }
});

test('a stream split at every pair of byte positions parses the same as whole', (t) => {
  // Two cuts catch states a single cut cannot, such as a CRLF split after a partial '$' header.
  const step = 3;
  for (let i = 0; i <= STREAM.length; i += step) {
    for (let j = i; j <= STREAM.length; j += step) {
      const got = parseAll([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]);
      if (JSON.stringify(got) !== JSON.stringify(EXPECTED)) t.fail(`split at ${i} and ${j}`);
    }
  }
  t.pass();
});

test('a stream fed one byte at a time parses the same as whole', (t) => {
  const chunks = [...STREAM].map((b) => Buffer.from([b]));
  t.deepEqual(parseAll(chunks), EXPECTED);
});

test('interleaved binary frames are skipped and counted', (t) => {
  const parser = new RtspRequestParser();
  const big = Buffer.alloc(4 + 65535, 0x47);
  big.writeUInt8(0x24, 0);
  big.writeUInt8(0, 1);
  big.writeUInt16BE(65535, 2);
  // A 64 KiB frame is skipped without buffering it.
  const first = parser.push(big.subarray(0, 1000));
  t.deepEqual(first.messages, []);
  t.is(parser.bufferedBytes, 0);
  const rest = parser.push(Buffer.concat([big.subarray(1000), Buffer.from(OPTIONS)]));
  t.is(rest.error, undefined);
  t.deepEqual(rest.messages.map((m) => m.method), ['OPTIONS']);
  t.is(parser.interleavedFramesSkipped, 1);
});

test('a zero-length interleaved frame is skipped', (t) => {
  const out = parseAll([Buffer.concat([Buffer.from([0x24, 0, 0, 0]), Buffer.from(OPTIONS)])]);
  t.deepEqual(out.map((r) => r.method), ['OPTIONS']);
});

test('bare LF line ends are accepted', (t) => {
  const out = parseAll(['OPTIONS * RTSP/1.0\nCSeq: 4\n\nOPTIONS * RTSP/1.0\nCSeq: 5\n\r\n']);
  t.deepEqual(out.map((r) => r.cseq), [4, 5]);
});

test('a folded header line continues the previous value', (t) => {
  const [r] = parseAll(['SETUP rtsp://h/a.ts/track1 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;\r\n  client_port=5000-5001\r\n\r\n']);
  t.deepEqual(r.headers, [
    ['CSeq', '1'],
    ['Transport', 'RTP/AVP;unicast; client_port=5000-5001'],
  ]);
});

test('a body of exactly the size limit is accepted', (t) => {
  const body = 'x'.repeat(DEFAULT_LIMITS.maxBodyBytes);
  const [r] = parseAll([`SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: ${body.length}\r\n\r\n${body}`]);
  t.is(r.body.length, DEFAULT_LIMITS.maxBodyBytes);
});

test('a body split across chunks waits for its last byte', (t) => {
  const parser = new RtspRequestParser();
  const text = Buffer.from(SET_PARAMETER);
  t.deepEqual(parser.push(text.subarray(0, text.length - 1)).messages, []);
  const { messages } = parser.push(text.subarray(text.length - 1));
  t.is(messages[0].body.toString(), 'barparam: 1\n');
});

/** A head of exactly `size` bytes: request line, CSeq, one padding header, blank line. */
function headOfSize(size: number): string {
  const fixed = 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Pad: \r\n\r\n';
  return fixed.replace('X-Pad: ', `X-Pad: ${'p'.repeat(size - fixed.length)}`);
}

test('a head of exactly 8 KiB is accepted', (t) => {
  const head = headOfSize(DEFAULT_LIMITS.maxHeadBytes);
  t.is(head.length, 8192);
  t.is(parseAll([head]).length, 1);
});

test('a head one byte over 8 KiB is refused with 413, whole or in pieces', (t) => {
  const head = headOfSize(DEFAULT_LIMITS.maxHeadBytes + 1);
  t.is(errorOf(head).code, 'TF_RTSP_REQUEST_TOO_LARGE');
  const parser = new RtspRequestParser();
  let code: string | undefined;
  for (let i = 0; i < head.length && code === undefined; i += 100) {
    code = parser.push(Buffer.from(head.slice(i, i + 100))).error?.code;
  }
  t.is(code, 'TF_RTSP_REQUEST_TOO_LARGE');
});

test('an endless head is refused as soon as it passes the limit, not when it ends', (t) => {
  const parser = new RtspRequestParser();
  parser.push(Buffer.from('OPTIONS * RTSP/1.0\r\nX: '));
  let result = parser.push(Buffer.alloc(4096, 0x61));
  t.is(result.error, undefined);
  result = parser.push(Buffer.alloc(4096, 0x61));
  t.is(result.error?.code, 'TF_RTSP_REQUEST_TOO_LARGE');
  t.is(parser.bufferedBytes, 0, 'the poisoned parser lets go of its buffer');
});

test('64 headers are accepted and 65 are refused with 413', (t) => {
  const headers = (n: number): string => Array.from({ length: n }, (_, i) => (i === 0 ? 'CSeq: 1\r\n' : `X-H${i}: v\r\n`)).join('');
  t.is(parseAll([`OPTIONS * RTSP/1.0\r\n${headers(64)}\r\n`]).length, 1);
  const e = errorOf(`OPTIONS * RTSP/1.0\r\n${headers(65)}\r\n`);
  t.is(e.code, 'TF_RTSP_REQUEST_TOO_LARGE');
  t.is(e.details?.cseq, 1, 'the CSeq is recovered for the error reply');
});

const BAD_CONTENT_LENGTH: Array<[string, string, string]> = [
  ['letters', 'abc', 'TF_RTSP_BAD_REQUEST'],
  ['negative', '-1', 'TF_RTSP_BAD_REQUEST'],
  ['fractional', '1.5', 'TF_RTSP_BAD_REQUEST'],
  ['empty', '', 'TF_RTSP_BAD_REQUEST'],
  ['hex', '0x10', 'TF_RTSP_BAD_REQUEST'],
  ['one byte over the limit', String(DEFAULT_LIMITS.maxBodyBytes + 1), 'TF_RTSP_REQUEST_TOO_LARGE'],
  ['beyond any integer', '99999999999999999999999', 'TF_RTSP_REQUEST_TOO_LARGE'],
];

for (const [name, value, code] of BAD_CONTENT_LENGTH) {
  test(`a Content-Length that is ${name} is refused with ${code}`, (t) => {
    const e = errorOf(`SET_PARAMETER * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: ${value}\r\n\r\n`);
    t.is(e.code, code);
    t.is(e.details?.cseq, 3);
  });
}

test('two different Content-Length headers are refused, two equal ones are accepted', (t) => {
  t.is(errorOf('SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab').code, 'TF_RTSP_BAD_REQUEST');
  const [r] = parseAll(['SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab']);
  t.is(r.body, 'ab');
});

test('leading zeros in Content-Length are accepted', (t) => {
  const [r] = parseAll(['SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 0003\r\n\r\nabc']);
  t.is(r.body, 'abc');
});

const GARBAGE: Array<[string, string | Buffer, string]> = [
  ['a line of text', 'hello\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a request line with two parts', 'OPTIONS *\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a request line with four parts', 'OPTIONS * RTSP/1.0 x\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a method with a bad character', 'OPT(IONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a non-ASCII URI', 'DESCRIBE rtsp://h/\xe9.ts RTSP/1.0\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a header without a colon', 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nnocolon\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a header with an empty name', 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n: v\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a header name with a space', 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nBad Name: v\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a NUL in a header value', 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\0b\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a bare CR in a header value', 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\rb\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a continuation line before any header', 'OPTIONS * RTSP/1.0\r\n folded\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['no CSeq', 'OPTIONS * RTSP/1.0\r\nUser-Agent: x\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a CSeq that is not a number', 'OPTIONS * RTSP/1.0\r\nCSeq: one\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a CSeq over 32 bits', 'OPTIONS * RTSP/1.0\r\nCSeq: 4294967296\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a pair of different CSeqs', 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['a malformed version', 'OPTIONS * RTSP/1.x\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_BAD_REQUEST'],
  ['binary noise', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0a, 0x0d, 0x0a]), 'TF_RTSP_BAD_REQUEST'],
  ['RTSP version 2.0', 'OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n', 'TF_RTSP_VERSION_NOT_SUPPORTED'],
  ['an HTTP request', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'TF_RTSP_VERSION_NOT_SUPPORTED'],
];

for (const [name, input, code] of GARBAGE) {
  test(`${name} is refused with ${code}`, (t) => {
    t.is(errorOf(input).code, code);
  });
}

test('a version error carries the CSeq so the 505 reply can echo it', (t) => {
  t.deepEqual(errorOf('PLAY rtsp://h/a.ts RTSP/2.0\r\nCSeq: 42\r\n\r\n').details, { cseq: 42 });
});

test('requests completed before an error are returned with the error', (t) => {
  const e = errorOf(`${OPTIONS}${DESCRIBE}garbage\r\n\r\n${OPTIONS}`);
  t.is(e.messages, 2);
  t.is(e.code, 'TF_RTSP_BAD_REQUEST');
});

test('after an error the parser stays poisoned', (t) => {
  const parser = new RtspRequestParser();
  const first = parser.push(Buffer.from('junk\r\n\r\n'));
  t.truthy(first.error);
  const second = parser.push(Buffer.from(OPTIONS));
  t.deepEqual(second.messages, []);
  t.is(second.error, first.error);
  t.is(parser.error, first.error);
});

test('smaller limits are honoured', (t) => {
  t.is(errorOf(OPTIONS, { maxHeadBytes: 20 }).code, 'TF_RTSP_REQUEST_TOO_LARGE');
  t.is(errorOf(SET_PARAMETER, { maxBodyBytes: 4 }).code, 'TF_RTSP_REQUEST_TOO_LARGE');
  t.is(errorOf(OPTIONS, { maxHeaders: 1 }).code, 'TF_RTSP_REQUEST_TOO_LARGE');
});

// --- responses -------------------------------------------------------------

const STATUSES: Array<[number, string]> = [
  [200, 'OK'],
  [400, 'Bad Request'],
  [403, 'Forbidden'],
  [404, 'Not Found'],
  [405, 'Method Not Allowed'],
  [413, 'Request Entity Too Large'],
  [453, 'Not Enough Bandwidth'],
  [454, 'Session Not Found'],
  [455, 'Method Not Valid in This State'],
  [457, 'Invalid Range'],
  [461, 'Unsupported transport'],
  [500, 'Internal Server Error'],
  [501, 'Not Implemented'],
  [503, 'Service Unavailable'],
  [505, 'RTSP Version not supported'],
];

for (const [status, reason] of STATUSES) {
  test(`status ${status} is sent with the RFC 2326 reason phrase "${reason}"`, (t) => {
    t.is(REASON_PHRASES[status], reason);
    const text = serializeResponse({ status, headers: { CSeq: 1 } }).toString();
    t.is(text, `RTSP/1.0 ${status} ${reason}\r\nCSeq: 1\r\n\r\n`);
  });
}

test('an unlisted status gets the name of its class', (t) => {
  t.is(reasonPhrase(299), 'Success');
  t.is(reasonPhrase(499), 'Client Error');
});

test('a response carries its headers in order and a computed Content-Length', (t) => {
  const bytes = serializeResponse({
    status: 200,
    headers: [
      ['CSeq', 2],
      ['Content-Type', 'application/sdp'],
      ['Content-Length', 999],
      ['Public', ['OPTIONS', 'DESCRIBE']],
      ['Session', undefined],
    ],
    body: 'v=0\r\n',
  });
  t.is(
    bytes.toString(),
    'RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nPublic: OPTIONS\r\nPublic: DESCRIBE\r\nContent-Length: 5\r\n\r\nv=0\r\n',
  );
});

test('a custom reason phrase replaces the standard one', (t) => {
  t.is(serializeResponse({ status: 503, reason: 'Draining', headers: { CSeq: 1 } }).toString(), 'RTSP/1.0 503 Draining\r\nCSeq: 1\r\n\r\n');
});

test('a header value with a line break cannot be serialized', (t) => {
  t.throws(() => serializeResponse({ status: 200, headers: { Session: 'abc\r\nX-Injected: 1' } }), { instanceOf: TypeError });
  t.throws(() => serializeResponse({ status: 200, headers: { 'Bad Name': 'v' } }), { instanceOf: TypeError });
  t.throws(() => serializeResponse({ status: 20 }), { instanceOf: TypeError });
});

test('serialized responses parse back, whole and split at every byte', (t) => {
  const a = serializeResponse({ status: 200, headers: { CSeq: 5, 'Content-Type': 'application/sdp' }, body: 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n' });
  const b = serializeResponse({ status: 454, headers: { CSeq: 6 } });
  const stream = Buffer.concat([a, b]);
  for (let i = 0; i <= stream.length; i++) {
    const parser = new RtspResponseParser();
    const got = [...parser.push(stream.subarray(0, i)).messages, ...parser.push(stream.subarray(i)).messages];
    t.deepEqual(
      got.map((r) => [r.version, r.status, r.reason, r.cseq, r.headers.get('content-type'), r.body.toString()]),
      [
        ['RTSP/1.0', 200, 'OK', 5, 'application/sdp', 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n'],
        ['RTSP/1.0', 454, 'Session Not Found', 6, undefined, ''],
      ],
      `split at ${i}`,
    );
  }
});

test('the response parser refuses a request line', (t) => {
  t.is(new RtspResponseParser().push(Buffer.from(OPTIONS)).error?.code, 'TF_RTSP_BAD_REQUEST');
});

test('serialized requests parse back through the request parser', (t) => {
  const bytes = serializeRequest({ method: 'SET_PARAMETER', uri: '*', headers: { CSeq: 8, 'Content-Type': 'text/parameters' }, body: 'a: b\r\n' });
  const { messages } = new RtspRequestParser().push(bytes);
  t.deepEqual(view(messages[0]), {
    method: 'SET_PARAMETER',
    uri: '*',
    cseq: 8,
    headers: [
      ['CSeq', '8'],
      ['Content-Type', 'text/parameters'],
      ['Content-Length', '6'],
    ],
    body: 'a: b\r\n',
  });
});

test('RtspHeaders can be built from pairs', (t) => {
  const h = new RtspHeaders([
    ['A', '1'],
    ['a', '2'],
  ]);
  t.deepEqual(h.getAll('A'), ['1', '2']);
  t.is(h.get('b'), undefined);
});
