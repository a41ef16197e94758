// Logs for people and for machines. The format follows the log's destination:
// the real twinframe on a terminal (a pseudo-terminal made by script(1)) writes
// readable, coloured lines, and JSON with --log-format json; on a pipe it writes
// JSON (test/logging.test.ts reads it), and readable lines without colour with
// --log-format pretty. A flood of bad requests from one client logs a bounded
// number of refusals plus a summary with the count of those not logged, while
// every reply is still counted in the metrics.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { pino } from 'pino';
import { parseConfig } from '../src/config/schema.js';
import { createLogger, resolveLogFormat } from '../src/log.js';
import { LogRateLimit } from '../src/log-rate-limit.js';
import { startServer } from '../src/server.js';
import { sleep } from './helpers/engine-fixture.js';
import { RtspClient } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';
import { freeTcpPort } from './helpers/free-port.js';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TWINFRAME = path.join(ROOT, 'dist/src/cli/twinframe.js');
const ANSI = /\x1b\[/;


/**
 * Run twinframe (on a pseudo-terminal when `tty`, else with stderr on a pipe) until
 * it logs that RTSP listens; returns what it logged (the terminal's output, or stderr).
 */
async function logsOfTwinframe(options: { tty: boolean; args: string[] }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tf-log-format-'));
  try {
    const args = ['--port', String(await freeTcpPort()), '--admin-socket', path.join(dir, 'admin.sock'), '--config', path.join(dir, 'config.json'), '--metrics-listen', '', ...options.args];
    const child = options.tty
      ? spawn('script', ['-qfec', `exec ${[process.execPath, ...SERVER_NODE_FLAGS, TWINFRAME, ...args].map((a) => `'${a}'`).join(' ')}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, [...SERVER_NODE_FLAGS, TWINFRAME, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let logged = '';
    const source = options.tty ? child.stdout : child.stderr;
    source.on('data', (chunk: Buffer) => {
      logged += chunk.toString();
      if (logged.includes('RTSP server listening')) child.kill('SIGTERM');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    return logged;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the format: json and pretty as asked; auto is pretty only on a terminal', (t) => {
  t.is(resolveLogFormat('json', 2), 'json');
  t.is(resolveLogFormat('pretty', 2), 'pretty');
  const file = path.join(tmpdir(), `tf-log-format-${process.pid}.log`);
  const fd = fs.openSync(file, 'w');
  try {
    t.is(resolveLogFormat('auto', fd), 'json', 'a file is not a terminal');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file);
  }
  t.is(resolveLogFormat('auto', file), 'json');
  t.is(resolveLogFormat('auto', (_chunk, done) => done(null, 0)), 'json');
});

test('pretty lines: time, level, [component] message, the other fields on the same line, no colour off a terminal', async (t) => {
  const chunks: string[] = [];
  const logger = createLogger({ format: 'pretty', destination: (chunk, done) => { chunks.push(chunk.toString()); done(null, chunk.length); } });
  logger.child({ component: 'rtsp' }).warn({ status: 400, peer: '10.0.0.1' }, 'request refused');
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  const text = chunks.join('');
  t.regex(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: \[rtsp\] request refused \{"status":400,"peer":"10\.0\.0\.1"\}\n$/);
  t.false(ANSI.test(text));
});

test.serial('the real twinframe: readable lines on a terminal, JSON there with --log-format json, readable on a pipe with --log-format pretty', async (t) => {
  t.timeout(60_000);
  const onTerminal = await logsOfTwinframe({ tty: true, args: [] });
  t.regex(onTerminal, /INFO.*\[rtsp\] RTSP server listening/);
  t.true(ANSI.test(onTerminal), 'coloured on a terminal');
  t.false(onTerminal.includes('"level":'), 'no JSON on a terminal');

  const jsonOnTerminal = await logsOfTwinframe({ tty: true, args: ['--log-format', 'json'] });
  const listening = jsonOnTerminal.split(/\r?\n/).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; component?: string });
  t.true(listening.some((l) => l.component === 'rtsp' && l.msg === 'RTSP server listening'), jsonOnTerminal.slice(0, 300));

  const prettyOnPipe = await logsOfTwinframe({ tty: false, args: ['--log-format', 'pretty'] });
  t.regex(prettyOnPipe, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[rtsp\] RTSP server listening \{"host":"127\.0\.0\.1","port":\d+\}$/m);
  t.false(ANSI.test(prettyOnPipe), 'no colour off a terminal');
});

test('the rate limit: N lines per window per source and kind, a summary of the rest once the window is over, a cap for all sources', async (t) => {
  let now = 0;
  const summaries: Array<[string, string, number]> = [];
  const limit = new LogRateLimit({ perKey: 3, total: 5, windowMs: 1000, now: () => now, onSuppressed: (source, kind, n) => summaries.push([source, kind, n]) });
  t.teardown(() => limit.close());
  const allowed = (source: string, kind: number, times: number): number => Array.from({ length: times }, () => limit.allow(source, kind)).filter(Boolean).length;
  t.is(allowed('10.0.0.1', 400, 10), 3, 'three of ten');
  t.is(allowed('10.0.0.1', 404, 1), 1, 'another kind from the same source is not hidden');
  t.is(allowed('10.0.0.2', 400, 3), 1, 'the cap for all sources (5) is reached');
  t.deepEqual(summaries, [], 'nothing summed up while the window lasts');
  now = 1000;
  t.is(allowed('10.0.0.1', 400, 1), 1, 'a new window');
  t.deepEqual(summaries, [['10.0.0.1', '400', 7], ['10.0.0.2', '400', 2]]);
  // A flood that stops is summed up by the sweeper, without another line.
  t.is(allowed('10.0.0.3', 500, 5), 3);
  now = 2500;
  for (let waited = 0; summaries.length < 3 && waited < 5000; waited += 50) await sleep(50);
  t.deepEqual(summaries.slice(2), [['10.0.0.3', '500', 2]]);
});

test.serial('a flood of bad requests from one client: at most 10 refusals a second in the log, a summary counts the rest, the metrics count all', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(path.join(tmpdir(), 'tf-log-flood-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lines: Array<{ msg: string; component?: string; status?: number; suppressed?: number }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as (typeof lines)[number]); } });
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: path.join(ROOT, 'assets') }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
    metrics: { listen: '127.0.0.1:0' },
  });
  const server = await startServer({ config, configPath: undefined, logger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.close());
  const client = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => client.close());
  const FLOOD = 300;
  const started = Date.now();
  for (let i = 0; i < FLOOD; i++) t.is((await client.request('FROBNICATE', '/sample.ts')).status, 501);
  const floodS = (Date.now() - started) / 1000;
  // The summary comes once the window of the last refusal is over.
  const deadline = Date.now() + 5000;
  const refusals = (): typeof lines => lines.filter((l) => l.component === 'rtsp' && l.msg === 'request refused' && l.status === 501);
  const suppressed = (): number => lines.filter((l) => l.component === 'rtsp' && l.status === 501 && l.suppressed !== undefined).reduce((n, l) => n + l.suppressed!, 0);
  while (refusals().length + suppressed() < FLOOD && Date.now() < deadline) await sleep(50);
  t.is(refusals().length + suppressed(), FLOOD, 'every refusal is logged or counted in a summary');
  t.true(refusals().length <= 10 * (Math.ceil(floodS) + 1), `${refusals().length} refusals logged in ${floodS} s`);
  const metrics = await (await fetch(`http://127.0.0.1:${server.metrics!.port}/metrics`)).text();
  t.regex(metrics, new RegExp(`^twinframe_rtsp_requests_total\\{method="other",status="501"\\} ${FLOOD}$`, 'm'));
});

leakCheck(test);
