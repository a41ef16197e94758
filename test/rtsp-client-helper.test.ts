// The test helpers themselves: sequence accounting on synthetic sequences, the
// UdpReceiver on synthetic RTP datagrams, and the RtspClient against a scripted
// server. Integration tests trust these numbers, so they are checked here.

import dgram from 'node:dgram';
import net from 'node:net';
import { Worker } from 'node:worker_threads';

import test from 'ava';

import { RtspRequestParser, serializeResponse, type RtspRequest } from '../src/rtsp/message.js';
import { RtspClient, UdpReceiver, parseRtpPacket, sequenceStats, type SequenceStats } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { largestGap } from './helpers/stream-pacing.js';

const STATS: Array<[name: string, seqs: number[], options: { firstSeq?: number }, expected: Omit<SequenceStats, 'received'>]> = [
  ['nothing received', [], {}, { unique: 0, expected: 0, lost: 0, duplicated: 0, reordered: 0 }],
  ['a clean run', [10, 11, 12, 13], {}, { unique: 4, expected: 4, lost: 0, duplicated: 0, reordered: 0 }],
  ['a gap of two', [10, 11, 14, 15], {}, { unique: 4, expected: 6, lost: 2, duplicated: 0, reordered: 0 }],
  ['one duplicate', [10, 11, 11, 12], {}, { unique: 3, expected: 3, lost: 0, duplicated: 1, reordered: 0 }],
  ['a late duplicate', [10, 11, 12, 11], {}, { unique: 3, expected: 3, lost: 0, duplicated: 1, reordered: 0 }],
  ['a swapped pair', [10, 12, 11, 13], {}, { unique: 4, expected: 4, lost: 0, duplicated: 0, reordered: 1 }],
  ['a wrap past 65535', [65533, 65534, 65535, 0, 1], {}, { unique: 5, expected: 5, lost: 0, duplicated: 0, reordered: 0 }],
  ['a loss across the wrap', [65534, 65535, 1, 2], {}, { unique: 4, expected: 5, lost: 1, duplicated: 0, reordered: 0 }],
  ['reordering across the wrap', [65534, 0, 65535, 1], {}, { unique: 4, expected: 4, lost: 0, duplicated: 0, reordered: 1 }],
  ['a duplicate across the wrap', [65535, 0, 65535, 1], {}, { unique: 3, expected: 3, lost: 0, duplicated: 1, reordered: 0 }],
  ['a first packet that arrives late', [11, 12, 10, 13], {}, { unique: 4, expected: 4, lost: 0, duplicated: 0, reordered: 1 }],
  ['nothing received of a stream that started (RTP-Info seq known)', [], { firstSeq: 10 }, { unique: 0, expected: 1, lost: 1, duplicated: 0, reordered: 0 }],
  ['losses before the first arrival, known from RTP-Info', [12, 13], { firstSeq: 10 }, { unique: 2, expected: 4, lost: 2, duplicated: 0, reordered: 0 }],
  ['a first seq before the wrap', [1, 2], { firstSeq: 65535 }, { unique: 2, expected: 4, lost: 2, duplicated: 0, reordered: 0 }],
  ['a long run wrapping twice', Array.from({ length: 140_000 }, (_, i) => (100 + i) & 0xffff), {}, { unique: 140_000, expected: 140_000, lost: 0, duplicated: 0, reordered: 0 }],
];

for (const [name, seqs, options, expected] of STATS) {
  test(`sequence accounting: ${name}`, (t) => {
    t.deepEqual(sequenceStats(seqs, options), { received: seqs.length, ...expected });
  });
}

test('largestGap counts the silence up to the window\'s edges, so a stream that stopped shows it', (t) => {
  t.deepEqual(largestGap([5, 10, 12, 30, 31], 10, 31), { maxMs: 18, count: 4 });
  t.deepEqual(largestGap([5, 10, 12], 10, 300), { maxMs: 288, count: 2 }, 'stopped inside the window');
  t.deepEqual(largestGap([], 0, 100), { maxMs: 100, count: 0 }, 'nothing at all');
});

