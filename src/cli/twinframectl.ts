#!/usr/bin/env node
// twinframectl: the operator's command line for a running twinframe. Parses the
// command, sends it over the admin socket, prints the result as aligned tables (or
// JSON with --json), and exits with a code scripts can rely on:
//   0 ok · 1 refused by the server · 2 usage error · 3 cannot connect (or connection lost)

import type { ProcessPairStatus } from '../pair-process/pair-status.js';
import type { RoleSwitchResult } from '../pair-process/role-switch.js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { AdminClient, AdminConnectionError, AdminReplyError } from '../admin/client.js';
import type {
  AssetInfo,
  BroadcastRemoved,
  BroadcastView,
  FailoverRecord,
  FaultInjectionResult,
  HeartbeatSettings,
  LimitsSettings,
  PairStatesResult,
  ReloadResult,
  SessionView,
  StatusResult,
  WatchEvent,
} from '../admin/backend.js';
import type { AdminCommand, CommandArgs } from '../admin/protocol.js';
import { FaultKinds } from '../shared/commands.js';
import { PATH_NAMES, type PathName } from '../shared/layout.js';
import type { UserChange } from '../config/users.js';
import { readPassword } from './password.js';

export const EXIT = { ok: 0, refused: 1, usage: 2, connect: 3 } as const;

interface GlobalOptions {
  socket?: string;
  json?: boolean;
  timeout: number;
}

// --- formatting ------------------------------------------------------------------------

/** Columns aligned on the widest cell, two spaces apart; the last column is not padded. */
function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

function formatPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

const ms = (us: number): string => `${(us / 1000).toFixed(2)} ms`;

