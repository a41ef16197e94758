// A log that cannot be written never stops the server. The real twinframe, with
// stdout and stderr on /dev/full, starts, answers RTSP (also requests it logs as
// warnings and errors) and twinframectl, and stops promptly on SIGTERM. The logger
// itself, on real file descriptors: lines written to a full disk are counted and
// dropped and reported once writing works again; a stalled pipe holds a bounded
// backlog; a busy non-blocking pipe is waited for briefly, then given up.

import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, type Logger } from '../src/log.js';
import { RtspClient } from './helpers/rtsp-client.js';
import { sleep } from './helpers/engine-fixture.js';
import { leakCheck } from './helpers/leak-check.js';
import { freeTcpPort } from './helpers/free-port.js';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const twinframe = path.join(root, 'src/cli/twinframe.js');
const twinframectl = path.join(root, 'src/cli/twinframectl.js');
const run = promisify(execFile);

/** The bound the CLI promises for SIGTERM → exit (its own deadline is 3 s). */
const STOP_BOUND_MS = 5_000;

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly component?: string;
  readonly dropped?: number;
  readonly firstError?: string;
}

function parseLines(text: string): LogLine[] {
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine);
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tf-logging-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}


// ── The real server ──────────────────────────────────────────────────────────

async function waitUntilServing(port: number, exited: () => boolean): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    if (exited()) throw new Error('twinframe exited during start-up');
    try {
      const client = await RtspClient.connect({ port, timeoutMs: 2_000 });
      try {
        if ((await client.options()).status === 200) return;
      } finally {
        await client.close();
      }
    } catch (err) {
      if (Date.now() > until) throw new Error(`twinframe did not answer RTSP within 30 s: ${(err as Error).message}`);
    }
    await sleep(200);
  }
}

async function rtspRound(t: ExecutionContext, port: number): Promise<void> {
  const client = await RtspClient.connect({ port });
  try {
    t.is((await client.options()).status, 200);
    // A Require the server cannot meet: 551, logged at error level.
    t.is((await client.options('*', { headers: { Require: 'com.example.none' } })).status, 551);
  } finally {
    await client.close();
  }
  // Lost framing: 400, logged as a warning, and the connection closed.
  const garbage = await RtspClient.connect({ port });
  try {
    garbage.sendRaw('NOT RTSP AT ALL\r\n\r\n');
    t.is((await garbage.nextResponse()).status, 400);
    await garbage.waitForClose();
  } finally {
    await garbage.close();
  }
}

const fullDisk = test.macro(async (t, level: string) => {
  await withTempDir(async (dir) => {
    const socket = path.join(dir, 'admin.sock');
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ media: { cacheDir: path.join(dir, 'cache') }, admin: { socketPath: socket } }));
    const port = await freeTcpPort();
    const full = fs.openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, twinframe, '--config', config, '--port', String(port), '--log-level', level], { stdio: ['ignore', full, full] });
    fs.closeSync(full);
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = once(child, 'exit').then(([code, signal]) => { exit = { code: code as number | null, signal: signal as NodeJS.Signals | null }; });
    try {
      await waitUntilServing(port, () => exit !== undefined);
      t.true(fs.existsSync(socket), 'the admin socket is there');
      for (let i = 0; i < 3; i++) await rtspRound(t, port);
      const { stdout } = await run(process.execPath, [twinframectl, '--socket', socket, '--json', 'status'], { timeout: 10_000 });
      t.truthy((JSON.parse(stdout) as { paths: { a: unknown } }).paths.a, 'twinframectl status answers');
      await rtspRound(t, port);

      const stopping = Date.now();
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(STOP_BOUND_MS)]);
      const ms = Date.now() - stopping;
      t.deepEqual(exit, { code: 0, signal: null }, `twinframe stops cleanly on SIGTERM (after ${ms} ms)`);
      t.true(ms < STOP_BOUND_MS, `stopped in ${ms} ms`);
    } finally {
      if (exit === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});

test.serial('with stdout and stderr on a full disk at log level info, twinframe starts, answers RTSP and twinframectl, and stops on SIGTERM', fullDisk, 'info');
test.serial('with stdout and stderr on a full disk at log level error, twinframe answers requests it logs as errors and stops on SIGTERM', fullDisk, 'error');

// ── The logger ───────────────────────────────────────────────────────────────

