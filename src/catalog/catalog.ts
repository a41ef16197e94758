// The asset catalog: maps RTSP URL paths onto .ts files strictly inside the
// configured mount points (refusing every way of escaping them), indexes what
// it finds through the IndexPool, and lists the mounts for the admin 'assets'
// command. It keeps no directory cache: every call looks at the file system,
// so files added while the server runs are found at once. The one thing it
// remembers: assets found unusable while they streamed, refused until they change.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { TwinframeError, isTwinframeError } from '../errors.js';
import { silentLogger } from '../log.js';
import { inodeOf, type AssetIdentity } from '../shared/asset-file.js';
import type { AssetIndexMeta } from '../index-format/index-format.js';
import type { IndexPool, IndexPoolStats } from './index-pool.js';

export interface CatalogMount {
  /** URL path prefix, e.g. '/movies'; '' (or '/') mounts the directory at the root. */
  prefix: string;
  dir: string;
}

export interface AssetCatalogOptions {
  mounts: CatalogMount[];
  cacheDir: string;
  pool: IndexPool;
  logger?: Logger;
}

export interface CatalogAsset {
  /** Canonical URL path, percent-encoded per segment, e.g. '/movies/a%20b.ts'. */
  name: string;
  /** Absolute real path of the file (symlinks resolved). */
  path: string;
  indexPath: string;
  meta: AssetIndexMeta;
  /** Byte offset of the packet-time table in the index file. */
  timesOffset: number;
  /** Where the pictures table is in the index file, and its entries. */
  picturesOffset: number;
  pictureCount: number;
  /** The file approved and indexed: the data paths must open this very inode. */
  identity: AssetIdentity;
}

export interface CatalogEntry {
  /** Canonical URL path, as resolve() accepts it. */
  name: string;
  /** Absolute real path of the file. */
  path: string;
  size: number;
}

interface Mount {
  /** Decoded path segments of the prefix; [] for the root. */
  segments: string[];
  prefix: string;
  dir: string;
}

const MAX_WALK_DEPTH = 32;

/** What a file looked like, to tell whether it has changed since. */
interface FileIdentity {
  readonly dev: string;
  readonly ino: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

function identityOf(st: fs.BigIntStats): FileIdentity {
  return { ...inodeOf(st), size: Number(st.size), mtimeMs: Number(st.mtimeMs), ctimeMs: Number(st.ctimeMs) };
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

function isAssetName(name: string): boolean {
  return name.length > 3 && name.toLowerCase().endsWith('.ts');
}

/**
 * A segment that could alter where a joined path points, or that no file name
 * should contain: separators of either kind, dot segments, NUL and other
 * control characters.
 */
function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'empty path segment';
  if (segment === '.' || segment === '..') return 'dot segment';
  if (segment.includes('/')) return 'encoded slash';
  if (segment.includes('\\')) return 'backslash';
  if (segment.includes('\0')) return 'NUL byte';
  if (/[\x00-\x1f\x7f]/.test(segment)) return 'control character';
  return undefined;
}

function isInside(root: string, candidate: string): boolean {
  const base = root.endsWith(path.sep) ? root : root + path.sep;
  return candidate.startsWith(base) && candidate.length > base.length;
}

function urlName(segments: readonly string[]): string {
  return '/' + segments.map((s) => encodeURIComponent(s)).join('/');
}

function normalizeMount(mount: CatalogMount): Mount {
  if (typeof mount.dir !== 'string' || mount.dir === '') {
    throw new TwinframeError('TF_CONFIG_INVALID', `mount ${JSON.stringify(mount.prefix)} has no directory`);
  }
  const segments = mount.prefix.split('/').filter((s) => s !== '');
  for (const s of segments) {
    const problem = segmentProblem(s);
    if (problem !== undefined) {
      throw new TwinframeError('TF_CONFIG_INVALID', `mount prefix ${JSON.stringify(mount.prefix)} has a ${problem}`);
    }
  }
  return { segments, prefix: segments.length === 0 ? '' : '/' + segments.join('/'), dir: path.resolve(mount.dir) };
}

/** Normalized, no prefix twice, longest prefix first (so '/movies/new' wins over '/movies' and both over the root). */
function checkedMounts(list: readonly CatalogMount[]): Mount[] {
  const mounts = list.map(normalizeMount);
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.prefix)) throw new TwinframeError('TF_CONFIG_INVALID', `two mounts share the prefix ${JSON.stringify(m.prefix || '/')}`);
    seen.add(m.prefix);
  }
  return mounts.sort((a, b) => b.segments.length - a.segments.length);
}

