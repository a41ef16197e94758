// The fuzz targets: every parser that takes bytes from outside (README,
// "Hostile input"). Each target draws inputs from fast-check, seeded from the
// parser's own case table (valid and refused forms, as gortsplib seeds its fuzz
// tests) and mutated (bytes inserted, deleted, replaced, runs repeated), plus
// inputs from scratch; and says what must hold for every input: the parser
// returns, or throws the project's coded error (TwinframeError) and nothing
// else; where it has a serializer, what it parsed serializes to a form that
// parses back to the same thing. test/fuzz.test.ts runs a short seeded form of
// each; `npm run fuzz` (test/fuzz-run.ts) runs a million inputs and more.

import fc from 'fast-check';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { isTwinframeError } from '../../src/errors.js';
import { RtspRequestParser } from '../../src/rtsp/message.js';
import { chooseTransport, parseTransport, serializeTransport } from '../../src/rtsp/headers/transport.js';
import { parseRange, serializeRange } from '../../src/rtsp/headers/range.js';
import { parseSession, serializeSession } from '../../src/rtsp/headers/session.js';
import { parseRtpInfo, serializeRtpInfo } from '../../src/rtsp/headers/rtp-info.js';
import { parseRtspUrl } from '../../src/rtsp/url.js';
import { buildSdp } from '../../src/rtsp/sdp.js';
import { LineSplitter, parseRequestLine } from '../../src/admin/protocol.js';
import { SectionAssembler, parsePat, parsePmt, isPsiError } from '../../src/mpegts/psi.js';
import { indexOpenAsset } from '../../src/catalog/asset-index.js';
import { SAMPLE_ASSET } from './engine-fixture.js';

export interface FuzzTarget {
  readonly name: string;
  /** One property over this target's inputs; `tmp` is a directory the target may write to. */
  property(tmp: string): fc.IPropertyWithHooks<[unknown]> | fc.IProperty<[unknown]>;
  /**
   * Inputs of growing size built from one piece repeated (long blank runs,
   * folded lines, nested separators…): parsing must stay linear in the size.
   */
  readonly linear?: (piece: string, size: number) => () => void;
}

/** Throws unless `err` is one of the project's coded errors (what a parser may refuse with). */
function onlyCoded(err: unknown): void {
  if (!isTwinframeError(err)) throw err;
}

function attempt(run: () => void): void {
  try {
    run();
  } catch (err) {
    onlyCoded(err);
  }
}

/** A seed with edits: bytes inserted, deleted or replaced, and a run repeated. */
function mutated(seeds: readonly string[], alphabet: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const edit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 4 }), insert: fc.string({ unit: alphabet, maxLength: 6 }), repeat: fc.nat({ max: 40 }) });
  return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: 6 })).map(([seed, edits]) => {
    let s = seed;
    for (const e of edits) {
      const at = s.length === 0 ? 0 : e.at % (s.length + 1);
      const piece = e.insert.repeat(e.repeat === 0 ? 1 : e.repeat);
      s = s.slice(0, at) + piece + s.slice(at + e.cut);
    }
    return s;
  });
}

/** Characters that matter to RTSP headers, with the rest of printable ASCII and some controls. */
const HEADER_CHARS = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(';', ',', '=', '-', '/', ':', ' ', '\t', '"', '.', '0', '1', '9', 'a', 'Z', '$', '*') },
  { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\r', '\n', '\0', '\u00ff', '\u{1f600}') },
);

/** Inputs for a header parser: mutated seeds, and strings from scratch. */
function headerInput(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: mutated(seeds, HEADER_CHARS) },
    { weight: 1, arbitrary: fc.string({ unit: HEADER_CHARS, maxLength: 200 }) },
  );
}

/**
 * A header value as the message parser delivers it: it refuses control
 * characters other than tab (CR and LF end lines), so no header parser sees one.
 */
function asHeaderValue(s: string): string {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
}