/** An RTP/MP2T datagram with a payload that names its sequence number. */
function rtpDatagram(seq: number, options: { csrcs?: number; extensionWords?: number; padding?: number } = {}): Buffer {
  const cc = options.csrcs ?? 0;
  const ext = options.extensionWords;
  const pad = options.padding ?? 0;
  const header = Buffer.alloc(12 + 4 * cc + (ext === undefined ? 0 : 4 + 4 * ext));
  header[0] = 0x80 | (pad > 0 ? 0x20 : 0) | (ext !== undefined ? 0x10 : 0) | cc;
  header[1] = 33;
  header.writeUInt16BE(seq, 2);
  header.writeUInt32BE(seq * 3600, 4);
  header.writeUInt32BE(0xcafef00d, 8);
  for (let i = 0; i < cc; i++) header.writeUInt32BE(i + 1, 12 + 4 * i);
  if (ext !== undefined) header.writeUInt16BE(ext, 12 + 4 * cc + 2);
  const payload = Buffer.alloc(188, 0xff);
  payload[0] = 0x47;
  payload.writeUInt16BE(seq, 1);
  const padding = Buffer.alloc(pad);
  if (pad > 0) padding[pad - 1] = pad;
  return Buffer.concat([header, payload, padding]);
}

async function sendAll(port: number, datagrams: Buffer[]): Promise<void> {
  const socket = dgram.createSocket('udp4');
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) => socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    socket.close();
  }
}

test('RTP headers are parsed with CSRCs, an extension and padding', (t) => {
  const p = parseRtpPacket(rtpDatagram(513, { csrcs: 2, extensionWords: 1, padding: 4 }));
  t.like(p, { version: 2, padding: true, extension: true, marker: false, payloadType: 33, sequence: 513, timestamp: 513 * 3600, ssrc: 0xcafef00d });
  t.deepEqual(p.csrcs, [1, 2]);
  t.is(p.payload.length, 188);
  t.is(p.payload[0], 0x47);
  t.throws(() => parseRtpPacket(Buffer.alloc(11)));
  t.throws(() => parseRtpPacket(Buffer.alloc(12)), { message: /version 0/ });
});

test('the receiver binds an even RTP port with RTCP on the next one', async (t) => {
  const rx = await UdpReceiver.open();
  t.teardown(() => rx.close());
  t.is(rx.rtpPort % 2, 0);
  t.is(rx.rtcpPort, rx.rtpPort + 1);
  t.is(rx.transportHeader(), `RTP/AVP;unicast;client_port=${rx.rtpPort}-${rx.rtcpPort}`);
});

test('the receiver counts loss, duplicates and reordering of datagrams it really received', async (t) => {
  const rx = await UdpReceiver.open();
  t.teardown(() => rx.close());
  // 65533 … 3 with 65535 lost, 1 duplicated, 2 and 3 swapped, and one non-RTP datagram.
  const order = [65533, 65534, 0, 1, 1, 3, 2];
  await sendAll(rx.rtpPort, [...order.map((s) => rtpDatagram(s)), Buffer.from('not rtp')]);
  await rx.waitForCount(order.length + 1, 2_000);
  t.is(rx.malformed, 1);
  t.deepEqual(rx.stats(), { received: 7, unique: 6, expected: 7, lost: 1, duplicated: 1, reordered: 1 });
  t.deepEqual(rx.stats({ firstSeq: 65530 }).lost, 4);
  // Payload comes out in sequence order, each packet once.
  const ts = rx.tsPayload();
  t.is(ts.length, 6 * 188);
  const seqs = Array.from({ length: 6 }, (_, i) => ts.readUInt16BE(i * 188 + 1));
  t.deepEqual(seqs, [65533, 65534, 0, 1, 2, 3]);
  // Arrival times come from the shared monotonic clock and never go backwards.
  const times = rx.datagrams.map((d) => d.arrivalNs);
  t.true(times.every((x, i) => i === 0 || x >= times[i - 1]));
});

