// How fast does the admin socket answer while sessions stream? Measures, against
// the same server idle and then with N sessions streaming (side by side, one run):
//   request   — one `status` round trip on an open admin connection, from another process
//   cli       — a whole `twinframectl status` invocation (Node start-up included)
// Prints a table and writes bench/results/admin-status-<time>.json.
//
//   node dist/bench/admin-status.bench.js [--sessions 20] [--requests 200] [--cli 20]

import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { loadSample } from '../test/helpers/engine-fixture.js';
import { Flags } from './flags.js';
import { summarize } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ctl = path.resolve(here, '../src/cli/twinframectl.js');
const run = promisify(execFile);

const USAGE = 'usage: node dist/bench/admin-status.bench.js [--sessions 20] [--requests 200] [--cli 20]';
const flags = Flags.parse(process.argv.slice(2), { sessions: 'string', requests: 'string', cli: 'string' }, USAGE);
const sessionCount = Math.floor(flags.number('sessions') ?? 20);
const requestCount = Math.floor(flags.number('requests') ?? 200);
const cliCount = Math.floor(flags.number('cli') ?? 20);

// The request loop runs in a child process so that the client's own event loop is
// not the server's main thread.
const clientSource = `
import(${JSON.stringify(new URL('../src/admin/client.js', import.meta.url).href)}).then(async ({ AdminClient }) => {
  const client = await AdminClient.connect(process.argv[1]);
  const n = Number(process.argv[2]);
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await client.request('status');
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  client.close();
  process.stdout.write(JSON.stringify(times));
});`;

function rounded(times: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = summarize(times);
  return { n: s.n, p50: round(s.p50), p99: round(s.p99), max: round(s.max) };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

async function measure(socket: string): Promise<{ request: number[]; cli: number[]; bareNode: number[] }> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', clientSource, socket, String(requestCount)], { timeout: 120_000 });
  const request = JSON.parse(stdout) as number[];
  const cli: number[] = [];
  const bareNode: number[] = [];
  for (let i = 0; i < cliCount; i++) {
    let t0 = process.hrtime.bigint();
    await run(process.execPath, [ctl, '--socket', socket, 'status'], { timeout: 30_000 });
    cli.push(Number(process.hrtime.bigint() - t0) / 1e6);
    // The floor: starting Node itself, which no CLI written for Node can beat.
    t0 = process.hrtime.bigint();
    await run(process.execPath, ['-e', '0'], { timeout: 30_000 });
    bareNode.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { request, cli, bareNode };
}

async function main(): Promise<void> {
  const sample = await loadSample();
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-bench-admin-'));
  const config = parseConfig({
    rtsp: { port: 40000 + Math.floor(Math.random() * 1000) },
    media: { mounts: [{ prefix: '', dir: path.dirname(sample.asset.assetPath) }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: path.join(dir, 'admin.sock') },
  });
  const server = await startServer({ config, configPath: undefined, logger: silentLogger });
  const sink = createSocket('udp4');
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
  let received = 0;
  sink.on('message', () => { received++; });
  try {
    const idle = await measure(config.admin.socketPath);
    const ids: string[] = [];
    for (let i = 0; i < sessionCount; i++) {
      const s = await server.engine.openSession({ asset: sample.asset, destination: { address: '127.0.0.1', port: sink.address().port }, transport: 'rtp' });
      await server.engine.play(s.id);
      ids.push(s.id);
    }
    const before = received;
    const busy = await measure(config.admin.socketPath);
    const streamed = received - before;
    for (const id of ids) server.engine.closeSession(id);

    const rows = [
      { case: 'idle', what: 'status request', ...rounded(idle.request) },
      { case: `${sessionCount} sessions`, what: 'status request', ...rounded(busy.request) },
      { case: 'idle', what: 'twinframectl status', ...rounded(idle.cli) },
      { case: `${sessionCount} sessions`, what: 'twinframectl status', ...rounded(busy.cli) },
      { case: 'idle', what: 'node -e 0 (baseline)', ...rounded(idle.bareNode) },
      { case: `${sessionCount} sessions`, what: 'node -e 0 (baseline)', ...rounded(busy.bareNode) },
    ];
    console.log(`admin status latency, ms (datagrams streamed during the busy measurement: ${streamed}; target: twinframectl status < 50 ms)`);
    console.table(rows);
    const resultsDir = path.resolve(here, '../../bench/results');
    await mkdir(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `admin-status-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify({ sessions: sessionCount, requests: requestCount, cliRuns: cliCount, streamed, rows, raw: { idle, busy } }, null, 2));
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  } finally {
    sink.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
    await sample.cleanup();
  }
}

await main();
