// An addon build that is there but unusable is dropped for the plain-Node
// fallbacks with one warning per process naming the file and why: a build that
// lacks functions (here another N-API addon in its place: it lacks them all),
// one that cannot be loaded at all; a missing build stays silent (the
// documented fallback). A copy of the compiled loader in the package's layout
// (<root>/dist/src/shared/native.js loads <root>/native/build/Release/), loaded
// by a child process's main thread and by a worker thread of it.

import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { leakCheck } from './helpers/leak-check.js';

leakCheck(test);

const run = promisify(execFile);
const LOADER = fileURLToPath(new URL('../src/shared/native.js', import.meta.url));
/** An N-API addon that is not twinframe's (a dependency's): loads, and has none of its functions. */
const OTHER_ADDON = createRequire(import.meta.url).resolve('@napi-rs/nice-linux-x64-gnu/nice.linux-x64-gnu.node');

/** Load the loader copy at `root` in a child's main thread and in a worker of it: whether it loaded, and its stderr. */
async function loadIn(root: string): Promise<{ loaded: boolean; stderr: string }> {
  const loader = path.join(root, 'dist/src/shared/native.js');
  const script = `
    import { Worker } from 'node:worker_threads';
    const { nativeAddon } = await import(${JSON.stringify(loader)});
    await new Promise((resolve, reject) => new Worker(${JSON.stringify(loader)}).on('exit', resolve).on('error', reject));
    console.log(JSON.stringify({ loaded: nativeAddon !== undefined }));
  `;
  const env = { ...process.env };
  delete env.TWINFRAME_NATIVE;
  const file = path.join(root, 'load.js');
  await writeFile(file, script);
  const { stdout, stderr } = await run(process.execPath, [file], { env, timeout: 20_000 });
  return { loaded: (JSON.parse(stdout) as { loaded: boolean }).loaded, stderr };
}

test('a stale build is dropped with one warning naming the file and what it lacks; an unloadable one with the loader\'s error; a missing one silently', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'twinframe-native-stale-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'dist/src/shared'), { recursive: true });
  await mkdir(path.join(root, 'native/build/Release'), { recursive: true });
  await writeFile(path.join(root, 'package.json'), '{ "type": "module" }\n');
  await copyFile(LOADER, path.join(root, 'dist/src/shared/native.js'));
  const addon = path.join(root, 'native/build/Release/twinframe_native.node');

  const missing = await loadIn(root);
  t.false(missing.loaded);
  t.notRegex(missing.stderr, /TWINFRAME_NATIVE_DROPPED/, 'no build: the fallback, nothing to say');

  await copyFile(OTHER_ADDON, addon);
  const stale = await loadIn(root);
  t.false(stale.loaded);
  const warnings = stale.stderr.split('\n').filter((l) => l.includes('TWINFRAME_NATIVE_DROPPED'));
  t.is(warnings.length, 1, `once per process, not per thread: ${stale.stderr}`);
  t.true(warnings[0].includes(addon), warnings[0]);
  t.regex(warnings[0], /it lacks setRealtimePriority, .*peerPidfd, .*lifeLockRelease \(built from an older source; rebuild it/);

  await writeFile(addon, 'not a shared object');
  const broken = await loadIn(root);
  t.false(broken.loaded);
  t.regex(broken.stderr, /TWINFRAME_NATIVE_DROPPED.*native\/build\/Release\/twinframe_native\.node is not used.*it cannot be loaded: .*(invalid ELF header|file too short)/);
});
