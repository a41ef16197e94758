// A whole twinframe server started from a configuration file in a temporary
// directory (as `twinframe` starts), so admin edits are written there and
// `reload` reads it; twinframectl --json against its admin socket. Torn down
// with the test.

import type { ExecutionContext } from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/store.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type TwinframeServer } from '../../src/server.js';
import { SAMPLE_ASSET } from './engine-fixture.js';
import { TWINFRAMECTL, runCapture, type RunResult } from './run.js';

export interface ConfigFileServer {
  readonly server: TwinframeServer;
  /** The configuration file. */
  readonly file: string;
  readonly socket: string;
  /** twinframectl --json `args`, its exit code and output. */
  readonly ctl: (...args: string[]) => Promise<RunResult>;
}

/** A server over the sample's directory, its configuration in a file of a new temporary directory (`prefix`). */
export async function startConfigFileServer(t: ExecutionContext, prefix: string): Promise<ConfigFileServer> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  const socket = path.join(dir, 'admin.sock');
  await writeFile(file, JSON.stringify({
    media: { mounts: [{ prefix: '', dir: path.dirname(SAMPLE_ASSET) }], cacheDir: path.join(dir, 'cache') },
    admin: { socketPath: socket }, metrics: { listen: '' }, log: { level: 'silent' },
  }));
  const server = await startServer({ config: await loadConfig(file), configPath: file, loadConfig: () => loadConfig(file), logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.close());
  const ctl = (...args: string[]): Promise<RunResult> => runCapture([process.execPath, TWINFRAMECTL, '--socket', socket, '--json', ...args], { limitMs: 20_000 });
  return { server, file, socket, ctl };
}
