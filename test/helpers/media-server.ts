// A whole twinframe server for a test: a temporary directory with copies of the
// sample asset as its media, its own cache and admin socket, RTSP on a port the
// OS picks; torn down with the test. And twinframectl --json against it.

import type { ExecutionContext } from 'ava';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig, type TwinframeConfig, type TwinframeConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type TwinframeServer } from '../../src/server.js';
import { SAMPLE_ASSET } from './engine-fixture.js';
import { TWINFRAMECTL, runToString } from './run.js';

export interface MediaServer {
  readonly server: TwinframeServer;
  readonly config: TwinframeConfig;
  /** twinframectl `args` --json against this server, its output parsed. */
  readonly ctl: <T>(...args: string[]) => Promise<T>;
}

/** `assets`: the file names the sample is copied to. `extra`: configuration besides media and the admin socket. */
export async function startMediaServer(t: ExecutionContext, assets: readonly string[], extra: TwinframeConfigInput = {}): Promise<MediaServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-media-server-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = path.join(dir, 'media');
  await mkdir(media);
  for (const name of assets) await copyFile(SAMPLE_ASSET, path.join(media, name));
  const config = parseConfig({
    ...extra,
    media: { mounts: [{ prefix: '', dir: media }], cacheDir: path.join(dir, 'cache') },
    admin: { ...extra.admin, socketPath: path.join(dir, 'admin.sock') },
  });
  const server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.close());
  const ctl = async <T>(...args: string[]): Promise<T> => {
    const stdout = await runToString([process.execPath, TWINFRAMECTL, '--socket', config.admin.socketPath, '--json', ...args], 20_000);
    return JSON.parse(stdout) as T;
  };
  return { server, config, ctl };
}

/**
 * A server for one test file over the files in `mediaDir`: cache and admin socket
 * in `tmp`, RTSP on a free loopback port, no log. `config` adds to that (its
 * `admin` fields too); `rtsp` overrides the RTSP server's own options.
 */
export function startFileServer(mediaDir: string, tmp: string, config: TwinframeConfigInput = {}, rtsp: RtspOverrides = {}): Promise<TwinframeServer> {
  const parsed = parseConfig({
    ...config,
    media: { mounts: [{ prefix: '', dir: mediaDir }], cacheDir: path.join(tmp, 'cache') },
    admin: { socketPath: path.join(tmp, 'admin.sock'), ...config.admin },
    log: { level: 'silent' },
  });
  return startServer({ config: parsed, configPath: undefined, logger: silentLogger, rtsp: { host: '127.0.0.1', port: 0, ...rtsp } });
}

type RtspOverrides = NonNullable<Parameters<typeof startServer>[0]['rtsp']>;
