// The root pino logger. Components take a child: rootLogger.child({ component: 'rtsp' }).
// Lines are pino's JSON for machines (journald, a file, a pipe) or, for a person
// at a terminal, readable lines made by pino-pretty from the same JSON, in this
// thread, on their way to the same bounded destination (log-destination.ts).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import tty from 'node:tty';
import { pino, type Logger } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
import { DroppingDestination, type WriteChunk } from './log-destination.js';

export type { Logger };

const STDERR_FD = 2;

/** How lines are written: 'auto' is 'pretty' on a terminal and 'json' anywhere else. */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * The format for a log written to `destination`: 'auto' is pretty only when it is
 * a terminal (the log goes to stderr: `twinframe > out.txt` still logs readable
 * lines to the terminal, `twinframe 2> log.json` writes JSON).
 */
export function resolveLogFormat(format: LogFormat, destination: number | string | WriteChunk = STDERR_FD): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return typeof destination === 'number' && tty.isatty(destination) ? 'pretty' : 'json';
}

/** pino-pretty turns one JSON line into a readable one: time, level, [component] message, then the other fields. */
function prettifier(colorize: boolean): (line: string) => string {
  // Loaded only when wanted: JSON logging (services, tests) never pays for it.
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  const options: PrettyOptions = {
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,app,component',
    messageFormat: '{if component}[{component}] {end}{msg}',
  };
  return prettyFactory(options);
}

/**
 * Logs go to `destination`: a file descriptor (default stderr), a file path (appended
 * to) or a function that writes the bytes. A log that cannot be written never stops
 * the server: lines are dropped and counted (see log-destination.ts), and one warning
 * says how many once writing works again.
 */
export function createLogger(options: { level?: string; format?: LogFormat; destination?: number | string | WriteChunk } = {}): Logger {
  const level = options.level ?? process.env.TWINFRAME_LOG_LEVEL ?? 'info';
  const destination = options.destination ?? STDERR_FD;
  const format = resolveLogFormat(options.format ?? 'json', destination);
  const target = typeof destination === 'string' ? fs.openSync(destination, 'a') : destination;
  const write: WriteChunk = typeof target === 'function' ? target : (chunk, done) => fs.write(target, chunk, done);
  const stream = new DroppingDestination({
    write,
    onRecovered: (dropped, firstError) => {
      reporter.warn({ dropped, firstError }, `${dropped} log line(s) could not be written and were dropped (first error ${firstError})`);
    },
  });
  const pretty = format === 'pretty' ? prettifier(typeof destination === 'number' && tty.isatty(destination)) : undefined;
  const prettyStream = pretty === undefined ? undefined : {
    write: (line: string) => stream.write(prettyOrRaw(pretty, line)),
    flush: (cb: () => void) => stream.flush(cb),
  };
  const logger = pino({ level, base: { app: 'twinframe' } }, prettyStream ?? stream);
  // Its own level: the report is written even when the root logs errors only.
  const reporter = logger.child({ component: 'log' }, { level: 'warn' });
  return logger;
}

/** A line pino-pretty cannot format is written as it came: a log line is never lost to its formatting. */
function prettyOrRaw(pretty: (line: string) => string, line: string): string {
  try {
    return pretty(line);
  } catch {
    return line;
  }
}

/** A logger that drops everything: for tests and benchmarks that assert on behaviour, not logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