/** `check` gets header values (asHeaderValue) when `headerValue`, else any string (a request URI's checks are its own). */
function headerTarget(name: string, seeds: readonly string[], check: (input: string) => void, headerValue = true): FuzzTarget {
  const input = headerValue ? headerInput(seeds).map(asHeaderValue) : headerInput(seeds);
  return {
    name,
    property: () => fc.property(input, (value) => attempt(() => check(value))),
    linear: (piece, size) => {
      const input = piece.repeat(Math.ceil(size / Math.max(1, piece.length))).slice(0, size);
      return () => attempt(() => check(input));
    },
  };
}

const TRANSPORT_SEEDS = [
  'RTP/AVP;unicast;client_port=5000-5001',
  'RTP/AVP/TCP;unicast;interleaved=0-1',
  'RTP/AVP/UDP;unicast;client_port=5000;mode=PLAY',
  'MP2T/H2221/UDP;unicast;destination=10.1.2.3;client_port=6000-6001',
  'RAW/RAW/UDP;unicast;client_port=6000',
  'RTP/AVP;multicast;destination=224.2.0.1;port=3456-3457;ttl=16',
  'RTP/AVP;unicast;client_port=5000-5001;mode="RECORD,PLAY";ssrc=0000ABCD',
  'RTP/AVP/TCP;interleaved=0-300',
  'RTP/AVP;unicast;client_port=99999',
  'MP2T/DVBC/QAM;unicast;client=00AF123456DE;qam_name=Chicago.SouthBend.5',
];

const RANGE_SEEDS = [
  'npt=0.000-', 'npt=5.500-10.000', 'npt=now-', 'npt=-10.000', 'npt=12.345-;time=19970123T143720Z',
  'npt=0:01:05.5-', 'npt=1:00:00-1:00:10', 'NPT = 5.-', ' npt=5 - 10 ', 'npt=', 'npt=10-5', 'npt=0:60:00-', 'smpte=0:10:00-', 'clock=19961108T142300Z-',
];

const SESSION_SEEDS = ['12345678;timeout=60', 'abcdef0123456789', 'a;timeout=', 'x;timeout=99999999999', ';timeout=5', 'ses$ion'];

const RTP_INFO_SEEDS = [
  'url=rtsp://127.0.0.1:8554/sample.ts/track1;seq=12345;rtptime=3735928559',
  'url=rtsp://a/b;seq=1,url=rtsp://a/c;rtptime=2',
  'url="rtsp://a/b;c";seq=1',
  'url=;seq=',
];

const URL_SEEDS = [
  'rtsp://127.0.0.1:8554/sample.ts', 'rtsp://[::1]:554/a/b/track1', 'rtsp://user:pass@host/a%20b.ts?x=1#f', '*',
  'rtsp://host:99999/a', 'rtsp://host/../../etc/passwd', 'rtsps://host/a', 'http://x/y', '/relative', 'rtsp://h/a/track1000',
];

const REQUEST_SEEDS = [
  'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n',
  'DESCRIBE rtsp://127.0.0.1/sample.ts RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n',
  'SETUP rtsp://127.0.0.1/sample.ts/track1 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n',
  'PLAY rtsp://127.0.0.1/sample.ts RTSP/1.0\r\nCSeq: 4\r\nSession: 12345678\r\nRange: npt=0-\r\n\r\n',
  'SET_PARAMETER * RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 5\r\n\r\nhello',
  'GET_PARAMETER * RTSP/1.0\r\nCSeq: 6\r\nX-Folded: a\r\n  b\r\n\tc\r\n\r\n',
  '$\u0000\u0000\u0004abcdOPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n',
  '\r\n\r\nOPTIONS * RTSP/2.0\r\nCSeq: 8\r\n\r\n',
  'OPTIONS * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
];

const REQUEST_CHARS = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('\r\n', '\r', '\n', ' ', '\t', ':', '$', 'CSeq: 9\r\n', 'Content-Length: 3\r\n', '\r\n\r\n', '0') },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
);

