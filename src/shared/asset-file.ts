// How every thread opens an asset file (the catalog's indexer, both data paths):
// one open that cannot block or be redirected, then checks on the open file
// itself, never on its name. A name is only a way to reach a file: between a
// check by name and a later open, the name may come to mean something else.

import fs from 'node:fs';

/**
 * Flags for opening an asset or its index for reading.
 * O_NONBLOCK: opening a FIFO (or a device) returns at once instead of waiting
 * for a writer, so a swapped-in FIFO cannot park a thread in open(2) where no
 * terminate() reaches it; fstat then refuses it. Reads of a regular file
 * ignore the flag.
 * O_NOFOLLOW: the catalog hands out real paths (every symlink resolved, mount
 * points that are links included), so a link at the last component can only
 * mean the name was replaced since; following it could open a device or a file
 * outside every mount before any check runs. Links in earlier components are
 * not covered by the flag; the device+inode check on the opened file is.
 */
export const ASSET_OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW;

/** Open errors that describe the name or the file (every opener gets them alike), not the opener's I/O. */
export const ASSET_NAME_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES', 'EPERM']);

/** The file the catalog approved: what a data path must find when it opens the asset. */
export interface AssetIdentity {
  /** st_dev and st_ino, decimal: exact, where a number rounds above 2^53 (overlayfs sets high inode bits). */
  readonly dev: string;
  readonly ino: string;
  /** Size and mtime of the file as indexed. */
  readonly size: number;
  readonly mtimeMs: number;
}

/** st_dev and st_ino of an exact (bigint) stat, as AssetIdentity holds them. */
export function inodeOf(st: fs.BigIntStats): { dev: string; ino: string } {
  return { dev: st.dev.toString(), ino: st.ino.toString() };
}

/** What a non-regular file is, for refusals: 'a FIFO', 'a directory', ... */
export function fileKind(st: fs.Stats | fs.BigIntStats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'an unknown kind of file';
}
