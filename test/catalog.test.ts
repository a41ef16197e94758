// Tests for the index cache (src/catalog/index-pool.ts) and the asset catalog
// (src/catalog/catalog.ts): cache reuse and rebuilds, error codes across the
// worker thread, URL-to-file mapping and every path-escape attempt.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { TwinframeError, type ErrorCode } from '../src/errors.js';
import { AssetCatalog } from '../src/catalog/catalog.js';
import { IndexPool, indexPathFor } from '../src/catalog/index-pool.js';
import { readVerifiedIndexHead } from '../src/catalog/index-file.js';
import { mkfifo, rescueFifoAfter } from './helpers/fifo.js';
import { leakCheck } from './helpers/leak-check.js';

const SAMPLE = fileURLToPath(new URL('../../assets/sample.ts', import.meta.url));
const SAMPLE_BYTES = fs.readFileSync(SAMPLE);

const pools: IndexPool[] = [];
test.after.always(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

function newPool(): IndexPool {
  const pool = new IndexPool({ idleTimeout: 1000 });
  pools.push(pool);
  return pool;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  // realpath: on some systems tmpdir itself sits behind a symlink.
  const dir = await fs.promises.realpath(await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twinframe-catalog-')));
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Fixture {
  root: string;
  media: string;
  cache: string;
  outside: string;
  pool: IndexPool;
  catalog: AssetCatalog;
}

/** media/ holds sample.ts; outside/ (a sibling of media) holds secret.ts, a valid asset. */
async function fixture(t: ExecutionContext, extraMounts: Array<{ prefix: string; dir: string }> = []): Promise<Fixture> {
  const root = await tempDir(t);
  const media = path.join(root, 'media');
  const cache = path.join(root, 'cache');
  const outside = path.join(root, 'outside');
  await fs.promises.mkdir(media);
  await fs.promises.mkdir(outside);
  await fs.promises.copyFile(SAMPLE, path.join(media, 'sample.ts'));
  await fs.promises.copyFile(SAMPLE, path.join(outside, 'secret.ts'));
  const pool = newPool();
  const catalog = new AssetCatalog({ mounts: [{ prefix: '', dir: media }, ...extraMounts], cacheDir: cache, pool });
  return { root, media, cache, outside, pool, catalog };
}

async function rejects(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode, label: string): Promise<TwinframeError | undefined> {
  const err = await t.throwsAsync(promise, { instanceOf: TwinframeError }, label);
  t.is(err?.code, code, label);
  return err;
}

// --- IndexPool -----------------------------------------------------------------------

test('the index pool builds an index once and reuses the cached file afterwards', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'sample.ts');
  const first = await f.pool.index(asset, f.cache);
  t.is(first.assetPath, asset);
  t.is(first.indexPath, indexPathFor(asset, f.cache));
  t.regex(path.basename(first.indexPath), /^[0-9a-f]{16}\.tfidx$/);
  t.is(first.meta.pcrPid, 256);
  const written = fs.statSync(first.indexPath);

  // The head just built and read back is kept: from memory, while the index file is the one written.
  const second = await f.pool.index(asset, f.cache);
  t.deepEqual(second, first);
  t.deepEqual(f.pool.stats, { builds: 1, cacheHits: 1, memoryHits: 1, shared: 0, failures: 0, rememberedFailures: 0, rejected: 0 });
  const after = fs.statSync(first.indexPath);
  t.is(after.ino, written.ino, 'the index file was not rewritten');
  t.is(after.mtimeMs, written.mtimeMs);
  t.deepEqual(await f.pool.index(asset, f.cache), first);
  t.like(f.pool.stats, { builds: 1, cacheHits: 2, memoryHits: 2 });
});

test('the index head kept in memory is read again once its index file changes', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'sample.ts');
  const first = await f.pool.index(asset, f.cache);
  await f.pool.index(asset, f.cache);
  await f.pool.index(asset, f.cache);
  t.like(f.pool.stats, { cacheHits: 2, memoryHits: 2 });
  // Someone rewrites the index file (same bytes, a new inode): read, not trusted from memory.
  const copy = `${first.indexPath}.copy`;
  await fs.promises.copyFile(first.indexPath, copy);
  await fs.promises.rename(copy, first.indexPath);
  t.deepEqual(await f.pool.index(asset, f.cache), first);
  t.like(f.pool.stats, { builds: 1, cacheHits: 3, memoryHits: 2 });
  // A corrupted one is not used: the asset is indexed afresh.
  await fs.promises.writeFile(first.indexPath, 'not an index');
  t.deepEqual((await f.pool.index(asset, f.cache)).meta, first.meta);
  t.like(f.pool.stats, { builds: 2, memoryHits: 2 });
});

