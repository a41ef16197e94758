// Path-restart churn (issue 15, RSS): where does the server's memory go when a
// data path is restarted over and over? The real `twinframe` process (as the
// soak starts it), optionally with sessions playing, and --restarts faults
// back to back into the sending path (each once the pair is protected again).
// Every --every restarts: VmRSS, the process's open descriptors and threads, and
// /proc/<pid>/smaps_rollup's anonymous memory. See bench/README.md, section soak.
//
//   node dist/bench/soak/churn.js [--restarts 300] [--every 20] [--sessions 0] [--faults crash]

import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailureFaultKinds, type FailureFaultKind } from '../../src/shared/commands.js';
import { pcrBitrate } from '../capacity/asset.js';
import { rssMiB, startTwinframe, stopAllChildren, stopChild, type RunningServer } from '../capacity/servers.js';
import { codeVersion } from '../failover/report.js';
import { Flags } from '../flags.js';
import { sleep } from '../lib.js';
import { ROOT, injectFault, protectedPair, startReceivers, stopReceivers, waitProtected, type ReceiverProc } from './server-control.js';

const USAGE = `usage: node dist/bench/soak/churn.js [options]
  --restarts N   path restarts (faults) in all (default 300)
  --every N      a sample every N restarts (default 20)
  --sessions N   sessions playing meanwhile (default 0; over 2 receiver processes)
  --faults LIST  fault kinds, in turn (default crash; any of ${FailureFaultKinds.join(',')})
  --label TEXT   a name for this run in the output (default none)
  --out DIR      where the JSON goes (default bench/results)`;

interface Sample {
  readonly restarts: number;
  readonly rssMiB: number;
  /** smaps_rollup Anonymous, MiB. */
  readonly anonMiB: number;
  readonly fds: number;
  readonly threads: number;
}

function count(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return Number.NaN;
  }
}

function anonMiB(pid: number | undefined): number {
  try {
    return Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}

function sample(server: RunningServer, restarts: number): Sample {
  const pid = server.child.proc.pid;
  return { restarts, rssMiB: rssMiB(pid), anonMiB: anonMiB(pid), fds: count(`/proc/${pid}/fd`), threads: count(`/proc/${pid}/task`) };
}

async function main(): Promise<number> {
  const flags = Flags.parse(process.argv.slice(2), { restarts: 'string', every: 'string', sessions: 'string', faults: 'string', label: 'string', out: 'string' }, USAGE);
  const restarts = Math.floor(flags.number('restarts', { positive: true }) ?? 300);
  const every = Math.floor(flags.number('every', { positive: true }) ?? 20);
  const sessions = Math.floor(flags.number('sessions') ?? 0);
  const faults = (flags.list('faults') ?? ['crash']) as FailureFaultKind[];
  for (const k of faults) if (!(FailureFaultKinds as readonly string[]).includes(k)) throw new Error(`unknown fault kind '${k}'\n${USAGE}`);
  const label = flags.string('label') ?? '';
  const out = path.resolve(flags.string('out') ?? path.join(ROOT, 'bench/results'));
  const asset = path.join(ROOT, 'assets/sample.ts');
  const bitsPerSecond = pcrBitrate(readFileSync(asset));
  const started = new Date();
  const code = codeVersion(ROOT);
  console.log(`twinframe churn — ${started.toISOString()}, node ${process.version}, ${code}${label ? `, ${label}` : ''}; ${restarts} restarts (${faults.join(', ')}), ${sessions} sessions, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '-'}`);

  const tmp = await mkdtemp(path.join(tmpdir(), 'tf-churn-'));
  const samples: Sample[] = [];
  const problems: string[] = [];
  let server: RunningServer | undefined;
  let receivers: ReceiverProc[] = [];
  try {
    const maxStreams = sessions + 10;
    server = await startTwinframe({
      root: ROOT, assetDir: path.dirname(asset), assetName: path.basename(asset), tmp, maxStreams,
      bandwidthKbps: Math.ceil((maxStreams * bitsPerSecond * 2) / 1000), faultInjection: true, batchWindowUs: undefined,
    });
    // Receivers end by themselves at their deadline: generous, a loaded machine restarts a path in 10-30 s.
    if (sessions > 0) receivers = await startReceivers(server, sessions, 2, asset, 1, restarts * 60 + 600);
    await sleep(5000);
    samples.push(sample(server, 0));
    console.log(`  0 restarts: ${JSON.stringify(samples[0])}`);
    for (let i = 1; i <= restarts; i++) {
      if (server.child.exit !== undefined) throw new Error(`the server exited (${JSON.stringify(server.child.exit)})`);
      const x = await injectFault(server, i, faults[i % faults.length], 0, () => false);
      if (!x.ok) problems.push(`#${i}: ${x.note}`);
      if (i % every === 0) {
        // Let the last restart settle (the replacement has opened every session, its first GCs ran) before the sample.
        if (!protectedPair(await waitProtected(server, () => false))) problems.push(`sample at ${i}: the pair was not protected`);
        await sleep(2000);
        samples.push(sample(server, i));
        console.log(`  ${samples.at(-1)!.restarts} restarts: ${JSON.stringify(samples.at(-1))}`);
      }
    }
  } finally {
    await stopReceivers(receivers);
    if (server) await stopChild(server.child);
    await rm(tmp, { recursive: true, force: true });
  }
  const first = samples[0];
  const line = (k: keyof Sample): string => samples.map((s) => (k === 'fds' || k === 'threads' ? String(s[k]) : s[k].toFixed(1))).join(' ');
  console.log(`restarts: ${samples.map((s) => s.restarts).join(' ')}`);
  console.log(`RSS MiB:  ${line('rssMiB')}`);
  console.log(`anon MiB: ${line('anonMiB')}`);
  console.log(`fds:      ${line('fds')}`);
  console.log(`threads:  ${line('threads')}`);
  const last = samples.at(-1)!;
  const half = samples[Math.floor(samples.length / 2)];
  console.log(`RSS ${first.rssMiB.toFixed(1)} → ${last.rssMiB.toFixed(1)} MiB over ${last.restarts} restarts; second half ${((last.rssMiB - half.rssMiB) / Math.max(1, last.restarts - half.restarts) * 1024).toFixed(0)} KiB per restart`
    + `; fds ${first.fds} → ${last.fds}; threads ${first.threads} → ${last.threads}`);
  for (const s of problems.slice(0, 5)) console.log(`  ! ${s}`);
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `churn-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ bench: 'churn', startedAt: started.toISOString(), node: process.version, code, label, restarts, sessions, faults, mallocArenaMax: process.env.MALLOC_ARENA_MAX, samples, problems }, null, 1));
  console.log(`JSON: ${path.relative(process.cwd(), file)}`);
  return 0;
}

main().then((exitCode) => process.exit(exitCode), (err: Error) => {
  process.stderr.write(`churn: ${err.stack ?? err.message}\n`);
  void stopAllChildren().finally(() => process.exit(1));
});
