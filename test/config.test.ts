// Checks the configuration: defaults that run out of the box, every bad field refused
// by name, atomic saves and updates, and the one-frame failure-detection budget.

import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isTwinframeError } from '../src/errors.js';
import {
  FRAME_INTERVAL_MS,
  MIN_HEARTBEAT_PERIOD_US,
  DEFAULT_KBPS_PER_CORE,
  defaultConfig,
  defaultLimits,
  validateFailoverTiming,
  worstCaseDetectionUs,
} from '../src/config/schema.js';
import { loadConfig, saveConfig, updateConfig } from '../src/config/store.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tf-config-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a missing file gives the documented defaults, and they are valid and usable', async (t) => {
  await withTempDir(async (dir) => {
    const cfg = await loadConfig(path.join(dir, 'nope.json'));
    t.deepEqual(cfg, defaultConfig());
    t.is(cfg.rtsp.host, '127.0.0.1');
    t.is(cfg.rtsp.port, 8554);
    t.is(cfg.rtsp.sessionTimeoutSec, 60);
    t.like(cfg.rtsp, { maxConnections: 1000, requestTimeoutSec: 10, maxRequestBytes: 16 * 1024, idleTimeoutSec: undefined });
    t.like(cfg.auth, { enabled: false, realm: 'twinframe', basic: false, users: [], access: [], maxFailures: 10, lockoutSec: 60 });
    t.false(cfg.rtsp.allowForeignDestination);
    t.deepEqual(cfg.limits, defaultLimits(), 'limits from what the cores carry');
    t.is(cfg.limits.mpegBandwidthKbps, DEFAULT_KBPS_PER_CORE * os.availableParallelism());
    t.true(cfg.limits.maxStreams > 100, 'more viewers than the old fixed 100 on any box with a core');
    t.true(cfg.limits.mpegBandwidthKbps <= cfg.limits.serverBandwidthKbps);
    t.is(cfg.failover.heartbeatPeriodUs, 2000);
    t.is(cfg.failover.maxMissedHeartbeats, 5);
    t.is(cfg.paths.pairs, Math.max(1, Math.floor(os.availableParallelism() / 2)), 'one pair of data paths per two cores');
    t.false(cfg.admin.faultInjection);
    t.deepEqual(cfg.loadBalance, { active: false, groupId: 0 });
    t.is(cfg.network.streamIp, undefined, 'unset: media leaves from the address each viewer reached');
    t.deepEqual(cfg.network.routes, []);
    t.is(cfg.media.mounts.length, 1);
    t.is(cfg.media.mounts[0].prefix, '');
    t.true(existsSync(path.join(cfg.media.mounts[0].dir, 'sample.ts')), 'the default mount holds the sample asset');
    t.true(path.isAbsolute(cfg.admin.socketPath));
    t.true(Buffer.byteLength(cfg.admin.socketPath) <= 107);
    t.notThrows(() => validateFailoverTiming(cfg.failover.heartbeatPeriodUs, cfg.failover.maxMissedHeartbeats));
  });
});

test('an empty file object gives the defaults too', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    await writeFile(file, '{}');
    t.deepEqual(await loadConfig(file), defaultConfig());
  });
});

/** A well-formed user (hashes of nothing in particular). */
const USER = { name: 'alice', realm: 'twinframe', md5: 'a'.repeat(32), sha256: 'b'.repeat(64) };

