// The root pino logger. Components take a child: rootLogger.child({ component: 'rtsp' }).
import fs from 'node:fs';
import { pino, type Logger } from 'pino';
import { DroppingDestination, type WriteChunk } from './log-destination.js';

export type { Logger };

const STDERR_FD = 2;

/**
 * Logs go to `destination`: a file descriptor (default stderr), a file path (appended
 * to) or a function that writes the bytes. A log that cannot be written never stops
 * the server: lines are dropped and counted (see log-destination.ts), and one warning
 * says how many once writing works again.
 */
export function createLogger(options: { level?: string; destination?: number | string | WriteChunk } = {}): Logger {
  const level = options.level ?? process.env.TWINFRAME_LOG_LEVEL ?? 'info';
  const destination = options.destination ?? STDERR_FD;
  const target = typeof destination === 'string' ? fs.openSync(destination, 'a') : destination;
  const write: WriteChunk = typeof target === 'function' ? target : (chunk, done) => fs.write(target, chunk, done);
  const stream = new DroppingDestination({
    write,
    onRecovered: (dropped, firstError) => {
      reporter.warn({ dropped, firstError }, `${dropped} log line(s) could not be written and were dropped (first error ${firstError})`);
    },
  });
  const logger = pino({ level, base: { app: 'twinframe' } }, stream);
  // Its own level: the report is written even when the root logs errors only.
  const reporter = logger.child({ component: 'log' }, { level: 'warn' });
  return logger;
}

/** A logger that drops everything: for tests and benchmarks that assert on behaviour, not logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
