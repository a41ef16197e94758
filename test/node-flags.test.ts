// The Node flags a twinframe process needs (src/shared/node-flags.ts) are the
// ones every way of starting it uses, and a server started without them says so.

import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../src/shared/node-flags.js';
import { freeTcpPort } from './helpers/free-port.js';
import { leakCheck } from './helpers/leak-check.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TWINFRAME = path.join(ROOT, 'dist/src/cli/twinframe.js');

test('npm start, the twinframe bin, ava\'s workers and this test process start node with the server\'s flags', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string }; ava: { nodeArguments?: string[] } };
  const bin = (await readFile(TWINFRAME, 'utf8')).split('\n')[0];
  t.true(SERVER_NODE_FLAGS.length > 0);
  for (const flag of SERVER_NODE_FLAGS) {
    t.true(pkg.scripts.start.split(' ').includes(flag), `npm start: ${pkg.scripts.start}`);
    t.true(bin.startsWith('#!/usr/bin/env -S node ') && bin.split(' ').includes(flag), `bin: ${bin}`);
    t.true(pkg.ava.nodeArguments?.includes(flag), 'ava nodeArguments');
    t.true(process.execArgv.includes(flag), `this test process: ${process.execArgv.join(' ')}`);
  }
});

/** Start the real server with `nodeFlags`; the log lines (stderr) it writes until its supervisor has booted. */
async function bootLines(nodeFlags: readonly string[]): Promise<Array<{ level: number; msg: string }>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-flags-'));
  try {
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ media: { cacheDir: path.join(dir, 'cache') }, admin: { socketPath: path.join(dir, 'admin.sock') }, metrics: { listen: '' } }));
    const child = spawn(process.execPath, [...nodeFlags, TWINFRAME, '--config', config, '--port', String(await freeTcpPort())], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const lines: Array<{ level: number; msg: string }> = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      for await (const text of createInterface({ input: child.stderr })) {
        if (!text.startsWith('{')) continue;
        const line = JSON.parse(text) as { level: number; msg: string; thread?: string };
        lines.push(line);
        if (line.msg.startsWith('supervisor runs') || line.msg.startsWith('real-time threads')) break;
      }
    } finally {
      clearTimeout(timer);
      child.kill('SIGTERM');
      await exited;
    }
    return lines;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test.serial('a server started without the flags warns that a GC can hold two cores; with them it does not', async (t) => {
  const withFlags = await bootLines(SERVER_NODE_FLAGS);
  const last = withFlags.at(-1)?.msg ?? '';
  if (last.startsWith('supervisor runs without')) {
    t.log(`no real-time priority here (${last}): the flags do not matter then, and nothing is warned`);
    t.false(withFlags.some((l) => l.msg.startsWith('real-time threads')));
    return;
  }
  t.is(last, 'supervisor runs with real-time priority', 'the boot line');
  t.false(withFlags.some((l) => l.level >= 40 && l.msg.startsWith('real-time threads')), 'no warning with the flags');
  const without = await bootLines([]);
  const warning = without.find((l) => l.msg.startsWith('real-time threads'));
  t.truthy(warning, without.map((l) => l.msg).join(' | '));
  t.is(warning?.level, 40, 'a warning');
});

leakCheck(test);