function formatDuration(sec: number): string {
  const s = Math.floor(sec % 60);
  const m = Math.floor(sec / 60) % 60;
  const h = Math.floor(sec / 3600);
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m ${String(s).padStart(2, '0')}s` : m > 0 ? `${m}m ${String(s).padStart(2, '0')}s` : `${s}s`;
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Which pair an event or result concerns, as a suffix. */
const onPair = (pair: number): string => `  [pair ${pair}]`;

function formatFailover(f: FailoverRecord): string {
  const parts = [`${f.from ?? '-'} → ${f.to ?? 'nobody'}`, `cause: ${f.cause}`];
  if (f.detectionLatencyUs !== null) parts.push(`detected in ${ms(f.detectionLatencyUs)}`);
  if (f.switchLatencyUs !== null) parts.push(`switched in ${ms(f.switchLatencyUs)}`);
  return `${f.at}  ${parts.join(', ')}${onPair(f.pair)}`;
}

/**
 * One table of every pair's paths (a PAIR column once there are several pairs),
 * then the facts: per pair where there are several.
 */
function formatStatus(s: StatusResult): string {
  const several = s.pairs.length > 1;
  const rows = s.pairs.flatMap((pair) => PATH_NAMES.map((p) => {
    const path = pair.paths[p];
    const cells = [p, path.namedState, path.failoverType, path.failoverState, path.sending ? 'yes' : 'no', String(path.heartbeats), String(path.restarts), path.threadId === null ? '-' : String(path.threadId)];
    return several ? [String(pair.pair), ...cells] : cells;
  }));
  const headers = ['PATH', 'STATE', 'TYPE', 'FO_STATE', 'SENDING', 'HEARTBEATS', 'RESTARTS', 'THREAD'];
  const table = formatTable(several ? ['PAIR', ...headers] : headers, rows);
  const perPair = (value: (p: StatusResult['pairs'][number]) => string): string => (several ? s.pairs.map((p) => `pair ${p.pair}: ${value(p)}`).join(', ') : value(s.pairs[0]));
  const hb = s.heartbeat;
  const facts = formatPairs([
    ['active', perPair((p) => (p.active === null ? 'none (no path online)' : `${p.active} (epoch ${p.epoch})`))],
    ['heartbeat', `${hb.periodUs} µs × ${hb.maxMissed} missed (worst-case detection ${ms(hb.worstCaseDetectionUs)})`],
    ['handovers', `${perPair((p) => String(p.handovers))} (a late sender handed over from, nobody failed)`],
    ['failovers', `${perPair((p) => String(p.failovers))} (a path failed and was restarted)`],
    ['sessions', several ? `${s.sessions} (${perPair((p) => String(p.sessions))})` : String(s.sessions)],
    ['broadcasts', `${s.broadcasts.table} in the table, ${s.broadcasts.sessions} of the sessions carry one`],
    ['uptime', formatDuration(s.uptimeSec)],
    ['fault injection', s.faultInjection ? 'enabled' : 'disabled'],
    ['last failover', s.lastFailover === null ? 'none' : formatFailover(s.lastFailover)],
    ...(s.processPair ? [['process pair', formatProcessPair(s.processPair)] as [string, string]] : []),
  ]);
  return `${table}\n\n${facts}`;
}

/** The process pair's line of status: this process's role and state, and its peer's. */
function formatRoleSwitch(r: RoleSwitchResult): string {
  const figures = [r.settleMs === null ? '' : `sends settled in ${r.settleMs.toFixed(2)} ms`, r.switchMs === null ? '' : `switched in ${r.switchMs.toFixed(2)} ms`].filter(Boolean);
  const other = r.peerPid === null ? 'the other process' : `process ${r.peerPid}`;
  return `this process is the ${r.role} now, ${other} the ${r.role === 'primary' ? 'standby' : 'primary'}; ${r.sessions} session(s)${figures.length > 0 ? `; ${figures.join(', ')}` : ''}`;
}

function formatProcessPair(p: ProcessPairStatus): string {
  const peer = `peer ${p.peer.state}${p.peer.pid === null ? '' : ` (pid ${p.peer.pid})`}`;
  const takeover = p.takeover === null ? '' : `, took over ${p.takeover.sessions} session(s) at ${p.takeover.at} in ${p.takeover.switchMs.toFixed(2)} ms by the ${p.takeover.switchedBy}`;
  return `${p.role}, ${p.state}, ${p.sending ? 'sending' : 'not sending'}, ${peer}, link ${p.link}${takeover}`;
}

function formatSessions(list: readonly SessionView[]): string {
  if (list.length === 0) return 'no sessions';
  return formatTable(['ID', 'ASSET', 'CLIENT', 'TRANSPORT', 'STATE', 'POSITION', 'SENT', 'KBPS', 'STARTED', 'PAIR', 'KIND'], list.map((x) => [
    x.id, x.asset, x.client, x.transport, x.state, `${x.positionSec.toFixed(1)} s`, String(x.datagramsSent), String(x.bitrateKbps), x.startedAt, String(x.pair),
    x.kind === 'broadcast' ? `broadcast ${x.broadcast}` : 'viewer',
  ]));
}

function formatBroadcasts(list: readonly BroadcastView[]): string {
  if (list.length === 0) return 'no broadcasts';
  return formatTable(['NAME', 'ASSET', 'TO', 'AT', 'LOOP', 'TRANSPORT', 'STATE', 'STATUS', 'SESSION', 'NEXT TRY', 'ERROR'], list.map((b) => [
    b.name, b.asset, b.to, b.at, b.loop ? 'yes' : 'no', b.transport, b.state, b.status, b.sessionId ?? '-', b.nextRetry ?? '-', b.error ?? '',
  ]));
}

function formatBroadcast(b: BroadcastView): string {
  return `broadcast ${b.name}: ${b.state}, ${b.status}${b.sessionId === null ? '' : ` (session ${b.sessionId})`}${b.error === null ? '' : `: ${b.error}`}${b.nextRetry === null ? '' : ` (next try at ${b.nextRetry})`}`;
}

function formatAssets(list: readonly AssetInfo[]): string {
  if (list.length === 0) return 'no assets';
  return formatTable(['NAME', 'SIZE', 'DURATION', 'KBPS', 'INDEXED'], list.map((x) => [
    x.name, formatBytes(x.sizeBytes), x.durationSec === null ? '-' : formatDuration(x.durationSec), x.bitrateKbps === null ? '-' : String(x.bitrateKbps), x.indexed ? 'yes' : 'no',
  ]));
}

function formatStates(r: PairStatesResult): string {
  return `pair ${r.pair}\n${formatTable(['PATH', 'STATE'], [['a', r.states.a], ['b', r.states.b]])}`;
}

function formatHeartbeat(h: HeartbeatSettings): string {
  return formatPairs([['period', `${h.periodUs} µs`], ['max missed', String(h.maxMissed)], ['worst-case detection', ms(h.worstCaseDetectionUs)]]);
}

function formatLimits(l: LimitsSettings): string {
  return formatPairs([['max streams', String(l.maxStreams)], ['MPEG bandwidth', `${l.mpegBandwidthKbps} kbps`], ['server bandwidth', `${l.serverBandwidthKbps} kbps`]]);
}

function formatFault(f: FaultInjectionResult): string {
  const delay = f.delayMs === undefined ? '' : ` (${f.delayMs} ms per read)`;
  return `injected ${f.kind}${delay} into path ${f.path} of pair ${f.pair} at ${f.at}`;
}

function formatReload(r: ReloadResult): string {
  const lines = [`reloaded ${r.source}`, `applied: ${r.applied.length === 0 ? 'nothing changed' : r.applied.join(', ')}`];
  for (const f of r.restartNeeded) lines.push(`needs a restart: ${f.path} (running ${f.running}, file ${f.file})`);
  return lines.join('\n');
}

function formatEvent(e: WatchEvent): string {
  const pad = e.type.padEnd(8);
  switch (e.type) {
    case 'state': return `${e.at}  ${pad}  a: ${e.states.a}  b: ${e.states.b}  (${e.cause})${onPair(e.pair)}`;
    case 'failover': return `${e.at}  ${pad}  ${formatFailover(e).slice(e.at.length + 2)}`;
    case 'handover': return `${e.at}  ${pad}  ${e.from} → ${e.to}, the sender was ${e.lateMs.toFixed(2)} ms late (nobody failed)${onPair(e.pair)}`;
    case 'session': {
      const detail = e.change === 'failed' ? ` (${e.scope} fault): ${e.reason}` : e.pair === undefined ? '' : onPair(e.pair);
      const broadcast = e.change !== 'failed' && e.broadcast !== undefined ? ` (broadcast ${e.broadcast})` : '';
      return `${e.at}  ${pad}  ${e.id} ${e.change}${e.asset === undefined ? '' : ` ${e.asset}`}${broadcast}${detail}`;
    }
    case 'broadcast': return `${e.at}  ${pad}  ${e.name} ${e.change}${e.detail === undefined ? '' : `: ${e.detail}`}`;
    case 'asset': return `${e.at}  ${pad}  ${e.asset} ${e.change}: ${e.reason}`;
    case 'config': return `${e.at}  ${pad}  changed ${e.changed.join(', ')}`;
    case 'path': return `${e.at}  ${pad}  ${e.path} ${e.change}${e.detail === undefined ? '' : `: ${e.detail}`}${onPair(e.pair)}`;
    default: {
      // An event this client does not know (a newer server): shown raw.
      const other = e as { at?: unknown; type?: unknown };
      const at = typeof other.at === 'string' ? other.at : '';
      const type = typeof other.type === 'string' ? other.type : '?';
      return `${at}  ${type.padEnd(8)}  ${JSON.stringify(e)}`;
    }
  }
}

// --- running a command ---------------------------------------------------------------------

/** `--socket`, else $TWINFRAME_ADMIN_SOCKET, else the configuration's admin.socketPath. */
async function resolveSocket(opts: GlobalOptions): Promise<string> {
  if (opts.socket !== undefined && opts.socket !== '') return opts.socket;
  const fromEnv = process.env.TWINFRAME_ADMIN_SOCKET;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  // Loaded only here: the schema library costs start-up time that --socket does not need.
  const { defaultAdminSocketPath } = await import('../config/schema.js');
  const { defaultConfigPath, loadConfig } = await import('../config/store.js');
  try {
    return (await loadConfig(defaultConfigPath())).admin.socketPath;
  } catch (err) {
    process.stderr.write(`twinframectl: warning: ${(err as Error).message.split('\n')[0]}; using the default socket\n`);
    return defaultAdminSocketPath();
  }
}

/** The configuration file the user commands edit: --config, else $TWINFRAME_CONFIG, else the package's. */
async function configFile(o: { config?: string }): Promise<string> {
  if (o.config !== undefined && o.config !== '') return o.config;
  const { defaultConfigPath } = await import('../config/store.js');
  return defaultConfigPath();
}

/**
 * After a change to the file: reload the running server so it applies at once. A
 * server that does not run is no error: it reads the file when it starts.
 */
async function reloadAfterChange(command: Command, file: string): Promise<string> {
  const opts = command.optsWithGlobals<GlobalOptions>();
  let socket = opts.socket ?? process.env.TWINFRAME_ADMIN_SOCKET ?? '';
  if (socket === '') {
    const { loadConfig } = await import('../config/store.js');
    socket = (await loadConfig(file)).admin.socketPath;
  }
  let client: AdminClient;
  try {
    client = await AdminClient.connect(socket, { timeoutMs: opts.timeout });
  } catch {
    return `no server answers on ${socket}: the change applies when it starts`;
  }
  try {
    const result = await client.request('reload', {});
    return `the running server reloaded ${result.source}: applied ${result.applied.length === 0 ? 'nothing new' : result.applied.join(', ')}`;
  } finally {
    client.close();
  }
}

async function runUserChange(command: Command, o: { config?: string; reload?: boolean }, change: (file: string) => Promise<UserChange | undefined>, missing: string): Promise<void> {
  const opts = command.optsWithGlobals<GlobalOptions>();
  try {
    const file = await configFile(o);
    const result = await change(file);
    if (result === undefined) {
      process.stderr.write(`twinframectl: ${missing}\n`);
      process.exitCode = EXIT.refused;
      return;
    }
    const reloaded = o.reload === false ? 'not reloaded (--no-reload)' : await reloadAfterChange(command, file);
    if (opts.json === true) {
      print(JSON.stringify({ ...result, file, reload: reloaded }, null, 2));
    } else {
      print(`user ${result.user} ${result.change} in ${file}\n${reloaded}`);
      if (!result.authEnabled) print('note: auth.enabled is false in this file: viewers are not asked to log in until it is true');
    }
    if (result.readableByOthers) process.stderr.write(`twinframectl: warning: ${file} holds password hashes and other users can read it (chmod 600)\n`);
    process.exitCode = EXIT.ok;
  } catch (err) {
    process.exitCode = reportError(err, opts.json === true);
  }
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function reportError(err: unknown, json: boolean): number {
  if (err instanceof AdminReplyError) {
    process.stderr.write(`twinframectl: ${err.code}: ${err.message}\n`);
    if (json) print(JSON.stringify({ ok: false, error: { code: err.code, message: err.message, details: err.details } }, null, 2));
    return EXIT.refused;
  }
  if (err instanceof AdminConnectionError) {
    process.stderr.write(`twinframectl: ${err.message}\n`);
    if (json) print(JSON.stringify({ ok: false, error: { code: err.code, message: err.message, details: { socketPath: err.socketPath } } }, null, 2));
    return EXIT.connect;
  }
  process.stderr.write(`twinframectl: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.refused;
}

