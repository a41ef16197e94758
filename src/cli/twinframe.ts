#!/usr/bin/env node
// `twinframe`: start the server. Reads the configuration file (defaults run out
// of the box on the bundled sample asset), applies command-line overrides, and
// runs until SIGINT or SIGTERM, then stops every thread and socket it started.

import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, defaultConfigPath } from '../config/store.js';
import { parseConfig, type TwinframeConfig } from '../config/schema.js';
import { createLogger } from '../log.js';
import { startServer } from '../server.js';
import { isTwinframeError } from '../errors.js';

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
    .showHelpAfterError();
  program.parse(argv);
  const opts = program.opts<CliOptions>();

  let config: TwinframeConfig;
  try {
    const fromFile = await loadConfig(opts.config);
    config = parseConfig({
      ...fromFile,
      rtsp: { ...fromFile.rtsp, ...(opts.host !== undefined ? { host: opts.host } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) },
      admin: { ...fromFile.admin, ...(opts.adminSocket ? { socketPath: opts.adminSocket } : {}), ...(opts.faultInjection ? { faultInjection: true } : {}) },
      log: { ...fromFile.log, ...(opts.logLevel ? { level: opts.logLevel } : {}) },
    }, 'command line');
  } catch (err) {
    process.stderr.write(`twinframe: ${(err as Error).message}\n`);
    return 2;
  }

  const logger = createLogger({ level: config.log.level });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ config, configPath: opts.config, logger });
  } catch (err) {
    const code = isTwinframeError(err) ? ` [${err.code}]` : '';
    process.stderr.write(`twinframe: cannot start${code}: ${(err as Error).message}\n`);
    return 1;
  }

  const assets = await server.catalog.list().catch(() => []);
  const base = `rtsp://${config.rtsp.host}:${config.rtsp.port}`;
  process.stdout.write(`twinframe: serving ${assets.length} asset(s) on ${base}/ (admin socket ${config.admin.socketPath})\n`);
  for (const a of assets) process.stdout.write(`  ${base}${a.name}    e.g. ffplay ${base}${a.name}\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('twinframe: stopping\n');
  await server.close();
  logger.flush();
  return 0;
}

main(process.argv).then((code) => { process.exitCode = code; }, (err: Error) => {
  process.stderr.write(`twinframe: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
