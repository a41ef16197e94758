// The client side of RTSP message framing, for the test client: a response
// parser and a request serializer, built on the server's reader and serializer
// (src/rtsp/message.ts) so both sides frame messages alike.

import {
  MessageReader,
  RTSP_VERSION,
  TOKEN,
  URI_CHARS,
  badStart,
  serializeMessage,
  type HeaderInit,
  type RtspHeaders,
  type StartLine,
} from '../../src/rtsp/message.js';

export interface RtspResponse {
  readonly version: string;
  readonly status: number;
  readonly reason: string;
  /** Undefined when the response has no (valid) CSeq header. */
  readonly cseq: number | undefined;
  readonly headers: RtspHeaders;
  readonly body: Buffer;
}

/** RTSP responses from a server connection. */
export class RtspResponseParser extends MessageReader<RtspResponse> {
  protected override parseStartLine(line: string): StartLine<RtspResponse> {
    const m = /^(RTSP\/[0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?$/.exec(line);
    if (!m) return badStart('malformed status line');
    const version = m[1];
    const status = Number(m[2]);
    const reason = m[3] ?? '';
    return {
      requiresCSeq: false,
      build: (headers, cseq, body) => ({ version, status, reason, cseq, headers, body }),
    };
  }
}

export interface RequestInit {
  readonly method: string;
  readonly uri: string;
  readonly headers?: HeaderInit;
  readonly body?: Buffer | string;
}

/** Bytes of one request. */
export function serializeRequest(init: RequestInit): Buffer {
  if (!TOKEN.test(init.method)) throw new TypeError(`invalid RTSP method ${JSON.stringify(init.method)}`);
  if (!URI_CHARS.test(init.uri)) throw new TypeError(`invalid request URI ${JSON.stringify(init.uri)}`);
  return serializeMessage(`${init.method} ${init.uri} ${RTSP_VERSION}`, init.headers, init.body);
}
