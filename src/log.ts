// The root pino logger. Components take a child: rootLogger.child({ component: 'rtsp' }).
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; destination?: number | string } = {}): Logger {
  const level = options.level ?? process.env.TWINFRAME_LOG_LEVEL ?? 'info';
  return pino({ level, base: { app: 'twinframe' } }, pino.destination({ dest: options.destination ?? 2, sync: false }));
}

/** A logger that drops everything: for tests and benchmarks that assert on behaviour, not logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