test('the index pool rebuilds when the asset is touched or rewritten', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'sample.ts');
  const first = await f.pool.index(asset, f.cache);

  const later = new Date(Date.now() + 60_000);
  await fs.promises.utimes(asset, later, later);
  const touched = await f.pool.index(asset, f.cache);
  t.is(f.pool.stats.builds, 2);
  t.not(touched.meta.sourceMtimeMs, first.meta.sourceMtimeMs);
  t.is(readVerifiedIndexHead(touched.indexPath).meta.sourceMtimeMs, fs.statSync(asset).mtimeMs);

  // Rewritten with the first half only: a different asset, indexed afresh.
  await fs.promises.writeFile(asset, SAMPLE_BYTES.subarray(0, 188 * 12_000));
  const half = await f.pool.index(asset, f.cache);
  t.is(f.pool.stats.builds, 3);
  t.is(half.meta.packetCount, 12_000);
  t.true(half.meta.durationMs < 6_500);
});

test('a corrupt cached index is rebuilt, not trusted', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'sample.ts');
  const first = await f.pool.index(asset, f.cache);
  await fs.promises.writeFile(first.indexPath, 'not an index');
  const again = await f.pool.index(asset, f.cache);
  t.deepEqual(again.meta, first.meta);
  t.is(f.pool.stats.builds, 2);
});

test('concurrent requests for one asset share a single build', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'sample.ts');
  const [a, b, c] = await Promise.all([
    f.pool.index(asset, f.cache),
    f.pool.index(asset, f.cache),
    f.pool.index(path.join(f.media, '.', 'sample.ts'), f.cache),
  ]);
  t.deepEqual(a, b);
  t.deepEqual(a, c);
  t.is(f.pool.stats.builds, 1);
  t.is(f.pool.stats.shared, 2);
});

test('a refusal crosses the worker thread with its code and message intact', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'cut.ts');
  await fs.promises.writeFile(asset, SAMPLE_BYTES.subarray(0, 188 * 100 + 17));
  const err = await rejects(t, f.pool.index(asset, f.cache), 'TF_ASSET_TRUNCATED', 'cut asset');
  t.true(err?.message.includes(asset));
  t.is(err?.details.offset, 188 * 100);
  // The same bytes are not rescanned; fixing the file is noticed.
  await rejects(t, f.pool.index(asset, f.cache), 'TF_ASSET_TRUNCATED', 'cut asset again');
  t.is(f.pool.stats.builds, 1);
  await fs.promises.writeFile(asset, SAMPLE_BYTES);
  const later = new Date(Date.now() + 60_000);
  await fs.promises.utimes(asset, later, later);
  t.is((await f.pool.index(asset, f.cache)).meta.packetCount, SAMPLE_BYTES.length / 188);
});

test('a missing asset is reported as not found by the pool', async (t) => {
  const f = await fixture(t);
  await rejects(t, f.pool.index(path.join(f.media, 'gone.ts'), f.cache), 'TF_ASSET_NOT_FOUND', 'missing');
});

