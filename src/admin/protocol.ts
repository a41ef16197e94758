// The admin wire protocol: newline-delimited JSON over a Unix socket. Declares the
// request, reply and event lines, the zod schema of every command's arguments, the
// line-length limit, and the parsing that turns any input line into either a valid
// request or a TF_ADMIN_BAD_REQUEST. Shared by the server and the client.
//
//   request  {"v":1,"id":7,"cmd":"set_config_type","args":{"path":"a","type":"primary","pair":1}}
//   reply    {"v":1,"id":7,"ok":true,"result":{...}}
//            {"v":1,"id":7,"ok":false,"error":{"code":"TF_...","message":"...","details":{...}}}
//   event    {"v":1,"event":{"type":"failover",...}}     (after a successful `watch`)
//
// Replies on one connection come in request order. `id` is echoed; it is null in a
// reply to a line whose id could not be read.

import { z } from 'zod';
import { TwinframeError } from '../errors.js';
import { FaultKinds, type FaultKind } from '../shared/commands.js';
import { PATH_NAMES } from '../shared/layout.js';

const PROTOCOL_VERSION = 1 as const;

/** Longest request line accepted, newline excluded. Longer: error reply, connection closed. */
export const MAX_REQUEST_LINE_BYTES = 64 * 1024;

/** Longest reply or event line a client accepts (a sessions list can be long). */
export const MAX_REPLY_LINE_BYTES = 64 * 1024 * 1024;

/** Error code for a failure inside the backend that is not a TwinframeError (a bug). */
export const INTERNAL_ERROR_CODE = 'TF_INTERNAL' as const;

export type { FaultKind };

const pathName = z.enum(PATH_NAMES);
const noArgs = z.object({}).strict();
const positiveInt = z.number().int().positive();
/** Which pair of data paths a command acts on; absent: pair 0 (the only one with one pair). */
const pairIndex = z.number().int().min(0).optional();
const pathArgs = z.object({ path: pathName, pair: pairIndex }).strict();
const broadcastArgs = z.object({ name: z.string().min(1).max(200) }).strict();

/** The arguments of every command. Unknown argument names are refused, to catch typos. */
const commandArgSchemas = {
  status: noArgs,
  sessions: noArgs,
  assets: noArgs,
  set_config_type: z.object({ path: pathName, type: z.enum(['primary', 'secondary', 'undef']), pair: pairIndex }).strict(),
  start_streaming: pathArgs,
  stop_streaming: pathArgs,
  failover_sync: pathArgs,
  failover_unsync: pathArgs,
  /** No arguments: read the settings. Either or both: change them. */
  heartbeat: z.object({ periodUs: positiveInt.optional(), maxMissed: positiveInt.optional() }).strict(),
  /** No arguments: read the limits. Any subset: change those. */
  limits: z.object({
    maxStreams: positiveInt.optional(),
    mpegBandwidthKbps: positiveInt.optional(),
    serverBandwidthKbps: positiveInt.optional(),
  }).strict(),
  /** Manual switch of roles between a pair's healthy Primary and Secondary. */
  failover: z.object({ pair: pairIndex }).strict(),
  /** A process pair's lossless role switch: the standby process sends, the primary follows it (asked of either). */
  pair_switch: noArgs,
  /** Turns the connection into an event stream as well (replies still come). */
  watch: noArgs,
  /** delayMs: for 'slow-disk', how long each read of the path waits (default 200 ms); other kinds ignore it. */
  /** Re-read the configuration file and apply what can change live (as SIGHUP does). */
  reload: noArgs,
  /** A broadcast of the table (its values are checked by the server, src/broadcast/table.ts). */
  broadcast_add: z.object({
    name: z.string().min(1).max(200),
    asset: z.string().min(1).max(2048),
    to: z.string().min(1).max(200),
    at: z.string().max(100).optional(),
    loop: z.boolean().optional(),
    transport: z.enum(['rtp', 'udp']).optional(),
    ttl: z.number().int().optional(),
    state: z.enum(['running', 'stopped']).optional(),
  }).strict(),
  broadcast_list: noArgs,
  broadcast_remove: broadcastArgs,
  /** Running again, at the position its schedule says now. */
  broadcast_start: broadcastArgs,
  /** Kept in the table, not sent. */
  broadcast_stop: broadcastArgs,
  inject_fault: z.object({ path: pathName, kind: z.enum(FaultKinds), pair: pairIndex, delayMs: positiveInt.max(60_000).optional() }).strict(),
} as const;

export type AdminCommand = keyof typeof commandArgSchemas;
const ADMIN_COMMANDS = Object.keys(commandArgSchemas) as AdminCommand[];
export type CommandArgs<C extends AdminCommand> = z.output<(typeof commandArgSchemas)[C]>;

export type RequestId = string | number;

export interface AdminRequest<C extends AdminCommand = AdminCommand> {
  readonly v: typeof PROTOCOL_VERSION;
  readonly id: RequestId;
  readonly cmd: C;
  readonly args: CommandArgs<C>;
}

export interface AdminErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details: Record<string, unknown>;
}

export type AdminReply =
  | { readonly v: typeof PROTOCOL_VERSION; readonly id: RequestId | null; readonly ok: true; readonly result: unknown }
  | { readonly v: typeof PROTOCOL_VERSION; readonly id: RequestId | null; readonly ok: false; readonly error: AdminErrorBody };

export interface AdminEventLine {
  readonly v: typeof PROTOCOL_VERSION;
  readonly event: Record<string, unknown>;
}

export type ParsedRequest =
  | { readonly ok: true; readonly request: AdminRequest }
  | { readonly ok: false; readonly id: RequestId | null; readonly error: TwinframeError };

