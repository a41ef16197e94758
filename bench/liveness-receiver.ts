// The client side of bench/liveness.bench.ts, which starts it: a separate
// process at normal priority that plays N RTSP sessions of one asset in a loop,
// as players would, and counts what arrives (bench/liveness-count.ts). Not a
// benchmark by itself (the runner starts only *.bench.js).
//
//   node dist/bench/liveness-receiver.js --port P --sessions N [--asset /sample.ts] [--seed S] [--deadline-s S]
//
// Each session has its own RTSP connection and port pair on 127.0.0.1: SETUP
// (RTP/AVP unicast), PLAY from a random place (so that the sessions do not all
// end together), then PLAY from npt=0 each time the server's RTCP BYE says the
// asset ended, or when nothing arrived for STALL_MS (a stall, counted), and a
// GET_PARAMETER keep-alive every third of the session timeout.
//
// At the end each session is torn down; the server's BYE then carries a sender
// report whose packet count tells the counting where the stream ended.
//
// The receiver runs at normal priority against the load: when it was not
// scheduled for a while, datagrams wait unread in the kernel. A session with
// unread datagrams (rx_queue in /proc/net/udp) is therefore never taken for a
// stalled one, and the counting places datagrams by sequence number, not by when
// they were read.
//
// With the parent, one JSON object per line: stdout {type:'ready'} once every
// session plays, then {type:'result', …} after a 'stop' line on stdin (or at
// stdin's end, or at the deadline), and the process exits.

import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parseRtpInfo } from '../src/rtsp/headers/rtp-info.js';
import { parseSession } from '../src/rtsp/headers/session.js';
import { openPortPair, RtspClient } from '../test/helpers/rtsp-client.js';
import { Flags } from './flags.js';
import { mulberry32, readLoopbackUdpSockets, readSocketDrops, sleep } from './lib.js';
import { SessionCount } from './liveness-count.js';

const USAGE = 'usage: node dist/bench/liveness-receiver.js --port P --sessions N [--asset /sample.ts] [--seed S] [--deadline-s S]';
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/** A playing session that received nothing for this long is played again. */
const STALL_MS = 2000;
const REQUEST_TIMEOUT_MS = 10_000;
const RTCP_SR = 200;
const RTCP_BYE = 203;

interface Options {
  port: number;
  sessions: number;
  asset: string;
  seed: number;
  deadlineS: number;
}

function parseOptions(argv: string[]): Options {
  const flags = Flags.parse(argv, { port: 'string', sessions: 'string', asset: 'string', seed: 'string', 'deadline-s': 'string' }, USAGE);
  const o: Options = {
    port: flags.number('port', { positive: true }) ?? 0,
    sessions: Math.floor(flags.number('sessions', { positive: true }) ?? 0),
    asset: flags.string('asset') ?? '/sample.ts',
    seed: Math.floor(flags.number('seed') ?? 1),
    deadlineS: flags.number('deadline-s', { positive: true }) ?? 600,
  };
  if (o.port === 0 || o.sessions === 0) throw new Error(USAGE);
  return o;
}

interface Session {
  readonly client: RtspClient;
  readonly rtp: dgram.Socket;
  readonly rtcp: dgram.Socket;
  readonly count: SessionCount;
  /** performance.now() of the last datagram or PLAY, for the stall watchdog. */
  lastActivityMs: number;
  replaying: boolean;
  stalls: number;
  /** Requests of this session that failed (a PLAY, keep-alive or TEARDOWN refused or unanswered). */
  errors: number;
  /** The packet count of the BYE's sender report after the TEARDOWN: all the session's datagrams. */
  finalSent: number | undefined;
}

/** Whether an RTCP compound packet says BYE, and its sender report's packet count. */
function readRtcp(buf: Buffer): { bye: boolean; packetCount: number | undefined } {
  let bye = false;
  let packetCount: number | undefined;
  for (let off = 0; off + 4 <= buf.length; off += (buf.readUInt16BE(off + 2) + 1) * 4) {
    if (buf[off + 1] === RTCP_BYE) bye = true;
    if (buf[off + 1] === RTCP_SR && off + 24 <= buf.length) packetCount = buf.readUInt32BE(off + 20);
  }
  return { bye, packetCount };
}

const errors: string[] = [];
let errorCount = 0;

