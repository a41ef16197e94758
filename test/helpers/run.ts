// Run a command to its end and take its standard output: for tests that drive
// real programs (ffmpeg, twinframectl, a viewer in a network namespace).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built twinframectl (dist/src/cli/twinframectl.js), for tests that drive the real CLI. */
export const TWINFRAMECTL = fileURLToPath(new URL('../../src/cli/twinframectl.js', import.meta.url));

/** stdout of `argv`; rejects with the end of its stderr unless it exits 0. SIGKILLed after `limitMs`. */
export function runToString(argv: readonly string[], limitMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(' ')} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

/** A program running in the background (see start). */
export interface Run {
  /** Its exit code (-1: it could not start) and the last `keepStderr` characters of its stderr. */
  readonly done: Promise<{ code: number | null; stderr: string }>;
  /** SIGKILL, if it still runs. */
  kill(): void;
}

/** Start `argv` (stdout ignored), SIGKILLed after `limitMs` whatever happens. */
export function start(argv: readonly string[], limitMs: number, keepStderr = 2_000_000): Run {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('latin1');
    if (stderr.length > 2 * keepStderr) stderr = stderr.slice(-keepStderr);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.once('error', (err) => { clearTimeout(timer); resolve({ code: -1, stderr: String(err) }); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
  return { done, kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); } };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `argv` to its end, feeding it `stdin` (else none), whatever its exit code; SIGKILLed after `limitMs`. */
export function runCapture(argv: readonly string[], options: { stdin?: string; limitMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.stdin.on('error', () => {}); // a child that exits without reading its stdin
    child.stdin.end(options.stdin ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 30_000);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/**
 * GStreamer's own race at its end: on its way out (EOS after SIGINT, or the server's BYE)
 * rtspsrc may still write a request (its PAUSE) on the connection it is tearing down and
 * exit 1 with "Could not write to resource", once in a few dozen runs on a loaded machine.
 * True for exactly that exit: code 1, that message, and no sign of any other trouble.
 */
export function isGstreamerLateWrite(code: number | null, stderr: string): boolean {
  return code === 1 && /Could not write to resource/.test(stderr) && !/Could not (read|receive|connect)|Unhandled error|Not Found/.test(stderr);
}