export class AssetCatalog {
  #mounts: Mount[];
  readonly #cacheDir: string;
  readonly #pool: IndexPool;
  readonly #log: Logger;
  /** Real path → the file as it was when found unusable (undefined: it was gone). */
  readonly #unavailable = new Map<string, Promise<FileIdentity | undefined>>();

  constructor(options: AssetCatalogOptions) {
    this.#mounts = checkedMounts(options.mounts);
    this.#cacheDir = path.resolve(options.cacheDir);
    this.#pool = options.pool;
    this.#log = (options.logger ?? silentLogger).child({ component: 'catalog' });
  }

  /** A reload: later look-ups use these mounts; sessions already open keep their files. */
  setMounts(mounts: readonly CatalogMount[]): void {
    this.#mounts = checkedMounts(mounts);
  }

  get mounts(): ReadonlyArray<{ prefix: string; dir: string }> {
    return this.#mounts.map((m) => ({ prefix: m.prefix, dir: m.dir }));
  }

  /** What the index pool did: builds, cache hits, remembered failures (for tests and operators). */
  get indexStats(): Readonly<IndexPoolStats> {
    return this.#pool.stats;
  }

  #route(segments: readonly string[]): Mount | undefined {
    return this.#mounts.find((m) => m.segments.length <= segments.length && m.segments.every((s, i) => s === segments[i]));
  }

  /** Decodes a URL path into safe segments, or refuses it as a bad request. */
  #parse(urlPath: string): string[] {
    const bad = (problem: string): TwinframeError =>
      new TwinframeError('TF_RTSP_BAD_REQUEST', `bad asset path ${JSON.stringify(urlPath)}: ${problem}`, { urlPath, problem });
    if (typeof urlPath !== 'string' || !urlPath.startsWith('/')) throw bad('not an absolute URL path');
    // The query and fragment are not part of the file name (a literal '?' in a name arrives as %3F).
    const end = urlPath.search(/[?#]/);
    const raw = end < 0 ? urlPath : urlPath.slice(0, end);
    if (raw === '/') return [];
    return raw
      .slice(1)
      .split('/')
      .map((part) => {
        // A raw backslash is refused before decoding so no platform ever sees it as a separator.
        if (part.includes('\\')) throw bad('backslash');
        let segment: string;
        try {
          segment = decodeURIComponent(part);
        } catch {
          throw bad('malformed percent-encoding');
        }
        const problem = segmentProblem(segment);
        if (problem !== undefined) throw bad(problem);
        return segment;
      });
  }

  /** Maps a URL path to an indexed asset inside a mount, or refuses it. */
  async resolve(urlPath: string): Promise<CatalogAsset> {
    const segments = this.#parse(urlPath);
    // One answer for every kind of "no": a client cannot tell a missing file from one it may not see.
    const notFound = (reason: string, details: Record<string, unknown> = {}): TwinframeError => {
      this.#log.debug({ urlPath, reason, ...details }, 'asset not found');
      return new TwinframeError('TF_RTSP_NOT_FOUND', `no asset at ${JSON.stringify(urlPath)}`, { urlPath, reason });
    };
    const mount = this.#route(segments);
    if (mount === undefined) throw notFound('no mount matches');
    const rel = segments.slice(mount.segments.length);
    if (rel.length === 0 || !isAssetName(rel[rel.length - 1])) throw notFound('not a .ts file name');

    const candidate = path.join(mount.dir, ...rel);
    // Segments carry no separators or dot segments, so this holds by construction; checked anyway.
    if (!isInside(mount.dir, candidate)) throw notFound('outside the mount');

    let mountReal: string;
    let real: string;
    try {
      mountReal = await fs.promises.realpath(mount.dir);
    } catch (err) {
      this.#log.warn({ dir: mount.dir, err }, 'mount directory is not accessible');
      throw notFound('mount directory is not accessible');
    }
    try {
      real = await fs.promises.realpath(candidate);
    } catch (err) {
      throw notFound('no such file', { errno: (err as NodeJS.ErrnoException).code });
    }
    if (!isInside(mountReal, real)) {
      this.#log.warn({ urlPath, path: candidate, target: real, mount: mountReal }, 'refused a symlink that leaves its mount');
      throw notFound('symlink leaves the mount');
    }
    if (!isAssetName(path.basename(real))) throw notFound('target is not a .ts file');
    const unusable = this.#unavailable.get(real);
    if (unusable !== undefined) {
      // Only to decide whether it changed since it was found unusable; the pool checks the file it opens.
      const now = await fs.promises.stat(real, { bigint: true }).then(identityOf, () => undefined);
      const then = await unusable;
      if (then !== undefined && now !== undefined && sameFile(then, now)) throw notFound('found unusable while streaming; unchanged since');
      if (this.#unavailable.get(real) === unusable) this.#unavailable.delete(real); // changed: indexed afresh below
    }

    // The pool opens the file once (never blocking, never through a link) and
    // checks the open file: a regular file. A check of the name here would only
    // describe whatever the name meant at that moment.
    const name = urlName(segments);
    try {
      const indexed = await this.#pool.index(real, this.#cacheDir);
      const { indexPath, meta, timesOffset, picturesOffset, pictureCount, identity } = indexed;
      return { name, path: real, indexPath, meta, timesOffset, picturesOffset, pictureCount, identity };
    } catch (err) {
      if (isTwinframeError(err)) {
        this.#log.warn({ asset: name, path: real, code: err.code, details: err.details }, err.message);
      } else {
        this.#log.error({ asset: name, path: real, err }, 'indexing failed');
      }
      throw err;
    }
  }

  /**
   * An asset turned out unusable while it streamed (truncated, unreadable on
   * both data paths): refuse it, as not found, until its file changes; then it
   * is indexed afresh.
   */
  markUnavailable(assetPath: string, reason: string): void {
    const real = path.resolve(assetPath);
    this.#log.info({ path: real, reason }, 'asset refused until its file changes');
    this.#unavailable.set(real, fs.promises.stat(real, { bigint: true }).then(identityOf, () => undefined));
  }

  /** Every .ts file in every mount, by URL path; nothing is indexed. */
  async list(): Promise<CatalogEntry[]> {
    const out: CatalogEntry[] = [];
    for (const mount of this.#mounts) {
      let root: string;
      try {
        root = await fs.promises.realpath(mount.dir);
      } catch (err) {
        this.#log.warn({ dir: mount.dir, err }, 'mount directory is not accessible');
        continue;
      }
      await this.#walk(mount, root, root, mount.segments, new Set([root]), out);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async #walk(
    mount: Mount,
    root: string,
    dir: string,
    segments: string[],
    visited: Set<string>,
    out: CatalogEntry[],
  ): Promise<void> {
    if (segments.length - mount.segments.length > MAX_WALK_DEPTH) return;
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (err) {
      this.#log.warn({ dir, err }, 'cannot read directory');
      return;
    }
    for (const entry of entries) {
      // List only what resolve() would accept under the same name.
      if (segmentProblem(entry.name) !== undefined) continue;
      const childSegments = [...segments, entry.name];
      if (this.#route(childSegments) !== mount) continue; // shadowed by a longer mount prefix
      const full = path.join(dir, entry.name);
      let real = full;
      let st: fs.Stats;
      try {
        if (entry.isSymbolicLink()) {
          real = await fs.promises.realpath(full);
          if (!isInside(root, real)) continue;
        } else if (!entry.isDirectory() && !entry.isFile()) {
          continue;
        }
        st = await fs.promises.stat(real);
      } catch {
        continue; // dangling link, or gone since readdir
      }
      if (st.isDirectory()) {
        if (visited.has(real)) continue; // a link back up the tree
        visited.add(real);
        await this.#walk(mount, root, real, childSegments, visited, out);
      } else if (st.isFile() && isAssetName(entry.name) && isAssetName(path.basename(real))) {
        out.push({ name: urlName(childSegments), path: real, size: st.size });
      }
    }
  }
}