function noteError(what: string, err: unknown, s: Session): void {
  errorCount++;
  s.errors++;
  if (errors.length < 20) errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/** PLAY from `range`; returns the reply's Range header (it gives the asset's duration). */
async function play(s: Session, asset: string, range: string): Promise<string | undefined> {
  s.count.beginPlay();
  s.lastActivityMs = performance.now();
  try {
    const r = await s.client.play(asset, range, { timeoutMs: REQUEST_TIMEOUT_MS });
    if (r.status !== 200) throw new Error(`PLAY answered ${r.status}`);
    const seq = parseRtpInfo(r.headers.get('rtp-info') ?? '')[0]?.seq;
    if (seq === undefined) throw new Error('PLAY reply without an RTP-Info seq');
    s.count.played(seq);
    return r.headers.get('range');
  } catch (err) {
    s.count.playFailed();
    throw err;
  }
}

async function openSession(port: number): Promise<Session> {
  const { rtp, rtcp } = await openPortPair('127.0.0.1');
  try {
    rtp.setRecvBufferSize(RECV_BUFFER_BYTES);
  } catch {
    // capped by the kernel (net.core.rmem_max): the size it gave is reported
  }
  const client = await RtspClient.connect({ port, timeoutMs: REQUEST_TIMEOUT_MS, userAgent: 'twinframe-liveness-bench' }).catch((err: unknown) => {
    rtp.close();
    rtcp.close();
    throw err;
  });
  const s: Session = { client, rtp, rtcp, count: new SessionCount(), lastActivityMs: performance.now(), replaying: false, stalls: 0, errors: 0, finalSent: undefined };
  rtp.on('message', (m: Buffer) => {
    const now = performance.now();
    s.lastActivityMs = now;
    s.count.onDatagram(m, now);
  });
  return s;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const rand = mulberry32(o.seed);
  const sessions: Session[] = [];
  const timers: NodeJS.Timeout[] = [];
  let stopping = false;

  const replay = async (s: Session, why: 'BYE' | 'stall'): Promise<void> => {
    if (stopping || s.replaying) return;
    s.replaying = true;
    try {
      if (why === 'stall') s.stalls++;
      await play(s, o.asset, 'npt=0-');
    } catch (err) {
      noteError(`re-PLAY after ${why}`, err, s);
    } finally {
      s.replaying = false;
    }
  };

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(3), 30_000).unref(); // whatever hangs, this process ends
    for (const t of timers) clearInterval(t);
    await Promise.all(sessions.map((s) => s.client.teardown(o.asset, { timeoutMs: 5000 }).catch((err: unknown) => noteError('TEARDOWN', err, s))));
    const byesBy = performance.now() + 1000; // the BYEs left before the replies; give them time to be read
    while (sessions.some((s) => s.finalSent === undefined) && performance.now() < byesBy) await sleep(20);
    for (const s of sessions) s.count.finish(s.finalSent);
    const socketDrops = readSocketDrops(sessions.map((s) => s.rtp.address().port));
    const recvBufferBytes = sessions[0]?.rtp.getRecvBufferSize() ?? 0;
    const perSession = sessions.map((s) => ({ ...s.count.totals, stalls: s.stalls, errors: s.errors, gapP99Ms: s.count.gapQuantileMs(0.99), gapMaxMs: s.count.gapMaxMs }));
    await Promise.all(sessions.map((s) => s.client.close()));
    for (const s of sessions) {
      s.rtp.close();
      s.rtcp.close();
    }
    process.stdout.write(`${JSON.stringify({ type: 'result', sessions: sessions.length, perSession, recvBufferBytes, socketDrops, errors, errorCount })}\n`);
    process.exit(0);
  };

  setTimeout(() => void stop(), o.deadlineS * 1000);
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    if (input.includes('stop\n')) void stop();
  });
  process.stdin.on('end', () => void stop());
  // Ctrl-C reaches the whole process group: report what was counted; the bench collects it.
  process.once('SIGINT', () => void stop());

  let durationS = 0;
  for (let i = 0; i < o.sessions && !stopping; i++) {
    const s = await openSession(o.port);
    sessions.push(s);
    s.rtcp.on('message', (m: Buffer) => {
      const rtcp = readRtcp(m);
      if (!rtcp.bye) return;
      if (stopping) s.finalSent = rtcp.packetCount;
      else void replay(s, 'BYE');
    });
    const r = await s.client.setup(`${o.asset}/track1`, `RTP/AVP;unicast;client_port=${s.rtp.address().port}-${s.rtcp.address().port}`);
    if (r.status !== 200) throw new Error(`SETUP answered ${r.status}`);
    const timeoutS = parseSession(r.headers.get('session') ?? '').timeout ?? 60;
    timers.push(setInterval(() => {
      s.client.getParameter(o.asset).catch((err: unknown) => noteError('GET_PARAMETER', err, s));
    }, (timeoutS * 1000) / 3));
    // The first session starts at 0 and tells the duration; the others start at a random place.
    const startS = durationS > 1 ? rand() * (durationS - 1) : 0;
    const range = await play(s, o.asset, `npt=${startS.toFixed(3)}-`);
    const end = /npt\s*=\s*[\d.]+\s*-\s*([\d.]+)/.exec(range ?? '')?.[1];
    if (durationS === 0 && end !== undefined) durationS = Number(end);
  }
  timers.push(setInterval(() => {
    const now = performance.now();
    const silent = sessions.filter((s) => !s.replaying && now - s.lastActivityMs > STALL_MS);
    if (silent.length === 0) return;
    const sockets = readLoopbackUdpSockets();
    for (const s of silent) if ((sockets.get(s.rtp.address().port)?.rxQueue ?? 0) === 0) void replay(s, 'stall');
  }, 500));
  process.stdout.write(`${JSON.stringify({ type: 'ready', sessions: sessions.length, durationS })}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`liveness-receiver: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