const requestId = z.union([z.string().min(1).max(128), z.number().int().safe()]);

function badRequest(message: string, details: Record<string, unknown> = {}): TwinframeError {
  return new TwinframeError('TF_ADMIN_BAD_REQUEST', message, details);
}

function describeZodIssues(error: z.ZodError): string {
  return error.issues.map((i) => {
    const where = i.path.length > 0 ? `${i.path.join('.')}: ` : '';
    if (i.code === z.ZodIssueCode.unrecognized_keys) return `${where}unknown argument(s) ${i.keys.map((k) => `'${k}'`).join(', ')}`;
    return `${where}${i.message}`;
  }).join('; ');
}

/** Turns one request line into a validated request or a TF_ADMIN_BAD_REQUEST that says what is wrong. */
export function parseRequestLine(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { ok: false, id: null, error: badRequest(`request is not valid JSON: ${(err as Error).message}`) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, id: null, error: badRequest('request must be a JSON object {"v":1,"id":…,"cmd":…,"args":{…}}') };
  }
  const obj = value as Record<string, unknown>;
  const idResult = requestId.safeParse(obj.id);
  const id = idResult.success ? idResult.data : null;
  const fail = (message: string, details: Record<string, unknown> = {}): ParsedRequest => ({ ok: false, id, error: badRequest(message, details) });

  if (obj.v !== PROTOCOL_VERSION) {
    return fail(obj.v === undefined
      ? `request has no protocol version: add "v":${PROTOCOL_VERSION}`
      : `unsupported protocol version ${JSON.stringify(obj.v)}: this server speaks v${PROTOCOL_VERSION}`, { supported: [PROTOCOL_VERSION] });
  }
  if (!idResult.success) return fail('request id must be a non-empty string (≤128 chars) or an integer');
  for (const key of Object.keys(obj)) {
    if (!['v', 'id', 'cmd', 'args'].includes(key)) return fail(`unknown request field '${key}': a request has v, id, cmd, args`);
  }
  if (typeof obj.cmd !== 'string') return fail('request cmd must be a string', { known: ADMIN_COMMANDS });
  if (!Object.hasOwn(commandArgSchemas, obj.cmd)) {
    return fail(`unknown command '${obj.cmd.slice(0, 64)}'; known commands: ${ADMIN_COMMANDS.join(', ')}`, { known: ADMIN_COMMANDS });
  }
  const cmd = obj.cmd as AdminCommand;
  const rawArgs = obj.args === undefined ? {} : obj.args;
  if (typeof rawArgs !== 'object' || rawArgs === null || Array.isArray(rawArgs)) return fail(`${cmd}: args must be a JSON object`);
  const args = commandArgSchemas[cmd].safeParse(rawArgs);
  if (!args.success) {
    return fail(`${cmd}: bad arguments: ${describeZodIssues(args.error)}`, {
      issues: args.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return { ok: true, request: { v: PROTOCOL_VERSION, id, cmd, args: args.data } as AdminRequest };
}

/** JSON with bigint as decimal strings (hrtime values), one line. Throws on cycles. */
function encodeLine(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
}

export function encodeRequest(id: RequestId, cmd: string, args: unknown): string {
  return encodeLine({ v: PROTOCOL_VERSION, id, cmd, args });
}

export function encodeResult(id: RequestId | null, result: unknown): string {
  return encodeLine({ v: PROTOCOL_VERSION, id, ok: true, result: result === undefined ? null : result });
}

export function encodeError(id: RequestId | null, error: AdminErrorBody): string {
  return encodeLine({ v: PROTOCOL_VERSION, id, ok: false, error });
}

export function encodeEvent(event: unknown): string {
  return encodeLine({ v: PROTOCOL_VERSION, event });
}

const errorBody = z.object({ code: z.string(), message: z.string(), details: z.record(z.unknown()).default({}) });

/** What a client may receive: a reply or an event. Checked loosely: results are the backend's business. */
export const serverLineSchema = z.union([
  z.object({ v: z.literal(PROTOCOL_VERSION), id: requestId.nullable(), ok: z.literal(true), result: z.unknown() }),
  z.object({ v: z.literal(PROTOCOL_VERSION), id: requestId.nullable(), ok: z.literal(false), error: errorBody }),
  z.object({ v: z.literal(PROTOCOL_VERSION), event: z.record(z.unknown()) }),
]);
export type ServerLine = z.output<typeof serverLineSchema>;

/**
 * Splits a byte stream into lines without ever holding more than `maxBytes` of an
 * unfinished line: a peer cannot make us buffer without bound. Lengths are counted
 * in bytes, before UTF-8 decoding; a trailing CR is dropped; invalid UTF-8 decodes to
 * U+FFFD (and then fails JSON parsing, with a clear reply).
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(readonly maxBytes: number) {}

  /** The complete lines in `chunk`; `overflow` once a line exceeds the limit (stop reading then). */
  push(chunk: Buffer): { lines: string[]; overflow: boolean } {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      const total = this.size + piece.length;
      if (total > this.maxBytes) return { lines, overflow: true };
      const bytes = this.size === 0 ? piece : Buffer.concat([...this.parts, piece], total);
      this.parts = [];
      this.size = 0;
      const text = bytes.toString('utf8');
      lines.push(text.endsWith('\r') ? text.slice(0, -1) : text);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.size += rest.length;
      if (this.size > this.maxBytes) return { lines, overflow: true };
      this.parts.push(rest);
    }
    return { lines, overflow: false };
  }

  /** Bytes of an unfinished line still held. */
  get pendingBytes(): number {
    return this.size;
  }
}