const BAD_FIELDS: Array<[name: string, raw: unknown, field: string]> = [
  ['an unknown top-level section', { rtp: {} }, 'rtp'],
  ['a misspelt field', { rtsp: { prot: 1 } }, 'rtsp.prot'],
  ['an empty host', { rtsp: { host: '' } }, 'rtsp.host'],
  ['a port that is a string', { rtsp: { port: '8554' } }, 'rtsp.port'],
  ['a port out of range', { rtsp: { port: 70000 } }, 'rtsp.port'],
  ['a fractional session timeout', { rtsp: { sessionTimeoutSec: 1.5 } }, 'rtsp.sessionTimeoutSec'],
  ['a session timeout too short', { rtsp: { sessionTimeoutSec: 1 } }, 'rtsp.sessionTimeoutSec'],
  ['a non-boolean foreign-destination switch', { rtsp: { allowForeignDestination: 'yes' } }, 'rtsp.allowForeignDestination'],
  ['a tiny request limit', { rtsp: { maxRequestBytes: 10 } }, 'rtsp.maxRequestBytes'],
  ['an odd first server port', { rtsp: { serverPortRange: { first: 30001, last: 30999 } } }, 'rtsp.serverPortRange.first'],
  ['an empty server port range', { rtsp: { serverPortRange: { first: 30000, last: 30000 } } }, 'rtsp.serverPortRange.last'],
  ['mounts that are not a list', { media: { mounts: {} } }, 'media.mounts'],
  ['a mount without a dir', { media: { mounts: [{ prefix: '' }] } }, 'media.mounts[0].dir'],
  ['a mount prefix with ..', { media: { mounts: [{ prefix: '../etc', dir: '/tmp' }] } }, 'media.mounts[0].prefix'],
  ['a mount prefix with a leading slash', { media: { mounts: [{ prefix: '/movies', dir: '/tmp' }] } }, 'media.mounts[0].prefix'],
  ['a duplicate mount prefix', { media: { mounts: [{ prefix: 'm', dir: '/a' }, { prefix: 'm', dir: '/b' }] } }, 'media.mounts[1].prefix'],
  ['a mount prefix the broadcasts\' URLs would shadow', { media: { mounts: [{ prefix: 'broadcast', dir: '/a' }] } }, 'media.mounts[0].prefix'],
  ['a mount prefix under the broadcasts\' URLs', { media: { mounts: [{ prefix: 'broadcast/old', dir: '/a' }] } }, 'media.mounts[0].prefix'],
  ['an empty cache dir', { media: { cacheDir: '' } }, 'media.cacheDir'],
  ['zero streams', { limits: { maxStreams: 0 } }, 'limits.maxStreams'],
  ['a negative bandwidth', { limits: { mpegBandwidthKbps: -1 } }, 'limits.mpegBandwidthKbps'],
  ['MPEG bandwidth above server bandwidth', { limits: { mpegBandwidthKbps: 2000, serverBandwidthKbps: 1000 } }, 'limits.mpegBandwidthKbps'],
  ['a zero server bandwidth', { limits: { serverBandwidthKbps: 0 } }, 'limits.serverBandwidthKbps'],
  ['a heartbeat period under 500 µs', { failover: { heartbeatPeriodUs: 400 } }, 'failover.heartbeatPeriodUs'],
  ['a heartbeat too slow for one frame', { failover: { heartbeatPeriodUs: 20_000 } }, 'failover.heartbeatPeriodUs'],
  ['zero missed heartbeats', { failover: { maxMissedHeartbeats: 0 } }, 'failover.maxMissedHeartbeats'],
  ['a socket path too long for a Unix socket', { admin: { socketPath: `/tmp/${'x'.repeat(200)}` } }, 'admin.socketPath'],
  ['a non-boolean fault-injection switch', { admin: { faultInjection: 1 } }, 'admin.faultInjection'],
  ['a non-boolean load-balance switch', { loadBalance: { active: 'no' } }, 'loadBalance.active'],
  ['a negative group id', { loadBalance: { groupId: -1 } }, 'loadBalance.groupId'],
  ['a stream IP that is not an address', { network: { streamIp: 'localhost' } }, 'network.streamIp'],
  ['a non-contiguous mask', { network: { mask: '255.0.255.0' } }, 'network.mask'],
  ['a route with a bad network', { network: { routes: [{ destination: '10.0.0.0/40', gateway: '10.0.0.1' }] } }, 'network.routes[0].destination'],
  ['a route with a bad gateway', { network: { routes: [{ destination: '10.0.0.0/8', gateway: 'router' }] } }, 'network.routes[0].gateway'],
  ['an unknown log level', { log: { level: 'verbose' } }, 'log.level'],
  ['zero RTSP connections', { rtsp: { maxConnections: 0 } }, 'rtsp.maxConnections'],
  ['a request timeout of zero', { rtsp: { requestTimeoutSec: 0 } }, 'rtsp.requestTimeoutSec'],
  ['an idle timeout too short', { rtsp: { idleTimeoutSec: 1 } }, 'rtsp.idleTimeoutSec'],
  ['a user name with a colon', { auth: { users: [{ ...USER, name: 'a:b' }] } }, 'auth.users[0].name'],
  ['a user without its SHA-256 hash', { auth: { users: [{ ...USER, sha256: undefined }] } }, 'auth.users[0].sha256'],
  ['a user whose MD5 hash is not hex', { auth: { users: [{ ...USER, md5: 'x'.repeat(32) }] } }, 'auth.users[0].md5'],
  ['a user hashed for another realm', { auth: { users: [{ ...USER, realm: 'elsewhere' }] } }, 'auth.users[0].realm'],
  ['a user twice', { auth: { users: [USER, USER] } }, 'auth.users[1].name'],
  ['a password in the Basic field', { auth: { users: [{ ...USER, basic: 'hunter2' }] } }, 'auth.users[0].basic'],
  ['an access rule naming nobody known', { auth: { users: [USER], access: [{ prefix: 'movies', users: ['bob'] }] } }, 'auth.access[0].users[0]'],
  ['a realm with a quote', { auth: { realm: 'a"b' } }, 'auth.realm'],
  ['zero pairs of data paths', { paths: { pairs: 0 } }, 'paths.pairs'],
  ['a fractional number of pairs', { paths: { pairs: 1.5 } }, 'paths.pairs'],
];

