// The one asset every session of both servers plays: a constant-bitrate TS made
// by scripts/make-sample-asset.sh (ffmpeg) at the wanted mux rate and length, or
// a given file; its nominal rate comes from its PCRs.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pcrAt, TS_PACKET_BYTES } from './analysis.js';

export interface CapacityAsset {
  /** Directory holding only the asset (twinframe's mount). */
  readonly dir: string;
  readonly name: string;
  readonly file: string;
  readonly source: string;
  /** From the first and last PCR: bytes between them over their time. */
  readonly bitsPerSecond: number;
  readonly durationS: number;
}

/** Bit rate of a CBR transport stream from its first and last PCR (any PID). */
export function pcrBitrate(ts: Uint8Array): number {
  let first: { off: number; pcr: number } | undefined;
  let last: { off: number; pcr: number } | undefined;
  for (let off = 0; off + TS_PACKET_BYTES <= ts.length; off += TS_PACKET_BYTES) {
    const pcr = pcrAt(ts, off);
    if (pcr < 0) continue;
    first ??= { off, pcr };
    last = { off, pcr };
  }
  if (first === undefined || last === undefined || last.pcr <= first.pcr) return Number.NaN;
  return ((last.off - first.off) * 8) / ((last.pcr - first.pcr) / 27e6);
}

export function prepareAsset(root: string, tmp: string, given: string | undefined, muxrate: number, durationS: number): CapacityAsset {
  const dir = path.join(tmp, 'asset');
  mkdirSync(dir, { recursive: true });
  const name = 'capacity.ts';
  const file = path.join(dir, name);
  let source: string;
  if (given !== undefined) {
    copyFileSync(given, file);
    source = `given: ${given}`;
  } else {
    const r = spawnSync('bash', [path.join(root, 'scripts/make-sample-asset.sh'), file], {
      encoding: 'utf8', timeout: 30 * 60_000, env: { ...process.env, MUXRATE: String(muxrate), DURATION: String(durationS) },
    });
    if (r.status !== 0 || !existsSync(file)) {
      throw new Error(`asset generation failed (${(r.error?.message ?? r.stderr.trim()) || `exit ${r.status}`}); install ffmpeg or give --asset FILE (a CBR .ts long enough for the phase)`);
    }
    source = `scripts/make-sample-asset.sh, MUXRATE=${muxrate} DURATION=${durationS}`;
  }
  const bitsPerSecond = pcrBitrate(readFileSync(file));
  if (!Number.isFinite(bitsPerSecond)) throw new Error(`${file}: no two PCRs to take its bit rate from`);
  return { dir, name, file, source, bitsPerSecond, durationS: (statSync(file).size * 8) / bitsPerSecond };
}