async function runRequest<C extends Exclude<AdminCommand, 'watch'>>(
  command: Command,
  cmd: C,
  args: CommandArgs<C>,
  format: (result: never) => string,
): Promise<void> {
  const opts = command.optsWithGlobals<GlobalOptions>();
  let client: AdminClient | null = null;
  try {
    client = await AdminClient.connect(await resolveSocket(opts), { timeoutMs: opts.timeout });
    const result = await (client.request as (c: C, a: CommandArgs<C>) => Promise<unknown>)(cmd, args);
    print(opts.json === true ? JSON.stringify(result, null, 2) : format(result as never));
    process.exitCode = EXIT.ok;
  } catch (err) {
    process.exitCode = reportError(err, opts.json === true);
  } finally {
    client?.close();
  }
}

async function runWatch(command: Command): Promise<void> {
  const opts = command.optsWithGlobals<GlobalOptions>();
  let client: AdminClient;
  try {
    client = await AdminClient.connect(await resolveSocket(opts), { timeoutMs: opts.timeout });
  } catch (err) {
    process.exitCode = reportError(err, opts.json === true);
    return;
  }
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    client.close();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for await (const event of client.watch()) {
      print(opts.json === true ? JSON.stringify(event) : formatEvent(event));
    }
    if (interrupted) {
      process.exitCode = EXIT.ok;
    } else {
      process.stderr.write('twinframectl: the server closed the connection\n');
      process.exitCode = EXIT.connect;
    }
  } catch (err) {
    process.exitCode = interrupted ? EXIT.ok : reportError(err, opts.json === true);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client.close();
  }
}