/** An RTSP request stream cut into chunks at random places, as TCP may deliver it. */
const requestTarget: FuzzTarget = {
  name: 'rtsp request framing and head',
  property: () => fc.property(
    fc.tuple(fc.oneof({ weight: 3, arbitrary: mutated(REQUEST_SEEDS, REQUEST_CHARS) }, { weight: 1, arbitrary: fc.string({ unit: REQUEST_CHARS, maxLength: 300 }) }), fc.array(fc.nat(), { maxLength: 5 })),
    ([text, cuts]) => {
      const parser = new RtspRequestParser({ maxHeadBytes: 4096, maxBodyBytes: 4096 }, () => {});
      const bytes = Buffer.from(text, 'latin1');
      const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
      let from = 0;
      for (const to of [...points, bytes.length]) {
        parser.push(bytes.subarray(from, to)); // a refusal is returned, coded; anything else is thrown
        from = to;
      }
    },
  ),
  linear: (piece, size) => {
    const head = Buffer.from(`OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a${piece.repeat(Math.ceil(size / Math.max(1, piece.length))).slice(0, size)}x\r\n\r\n`, 'latin1');
    return () => void new RtspRequestParser({ maxHeadBytes: 2 * size + 1024, maxBodyBytes: 1024 }).push(head);
  },
};

const ADMIN_SEEDS = [
  '{"v":1,"id":1,"cmd":"status","args":{}}',
  '{"v":1,"id":"x","cmd":"inject-fault","args":{"path":"a","kind":"crash"}}',
  '{"v":1,"id":2,"cmd":"limits","args":{"maxStreams":10}}',
  '{"v":2,"id":3,"cmd":"status"}',
  '{"id":null}', '[]', 'null', '{"v":1,"id":1,"cmd":"__proto__","args":{}}',
];

/** The admin protocol: NDJSON lines split from a byte stream, then each line validated. */
const adminTarget: FuzzTarget = {
  name: 'admin protocol lines',
  property: () => fc.property(
    fc.array(fc.oneof(mutated(ADMIN_SEEDS, fc.constantFrom('{', '}', '"', ':', ',', '[', ']', '1', 'a', '\\', 'u', '\n', ' ')), fc.json()), { maxLength: 4 }),
    (lines) => {
      const splitter = new LineSplitter(64 * 1024);
      attempt(() => {
        for (const line of splitter.push(Buffer.from(`${lines.join('\n')}\n`, 'utf8')).lines) {
          const parsed = parseRequestLine(line);
          if (!parsed.ok && !isTwinframeError(parsed.error)) throw new Error('admin refusal is not a coded error');
        }
      });
    },
  ),
};

/** The SDP is only written, never parsed: what a client controls (the asset's name) must not break its lines. */
const sdpTarget: FuzzTarget = {
  name: 'sdp writer (asset names)',
  property: () => fc.property(fc.string({ unit: HEADER_CHARS, maxLength: 100 }), (name) => {
    const sdp = buildSdp({ sessionId: 1, sessionVersion: 1, serverAddress: '127.0.0.1', name, durationSeconds: 12, bitrateKbps: 3000 });
    const lines = sdp.split('\r\n');
    if (lines.some((l, i) => i < lines.length - 1 && !/^[a-z]=/.test(l))) throw new Error(`SDP line broken by the name ${JSON.stringify(name)}`);
  }),
};

/** TS packets: the sample's first ones (PAT, PMT, PES with PCR) mutated, and random packets of the same PIDs. */
function tsPackets(maxPackets: number): fc.Arbitrary<Buffer> {
  const sample = readFileSync(SAMPLE_ASSET).subarray(0, 188 * 400);
  const flips = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 24 });
  const seeded = fc.tuple(fc.nat({ max: 399 }), fc.integer({ min: 1, max: maxPackets }), flips).map(([first, count, edits]) => {
    const n = Math.min(count, 400 - first);
    const b = Buffer.from(sample.subarray(first * 188, (first + n) * 188));
    for (const [at, value] of edits) b[at % b.length] = value;
    return b;
  });
  const scratch = fc.array(fc.tuple(fc.constantFrom(0, 0x1000, 0x100, 0x101, 0x1fff), fc.uint8Array({ minLength: 184, maxLength: 184 }), fc.boolean()), { minLength: 1, maxLength: maxPackets })
    .map((packets) => Buffer.concat(packets.map(([pid, payload, start]) => {
      const p = Buffer.alloc(188);
      p[0] = 0x47;
      p[1] = (start ? 0x40 : 0) | (pid >> 8);
      p[2] = pid & 0xff;
      p[3] = 0x10;
      Buffer.from(payload).copy(p, 4);
      return p;
    })));
  return fc.oneof({ weight: 3, arbitrary: seeded }, { weight: 1, arbitrary: scratch });
}

