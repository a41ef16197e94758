// One receiver process of the capacity bench (bench/capacity/run.ts starts a few,
// at normal priority, each with its share of the sessions). Every session: its
// own RTSP connection on 127.0.0.1, OPTIONS, DESCRIBE (the SETUP URL is the
// SDP's a=control against Content-Base, so the same code plays twinframe and the
// GStreamer peer), SETUP, PLAY from the start, GET_PARAMETER keep-alives,
// TEARDOWN at the end. --transport udp (default): SETUP
// RTP/AVP;unicast;client_port on its own RTP/RTCP port pair; --transport tcp:
// SETUP RTP/AVP/TCP;unicast;interleaved=0-1, RTP arriving as frames on channel 0
// of the RTSP connection (RTCP on 1 is ignored, as the UDP RTCP port's is).
//
//   node dist/bench/capacity/receiver.js --url rtsp://127.0.0.1:P/asset --sessions N
//        --capacity C --packet-ms MS [--transport udp|tcp] [--deadline-s S]
//
// With the parent, one JSON object per line: stdout {type:'ready'} once every
// session plays (or {type:'failed', error} when one could not, and it exits); stdin 'start' opens the measured window (from then on each
// RTP packet's arrival (a datagram, or a frame when the parser has it whole),
// RTP seq and PCR go to preallocated typed arrays, at most C per session),
// 'stop' closes it; the process analyses each session (analysis.ts, the same
// for both transports), tears the sessions down, writes {type:'result', …} and exits.

import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { openPortPair, RtspClient } from '../../test/helpers/rtsp-client.js';
import { Flags } from '../flags.js';
import { readSocketDrops } from '../lib.js';
import { analyseSession, readPcr, type SessionFigures, type SessionRecord } from './analysis.js';
import type { Transport } from './servers.js';

const USAGE = 'usage: node dist/bench/capacity/receiver.js --url URL --sessions N --capacity C --packet-ms MS [--transport udp|tcp] [--deadline-s S]';
/** The interleaved channels asked for with --transport tcp: RTP on the even one. */
const RTP_CHANNEL = 0;
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEPALIVE_MS = 15_000;

/** The window's RTP packets (see analysis.ts SessionRecord); overflow: those beyond the capacity. */
interface Recording { count: number; overflow: number; arrivalMs: Float64Array; seq: Uint16Array; pcrMs: Float64Array; pcrPacket: Uint8Array }

interface Session {
  readonly client: RtspClient;
  /** The RTP/RTCP port pair (UDP only). */
  readonly ports: { readonly rtp: dgram.Socket; readonly rtcp: dgram.Socket } | undefined;
  readonly record: Recording;
}

let recording = false;
const errors: string[] = [];
let errorCount = 0;

