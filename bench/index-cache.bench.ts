// What a DESCRIBE of a big asset costs the main thread, by how its index is found:
//   cold — the index file changed since it was last proved (a copy renamed over it):
//          proved again on the indexing thread, the reply unpacked on the main thread
//   warm — the index head from memory (two fstats)
// Prints the median, min and max DESCRIBE round trip and the main thread's worst
// event-loop stall during each (perf_hooks, 1 ms resolution). The asset should have
// many random-access points; README "The index cache" says how the one measured there
// was made.
//
//   node dist/bench/index-cache.bench.js --asset big.ts [--describes 21]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { indexPathFor } from '../src/catalog/index-pool.js';
import { parseConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { RtspClient } from '../test/helpers/rtsp-client.js';
import { Flags } from './flags.js';

const USAGE = 'usage: node dist/bench/index-cache.bench.js --asset <file.ts> [--describes 21]';
const flags = Flags.parse(process.argv.slice(2), { asset: 'string', describes: 'string' }, USAGE);
const asset = flags.string('asset');
if (asset === undefined) throw new Error(USAGE);
const count = Math.floor(flags.number('describes') ?? 21);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinframe-index-cache-'));
const media = path.join(dir, 'media');
fs.mkdirSync(media);
fs.copyFileSync(path.resolve(asset), path.join(media, 'big.ts'));
const cacheDir = path.join(dir, 'cache');
const config = parseConfig({ media: { mounts: [{ prefix: '', dir: media }], cacheDir }, admin: { socketPath: path.join(dir, 'admin.sock') }, log: { level: 'silent' } });
const server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 } });
const client = await RtspClient.connect({ port: server.rtsp.port, timeoutMs: 120_000 });
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1];
const ms = (v: number): string => v.toFixed(2);

try {
  const started = performance.now();
  if ((await client.describe('/big.ts')).status !== 200) throw new Error('the asset was refused');
  console.log(`first DESCRIBE (indexing): ${ms(performance.now() - started)} ms`);
  const indexPath = indexPathFor(path.join(media, 'big.ts'), cacheDir);
  for (const kind of ['cold', 'warm'] as const) {
    const rtt: number[] = [];
    const stall: number[] = [];
    for (let i = 0; i < count; i++) {
      if (kind === 'cold') {
        fs.copyFileSync(indexPath, `${indexPath}.copy`);
        fs.renameSync(`${indexPath}.copy`, indexPath);
      }
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const t0 = performance.now();
      const reply = await client.describe('/big.ts');
      rtt.push(performance.now() - t0);
      delay.disable();
      stall.push(delay.max / 1e6);
      if (reply.status !== 200) throw new Error(`DESCRIBE answered ${reply.status}`);
    }
    console.log(`${kind}: DESCRIBE median ${ms(median(rtt))} ms (min ${ms(Math.min(...rtt))}, max ${ms(Math.max(...rtt))}); main-thread stall median ${ms(median(stall))} ms, max ${ms(Math.max(...stall))} ms; n=${count}`);
  }
} finally {
  await client.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
