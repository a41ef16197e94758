// A network namespace for multicast tests: its loopback up and the whole
// multicast range routed to it, so a group sent and joined inside it never
// reaches an interface of the host. Removed when the test ends (t.teardown).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { testNamespaceName } from './netns.js';

const run = promisify(execFile);

/** Make the namespace; returns the argv prefix of `ip` that runs a command inside it. */
export async function multicastNamespace(t: { teardown(fn: () => Promise<void>): void }): Promise<string[]> {
  const ns = testNamespaceName(randomBytes(4).toString('hex'));
  t.teardown(() => run('ip', ['netns', 'del', ns]).then(() => undefined, () => undefined));
  await run('ip', ['netns', 'add', ns]);
  const inNs = ['netns', 'exec', ns];
  await run('ip', [...inNs, 'ip', 'link', 'set', 'lo', 'up']);
  await run('ip', [...inNs, 'ip', 'route', 'add', '224.0.0.0/4', 'dev', 'lo']);
  return inNs;
}
