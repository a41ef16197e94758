// A network namespace joined to this host by a veth pair: "another host" for a
// test, with traffic that never leaves the machine. Each pair gets unique names
// and its own private /30 (10.213.x.y), and is removed by remove() (idempotent),
// which tests call from t.teardown / after.always.

import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface VethNamespace {
  readonly name: string;
  /** The pair's end on this host, and its address. */
  readonly hostInterface: string;
  readonly hostAddress: string;
  /** The end inside the namespace, and its address. */
  readonly nsAddress: string;
  /** argv prefix that runs a command inside the namespace. */
  readonly exec: readonly string[];
  remove(): Promise<void>;
}

/** Why namespaces cannot be made here (not root, no iproute2), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return "iproute2's ip command is missing (apt-get install iproute2)";
  }
  return undefined;
}

/** A network namespace name that carries the suite's run marker, so scripts/check-leftovers.mjs finds one left behind. */
export function testNamespaceName(tag: string): string {
  return `tf-test-${process.env.TWINFRAME_TEST_RUN ?? 'adhoc'}-${tag}`;
}

export async function createVethNamespace(): Promise<VethNamespace> {
  const tag = randomBytes(4).toString('hex');
  const name = testNamespaceName(tag);
  const hostInterface = `tf${tag}h`; // interface names: at most 15 bytes
  const nsInterface = `tf${tag}n`;
  const { hostAddress, nsAddress } = await freeSubnet();
  const remove = async (): Promise<void> => {
    // Deleting either end deletes the pair; deleting the namespace deletes its end.
    await run('ip', ['link', 'del', hostInterface]).catch(() => undefined);
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  };
  const inNs = ['ip', 'netns', 'exec', name];
  try {
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', nsInterface]);
    await run('ip', ['link', 'set', nsInterface, 'netns', name]);
    await run('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostInterface]);
    await run('ip', ['link', 'set', hostInterface, 'up']);
    await run(inNs[0], [...inNs.slice(1), 'ip', 'addr', 'add', `${nsAddress}/30`, 'dev', nsInterface]);
    await run(inNs[0], [...inNs.slice(1), 'ip', 'link', 'set', nsInterface, 'up']);
    await run(inNs[0], [...inNs.slice(1), 'ip', 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, hostInterface, hostAddress, nsAddress, exec: inNs, remove };
}

/** A /30 in a 10.213.x.0/24 that no address or route of this host touches yet. */
async function freeSubnet(): Promise<{ hostAddress: string; nsAddress: string }> {
  const used = (await run('ip', ['-4', '-o', 'addr', 'show'])).stdout + (await run('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout;
  for (let attempt = 0; attempt < 100; attempt++) {
    const [third, quad] = randomBytes(2);
    const prefix = `10.213.${third}.`;
    if (used.includes(prefix)) continue;
    const base = 4 * (quad % 64);
    return { hostAddress: `${prefix}${base + 1}`, nsAddress: `${prefix}${base + 2}` };
  }
  throw new Error('no free /24 in 10.213.0.0/16');
}