test('the pool returns the identity of the file it opened and indexed', async (t) => {
  const f = await fixture(t);
  const asset = path.join(f.media, 'sample.ts');
  const st = fs.statSync(asset, { bigint: true });
  const expected = { dev: st.dev.toString(), ino: st.ino.toString(), size: SAMPLE_BYTES.length, mtimeMs: fs.statSync(asset).mtimeMs };
  t.deepEqual((await f.pool.index(asset, f.cache)).identity, expected, 'built');
  t.deepEqual((await f.pool.index(asset, f.cache)).identity, expected, 'from the cache');
  // Replaced under the same name: another inode is approved from now on.
  await fs.promises.copyFile(SAMPLE, path.join(f.media, 'next'));
  await fs.promises.rename(path.join(f.media, 'next'), asset);
  const replaced = (await f.pool.index(asset, f.cache)).identity;
  t.is(replaced.ino, fs.statSync(asset, { bigint: true }).ino.toString());
  t.not(replaced.ino, expected.ino);
});

// --- AssetCatalog ----------------------------------------------------------------------

test('the catalog resolves a URL path to an indexed asset inside its mount', async (t) => {
  const f = await fixture(t);
  const asset = await f.catalog.resolve('/sample.ts');
  t.is(asset.name, '/sample.ts');
  t.is(asset.path, path.join(f.media, 'sample.ts'));
  t.is(asset.indexPath, indexPathFor(asset.path, f.cache));
  t.is(asset.meta.packetCount, SAMPLE_BYTES.length / 188);
  // A query string is not part of the file name.
  t.is((await f.catalog.resolve('/sample.ts?foo=bar')).path, asset.path);
});

test('prefixed mounts decode percent-encoded names and subdirectories', async (t) => {
  const root = await tempDir(t);
  const movies = path.join(root, 'movies');
  await fs.promises.mkdir(path.join(movies, 'sub dir'), { recursive: true });
  await fs.promises.copyFile(SAMPLE, path.join(movies, 'sub dir', 'a b.ts'));
  const catalog = new AssetCatalog({ mounts: [{ prefix: '/movies/', dir: movies }], cacheDir: path.join(root, 'cache'), pool: newPool() });
  const asset = await catalog.resolve('/movies/sub%20dir/a%20b.ts');
  t.is(asset.name, '/movies/sub%20dir/a%20b.ts');
  t.is(asset.path, path.join(movies, 'sub dir', 'a b.ts'));
  await rejects(t, catalog.resolve('/sub%20dir/a%20b.ts'), 'TF_RTSP_NOT_FOUND', 'outside every prefix');
  await rejects(t, catalog.resolve('/moviesx/sub%20dir/a%20b.ts'), 'TF_RTSP_NOT_FOUND', 'prefix must match whole segments');
  t.deepEqual(await catalog.list(), [
    { name: '/movies/sub%20dir/a%20b.ts', path: path.join(movies, 'sub dir', 'a b.ts'), size: SAMPLE_BYTES.length },
  ]);
});

test('path escapes and malformed paths are refused with the right code', async (t) => {
  const f = await fixture(t);
  const cases: Array<[string, ErrorCode]> = [
    ['/../outside/secret.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/media/../outside/secret.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/%2e%2e/outside/secret.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/%2E%2E%2Foutside%2Fsecret.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/./sample.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/sample.ts%00.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/sample%00', 'TF_RTSP_BAD_REQUEST'],
    ['/..\\outside\\secret.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/%5C..%5Coutside%5Csecret.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/sample%2.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/sample%E0%A4%A.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/%ff.ts', 'TF_RTSP_BAD_REQUEST'],
    ['sample.ts', 'TF_RTSP_BAD_REQUEST'],
    ['rtsp://host/sample.ts', 'TF_RTSP_BAD_REQUEST'],
    ['//etc/passwd', 'TF_RTSP_BAD_REQUEST'],
    ['/%2Fetc%2Fpasswd', 'TF_RTSP_BAD_REQUEST'],
    ['/%0a.ts', 'TF_RTSP_BAD_REQUEST'],
    ['/etc/passwd', 'TF_RTSP_NOT_FOUND'],
    [path.join(f.outside, 'secret.ts'), 'TF_RTSP_NOT_FOUND'], // an absolute file path is just a path under the mount
    ['/missing.ts', 'TF_RTSP_NOT_FOUND'],
    ['/', 'TF_RTSP_NOT_FOUND'],
  ];
  for (const [urlPath, code] of cases) await rejects(t, f.catalog.resolve(urlPath), code, urlPath);
  t.is(f.pool.stats.builds, 0, 'nothing was indexed');
});

