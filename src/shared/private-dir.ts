// A directory the server keeps state in (index cache, configuration, admin
// socket) must be its own: another user who owns it, or may write in it, could
// plant files the server trusts (an index that controls pacing, a socket that
// reads operator commands). One check for every such directory.

import { lstat, mkdir } from 'node:fs/promises';
import { TwinframeError } from '../errors.js';

/**
 * Creates `dir` (and missing parents) mode 0700, then refuses it unless it is a
 * real directory owned by this process's user and writable by nobody else.
 * `role` names it in the message ("cache directory"); `fix` says what to do.
 */
export async function ensurePrivateDirectory(dir: string, role: string, fix: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  const self = process.getuid?.();
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const refuse = (why: string): never => {
    throw new TwinframeError('TF_CONFIG_INVALID', `${role} ${dir} ${why} (owner uid ${st.uid}, mode ${mode}): ${fix}`, { dir, uid: st.uid, mode });
  };
  if (!st.isDirectory()) refuse('is not a directory (a symbolic link?)');
  if (self !== undefined && st.uid !== self) refuse(`is owned by uid ${st.uid}, not by this server's uid ${self}`);
  if ((st.mode & 0o022) !== 0) refuse(`is writable by others (mode ${(st.mode & 0o777).toString(8)})`);
}
