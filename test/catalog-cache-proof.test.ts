// The index cache proves itself (issue 15 item 6) and remembers failures (item 5):
// a planted index, valid in format but wrong in content, is rejected, logged and
// rebuilt, and a session then plays the real asset; cache and configuration
// directories another user could write refuse to be used; an asset refused for a
// reason other than its bytes is not indexed again by every request, and a disk
// full while writing its index is retried after the back-off.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino, type Logger } from 'pino';
import { TwinframeError, isTwinframeError } from '../src/errors.js';
import { IndexPool, indexPathFor } from '../src/catalog/index-pool.js';
import { readIndexFile, readVerifiedIndexHead, writeIndexFile } from '../src/catalog/index-file.js';
import type { AssetIndex } from '../src/index-format/index-format.js';
import { parseConfig } from '../src/config/schema.js';
import { saveConfig } from '../src/config/store.js';
import { startServer } from '../src/server.js';
import { SAMPLE_ASSET, sleep, until } from './helpers/engine-fixture.js';
import { RtspClient, UdpReceiver } from './helpers/rtsp-client.js';
import { leakCheck } from './helpers/leak-check.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.promises.realpath(await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twinframe-cache-proof-')));
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger whose warnings the test reads. */
function capturingLogger(): { logger: Logger; warnings: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  return { logger, warnings: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function newPool(t: ExecutionContext, options: ConstructorParameters<typeof IndexPool>[0] = {}): IndexPool {
  const pool = new IndexPool({ idleTimeout: 1000, ...options });
  t.teardown(() => pool.close());
  return pool;
}

/** Rewrites a valid index file with `change` applied: still the index format, no longer the truth. */
function plant(indexPath: string, change: (index: AssetIndex) => void): void {
  const index = readIndexFile(indexPath);
  change(index);
  writeIndexFile(indexPath, index);
}

const PLANTS: Array<[string, (index: AssetIndex) => void]> = [
  ['a content check of other bytes', (i) => void (i.meta.contentCheck = 'ab'.repeat(32))],
  ['send times going backwards', (i) => void (i.times[1000] = 0)],
  [
    'a packet count past the end of the asset',
    (i) => {
      const times = new Uint32Array(i.meta.packetCount + 1000).fill(i.times[i.times.length - 1]);
      times.set(i.times);
      i.times = times;
      i.meta.packetCount = times.length;
    },
  ],
  ['a random-access point past the last packet', (i) => void i.meta.randomAccess.push({ packet: i.meta.packetCount + 5, ticks: 0, videoPackets: 1 })],
  ['random-access points out of order', (i) => void i.meta.randomAccess.reverse()],
];

test('a planted index, valid in format but not the asset\'s, is rejected, logged once and rebuilt', async (t) => {
  const dir = await tempDir(t);
  const asset = path.join(dir, 'sample.ts');
  fs.copyFileSync(SAMPLE_ASSET, asset);
  const cache = path.join(dir, 'cache');
  const { logger, warnings } = capturingLogger();
  const pool = newPool(t, { logger });
  const good = await pool.index(asset, cache);
  let builds = 1;
  for (const [label, change] of PLANTS) {
    plant(good.indexPath, change);
    const again = await pool.index(asset, cache);
    builds++;
    t.deepEqual(again.meta, good.meta, label);
    t.like(pool.stats, { builds, rejected: builds - 1 }, label);
    const warning = warnings().at(-1);
    t.is(warning?.indexPath, good.indexPath, label);
    t.regex(String(warning?.problem), /corrupt|content check/, label);
    // The rebuilt file proves itself, and is not rejected (nor logged) again.
    t.is(readVerifiedIndexHead(good.indexPath).meta.contentCheck, good.meta.contentCheck, label);
    await pool.index(asset, cache);
    t.like(pool.stats, { builds, rejected: builds - 1 }, label);
  }
  t.is(warnings().length, PLANTS.length, 'one warning per planted file');
});

test('an asset refused for its random-access list is not indexed again until it changes', async (t) => {
  const dir = await tempDir(t);
  const asset = path.join(dir, 'sample.ts');
  fs.copyFileSync(SAMPLE_ASSET, asset);
  const cache = path.join(dir, 'cache');
  const pool = newPool(t, { maxRandomAccessPoints: 3 });
  const first = await t.throwsAsync(pool.index(asset, cache), { instanceOf: TwinframeError });
  t.is(first?.code, 'TF_ASSET_UNREADABLE');
  t.regex(first?.message ?? '', /more than the 3 an index may list \(media\.maxRandomAccessPoints\)/);
  const second = await t.throwsAsync(pool.index(asset, cache), { instanceOf: TwinframeError });
  t.is(second?.message, first?.message);
  t.not(second, first, 'a fresh error each time');
  t.like(pool.stats, { builds: 1, failures: 1, rememberedFailures: 1 });
  const later = new Date(Date.now() + 60_000);
  await fs.promises.utimes(asset, later, later);
  await t.throwsAsync(pool.index(asset, cache), { instanceOf: TwinframeError });
  t.like(pool.stats, { builds: 2, failures: 2, rememberedFailures: 1 });
});

test('a full disk while writing the index is remembered for the back-off, then retried', async (t) => {
  if (!isRoot) {
    t.log('needs root (to mount a small tmpfs)');
    t.pass();
    return;
  }
  const dir = await tempDir(t);
  const asset = path.join(dir, 'sample.ts');
  fs.copyFileSync(SAMPLE_ASSET, asset);
  const cache = path.join(dir, 'cache');
  fs.mkdirSync(cache, { mode: 0o700 });
  // Too small for the sample's index (~100 KiB): a real ENOSPC from write(2).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32k,mode=0700', 'tmpfs', cache]);
  t.teardown(() => execFileSync('umount', [cache]));
  const retryMs = 400;
  const pool = newPool(t, { failureRetryMs: retryMs });
  const full = await t.throwsAsync(pool.index(asset, cache));
  t.is((full as NodeJS.ErrnoException | undefined)?.code, 'ENOSPC');
  t.deepEqual(fs.readdirSync(cache), [], 'no temporary file left behind');
  await t.throwsAsync(pool.index(asset, cache));
  t.like(pool.stats, { builds: 1, rememberedFailures: 1 }, 'not retried within the back-off');
  execFileSync('mount', ['-o', 'remount,size=16m', cache]);
  await sleep(retryMs + 100);
  const indexed = await pool.index(asset, cache);
  t.is(indexed.meta.packetCount, fs.statSync(asset).size / 188);
  t.like(pool.stats, { builds: 2, rememberedFailures: 1 });
});

/** A server over `media` with its cache at `cacheDir`, or the error it refuses to start with. */
async function startOn(
  t: ExecutionContext,
  dir: string,
  cacheDir: string,
  logger: Logger = pino({ level: 'silent' }),
  maxRandomAccessPoints?: number,
): Promise<Awaited<ReturnType<typeof startServer>>> {
  const config = parseConfig({
    media: { mounts: [{ prefix: '', dir: path.join(dir, 'media') }], cacheDir, maxRandomAccessPoints },
    admin: { socketPath: path.join(dir, 'admin.sock') },
    log: { level: 'silent' },
  });
  const server = await startServer({ config, configPath: undefined, logger, rtsp: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => server.close());
  return server;
}

test('a DESCRIBE of an asset refused for its random-access list is answered from memory, not by indexing it again', async (t) => {
  const dir = await tempDir(t);
  fs.mkdirSync(path.join(dir, 'media'));
  const asset = path.join(dir, 'media', 'sample.ts');
  fs.copyFileSync(SAMPLE_ASSET, asset);
  const server = await startOn(t, dir, path.join(dir, 'cache'), undefined, 3);
  const client = await RtspClient.connect({ port: server.rtsp.port });
  try {
    const first = await client.describe('/sample.ts');
    t.is(first.status, 404);
    for (let i = 0; i < 3; i++) t.is((await client.describe('/sample.ts')).status, 404);
    t.like(server.catalog.indexStats, { builds: 1, failures: 1, rememberedFailures: 3 });
    const later = new Date(Date.now() + 60_000);
    await fs.promises.utimes(asset, later, later);
    t.is((await client.describe('/sample.ts')).status, 404);
    t.like(server.catalog.indexStats, { builds: 2, failures: 2, rememberedFailures: 3 }, 'a changed file is indexed again');
  } finally {
    await client.close();
  }
});

test('a cache directory writable by others, or owned by another user, stops the server from starting', async (t) => {
  const dir = await tempDir(t);
  fs.mkdirSync(path.join(dir, 'media'));
  const open = path.join(dir, 'open-cache');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const err = await t.throwsAsync(startOn(t, dir, open));
  t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'), String(err));
  t.regex(err?.message ?? '', new RegExp(`cache directory ${open} is writable by others \\(mode 777\\) \\(owner uid \\d+, mode 0777\\): .*chmod.*media\\.cacheDir`));
  if (isRoot) {
    const theirs = path.join(dir, 'their-cache');
    fs.mkdirSync(theirs, { mode: 0o700 });
    fs.chownSync(theirs, NOBODY, NOBODY);
    const err2 = await t.throwsAsync(startOn(t, dir, theirs));
    t.regex(err2?.message ?? '', new RegExp(`cache directory ${theirs} is owned by uid ${NOBODY}, not by this server's uid 0 .*chown`));
  }
  // A cache directory the server creates is private from the start.
  const fresh = path.join(dir, 'state', 'cache');
  await startOn(t, dir, fresh);
  t.is(fs.statSync(fresh).mode & 0o777, 0o700);
});

test('the configuration is not written into a directory another user could write', async (t) => {
  const dir = await tempDir(t);
  const open = path.join(dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const err = await t.throwsAsync(saveConfig(path.join(open, 'config.json'), {}));
  t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'), String(err));
  t.regex(err?.message ?? '', /configuration directory .* is writable by others \(mode 777\)/);
  t.false(fs.existsSync(path.join(open, 'config.json')));
  const fresh = path.join(dir, 'etc', 'twinframe', 'config.json');
  await saveConfig(fresh, {});
  t.is(fs.statSync(path.dirname(fresh)).mode & 0o777, 0o700);
});

test('after a planted index is rejected, a session plays the real asset', async (t) => {
  const dir = await tempDir(t);
  const media = path.join(dir, 'media');
  fs.mkdirSync(media);
  const asset = path.join(media, 'sample.ts');
  fs.copyFileSync(SAMPLE_ASSET, asset);
  const bytes = fs.readFileSync(asset);
  const cache = path.join(dir, 'cache');
  const { logger, warnings } = capturingLogger();
  const server = await startOn(t, dir, cache, logger);
  const client = await RtspClient.connect({ port: server.rtsp.port });
  const receiver = await UdpReceiver.open();
  try {
    t.is((await client.describe('/sample.ts')).status, 200);
    // Every packet at time 0: a planted index that would send the asset as one burst.
    const indexPath = indexPathFor(asset, cache);
    plant(indexPath, (i) => {
      i.times.fill(0);
      i.times[1] = 1;
    });
    t.is((await client.setup('/sample.ts/track1', receiver.transportHeader())).status, 200);
    t.is((await client.play('/sample.ts', 'npt=0-2')).status, 200);
    await until(() => receiver.datagrams.length > 0, 'the first datagram');
    await receiver.waitForQuiet(500, 10_000);
    const ts = receiver.tsPayload();
    t.true(ts.length >= 188 * 1000, `${ts.length} bytes received`);
    t.true(ts.equals(bytes.subarray(0, ts.length)), 'the asset\'s own bytes, from its first packet');
    const arrivals = receiver.arrivalsMs();
    t.true(arrivals.at(-1)! - arrivals[0] >= 1000, 'paced over the range, not sent as a burst');
    t.true(warnings().some((w) => w.indexPath === indexPath && /send times decrease/.test(String(w.problem))), JSON.stringify(warnings()));
    await client.teardown('/sample.ts');
  } finally {
    await client.release();
    await receiver.close();
  }
});

leakCheck(test);
