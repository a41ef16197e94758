// A twinframe server's JSON log (pino, on its stderr) as the benchmarks that run
// the real process read it: the 'data path failed' lines, the warnings, and
// whatever was not JSON (a crash's stack).

import { readFileSync } from 'node:fs';

export interface LogFailure { readonly time: number; readonly path?: string; readonly cause?: string; readonly wasActive?: boolean; readonly detectionMs?: number }

/** 'sending handed over to the on-time path': a late sender was relieved, nobody failed. */
export interface LogHandover { readonly time: number; readonly from?: string; readonly to?: string; readonly cause?: string }

export interface LogSummary {
  readonly failures: LogFailure[];
  readonly handovers: LogHandover[];
  /** Messages at warn and above, by text, with their count. */
  readonly warnings: Record<string, number>;
  /** Lines that were not pino JSON (a crash's stack, say): the first ones. */
  readonly other: string[];
}

export function readLog(file: string): LogSummary {
  const summary: LogSummary = { failures: [], handovers: [], warnings: {}, other: [] };
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return summary;
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let entry: { level?: number; time?: number; msg?: string; path?: string; cause?: string; wasActive?: boolean; detectionMs?: number; from?: string; to?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      if (summary.other.length < 20) summary.other.push(line);
      continue;
    }
    if (entry.msg === 'data path failed') {
      summary.failures.push({ time: entry.time ?? Number.NaN, path: entry.path, cause: entry.cause, wasActive: entry.wasActive, detectionMs: entry.detectionMs });
    }
    if (entry.msg === 'sending handed over to the on-time path') {
      summary.handovers.push({ time: entry.time ?? Number.NaN, from: entry.from, to: entry.to, cause: entry.cause });
    }
    if ((entry.level ?? 0) >= 40) summary.warnings[entry.msg ?? '?'] = (summary.warnings[entry.msg ?? '?'] ?? 0) + 1;
  }
  return summary;
}