test('RTCP datagrams are recorded apart from RTP', async (t) => {
  const rx = await UdpReceiver.open();
  t.teardown(() => rx.close());
  await sendAll(rx.rtcpPort, [Buffer.from([0x80, 200, 0, 6])]);
  const deadline = Date.now() + 2_000;
  while (rx.rtcpDatagrams.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.is(rx.rtcpDatagrams.length, 1);
  t.is(rx.datagrams.length, 0);
});

test('in raw UDP mode datagrams are kept whole and in arrival order', async (t) => {
  const rx = await UdpReceiver.open({ mode: 'udp' });
  t.teardown(() => rx.close());
  t.is(rx.transportHeader(), `MP2T/H2221/UDP;unicast;destination=127.0.0.1;client_port=${rx.rtpPort}`);
  await sendAll(rx.rtpPort, [Buffer.from('ab'), Buffer.from('cd')]);
  await rx.waitForCount(2, 2_000);
  t.is(rx.tsPayload().toString(), 'abcd');
  t.throws(() => rx.stats(), { message: /need RTP/ });
});

test('waiting for more datagrams than arrive times out instead of hanging', async (t) => {
  const rx = await UdpReceiver.open();
  t.teardown(() => rx.close());
  await t.throwsAsync(rx.waitForCount(1, 50), { message: /timed out after 50 ms waiting for 1 datagrams \(got 0\)/ });
});

test('waiting for quiet resolves after a silence and fails while datagrams keep coming', async (t) => {
  const rx = await UdpReceiver.open();
  t.teardown(() => rx.close());
  const start = process.hrtime.bigint();
  await rx.waitForQuiet(30, 1_000);
  t.true(process.hrtime.bigint() - start >= 30_000_000n);

  // The sender runs on its own thread: a stall of this (loaded) thread must not make the wire quiet.
  const sender = new Worker(`
    const { workerData } = require('node:worker_threads');
    const socket = require('node:dgram').createSocket('udp4');
    setInterval(() => socket.send(Buffer.from(workerData.datagram), workerData.port, '127.0.0.1'), 5);
  `, { eval: true, workerData: { datagram: rtpDatagram(1), port: rx.rtpPort } });
  t.teardown(() => sender.terminate());
  await rx.waitForCount(1, 5_000);
  await t.throwsAsync(rx.waitForQuiet(100, 300), { message: /still flowing/ });
});

// --- RtspClient against a scripted server -----------------------------------

/** A server that answers each request with what `answer` returns, via the real parser and serializer. */
async function scriptedServer(answer: (r: RtspRequest, socket: net.Socket) => Buffer | undefined): Promise<{ port: number; requests: RtspRequest[]; close: () => Promise<void> }> {
  const requests: RtspRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const parser = new RtspRequestParser();
    socket.on('data', (chunk: Buffer) => {
      const { messages, error } = parser.push(chunk);
      for (const r of messages) {
        requests.push(r);
        const reply = answer(r, socket);
        if (reply) socket.write(reply);
      }
      if (error) {
        const cseq = error.details.cseq;
        socket.end(serializeResponse({ status: error.rtspStatus ?? 400, headers: { CSeq: typeof cseq === 'number' ? cseq : undefined } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('the client numbers requests, keeps the session and sends it back', async (t) => {
  const server = await scriptedServer((r) => {
    const headers: Record<string, string | number> = { CSeq: r.cseq };
    if (r.method === 'SETUP') headers.Session = 'ABCDEF12;timeout=60';
    if (r.method === 'DESCRIBE') return serializeResponse({ status: 200, headers: { ...headers, 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });
    return serializeResponse({ status: 200, headers });
  });
  t.teardown(() => server.close());
  const client = await RtspClient.connect({ port: server.port, timeoutMs: 2_000 });
  t.teardown(() => client.close());

  t.is((await client.options()).status, 200);
  const describe = await client.describe('/sample.ts');
  t.is(describe.body.toString(), 'v=0\r\n');
  await client.setup('/sample.ts/track1', 'RTP/AVP;unicast;client_port=5000-5001');
  t.is(client.session, 'ABCDEF12');
  await client.play('/sample.ts', 'npt=5.000-');
  await client.getParameter('/sample.ts');
  await client.pause('/sample.ts');
  await client.teardown('/sample.ts');

  t.deepEqual(
    server.requests.map((r) => [r.method, r.uri, r.cseq, r.headers.get('session') ?? null]),
    [
      ['OPTIONS', '*', 1, null],
      ['DESCRIBE', `rtsp://127.0.0.1:${server.port}/sample.ts`, 2, null],
      ['SETUP', `rtsp://127.0.0.1:${server.port}/sample.ts/track1`, 3, null],
      ['PLAY', `rtsp://127.0.0.1:${server.port}/sample.ts`, 4, 'ABCDEF12'],
      ['GET_PARAMETER', `rtsp://127.0.0.1:${server.port}/sample.ts`, 5, 'ABCDEF12'],
      ['PAUSE', `rtsp://127.0.0.1:${server.port}/sample.ts`, 6, 'ABCDEF12'],
      ['TEARDOWN', `rtsp://127.0.0.1:${server.port}/sample.ts`, 7, 'ABCDEF12'],
    ],
  );
  t.is(server.requests[1].headers.get('accept'), 'application/sdp');
  t.is(server.requests[2].headers.get('transport'), 'RTP/AVP;unicast;client_port=5000-5001');
  t.is(server.requests[3].headers.get('range'), 'npt=5.000-');
});

test('a raw malformed request gets its error reply and the server close is seen', async (t) => {
  const server = await scriptedServer((r) => serializeResponse({ status: 200, headers: { CSeq: r.cseq } }));
  t.teardown(() => server.close());
  const client = await RtspClient.connect({ port: server.port, timeoutMs: 2_000 });
  t.teardown(() => client.close());
  client.sendRaw('OPTIONS * RTSP/2.0\r\nCSeq: 9\r\n\r\n');
  const reply = await client.nextResponse();
  t.is(reply.status, 505);
  t.is(reply.cseq, 9);
  await client.waitForClose();
  t.true(client.closed);
  await t.throwsAsync(client.options(), { message: /connection closed/ });
});

test('a server that never answers makes a request time out instead of hanging', async (t) => {
  const server = await scriptedServer(() => undefined);
  t.teardown(() => server.close());
  const client = await RtspClient.connect({ port: server.port });
  t.teardown(() => client.close());
  await t.throwsAsync(client.options('*', { timeoutMs: 100 }), { message: /timed out after 100 ms waiting for OPTIONS response \(CSeq 1\)/ });
});

test('a caller header replaces the client one, for forged CSeqs', async (t) => {
  const server = await scriptedServer((r) => serializeResponse({ status: 200, headers: { CSeq: r.cseq } }));
  t.teardown(() => server.close());
  const client = await RtspClient.connect({ port: server.port });
  t.teardown(() => client.close());
  // The reply carries CSeq 77, not the client's 1, so request() cannot match it.
  await t.throwsAsync(client.options('*', { headers: { CSeq: 77 }, timeoutMs: 200 }), { message: /timed out/ });
  t.is((await client.nextResponse()).cseq, 77);
});

test('connecting to a closed port fails quickly', async (t) => {
  const server = await scriptedServer(() => undefined);
  const port = server.port;
  await server.close();
  await t.throwsAsync(RtspClient.connect({ port, timeoutMs: 1_000 }));
});

leakCheck(test);
