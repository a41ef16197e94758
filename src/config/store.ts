// Reads and writes the configuration file: a missing file means defaults, an invalid
// one is refused field by field, and every write is atomic and durable (temp file in
// the same directory, fsync, rename, fsync of the directory), so a crash or power cut
// leaves either the old file or the new one, never a torn mix.

import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TwinframeError } from '../errors.js';
import { ensurePrivateDirectory } from '../shared/private-dir.js';
import { packageRoot, parseConfig, type ConfigPatch, type TwinframeConfig, type TwinframeConfigInput } from './schema.js';

/** `$TWINFRAME_CONFIG`, else `<package>/.twinframe/config.json`. */
export function defaultConfigPath(): string {
  const fromEnv = process.env.TWINFRAME_CONFIG;
  return fromEnv !== undefined && fromEnv !== '' ? path.resolve(fromEnv) : path.join(packageRoot(), '.twinframe', 'config.json');
}

/**
 * Relative paths in a file mean "next to this file", whatever the working directory
 * of the process that reads it. Defaults are already absolute.
 */
function resolveConfigPaths(cfg: TwinframeConfig, baseDir: string): TwinframeConfig {
  const abs = (p: string): string => path.resolve(baseDir, p);
  return {
    ...cfg,
    media: { ...cfg.media, mounts: cfg.media.mounts.map((m) => ({ ...m, dir: abs(m.dir) })), cacheDir: abs(cfg.media.cacheDir) },
    admin: { ...cfg.admin, socketPath: abs(cfg.admin.socketPath) },
  };
}

/** The file's JSON value, or undefined if there is no file. Throws TF_CONFIG_INVALID when unreadable or not JSON. */
async function readRaw(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TwinframeError('TF_CONFIG_INVALID', `configuration ${file} cannot be read: ${(err as Error).message}`, { source: file, issues: [] });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TwinframeError('TF_CONFIG_INVALID', `configuration ${file} is not valid JSON: ${(err as Error).message}`, {
      source: file,
      issues: [{ path: '(root)', message: (err as Error).message }],
    });
  }
}

/**
 * Loads the configuration. No file → defaults. Invalid → TF_CONFIG_INVALID whose
 * message lists each bad field by its dotted path (also in `details.issues`).
 */
export async function loadConfig(file: string = defaultConfigPath()): Promise<TwinframeConfig> {
  const abs = path.resolve(file);
  const raw = await readRaw(abs);
  return resolveConfigPaths(parseConfig(raw === undefined ? {} : raw, `configuration ${abs}`), path.dirname(abs));
}

export interface SaveOptions {
  /** Permission bits of a file that does not exist yet (0600 for one that holds password hashes). */
  readonly newFileMode?: number;
}

/**
 * Writes `cfg` (validated first; refused with TF_CONFIG_INVALID) atomically: a temp
 * file in the same directory (same filesystem, so rename is atomic), fsync'd, renamed
 * over the target, then the directory fsync'd so the rename itself is durable. An
 * existing file's permission bits are kept.
 */
export async function saveConfig(file: string, cfg: TwinframeConfigInput | TwinframeConfig, options: SaveOptions = {}): Promise<void> {
  const abs = path.resolve(file);
  parseConfig(cfg, `configuration for ${abs}`);
  const dir = path.dirname(abs);
  // Another user who may write here could swap the file between our writes and the server's next read.
  await ensurePrivateDirectory(dir, 'configuration directory', `make it owned by uid ${process.getuid?.() ?? '?'} and not writable by group or others (chmod go-w), or keep the configuration elsewhere`);

  let mode = options.newFileMode ?? 0o644;
  try {
    mode = (await stat(abs)).mode & 0o777;
  } catch {
    // no file yet: default permissions
  }

  const tmp = path.join(dir, `.${path.basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(`${JSON.stringify(cfg, null, 2)}\n`, 'utf8');
      await fh.chmod(mode); // open's mode is filtered by the umask
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, abs);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }

  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch (err) {
    // Some filesystems cannot fsync a directory; the rename is still atomic there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw err;
  } finally {
    await dh.close();
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Nested objects merge; arrays and scalars replace; undefined leaves the value alone. */
function merge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch) || !isPlainObject(base)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    out[k] = merge(base[k], v);
  }
  return out;
}

// One update at a time per file within this process, so two concurrent updates
// (say limits and heartbeat from two admin clients) cannot lose one another.
const updateChains = new Map<string, Promise<unknown>>();

/**
 * Applies `patch` to the file's contents and saves atomically. Only what the file
 * holds plus the patch is written (defaults stay implicit, relative paths stay
 * relative). Refused as a whole with TF_CONFIG_INVALID if the result is invalid.
 * `patch` may be a function of the file's contents as read here (an edit of a
 * list that keeps the rows it does not touch); what it throws writes nothing.
 * Returns the new effective configuration.
 */
export async function updateConfig(file: string, patch: ConfigPatch | ((raw: Readonly<Record<string, unknown>>) => ConfigPatch), options: SaveOptions = {}): Promise<TwinframeConfig> {
  const abs = path.resolve(file);
  const previous = updateChains.get(abs) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(async () => {
    const raw = (await readRaw(abs)) ?? {};
    if (!isPlainObject(raw)) parseConfig(raw, `configuration ${abs}`); // throws: not an object
    const merged = merge(raw, typeof patch === 'function' ? patch(raw as Record<string, unknown>) : patch);
    const cfg = parseConfig(merged, `configuration ${abs} after the update`);
    await saveConfig(abs, merged as TwinframeConfigInput, options);
    return resolveConfigPaths(cfg, path.dirname(abs));
  });
  updateChains.set(abs, run);
  try {
    return await run;
  } finally {
    if (updateChains.get(abs) === run) updateChains.delete(abs);
  }
}
