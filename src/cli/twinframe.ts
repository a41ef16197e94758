#!/usr/bin/env -S node --single-threaded-gc
// `twinframe`: start the server. Reads the configuration file (defaults run out
// of the box on the bundled sample asset), applies command-line overrides, and
// runs until SIGINT or SIGTERM, then stops every thread and socket it started,
// within STOP_DEADLINE_MS whatever happens (a log that cannot be written included).
// SIGHUP reloads the configuration (as `twinframectl reload` does).

import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, defaultConfigPath } from '../config/store.js';
import { parseConfig, type TwinframeConfig, type TwinframeConfigInput } from '../config/schema.js';
import { createLogger, type Logger } from '../log.js';
import { startServer } from '../server.js';
import { isTwinframeError } from '../errors.js';

/** Stopping takes well under a second; past this the process exits anyway. */
const STOP_DEADLINE_MS = 4_500; // above the engine's own bound on stopping its threads (2 s + 1.5 s)
/** How long the last log lines may take to go out before the process exits. */
const LOG_FLUSH_MS = 1_000;

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
  return n;
}

interface CliOptions {
  config: string;
  host?: string;
  port?: number;
  adminSocket?: string;
  faultInjection?: boolean;
  logLevel?: string;
  logFormat?: 'auto' | 'json' | 'pretty';
  metricsListen?: string;
  role?: 'primary' | 'standby';
}

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('twinframe')
    .description('Video-on-demand server with two lockstep data paths and lossless sub-millisecond failover')
    .option('-c, --config <file>', 'configuration file (created on the first admin change)', defaultConfigPath())
    .option('--host <address>', 'RTSP listen address (overrides rtsp.host)')
    .option('-p, --port <port>', 'RTSP port (overrides rtsp.port)', integer)
    .option('--admin-socket <path>', 'admin Unix socket (overrides admin.socketPath)')
    .option('--fault-injection', 'enable twinframectl inject-fault (overrides admin.faultInjection)')
    .option('--log-level <level>', 'pino log level (overrides log.level)')
    .addOption(new Option('--log-format <format>', 'log lines: json, pretty (readable), auto: pretty on a terminal (overrides log.format)').choices(['auto', 'json', 'pretty']))
    .option('--metrics-listen <host:port>', "Prometheus metrics and /healthz listener, '' for none (overrides metrics.listen)")
    .addOption(new Option('--role <role>', 'role in a process pair: primary, or standby of the primary on pair.link (overrides pair.role; needs pair in the configuration)').choices(['primary', 'standby']))
    .showHelpAfterError();
  program.parse(argv);
  const opts = program.opts<CliOptions>();

  let config: TwinframeConfig;
  try {
    config = await readConfig(opts);
  } catch (err) {
    process.stderr.write(`twinframe: ${(err as Error).message}\n`);
    return 2;
  }

  const logger = createLogger({ level: config.log.level, format: config.log.format });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ config, configPath: opts.config, logger, loadConfig: () => readConfig(opts) });
  } catch (err) {
    const code = isTwinframeError(err) ? ` [${err.code}]` : '';
    process.stderr.write(`twinframe: cannot start${code}: ${(err as Error).message}\n`);
    await flushLog(logger);
    return 1;
  }

  if (server.pairProcess?.role === 'standby') {
    process.stdout.write(`twinframe: standby of the primary on ${config.pair?.link}; serves rtsp://${config.rtsp.host}:${config.rtsp.port}/ once it takes over (admin socket ${config.admin.socketPath})\n`);
  } else {
    const assets = await server.catalog.list().catch(() => []);
    const base = `rtsp://${config.rtsp.host}:${server.rtsp.port}`;
    process.stdout.write(`twinframe: serving ${assets.length} asset(s) on ${base}/ (admin socket ${config.admin.socketPath})\n`);
    for (const a of assets) process.stdout.write(`  ${base}${a.name}    e.g. ffplay ${base}${a.name}\n`);
  }
  if (server.metrics) {
    const { address, port } = server.metrics;
    const host = address.includes(':') ? `[${address}]` : address;
    process.stdout.write(`twinframe: metrics on http://${host}:${port}/metrics, health on http://${host}:${port}/healthz\n`);
  }

  const reload = (): void => {
    // The server logs what it applied and what needs a restart; a refused file is logged here.
    server.reload().catch((err: Error) => logger.error({ err: err.message, issues: isTwinframeError(err) ? err.details.issues : undefined }, 'reload refused; the running configuration stays'));
  };
  process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.off('SIGHUP', reload);
  process.stdout.write('twinframe: stopping\n');
  let stage = 'closing the server';
  const deadline = setTimeout(() => {
    process.stderr.write(`twinframe: still ${stage} after ${STOP_DEADLINE_MS} ms; exiting anyway\n`);
    process.exit(1);
  }, STOP_DEADLINE_MS);
  await server.close();
  stage = 'writing the last log lines';
  await flushLog(logger);
  clearTimeout(deadline);
  return 0;
}

/** The configuration file with the command line's overrides (they win at start and on every reload). */
async function readConfig(opts: CliOptions): Promise<TwinframeConfig> {
  const fromFile = await loadConfig(opts.config);
  return parseConfig({
    ...fromFile,
    rtsp: { ...fromFile.rtsp, ...(opts.host !== undefined ? { host: opts.host } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) },
    admin: { ...fromFile.admin, ...(opts.adminSocket ? { socketPath: opts.adminSocket } : {}), ...(opts.faultInjection ? { faultInjection: true } : {}) },
    log: { ...fromFile.log, ...(opts.logLevel ? { level: opts.logLevel } : {}), ...(opts.logFormat ? { format: opts.logFormat } : {}) },
    metrics: { ...fromFile.metrics, ...(opts.metricsListen !== undefined ? { listen: opts.metricsListen } : {}) },
    ...pairOverride(fromFile.pair, opts.role),
  }, 'command line');
}

/** `--role` sets pair.role; without a `pair` section there is no pair to take a role in. */
function pairOverride(pair: TwinframeConfigInput['pair'], role: CliOptions['role']): { pair?: TwinframeConfigInput['pair'] } {
  if (role === undefined) return pair === undefined ? {} : { pair };
  if (pair === undefined) throw new Error('--role needs a pair section (link, secret) in the configuration');
  return { pair: { ...pair, role } };
}

/** Resolves once the lines logged so far are written or dropped, or after LOG_FLUSH_MS. */
function flushLog(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LOG_FLUSH_MS);
    logger.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// The lines printed here are a courtesy: a full disk or a closed terminal on stdout
// or stderr must not become an uncaught 'error' event that stops the server.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

// Exit explicitly: a log write stuck on a stalled pipe must not keep the process alive.
main(process.argv).then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`twinframe: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