for (const [name, raw, field] of BAD_FIELDS) {
  test(`${name} is refused with TF_CONFIG_INVALID naming ${field}`, async (t) => {
    await withTempDir(async (dir) => {
      const file = path.join(dir, 'c.json');
      await writeFile(file, JSON.stringify(raw));
      const err = await t.throwsAsync(loadConfig(file));
      if (!isTwinframeError(err, 'TF_CONFIG_INVALID')) return t.fail(String(err));
      t.true(err.message.includes(field), err.message);
      t.true(err.message.includes(file), 'the message names the file');
      const issues = err.details.issues as Array<{ path: string; message: string }>;
      t.true(issues.some((i) => i.path === field), JSON.stringify(issues));
    });
  });
}

test('a file with several bad fields lists every one of them', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ rtsp: { port: 0, extra: true }, limits: { maxStreams: 'many' }, network: { streamIp: '1.2.3' } }));
    const err = await t.throwsAsync(loadConfig(file));
    if (!isTwinframeError(err, 'TF_CONFIG_INVALID')) return t.fail(String(err));
    const paths = (err.details.issues as Array<{ path: string }>).map((i) => i.path).sort();
    t.deepEqual(paths, ['limits.maxStreams', 'network.streamIp', 'rtsp.extra', 'rtsp.port']);
    for (const p of paths) t.true(err.message.includes(p));
  });
});

test('a file that is not JSON, or not an object, is refused with TF_CONFIG_INVALID', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    for (const text of ['{ "rtsp": ', '[]', 'null', '42']) {
      await writeFile(file, text);
      const err = await t.throwsAsync(loadConfig(file));
      t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'), `${text}: ${String(err)}`);
    }
  });
});

test('relative paths in a file are resolved against the file, not the working directory', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ media: { mounts: [{ prefix: 'm', dir: 'movies' }], cacheDir: 'cache' }, admin: { socketPath: 'run/admin.sock' } }));
    const cfg = await loadConfig(file);
    t.is(cfg.media.mounts[0].dir, path.join(dir, 'movies'));
    t.is(cfg.media.cacheDir, path.join(dir, 'cache'));
    t.is(cfg.admin.socketPath, path.join(dir, 'run', 'admin.sock'));
  });
});

test('an atomic save leaves no temp file, keeps the file mode and survives a reload', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'sub', 'c.json');
    const cfg = defaultConfig();
    const changed = { ...cfg, limits: { ...cfg.limits, maxStreams: 7 } };
    await saveConfig(file, changed);
    t.deepEqual(await readdir(path.dirname(file)), ['c.json']);
    t.deepEqual(await loadConfig(file), changed);

    await chmod(file, 0o600);
    await saveConfig(file, { ...changed, limits: { ...changed.limits, maxStreams: 8 } });
    t.is((await stat(file)).mode & 0o777, 0o600);
    t.is((await loadConfig(file)).limits.maxStreams, 8);
    t.deepEqual(await readdir(path.dirname(file)), ['c.json']);
  });
});

test('saving an invalid configuration is refused and leaves the old file untouched', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    await saveConfig(file, { limits: { maxStreams: 5 } });
    const before = await readFile(file, 'utf8');
    const err = await t.throwsAsync(saveConfig(file, { limits: { maxStreams: -5 } }));
    t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'));
    t.is(await readFile(file, 'utf8'), before);
    t.deepEqual(await readdir(dir), ['c.json']);
  });
});

