// `npm test`: runs ava with a marker in the environment every process of the
// suite inherits (test files, servers, ffmpeg, twinframectl, `ip netns exec`),
// then checks that nothing the suite started outlived it: no process with the
// marker, no network namespace named with it (test/helpers/netns.ts puts it in
// the name). Other suites running on the machine carry other markers.
// Arguments are passed to ava.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

const SETTLE_MS = 5000;
const run = randomBytes(4).toString('hex');
const marker = `TWINFRAME_TEST_RUN=${run}`;

const ava = spawnSync('npx', ['ava', ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, TWINFRAME_TEST_RUN: run } });

function read(file) {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return ''; // gone, or not ours to read
  }
}

function leftovers() {
  const found = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    if (read(`/proc/${pid}/environ`).split('\0').includes(marker)) {
      found.push(`process ${pid}: ${read(`/proc/${pid}/cmdline`).replaceAll('\0', ' ').trim()}`);
    }
  }
  let namespaces = '';
  try {
    namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    // no iproute2: the suite could not have made a namespace either
  }
  for (const line of namespaces.split('\n')) {
    if (line.includes(`-${run}-`)) found.push(`network namespace ${line.split(' ')[0]}`);
  }
  return found;
}

// A process killed at the suite's end can take a moment to be reaped: poll, then judge.
const deadline = Date.now() + SETTLE_MS;
let found = leftovers();
while (found.length > 0 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  found = leftovers();
}
if (found.length > 0) {
  console.error(`check-leftovers: the test suite left running:\n  ${found.join('\n  ')}`);
} else {
  console.log('check-leftovers: no process or network namespace of the suite is left');
}
process.exitCode = ava.status !== 0 ? (ava.status ?? 1) : found.length > 0 ? 1 : 0;