test('a symlink that leaves the mount is refused as not found; one that stays inside resolves', async (t) => {
  const f = await fixture(t);
  await fs.promises.symlink(path.join(f.outside, 'secret.ts'), path.join(f.media, 'escape.ts'));
  await fs.promises.symlink(f.outside, path.join(f.media, 'elsewhere'));
  await fs.promises.symlink(path.join(f.media, 'sample.ts'), path.join(f.media, 'alias.ts'));
  const escape = await rejects(t, f.catalog.resolve('/escape.ts'), 'TF_RTSP_NOT_FOUND', 'file symlink');
  t.false(escape?.message.includes(f.outside), 'the refusal does not reveal the target');
  await rejects(t, f.catalog.resolve('/elsewhere/secret.ts'), 'TF_RTSP_NOT_FOUND', 'directory symlink');
  const alias = await f.catalog.resolve('/alias.ts');
  t.is(alias.name, '/alias.ts');
  t.is(alias.path, path.join(f.media, 'sample.ts'));
  const names = (await f.catalog.list()).map((e) => e.name);
  t.deepEqual(names, ['/alias.ts', '/sample.ts']);
});

test('files that are not .ts assets are refused as not found', async (t) => {
  const f = await fixture(t);
  await fs.promises.copyFile(SAMPLE, path.join(f.media, 'movie.mp4'));
  await fs.promises.mkdir(path.join(f.media, 'folder.ts'));
  await fs.promises.symlink(path.join(f.media, 'movie.mp4'), path.join(f.media, 'disguised.ts'));
  await rejects(t, f.catalog.resolve('/movie.mp4'), 'TF_RTSP_NOT_FOUND', 'non-.ts name');
  // Judged on the opened file by the pool; RTSP answers 404 all the same.
  await rejects(t, f.catalog.resolve('/folder.ts'), 'TF_ASSET_UNREADABLE', 'directory');
  await rejects(t, f.catalog.resolve('/disguised.ts'), 'TF_RTSP_NOT_FOUND', 'link to a non-.ts file');
  t.deepEqual((await f.catalog.list()).map((e) => e.name), ['/sample.ts']);
});

test('a FIFO at an asset path is refused by the catalog and the pool without blocking', async (t) => {
  t.timeout(10_000);
  const f = await fixture(t);
  const fifo = path.join(f.media, 'fifo.ts');
  mkfifo(fifo);
  // Releases a blocked open after 3 s, so a regression fails here instead of hanging the run.
  t.teardown(await rescueFifoAfter(fifo, 3000));
  const started = Date.now();
  const viaCatalog = await rejects(t, f.catalog.resolve('/fifo.ts'), 'TF_ASSET_UNREADABLE', 'catalog');
  t.regex(viaCatalog?.message ?? '', /is a FIFO, not a regular file/);
  await rejects(t, f.pool.index(fifo, f.cache), 'TF_ASSET_UNREADABLE', 'pool');
  t.true(Date.now() - started < 1000, `refused at once, not after ${Date.now() - started} ms`);
  t.is(f.pool.stats.builds, 0, 'nothing was handed to the indexing thread');
  // The catalog keeps working, and never lists the FIFO.
  t.is((await f.catalog.resolve('/sample.ts')).name, '/sample.ts');
  t.deepEqual((await f.catalog.list()).map((e) => e.name), ['/sample.ts']);
});