function noteError(what: string, err: unknown): void {
  errorCount++;
  if (errors.length < 20) errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/** The media's control URL from a DESCRIBE reply: a=control of the first m= section, against Content-Base (else the request URL). */
function controlUrl(sdp: string, base: string): string {
  const media = sdp.split(/\r?\n(?=m=)/)[1] ?? '';
  const control = /^a=control:(.+)$/m.exec(media)?.[1]?.trim();
  if (control === undefined || control === '*') return base;
  if (/^rtsps?:\/\//i.test(control)) return control;
  return base.endsWith('/') ? base + control : `${base}/${control}`;
}

/** One RTP packet's arrival, seq and PCR into the recording (while the window is open); no allocation. */
function recordPacket(record: Recording, packet: Buffer, pcr: Float64Array): void {
  if (!recording) return;
  const i = record.count;
  if (i >= record.arrivalMs.length) {
    record.overflow++;
    return;
  }
  record.arrivalMs[i] = performance.now();
  record.seq[i] = packet.readUInt16BE(2);
  if (readPcr(packet, pcr)) {
    record.pcrMs[i] = pcr[0];
    record.pcrPacket[i] = pcr[1];
  } else {
    record.pcrMs[i] = Number.NaN;
  }
  record.count = i + 1;
}

async function openPorts(): Promise<{ rtp: dgram.Socket; rtcp: dgram.Socket }> {
  const ports = await openPortPair('127.0.0.1');
  try {
    ports.rtp.setRecvBufferSize(RECV_BUFFER_BYTES);
  } catch {
    // capped by net.core.rmem_max: the size it gave is reported
  }
  return ports;
}

async function openSession(url: string, transport: Transport, capacity: number, pcr: Float64Array): Promise<Session> {
  const record: Recording = {
    count: 0, overflow: 0,
    arrivalMs: new Float64Array(capacity), seq: new Uint16Array(capacity), pcrMs: new Float64Array(capacity), pcrPacket: new Uint8Array(capacity),
  };
  const ports = transport === 'udp' ? await openPorts() : undefined;
  const port = Number(new URL(url).port);
  let client: RtspClient;
  try {
    client = await RtspClient.connect({
      port, timeoutMs: REQUEST_TIMEOUT_MS, userAgent: 'twinframe-capacity-bench',
      ...(transport === 'tcp' ? { onFrame: (channel: number, payload: Buffer) => { if (channel === RTP_CHANNEL) recordPacket(record, payload, pcr); } } : {}),
    });
  } catch (err) {
    ports?.rtp.close();
    ports?.rtcp.close();
    throw err;
  }
  const s: Session = { client, ports, record };
  ports?.rtp.on('message', (m: Buffer) => recordPacket(record, m, pcr));
  const check = (what: string, status: number): void => {
    if (status !== 200) throw new Error(`${what} answered ${status}`);
  };
  check('OPTIONS', (await client.options(url)).status);
  const d = await client.describe(url);
  check('DESCRIBE', d.status);
  const setupUrl = controlUrl(d.body.toString('utf8'), d.headers.get('content-base') ?? url);
  const spec = ports !== undefined
    ? `RTP/AVP;unicast;client_port=${ports.rtp.address().port}-${ports.rtcp.address().port}`
    : `RTP/AVP/TCP;unicast;interleaved=${RTP_CHANNEL}-${RTP_CHANNEL + 1}`;
  const setup = await client.setup(setupUrl, spec);
  check('SETUP', setup.status);
  if (ports === undefined && !/RTP\/AVP\/TCP/i.test(setup.headers.get('transport') ?? '')) throw new Error(`SETUP ${spec} answered Transport: ${setup.headers.get('transport') ?? '(none)'}`);
  check('PLAY', (await client.play(url, 'npt=0.000-')).status);
  return s;
}

async function main(): Promise<void> {
  const flags = Flags.parse(process.argv.slice(2), { url: 'string', sessions: 'string', capacity: 'string', 'packet-ms': 'string', transport: 'string', 'deadline-s': 'string' }, USAGE);
  const url = flags.string('url');
  const count = Math.floor(flags.number('sessions', { positive: true }) ?? 0);
  const capacity = Math.floor(flags.number('capacity', { positive: true }) ?? 0);
  const packetMs = flags.number('packet-ms', { positive: true });
  const deadlineS = flags.number('deadline-s', { positive: true }) ?? 600;
  const transport = (flags.string('transport') ?? 'udp') as Transport;
  if (url === undefined || count === 0 || capacity === 0 || packetMs === undefined || (transport !== 'udp' && transport !== 'tcp')) throw new Error(USAGE);
  const pcr = new Float64Array(2);
  const sessions: Session[] = [];
  let stopping = false;
  const keepalive = setInterval(() => {
    for (const s of sessions) s.client.getParameter(url).catch((err: unknown) => noteError('GET_PARAMETER', err));
  }, KEEPALIVE_MS);

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    recording = false;
    const windowEndMs = performance.now();
    clearInterval(keepalive);
    setTimeout(() => process.exit(3), 60_000).unref(); // whatever hangs, this process ends
    const figures: SessionFigures[] = sessions.map((s) => analyseSession(s.record as SessionRecord, packetMs, windowEndMs));
    const overflow = sessions.reduce((a, s) => a + s.record.overflow, 0);
    // TCP: the kernel drops nothing the receiver has not read; the count stays 0.
    const udp = sessions.flatMap((s) => (s.ports === undefined ? [] : [s.ports.rtp]));
    const socketDrops = udp.length > 0 ? readSocketDrops(udp.map((r) => r.address().port)) : { drops: 0, found: 0 };
    const recvBufferBytes = udp[0]?.getRecvBufferSize() ?? 0;
    await Promise.all(sessions.map((s) => s.client.teardown(url, { timeoutMs: 5000 }).catch((err: unknown) => noteError('TEARDOWN', err))));
    await Promise.all(sessions.map((s) => s.client.close()));
    for (const s of sessions) {
      s.ports?.rtp.close();
      s.ports?.rtcp.close();
    }
    process.stdout.write(`${JSON.stringify({ type: 'result', sessions: figures, overflow, socketDrops, recvBufferBytes, errors, errorCount })}\n`);
    process.exit(0);
  };

  setTimeout(() => void stop(), deadlineS * 1000).unref();
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    if (!recording && !stopping && input.includes('start\n')) recording = true;
    if (input.includes('stop\n')) void stop();
  });
  process.stdin.on('end', () => void stop());
  process.once('SIGINT', () => void stop());

  for (let i = 0; i < count && !stopping; i++) sessions.push(await openSession(url, transport, capacity, pcr));
  process.stdout.write(`${JSON.stringify({ type: 'ready', sessions: sessions.length })}\n`);
}

main().catch((err: Error) => {
  process.stdout.write(`${JSON.stringify({ type: 'failed', error: err.message })}\n`);
  process.exit(1);
});
