// Freeze one thread of this process with the cgroup v1 freezer: it stops
// wherever it is and uses no CPU until thawed, as a thread blocked in a system
// call does. For tests of the rule that fails a path that made no progress
// without running (the CPU-time rule must not fire for it).

import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const FREEZER = '/sys/fs/cgroup/freezer';

/** Why threads cannot be frozen here, or undefined when they can. */
export function freezerUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the cgroup freezer needs root';
  if (!existsSync(`${FREEZER}/tasks`)) return `no cgroup v1 freezer at ${FREEZER}`;
  return undefined;
}

/** Freeze thread `tid` in a cgroup of its own; returns thaw(), which is idempotent and removes the cgroup. */
export function freezeThread(tid: number): () => void {
  const dir = `${FREEZER}/tf-test-${randomBytes(4).toString('hex')}`;
  mkdirSync(dir);
  let thawed = false;
  const thaw = (): void => {
    if (thawed) return;
    thawed = true;
    writeFileSync(`${dir}/freezer.state`, 'THAWED');
    try {
      writeFileSync(`${FREEZER}/tasks`, String(tid)); // back to the root group
    } catch {
      // the thread has ended
    }
    rmdirSync(dir);
  };
  try {
    writeFileSync(`${dir}/tasks`, String(tid));
    writeFileSync(`${dir}/freezer.state`, 'FROZEN');
  } catch (err) {
    thaw();
    throw err;
  }
  return thaw;
}
