// The RTSP users in the configuration file (auth.users): add or change one,
// remove one, list them. A password is turned into hashes here and forgotten:
// HA1 for Digest MD5 and SHA-256 (for the realm the file names) and a salted
// scrypt hash for Basic. Writes go through updateConfig (atomic, validated).

import { stat } from 'node:fs/promises';
import { digestHa1, hashBasicSecret } from '../rtsp/auth.js';
import { loadConfig, updateConfig } from './store.js';
import type { TwinframeConfig } from './schema.js';

type StoredUser = TwinframeConfig['auth']['users'][number];

/** What `user list` shows of a user: never a hash. */
export interface UserView {
  readonly name: string;
  readonly realm: string;
  readonly digest: readonly string[];
  readonly basic: boolean;
  /** The access prefixes that name this user ('' is every asset). */
  readonly prefixes: readonly string[];
}

export interface UserChange {
  readonly user: string;
  readonly change: 'added' | 'password changed' | 'removed';
  readonly authEnabled: boolean;
  /** The file can be read by other users than its owner (it holds password hashes). */
  readonly readableByOthers: boolean;
}

/** Password hashes are as good as the password for Digest: a new file is made owner-only. */
const SECRET_FILE_MODE = 0o600;

async function readableByOthers(file: string): Promise<boolean> {
  return ((await stat(file)).mode & 0o044) !== 0;
}

export async function addUser(file: string, name: string, password: string): Promise<UserChange> {
  const cfg = await loadConfig(file);
  const realm = cfg.auth.realm;
  const user: StoredUser = {
    name,
    realm,
    md5: digestHa1('MD5', name, realm, password),
    sha256: digestHa1('SHA-256', name, realm, password),
    basic: await hashBasicSecret(password),
  };
  const exists = cfg.auth.users.some((u) => u.name === name);
  const users = exists ? cfg.auth.users.map((u) => (u.name === name ? user : u)) : [...cfg.auth.users, user];
  const next = await updateConfig(file, { auth: { users } }, { newFileMode: SECRET_FILE_MODE });
  return { user: name, change: exists ? 'password changed' : 'added', authEnabled: next.auth.enabled, readableByOthers: await readableByOthers(file) };
}

/** Removes the user and its name from every access rule (a rule left with nobody lets nobody play). Undefined: no such user. */
export async function removeUser(file: string, name: string): Promise<UserChange | undefined> {
  const cfg = await loadConfig(file);
  if (!cfg.auth.users.some((u) => u.name === name)) return undefined;
  const next = await updateConfig(file, {
    auth: {
      users: cfg.auth.users.filter((u) => u.name !== name),
      access: cfg.auth.access.map((r) => ({ ...r, users: r.users.filter((u) => u !== name) })),
    },
  });
  return { user: name, change: 'removed', authEnabled: next.auth.enabled, readableByOthers: await readableByOthers(file) };
}

export async function listUsers(file: string): Promise<{ enabled: boolean; realm: string; basic: boolean; users: UserView[] }> {
  const { auth } = await loadConfig(file);
  return {
    enabled: auth.enabled,
    realm: auth.realm,
    basic: auth.basic,
    users: auth.users.map((u) => ({
      name: u.name,
      realm: u.realm,
      digest: ['MD5', 'SHA-256'],
      basic: u.basic !== undefined,
      prefixes: auth.access.filter((r) => r.users.includes(u.name)).map((r) => r.prefix),
    })),
  };
}