test('a save that fails at the rename removes its temp file', async (t) => {
  await withTempDir(async (dir) => {
    const target = path.join(dir, 'c.json');
    await mkdir(target); // renaming a file over a directory fails
    await t.throwsAsync(saveConfig(target, {}));
    t.deepEqual(await readdir(dir), ['c.json']);
  });
});

test('updateConfig merges a patch, keeps relative paths and implicit defaults, and refuses an invalid result', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ media: { cacheDir: 'cache' }, limits: { maxStreams: 10 } }));
    const cfg = await updateConfig(file, { limits: { serverBandwidthKbps: 900_000 }, failover: { heartbeatPeriodUs: 500 } });
    t.is(cfg.limits.maxStreams, 10);
    t.is(cfg.limits.serverBandwidthKbps, 900_000);
    t.is(cfg.failover.heartbeatPeriodUs, 500);
    t.is(cfg.media.cacheDir, path.join(dir, 'cache'));
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    t.deepEqual(onDisk, { media: { cacheDir: 'cache' }, limits: { maxStreams: 10, serverBandwidthKbps: 900_000 }, failover: { heartbeatPeriodUs: 500 } });

    const before = await readFile(file, 'utf8');
    const err = await t.throwsAsync(updateConfig(file, { failover: { heartbeatPeriodUs: 50_000 } }));
    t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'));
    t.regex(err.message, /failover\.heartbeatPeriodUs/);
    t.is(await readFile(file, 'utf8'), before);
    t.deepEqual(await readdir(dir), ['c.json']);
  });
});

test('concurrent updates to one file are all kept', async (t) => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'c.json');
    await Promise.all([
      updateConfig(file, { limits: { maxStreams: 11 } }),
      updateConfig(file, { failover: { maxMissedHeartbeats: 4 } }),
      updateConfig(file, { loadBalance: { groupId: 3 } }),
    ]);
    const cfg = await loadConfig(file);
    t.is(cfg.limits.maxStreams, 11);
    t.is(cfg.failover.maxMissedHeartbeats, 4);
    t.is(cfg.loadBalance.groupId, 3);
  });
});

test('heartbeat settings whose worst-case detection exceeds one frame are refused with TF_HEARTBEAT_TOO_SLOW', (t) => {
  const frameUs = FRAME_INTERVAL_MS.ntsc * 1000;
  for (const maxMissed of [1, 3, 10]) {
    // The largest period that fits, then one microsecond more.
    const fits = Math.floor((frameUs - 200) / (1.5 * maxMissed));
    t.true(worstCaseDetectionUs(fits, maxMissed) <= frameUs);
    t.notThrows(() => validateFailoverTiming(fits, maxMissed));
    const err = t.throws(() => validateFailoverTiming(fits + 1, maxMissed));
    t.true(isTwinframeError(err, 'TF_HEARTBEAT_TOO_SLOW'), `${fits + 1} × ${maxMissed}`);
    t.regex(err.message, /one frame/);
  }
  // A PAL or film frame is longer, so the same setting may fit there.
  t.throws(() => validateFailoverTiming(8500, 3));
  t.notThrows(() => validateFailoverTiming(8500, 3, FRAME_INTERVAL_MS.pal));
  t.notThrows(() => validateFailoverTiming(8500, 3, FRAME_INTERVAL_MS.film));
});

test('heartbeat periods under 500 µs and fewer than one missed heartbeat are refused', (t) => {
  t.notThrows(() => validateFailoverTiming(MIN_HEARTBEAT_PERIOD_US, 3));
  for (const [period, missed] of [[499, 3], [250, 3], [0, 3], [-250, 3], [2000.5, 3], [2000, 0], [2000, -1], [2000, 1.5]] as const) {
    const err = t.throws(() => validateFailoverTiming(period, missed), undefined, `${period} × ${missed}`);
    t.true(isTwinframeError(err, 'TF_CONFIG_INVALID'), `${period} × ${missed}`);
  }
  const info = validateFailoverTiming(2000, 5);
  t.is(info.worstCaseDetectionUs, 1.5 * 2000 * 5 + 2 * 100);
});