// --- the command line ------------------------------------------------------------------------

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('must be a positive integer');
  }
  return Number(value);
}

const pathArgument = (): Argument => new Argument('<path>', 'data path').choices(PATH_NAMES);

function pairIndex(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a pair number (0, 1, …)');
  return Number(value);
}

/** `--pair <n>` for the commands that act on a path or a pair; without it the server takes pair 0. */
const pairOption = (): Option => new Option('--pair <n>', 'the pair of data paths to act on (default: 0)').argParser(pairIndex);

/** The pair argument of a request: only when --pair was given. */
const pairArg = (o: { pair?: number }): { pair?: number } => (o.pair === undefined ? {} : { pair: o.pair });

function buildProgram(): Command {
  const program = new Command('twinframectl')
    .description('Control a running twinframe server through its admin socket.')
    .option('-s, --socket <path>', 'admin socket (default: $TWINFRAME_ADMIN_SOCKET, else admin.socketPath of the configuration)')
    .option('--json', 'print results as JSON')
    .addOption(new Option('--timeout <ms>', 'reply timeout in milliseconds (0: none)').default(10_000).argParser((v) => (v === '0' ? 0 : positiveInt(v))))
    .addHelpText('after', `
Exit codes: 0 ok, 1 refused by the server, 2 usage error, 3 cannot connect or connection lost.`)
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true);

  program.command('status').description('every pair\'s paths and failover states, who sends, failovers, heartbeat settings and the last failover')
    .action((_o, cmd: Command) => runRequest(cmd, 'status', {}, formatStatus));

  program.command('sessions').description('the open streaming sessions and the pair of data paths of each')
    .action((_o, cmd: Command) => runRequest(cmd, 'sessions', {}, formatSessions));

  program.command('assets').description('the assets that can be streamed')
    .action((_o, cmd: Command) => runRequest(cmd, 'assets', {}, formatAssets));

  program.command('set-config-type').description('designate a path primary, secondary or undefined ([0079], [0081])')
    .addArgument(pathArgument())
    .addArgument(new Argument('<type>', 'failover role').choices(['primary', 'secondary', 'undef']))
    .addOption(pairOption())
    .action((path: PathName, type: 'primary' | 'secondary' | 'undef', o: { pair?: number }, cmd: Command) => runRequest(cmd, 'set_config_type', { path, type, ...pairArg(o) }, formatStates));

  const pathCommands = [
    ['start-streaming', 'start_streaming', 'bring a path online ([0080], [0086])'],
    ['stop-streaming', 'stop_streaming', 'take a path offline ([0088])'],
    ['failover-sync', 'failover_sync', 'synchronize a secondary with the pair\'s parameters ([0082])'],
    ['failover-unsync', 'failover_unsync', 'take a synchronized secondary offline for changes ([0085])'],
  ] as const;
  for (const [name, wire, description] of pathCommands) {
    program.command(name).description(description)
      .addArgument(pathArgument())
      .addOption(pairOption())
      .action((path: PathName, o: { pair?: number }, cmd: Command) => runRequest(cmd, wire, { path, ...pairArg(o) }, formatStates));
  }

  program.command('heartbeat').description('show, or with options change, the heartbeat period and max missed heartbeats')
    .option('--period-us <n>', 'heartbeat period in microseconds', positiveInt)
    .option('--max-missed <n>', 'missed heartbeats before a failover', positiveInt)
    .action((o: { periodUs?: number; maxMissed?: number }, cmd: Command) => {
      const args: CommandArgs<'heartbeat'> = {};
      if (o.periodUs !== undefined) args.periodUs = o.periodUs;
      if (o.maxMissed !== undefined) args.maxMissed = o.maxMissed;
      return runRequest(cmd, 'heartbeat', args, formatHeartbeat);
    });

  program.command('limits').description('show, or with options change, the stream limits ([0083])')
    .option('--max-streams <n>', 'maximum number of streams', positiveInt)
    .option('--mpeg-bandwidth-kbps <n>', 'bandwidth for MPEG streams, kbit/s', positiveInt)
    .option('--server-bandwidth-kbps <n>', 'total server bandwidth, kbit/s', positiveInt)
    .action((o: { maxStreams?: number; mpegBandwidthKbps?: number; serverBandwidthKbps?: number }, cmd: Command) => {
      const args: CommandArgs<'limits'> = {};
      if (o.maxStreams !== undefined) args.maxStreams = o.maxStreams;
      if (o.mpegBandwidthKbps !== undefined) args.mpegBandwidthKbps = o.mpegBandwidthKbps;
      if (o.serverBandwidthKbps !== undefined) args.serverBandwidthKbps = o.serverBandwidthKbps;
      return runRequest(cmd, 'limits', args, formatLimits);
    });

  program.command('failover').description('switch roles in a pair: the Secondary becomes Primary, without losing a datagram')
    .addOption(pairOption())
    .action((o: { pair?: number }, cmd: Command) => runRequest(cmd, 'failover', pairArg(o), formatFailover));

  const pair = program.command('pair').description('the process pair: a hot-standby twinframe process');
  pair.command('switch').description('switch the roles of the two processes without losing or repeating a datagram (asked of either)')
    .action((_o, cmd: Command) => runRequest(cmd, 'pair_switch', {}, formatRoleSwitch));

  program.command('reload').description('re-read the configuration file and apply what can change without dropping a stream (as SIGHUP)')
    .action((_o, cmd: Command) => runRequest(cmd, 'reload', {}, formatReload));

  const user = program.command('user').description('the RTSP users in the configuration file (passwords are stored hashed; never printed)')
    .option('-c, --config <file>', 'configuration file (default: $TWINFRAME_CONFIG, else the package\'s .twinframe/config.json)')
    .option('--no-reload', 'do not ask the running server to reload afterwards');
  user.command('add').description('add a user, or change its password: read from a prompt, or the first line of stdin when it is not a terminal')
    .argument('<name>', 'user name')
    .action(async (name: string, _o, cmd: Command) => {
      const o = cmd.parent!.opts<{ config?: string; reload?: boolean }>();
      let password: string;
      try {
        password = await readPassword(name);
      } catch (err) {
        process.stderr.write(`twinframectl: ${(err as Error).message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      const { addUser } = await import('../config/users.js');
      await runUserChange(cmd, o, (file) => addUser(file, name, password), '');
    });
  user.command('remove').description('remove a user (and its name from every access rule)')
    .argument('<name>', 'user name')
    .action(async (name: string, _o, cmd: Command) => {
      const { removeUser } = await import('../config/users.js');
      await runUserChange(cmd, cmd.parent!.opts<{ config?: string; reload?: boolean }>(), (file) => removeUser(file, name), `no user ${name}`);
    });
  user.command('list').description('the users: names, hash kinds and access prefixes, never a secret')
    .action(async (_o, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      try {
        const { listUsers } = await import('../config/users.js');
        const list = await listUsers(await configFile(cmd.parent!.opts<{ config?: string }>()));
        if (opts.json === true) {
          print(JSON.stringify(list, null, 2));
        } else {
          const head = `auth ${list.enabled ? 'enabled' : 'disabled'}, realm ${list.realm}, Basic ${list.basic ? 'allowed' : 'refused'}`;
          const rows = list.users.map((u) => [u.name, u.digest.join(' '), u.basic ? 'yes' : 'no', u.prefixes.length === 0 ? '-' : u.prefixes.map((p) => (p === '' ? '/' : p)).join(' ')]);
          print(list.users.length === 0 ? `${head}\nno users` : `${head}\n${formatTable(['USER', 'DIGEST', 'BASIC', 'ACCESS RULES'], rows)}`);
        }
        process.exitCode = EXIT.ok;
      } catch (err) {
        process.exitCode = reportError(err, opts.json === true);
      }
    });

  const broadcast = program.command('broadcast').description('the broadcast table: scheduled sessions both paths carry, kept in the configuration');
  broadcast.command('add').description('add a broadcast: it starts at --at (default now) and resumes at its scheduled position after a restart')
    .argument('<name>', 'its name (rtsp://host/broadcast/<name>)')
    .requiredOption('--asset <path>', 'the asset\'s URL path, e.g. /movies/a.ts')
    .requiredOption('--to <address:port>', 'destination: a multicast group or one receiver, even RTP port')
    .option('--at <time>', 'start time, ISO 8601 with its zone (e.g. 2026-12-01T20:00:00Z); default: now')
    .option('--loop', 'start again at the beginning at the end, seamlessly')
    .addOption(new Option('--transport <kind>', 'RTP/AVP or raw MPEG-TS over UDP').choices(['rtp', 'udp']))
    .option('--ttl <n>', 'multicast TTL (default: the server\'s)', positiveInt)
    .option('--stopped', 'add it stopped (start it later)')
    .action((name: string, o: { asset: string; to: string; at?: string; loop?: boolean; transport?: 'rtp' | 'udp'; ttl?: number; stopped?: boolean }, cmd: Command) => {
      const args: CommandArgs<'broadcast_add'> = { name, asset: o.asset, to: o.to };
      if (o.at !== undefined) args.at = o.at;
      if (o.loop === true) args.loop = true;
      if (o.transport !== undefined) args.transport = o.transport;
      if (o.ttl !== undefined) args.ttl = o.ttl;
      if (o.stopped === true) args.state = 'stopped';
      return runRequest(cmd, 'broadcast_add', args, formatBroadcast);
    });
  broadcast.command('list').description('every broadcast of the table, with its status and session')
    .action((_o, cmd: Command) => runRequest(cmd, 'broadcast_list', {}, formatBroadcasts));
  broadcast.command('remove').description('stop a broadcast and remove it from the table')
    .argument('<name>', 'broadcast name')
    .action((name: string, _o, cmd: Command) => runRequest(cmd, 'broadcast_remove', { name }, (r: BroadcastRemoved) => `broadcast ${r.name} removed`));
  broadcast.command('start').description('run a stopped broadcast again, at the position its schedule says now')
    .argument('<name>', 'broadcast name')
    .action((name: string, _o, cmd: Command) => runRequest(cmd, 'broadcast_start', { name }, formatBroadcast));
  broadcast.command('stop').description('stop sending a broadcast; it stays in the table')
    .argument('<name>', 'broadcast name')
    .action((name: string, _o, cmd: Command) => runRequest(cmd, 'broadcast_stop', { name }, formatBroadcast));

  program.command('watch').description('print events (state changes, failovers, sessions) until Ctrl-C or the server closes')
    .action((_o, cmd: Command) => runWatch(cmd));

  program.command('inject-fault').description('make a path fail on purpose (only when the configuration enables fault injection)')
    .addArgument(pathArgument())
    .addArgument(new Argument('<kind>', 'fault kind').choices(FaultKinds))
    .option('--delay-ms <ms>', 'slow-disk: how long each read of the path waits (default 200)', positiveInt)
    .addOption(pairOption())
    .action((path: PathName, kind: (typeof FaultKinds)[number], o: { pair?: number; delayMs?: number }, cmd: Command) =>
      runRequest(cmd, 'inject_fault', { path, kind, delayMs: o.delayMs, ...pairArg(o) }, formatFault));

  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help asked for (--help, help <cmd>) or version: success. Anything else from
      // the parser, including help shown because no command was given: usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(err, false);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
}

/** True when this file is the program being run (directly or through an npm bin symlink), not an import. */
function isMain(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return realpathSync(invoked) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  process.exitCode = await main();
}