test('a mount whose directory is a symlink serves its assets by their real path', async (t) => {
  const f = await fixture(t);
  const linked = path.join(f.root, 'linked-media');
  await fs.promises.symlink(f.media, linked);
  const catalog = new AssetCatalog({ mounts: [{ prefix: '/l', dir: linked }], cacheDir: f.cache, pool: f.pool });
  const asset = await catalog.resolve('/l/sample.ts');
  t.is(asset.path, path.join(f.media, 'sample.ts'));
  t.is(asset.identity.ino, fs.statSync(asset.path, { bigint: true }).ino.toString());
  t.deepEqual((await catalog.list()).map((e) => e.name), ['/l/sample.ts']);
});

test('a file added after the catalog was created resolves without a restart', async (t) => {
  const f = await fixture(t);
  await rejects(t, f.catalog.resolve('/new/late.ts'), 'TF_RTSP_NOT_FOUND', 'before it exists');
  await fs.promises.mkdir(path.join(f.media, 'new'));
  await fs.promises.copyFile(SAMPLE, path.join(f.media, 'new', 'late.ts'));
  const asset = await f.catalog.resolve('/new/late.ts');
  t.is(asset.path, path.join(f.media, 'new', 'late.ts'));
  t.deepEqual((await f.catalog.list()).map((e) => e.name), ['/new/late.ts', '/sample.ts']);
});

test('an asset that fails to index is reported with its error, not a crash', async (t) => {
  const f = await fixture(t);
  const text = 'this is not a transport stream at all, just text\n'.repeat(100);
  await fs.promises.writeFile(path.join(f.media, 'junk.ts'), text);
  await fs.promises.writeFile(path.join(f.media, 'empty.ts'), '');
  const junk = await rejects(t, f.catalog.resolve('/junk.ts'), 'TF_ASSET_NOT_TS', 'junk');
  t.true(junk?.message.includes(path.join(f.media, 'junk.ts')));
  await rejects(t, f.catalog.resolve('/empty.ts'), 'TF_ASSET_EMPTY', 'empty');
  // The catalog keeps working.
  t.is((await f.catalog.resolve('/sample.ts')).name, '/sample.ts');
  const list = await f.catalog.list();
  t.deepEqual(
    list.map((e) => [e.name, e.size]),
    [
      ['/empty.ts', 0],
      ['/junk.ts', text.length],
      ['/sample.ts', SAMPLE_BYTES.length],
    ],
  );
});

test('a longer mount prefix takes precedence over the root mount', async (t) => {
  const root = await tempDir(t);
  const rootDir = path.join(root, 'root');
  const extra = path.join(root, 'extra');
  await fs.promises.mkdir(path.join(rootDir, 'extra'), { recursive: true });
  await fs.promises.mkdir(extra);
  await fs.promises.copyFile(SAMPLE, path.join(rootDir, 'extra', 'shadowed.ts'));
  await fs.promises.copyFile(SAMPLE, path.join(extra, 'x.ts'));
  const catalog = new AssetCatalog({
    mounts: [
      { prefix: '/', dir: rootDir },
      { prefix: '/extra', dir: extra },
    ],
    cacheDir: path.join(root, 'cache'),
    pool: newPool(),
  });
  t.is((await catalog.resolve('/extra/x.ts')).path, path.join(extra, 'x.ts'));
  await rejects(t, catalog.resolve('/extra/shadowed.ts'), 'TF_RTSP_NOT_FOUND', 'shadowed');
  t.deepEqual((await catalog.list()).map((e) => e.name), ['/extra/x.ts']);
});

test('mount configuration mistakes are refused at construction', (t) => {
  const pool = newPool();
  const err = t.throws(
    () =>
      new AssetCatalog({
        mounts: [
          { prefix: '/a', dir: '/tmp' },
          { prefix: 'a/', dir: '/var' },
        ],
        cacheDir: '/tmp',
        pool,
      }),
    { instanceOf: TwinframeError },
  );
  t.is(err?.code, 'TF_CONFIG_INVALID');
  t.is(t.throws(() => new AssetCatalog({ mounts: [{ prefix: '/../x', dir: '/tmp' }], cacheDir: '/tmp', pool }), { instanceOf: TwinframeError })?.code, 'TF_CONFIG_INVALID');
});

leakCheck(test);
