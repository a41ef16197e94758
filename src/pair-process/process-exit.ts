// Has a process died? The standby asks when its private link closes: the kernel
// closes a dead process's sockets at once, but a link can also close while its
// primary runs on (a broken connection), and that must never be taken for a
// death. Read from /proc: no such pid, or only its zombie left, is a death.

import { readFileSync } from 'node:fs';

/** How often waitExit looks again. */
const POLL_MS = 1;

/** The process is gone: no such pid, or it has exited and only its zombie entry is left. */
export function processGone(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return true;
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state === 'Z' || state === 'X' || state === 'x';
}

/** Resolves true as soon as the process is gone, false if it still runs after `timeoutMs`. */
export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (processGone(pid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
