// Two real `twinframe` processes as a process pair (issue 17): a primary and
// its standby on one private link, each with its own admin socket and cache,
// sharing the RTSP port and the server port range as the two halves of one
// service do. Every child is SIGKILLed at teardown, whatever the test did.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import type { StatusResult } from '../../src/admin/backend.js';
import { pairRuntimeDir } from '../../src/pair-process/native-pair.js';
import { freeTcpPort } from './free-port.js';
import { freeUdpPortRange } from './port-range.js';
import { runCapture, runToString, TWINFRAMECTL } from './run.js';
import { SERVER_NODE_FLAGS } from '../../src/shared/node-flags.js';
import { RtspClient, UdpReceiver } from './rtsp-client.js';

const TWINFRAME = fileURLToPath(new URL('../../src/cli/twinframe.js', import.meta.url));
export const PAIR_SECRET = 'a shared secret of the pair, long enough';

export interface PairMember {
  readonly role: 'primary' | 'standby';
  readonly child: ChildProcess;
  readonly adminSocket: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with its exit code (null: killed by a signal). */
  readonly exited: Promise<number | null>;
  status(): Promise<StatusResult>;
}

export interface PairSetup {
  readonly dir: string;
  readonly rtspPort: number;
  readonly link: string;
  start(role: 'primary' | 'standby', name: string, secret?: string): Promise<PairMember>;
}

/**
 * A directory, ports and a link path for a pair; every process started from it dies at teardown.
 * `mediaDir`: where its assets are (else the bundled ones); `rtsp`: more of each member's rtsp
 * configuration; `logLevel`: info unless given.
 */
export async function pairSetup(t: ExecutionContext, options: { mediaDir?: string; rtsp?: Record<string, unknown>; logLevel?: string; broadcasts?: readonly unknown[] } = {}): Promise<PairSetup> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-pair-'));
  const rtspPort = await freeTcpPort();
  const serverPortRange = await freeUdpPortRange(64);
  const link = path.join(dir, 'link.sock');
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())));
    await rm(dir, { recursive: true, force: true });
    // A process killed with SIGKILL leaves its control blocks' regions (named by its pid) in shared memory.
    const shm = pairRuntimeDir();
    const pids = children.map((c) => `-${c.pid}-`);
    for (const file of await readdir(shm)) if (pids.some((p) => file.includes(p))) await rm(path.join(shm, file), { force: true });
  });
  return {
    dir, rtspPort, link,
    async start(role, name, secret = PAIR_SECRET) {
      const configPath = path.join(dir, `${name}.json`);
      const adminSocket = path.join(dir, `${name}.sock`);
      await writeFile(configPath, JSON.stringify({
        rtsp: { ...options.rtsp, port: rtspPort, serverPortRange },
        media: { cacheDir: path.join(dir, `${name}-cache`), ...(options.mediaDir === undefined ? {} : { mounts: [{ prefix: '', dir: options.mediaDir }] }) },
        admin: { socketPath: adminSocket },
        metrics: { listen: '' },
        log: { level: options.logLevel ?? 'info', format: 'json' },
        pair: { role, link, secret },
        // The table in the primary's configuration only: a standby runs the one its primary sends it.
        ...(options.broadcasts === undefined || role !== 'primary' ? {} : { broadcasts: options.broadcasts }),
      }));
      const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, TWINFRAME, '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const ready = role === 'primary' ? /twinframe: serving/ : /twinframe: standby of/;
      const deadline = Date.now() + 20_000;
      while (!ready.test(out)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return {
        role, child, adminSocket, exited,
        output: () => out,
        status: async () => JSON.parse(await runToString([process.execPath, TWINFRAMECTL, '--socket', adminSocket, '--json', 'status'])) as StatusResult,
      };
    },
  };
}

/** Polls `member`'s status until `done` holds of it. */
export async function untilStatus(member: PairMember, done: (s: StatusResult) => boolean, what: string, timeoutMs = 15_000): Promise<StatusResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await member.status();
    if (done(status)) return status;
    if (Date.now() > deadline) throw new Error(`${member.role}: ${what} not reached in ${timeoutMs} ms: ${JSON.stringify(status.processPair)}\n${member.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PairViewer {
  readonly client: RtspClient;
  readonly receiver: UdpReceiver;
  /** RTP-Info seq of the PLAY: the first datagram's sequence number. */
  readonly firstSeq: number;
}

/** A viewer of `urlPath` over RTSP (UDP), playing; its receiver in this process. */
export async function startViewer(rtspPort: number, urlPath: string): Promise<PairViewer> {
  const client = await RtspClient.connect({ port: rtspPort });
  const receiver = await UdpReceiver.open();
  try {
    if ((await client.describe(urlPath)).status !== 200) throw new Error('DESCRIBE refused');
    if ((await client.setup(`${urlPath}/track1`, receiver.transportHeader())).status !== 200) throw new Error('SETUP refused');
    const play = await client.play(urlPath);
    const seq = /seq=(\d+)/.exec(play.headers.get('rtp-info') ?? '')?.[1];
    if (play.status !== 200 || seq === undefined) throw new Error(`PLAY: ${play.status}`);
    return { client, receiver, firstSeq: Number(seq) };
  } catch (err) {
    await client.release();
    await receiver.close();
    throw err;
  }
}

/** GStreamer (rtspsrc) playing `urlPath` into `out` over `protocol`: rtpmp2tdepay writes the RTP payloads as they come, the MPEG-TS bytes the viewer got, in order. */
export function startGstreamer(rtspPort: number, urlPath: string, protocol: 'udp' | 'tcp', out: string): ReturnType<typeof runCapture> {
  return runCapture(['gst-launch-1.0', 'rtspsrc', `location=rtsp://127.0.0.1:${rtspPort}${urlPath}`, `protocols=${protocol}`,
    '!', 'rtpmp2tdepay', '!', 'filesink', `location=${out}`], { limitMs: 60_000 });
}

/**
 * GStreamer ended well (its BYE-driven EOS) and its capture in `out` is `asset`,
 * byte for byte. At its end rtspsrc sends TEARDOWN, closes its connection, then
 * tries a PAUSE on it as the pipeline goes to NULL: that last write fails
 * ("Received end-of-file") and gst-launch exits 1. Only that error is allowed.
 */
export async function checkGstreamerCapture(t: ExecutionContext, run: Awaited<ReturnType<typeof runCapture>>, out: string, asset: Buffer, server: PairMember, across: string): Promise<void> {
  const { code, stdout, stderr } = run;
  const errors = (stderr.match(/^ERROR:/gm) ?? []).length;
  const afterTeardown = (stderr.match(/Could not send message\. \(Received end-of-file\)/g) ?? []).length;
  t.true(code === 0 || (errors > 0 && errors === afterTeardown), `exit ${code}: ${stdout.slice(-1500)}\n${stderr.slice(-1500)}\n${server.role}:\n${server.output().slice(-4000)}`);
  t.regex(stdout, /Got EOS/, 'the BYE at the end of the asset ended the pipeline');
  const captured = await readFile(out);
  t.is(captured.length, asset.length, 'every byte of the asset arrived');
  t.true(captured.equals(asset), `byte for byte, in order, ${across}`);
  // The request's log line follows its reply: GStreamer may have exited before it reached our pipe.
  const teardown = /"method":"TEARDOWN"[^\n]*"status":200/;
  for (const deadline = Date.now() + 5000; !teardown.test(server.output()) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
  t.regex(server.output(), teardown, `GStreamer's TEARDOWN answered by ${server.role}, on the connection it opened first`);
}