const psiTarget: FuzzTarget = {
  name: 'mpeg-ts psi sections (pat, pmt)',
  property: () => fc.property(tsPackets(8), (ts) => {
    const assemblers = new Map<number, SectionAssembler>();
    attempt(() => {
      for (let off = 0; off + 188 <= ts.length; off += 188) {
        const pid = ((ts[off + 1] & 0x1f) << 8) | ts[off + 2];
        let a = assemblers.get(pid);
        if (!a) assemblers.set(pid, (a = new SectionAssembler()));
        a.push(ts, off, (section) => {
          const pat = parsePat(section);
          const pmt = parsePmt(section);
          if (!isPsiError(pat) && !Array.isArray(pat.programs)) throw new Error('PAT without programs');
          if (!isPsiError(pmt) && !Array.isArray(pmt.streams)) throw new Error('PMT without streams');
        });
      }
    });
  }),
};

/** The asset indexer on a file of mutated or random TS packets (and cut ones). */
function indexerTarget(): FuzzTarget {
  return {
    name: 'asset indexer',
    property: (tmp) => fc.property(fc.tuple(tsPackets(300), fc.nat({ max: 187 }), fc.boolean()), ([ts, cut, truncate]) => {
      const file = `${tmp}/fuzz-asset.ts`;
      writeFileSync(file, truncate ? ts.subarray(0, Math.max(0, ts.length - cut)) : ts);
      const fd = openSync(file, 'r');
      try {
        attempt(() => void indexOpenAsset(fd, file));
      } finally {
        closeSync(fd);
      }
    }),
  };
}

export function fuzzTargets(): FuzzTarget[] {
  return [
    requestTarget,
    headerTarget('Transport header', TRANSPORT_SEEDS, (input) => {
      const specs = parseTransport(input);
      const again = parseTransport(serializeTransport(specs));
      if (!isDeepStrictEqual(again, specs)) throw new Error(`Transport does not round-trip: ${JSON.stringify(input)}`);
      attempt(() => void chooseTransport(specs));
    }),
    headerTarget('Range header', RANGE_SEEDS, (input) => {
      const range = parseRange(input);
      const again = parseRange(serializeRange(range));
      // npt carries milliseconds: the round trip keeps them.
      const ms = (t: unknown): unknown => (typeof t === 'number' ? Math.round(t * 1000) : t);
      if (ms(again.start) !== ms(range.start) || ms(again.end) !== ms(range.end) || again.time !== range.time) {
        throw new Error(`Range does not round-trip: ${JSON.stringify(input)}`);
      }
    }),
    headerTarget('Session header', SESSION_SEEDS, (input) => {
      const session = parseSession(input);
      const again = parseSession(serializeSession(session));
      if (!isDeepStrictEqual(again, session)) throw new Error(`Session does not round-trip: ${JSON.stringify(input)}`);
    }),
    headerTarget('RTP-Info header', RTP_INFO_SEEDS, (input) => {
      // The serializer escapes a url's separators (%3B for ';') and the parser keeps escapes as
      // they are, as URLs need: what round-trips is the wire form.
      const wire = serializeRtpInfo(parseRtpInfo(input));
      if (serializeRtpInfo(parseRtpInfo(wire)) !== wire) throw new Error(`RTP-Info does not round-trip: ${JSON.stringify(input)}`);
    }),
    headerTarget('RTSP URL and path mapping', URL_SEEDS, (input) => void parseRtspUrl(input), false),
    adminTarget,
    sdpTarget,
    psiTarget,
    indexerTarget(),
  ];
}