test.serial('lines that hit a full disk are dropped and counted, and reported once when writing works again', async (t) => {
  await withTempDir(async (dir) => {
    const full = fs.openSync('/dev/full', 'w');
    const file = fs.openSync(path.join(dir, 'log'), 'w');
    let fd = full;
    try {
      // Level error: the report (a warning) must get through all the same.
      const logger = createLogger({ level: 'error', destination: (chunk, done) => fs.write(fd, chunk, done) });
      for (let i = 0; i < 3; i++) logger.error({ i }, 'lost');
      await flush(logger);
      fd = file;
      logger.error('back');
      await flush(logger);
      logger.error('later');
      await flush(logger);
      const lines = parseLines(await readFile(path.join(dir, 'log'), 'utf8'));
      t.deepEqual(lines.map((l) => l.msg), ['back', '3 log line(s) could not be written and were dropped (first error ENOSPC)', 'later']);
      t.like(lines[1], { level: 40, component: 'log', dropped: 3, firstError: 'ENOSPC' });
    } finally {
      fs.closeSync(full);
      fs.closeSync(file);
    }
  });
});

/** A FIFO opened for writing (`flags`) and for reading without blocking. */
function fifo(dir: string, writeFlags: number): { readonly writer: number; readonly reader: number; close(): void } {
  const p = path.join(dir, 'fifo');
  execFileSync('mkfifo', [p]);
  // Read-write, so opening does not wait for a reader; the test reads through its own fd.
  const writer = fs.openSync(p, fs.constants.O_RDWR | writeFlags);
  const reader = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return { writer, reader, close: () => { fs.closeSync(writer); fs.closeSync(reader); } };
}

/** Reads the FIFO until `done` settles, then what is left. */
async function drain(reader: number, done: Promise<void>): Promise<string> {
  let finished = false;
  void done.then(() => { finished = true; });
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  const readAvailable = (): void => {
    for (;;) {
      try {
        const n = fs.readSync(reader, buf);
        if (n === 0) return;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
        throw err;
      }
    }
  };
  while (!finished) {
    readAvailable();
    await sleep(5);
  }
  readAvailable();
  return Buffer.concat(chunks).toString();
}

const LINES = 20_000;
const PADDING = 'p'.repeat(100);

test.serial('a stalled log pipe never blocks the event loop; the backlog is bounded and what it dropped is reported', async (t) => {
  await withTempDir(async (dir) => {
    const pipe = fifo(dir, 0); // blocking: a write waits for the reader, on a thread-pool thread
    try {
      const logger = createLogger({ level: 'info', destination: (chunk, done) => fs.write(pipe.writer, chunk, done) });
      for (let i = 0; i < LINES; i++) logger.info({ i, pad: PADDING }, 'line');
      const timerStart = performance.now();
      await sleep(50);
      t.true(performance.now() - timerStart < 1_000, 'timers run while the log is stalled');
      const lines = parseLines(await drain(pipe.reader, flush(logger)));
      const written = lines.filter((l) => l.msg === 'line').length;
      const reports = lines.filter((l) => l.component === 'log');
      t.is(reports.length, 1);
      t.like(reports[0], { firstError: 'backlog full' });
      t.true(written < LINES, `${written} of ${LINES} lines written`);
      t.is(written + reports[0].dropped!, LINES, `every line is either written or counted: ${written} + ${JSON.stringify(reports)}`);
    } finally {
      pipe.close();
    }
  });
});

test.serial('a busy non-blocking log pipe is waited for briefly, then its lines are dropped', async (t) => {
  await withTempDir(async (dir) => {
    const pipe = fifo(dir, fs.constants.O_NONBLOCK); // EAGAIN while the pipe is full
    try {
      const logger = createLogger({ level: 'info', destination: (chunk, done) => fs.write(pipe.writer, chunk, done) });
      // More than the pipe holds, read 200 ms later: nothing lost.
      for (let i = 0; i < 2_000; i++) logger.info({ i, pad: PADDING }, 'line');
      await sleep(200);
      const first = parseLines(await drain(pipe.reader, flush(logger)));
      t.is(first.filter((l) => l.msg === 'line').length, 2_000);
      t.is(first.filter((l) => l.component === 'log').length, 0);

      // Nobody reads: tried again for about a second, then dropped.
      for (let i = 0; i < 2_000; i++) logger.info({ i, pad: PADDING }, 'line');
      const started = performance.now();
      await flush(logger);
      const waitedMs = performance.now() - started;
      t.true(waitedMs > 500 && waitedMs < 2_000, `given up after ${Math.round(waitedMs)} ms`);
      logger.info('back');
      // What the full pipe held ends with a torn line; every line after it is whole.
      const rest = (await drain(pipe.reader, flush(logger))).split('\n').filter(Boolean);
      const whole = rest.flatMap((l) => { try { return [JSON.parse(l) as LogLine]; } catch { return []; } });
      t.is(rest.length - whole.length, 1, 'one torn line');
      const report = whole.find((l) => l.component === 'log');
      t.like(report, { firstError: 'EAGAIN' });
      t.is(whole.filter((l) => l.msg === 'line').length + report!.dropped!, 2_000, 'every line is either written or counted');
      t.deepEqual(whole.slice(-2).map((l) => l.msg), ['back', report!.msg]);
    } finally {
      pipe.close();
    }
  });
});

leakCheck(test);
