// The end of a test file leaves nothing running: ava runs each file in its own
// child process, so every thread, child process and socket still open after the
// file's own after-hooks was leaked by one of its tests. Call leakCheck(test)
// as the file's LAST line, so its hook runs after the file's other after-hooks.

import type { TestFn } from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';

/** Handle types of process.getActiveResourcesInfo() that are sockets, servers or child processes. */
const SOCKET_TYPES = new Set(['TCPSocketWrap', 'TCPServerWrap', 'UDPWrap', 'PipeWrap', 'PipeServerWrap', 'ProcessWrap']);

/** Threads may take a moment to exit after terminate() resolved, children to be reaped: poll, never sleep blindly. */
const SETTLE_MS = 3000;

function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

function childPids(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      return []; // the thread exited while we read
    }
  });
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '(gone)';
  }
}

function socketCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (SOCKET_TYPES.has(type)) counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

// The baseline is taken when the test file imports this module, before any of its
// hooks or tests run. One file-system call first starts libuv's thread pool,
// whose threads start on first use and never exit; stdout and stderr open their
// handles on first use too.
await access('/');
for (const stream of [process.stdout, process.stderr]) stream.write('');
const baseline = { threads: threadCount(), children: new Set(childPids()), sockets: socketCounts() };

function leftovers(): string[] {
  const found: string[] = [];
  const threads = threadCount();
  if (threads > baseline.threads) found.push(`${threads - baseline.threads} thread(s) more than before the file (worker threads not terminated)`);
  for (const pid of childPids()) {
    if (!baseline.children.has(pid)) found.push(`child process ${pid}: ${commandOf(pid)}`);
  }
  for (const [type, n] of socketCounts()) {
    const before = baseline.sockets.get(type) ?? 0;
    if (n > before) found.push(`${n - before} ${type} handle(s) still open`);
  }
  return found;
}

export function leakCheck(test: TestFn): void {
  test.after.always('no worker thread, child process or socket of this file is left', async (t) => {
    const deadline = Date.now() + SETTLE_MS;
    let found = leftovers();
    while (found.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      found = leftovers();
    }
    t.deepEqual(found, [], 'left running after the file ended');
  });
}
