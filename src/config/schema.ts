// The configuration's shape: one JSON document, validated with zod, whose defaults run
// out of the box. It holds the patent's synchronized parameters ([0083]: stream limits,
// ports, failover, load balance, network, mount points) plus twinframe's own settings,
// and the rule that failure detection must fit in one video frame (claims 2-3, 7-10).

import { BROADCAST_PATH_SEGMENT } from '../broadcast/lookup.js';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { TwinframeError } from '../errors.js';
import { BASIC_SECRET_PATTERN } from '../rtsp/auth.js';
import { DEFAULT_MAX_RANDOM_ACCESS_POINTS } from '../catalog/asset-index.js';

// --- where the package lives (for defaults that must work from any cwd) ----------------

let cachedRoot: string | undefined;

/** The package root: the nearest ancestor of this module with twinframe's package.json. */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown }).name === 'twinframe') return (cachedRoot = dir);
      } catch {
        // an unreadable package.json further down is not ours; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Not inside the package (bundled or copied): fall back to the working directory.
  return (cachedRoot = process.cwd());
}

/** Linux sun_path holds 108 bytes including the terminating NUL. */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/**
 * Default admin socket: `<package>/.twinframe/admin.sock` (per checkout, so two
 * checkouts never collide), or, when that path is too long for a Unix socket, a
 * per-user, per-checkout directory under the system temp dir.
 */
export function defaultAdminSocketPath(): string {
  const inPackage = path.join(packageRoot(), '.twinframe', 'admin.sock');
  if (Buffer.byteLength(inPackage) <= MAX_UNIX_SOCKET_PATH_BYTES) return inPackage;
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const tag = createHash('sha256').update(packageRoot()).digest('hex').slice(0, 8);
  return path.join(os.tmpdir(), `twinframe-${uid}-${tag}`, 'admin.sock');
}

// --- failure-detection timing ---------------------------------------------------------

/** One frame at 29.97 fps (NTSC), 25 fps (PAL), 23.976 fps (film), in milliseconds. */
export const FRAME_INTERVAL_MS = { ntsc: 1001 / 30, pal: 40, film: 1001 / 24 } as const;

/**
 * The heartbeat period is how late due work may be before the sender counts as late
 * (its standby then takes sending over, nobody failed). Below this, ordinary
 * scheduling noise on a shared machine (wake-ups 50-80 µs late, 2-7 ms stalls now
 * and then) would hand sending back and forth.
 */
export const MIN_HEARTBEAT_PERIOD_US = 500;

/** Allowance for the wake-up overshoot of each wait, measured 50-80 µs, rounded up. */
const WAKEUP_OVERSHOOT_ALLOWANCE_US = 100;

/**
 * Worst-case time from a hang to its detection: the supervisor seeing the path
 * stalled on due work for a whole failure window. While work is due it looks
 * every half window (period × maxMissed / 2), so a hang just after a look is seen
 * by the next one at the latest; from that look the path must stay stalled for the
 * whole window. Each look may wake late by the overshoot allowance. Hence 1.5 ×
 * period × maxMissed + 2 × allowance. The path is then failed once it has burned
 * 40 ms of CPU without progress (src/supervisor/worker.ts: a GC pause is not a
 * hang). Sending moves away from a hung sender sooner: its standby takes over one
 * period after the first datagram it misses.
 */
export function worstCaseDetectionUs(periodUs: number, maxMissed: number): number {
  return 1.5 * periodUs * maxMissed + 2 * WAKEUP_OVERSHOOT_ALLOWANCE_US;
}

export interface FailoverTiming {
  readonly periodUs: number;
  readonly maxMissed: number;
  readonly worstCaseDetectionUs: number;
  readonly frameIntervalUs: number;
}

interface TimingProblem {
  readonly code: 'TF_HEARTBEAT_TOO_SLOW' | 'TF_CONFIG_INVALID';
  readonly field: 'heartbeatPeriodUs' | 'maxMissedHeartbeats';
  readonly message: string;
}

function timingProblem(periodUs: number, maxMissed: number, frameIntervalMs: number): TimingProblem | null {
  if (!Number.isInteger(maxMissed) || maxMissed < 1) {
    return { code: 'TF_CONFIG_INVALID', field: 'maxMissedHeartbeats', message: `max missed heartbeats must be an integer ≥ 1 (got ${maxMissed})` };
  }
  if (!Number.isInteger(periodUs) || periodUs < MIN_HEARTBEAT_PERIOD_US) {
    return {
      code: 'TF_CONFIG_INVALID',
      field: 'heartbeatPeriodUs',
      message: `heartbeat period must be an integer ≥ ${MIN_HEARTBEAT_PERIOD_US} µs (got ${periodUs}): shorter periods would hand sending back and forth on ordinary scheduling noise`,
    };
  }
  const worst = worstCaseDetectionUs(periodUs, maxMissed);
  const frameUs = frameIntervalMs * 1000;
  if (worst > frameUs) {
    return {
      code: 'TF_HEARTBEAT_TOO_SLOW',
      field: 'heartbeatPeriodUs',
      message: `heartbeat ${periodUs} µs × ${maxMissed} missed can take ${(worst / 1000).toFixed(2)} ms to detect a hang `
        + `(1.5 × ${periodUs} µs × ${maxMissed} + 2 × ${WAKEUP_OVERSHOOT_ALLOWANCE_US} µs wake-up allowance), more than one frame (${frameIntervalMs.toFixed(3)} ms)`,
    };
  }
  return null;
}

/**
 * Refuses heartbeat settings that cannot detect a hang within one frame interval
 * (TF_HEARTBEAT_TOO_SLOW), periods under MIN_HEARTBEAT_PERIOD_US and maxMissed < 1
 * (TF_CONFIG_INVALID). Returns the timing it accepted.
 */
export function validateFailoverTiming(periodUs: number, maxMissed: number, frameIntervalMs: number = FRAME_INTERVAL_MS.ntsc): FailoverTiming {
  const problem = timingProblem(periodUs, maxMissed, frameIntervalMs);
  if (problem !== null) {
    throw new TwinframeError(problem.code, problem.message, { field: `failover.${problem.field}`, periodUs, maxMissed, frameIntervalMs });
  }
  return { periodUs, maxMissed, worstCaseDetectionUs: worstCaseDetectionUs(periodUs, maxMissed), frameIntervalUs: frameIntervalMs * 1000 };
}

// --- field types ----------------------------------------------------------------------

const ipv4 = z.string().ip({ version: 'v4', message: 'must be an IPv4 address' });

/** A netmask is a run of one bits followed by zero bits (255.255.255.0, not 255.0.255.0). */
function isNetmask(mask: string): boolean {
  const parts = mask.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return false;
  const bits = parts.map((p) => Number(p).toString(2).padStart(8, '0')).join('');
  return /^1*0*$/.test(bits);
}

const netmask = z.string().refine(isNetmask, 'must be a contiguous dotted-quad netmask such as 255.255.255.0');

const cidr = z.string().refine((s) => {
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined || addr === undefined || len === undefined || !/^\d{1,2}$/.test(len) || Number(len) > 32) return false;
  return ipv4.safeParse(addr).success;
}, 'must be an IPv4 network in CIDR form such as 10.0.0.0/8');

const port = z.number().int().min(1).max(65535);
const kbps = z.number().int().positive();

/** An asset path prefix: '' (the root) or slash-separated names, no leading or trailing slash, no '..'. */
const mountPrefix = z.string().max(200).refine(
  (p) => p === '' || (/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(p) && !p.split('/').some((s) => s === '.' || s === '..')),
  "must be '' or names separated by '/', without leading/trailing '/' or '.'/'..' segments",
);

// --- the schema -------------------------------------------------------------------------

const rtspSchema = z.object({
  /** Address the RTSP server listens on. Loopback by default: exposing it is a choice. */
  host: z.string().min(1).default('127.0.0.1'),
  /** RTSP port ([0083] "Ports: RTSP"). 8554 needs no privileges. */
  port: port.default(8554),
  /** A session with no request for this long is torn down (RFC 2326 §12.37). */
  sessionTimeoutSec: z.number().int().min(5).max(3600).default(60),
  /**
   * Allow SETUP to name a destination other than the requesting client's address.
   * Off by default: otherwise anyone could aim a stream at a third party.
   */
  allowForeignDestination: z.boolean().default(false),
  /**
   * RTP on the RTSP connection (interleaved): a session whose stream falls this
   * far behind its schedule, because its viewer reads slower than the stream, is
   * torn down (the data paths never wait for a viewer).
   */
  interleavedBacklogMs: z.number().int().min(100).max(60_000).default(2000),
  /** Per-client limits: one address, or one connection, must not take every slot or stream. */
  // Wide enough for an office behind one NAT address (and a benchmark on loopback), narrow
  // enough that the connection cap (1000) needs four addresses.
  maxConnectionsPerAddress: z.number().int().min(1).max(100_000).default(256),
  maxSessionsPerAddress: z.number().int().min(1).max(100_000).default(256),
  maxSessionsPerConnection: z.number().int().min(1).max(10_000).default(16),
  /** A session set up and not played within this long is torn down (it holds a stream's admission). */
  setupTimeoutSec: z.number().int().min(1).max(3600).default(15),
  /** Largest RTSP request (head + body) accepted; bigger gets 413 and the connection closed. */
  maxRequestBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
  /** RTSP connections open at once; more get 503 and are closed. */
  maxConnections: z.number().int().min(1).max(100_000).default(1000),
  /** A request must be complete this long after its first byte, else 408 and the connection closed (slow clients). */
  requestTimeoutSec: z.number().int().min(1).max(300).default(10),
  /** A connection with no traffic for this long is closed (its sessions live on). Unset: session timeout + 10 s. */
  idleTimeoutSec: z.number().int().min(5).max(7200).optional(),
  /** UDP server ports handed out to sessions ([0083] "Ports: MPEG"); RTP uses even, RTCP odd. */
  serverPortRange: z.object({
    first: port.refine((p) => p % 2 === 0, 'must be even (RTP port of a pair)'),
    last: port,
  }).strict().refine((r) => r.last > r.first, { message: 'last must be greater than first', path: ['last'] })
    .default({ first: 30000, last: 30999 }),
}).strict();


const mountSchema = z.object({
  /** Asset names under this prefix are looked up in `dir`; none under the broadcasts' URLs, which would shadow them. */
  prefix: mountPrefix.refine(
    (p) => p.split('/')[0] !== BROADCAST_PATH_SEGMENT,
    `must not be '${BROADCAST_PATH_SEGMENT}' or under it: rtsp://host/${BROADCAST_PATH_SEGMENT}/<name> is a broadcast's URL, so its assets could never be played; choose another prefix`,
  ),
  /** Directory holding the .ts assets; relative paths are resolved against the config file's directory. */
  dir: z.string().min(1),
}).strict();

const mediaSchema = z.object({
  /** Mount points ([0083] "Mount points"). */
  mounts: z.array(mountSchema).superRefine((mounts, ctx) => {
    const seen = new Set<string>();
    mounts.forEach((m, i) => {
      if (seen.has(m.prefix)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'prefix'], message: `duplicate prefix '${m.prefix}'` });
      seen.add(m.prefix);
    });
  }).default(() => [{ prefix: '', dir: path.join(packageRoot(), 'assets') }]),
  /** Where asset indexes (PCR, frames, random access points) are kept. */
  cacheDir: z.string().min(1).default(() => path.join(packageRoot(), '.twinframe', 'cache')),
  /**
   * An asset with more random-access points (key frames) than this is refused: every index reader parses
   * the list. At most 500 000: up to 67 bytes of JSON each, and an index's JSON is bounded to 64 MiB.
   */
  maxRandomAccessPoints: z.number().int().min(1).max(500_000).default(DEFAULT_MAX_RANDOM_ACCESS_POINTS),
}).strict();

/**
 * What one core carries, for the default limits. bench/capacity on a 2-core VM
 * (README "Capacity"): one pair held 150 sessions of 3.5 Mbit/s (525 Mbit/s)
 * with the receivers on the same two cores: 262 Mbit/s a core. Three quarters of
 * that leaves headroom for RTSP, RTCP and a failover's catch-up.
 */
export const DEFAULT_KBPS_PER_CORE = 200_000;
/** The default stream count limit allows this bit rate per stream on average. */
const DEFAULT_KBPS_PER_STREAM = 1_000;

/** Default limits, from what this box's cores carry (README "Sizing the limits"). */
export function defaultLimits(cores = os.availableParallelism()): { maxStreams: number; mpegBandwidthKbps: number; serverBandwidthKbps: number } {
  const mpegBandwidthKbps = DEFAULT_KBPS_PER_CORE * cores;
  return {
    maxStreams: Math.min(100_000, Math.floor(mpegBandwidthKbps / DEFAULT_KBPS_PER_STREAM)),
    mpegBandwidthKbps,
    // Headers (RTP, UDP, IP) and RTCP ride on top of the streams' bit rates.
    serverBandwidthKbps: Math.ceil(mpegBandwidthKbps * 1.25),
  };
}

export const limitsSchema = z.object({
  /** MPEG_Stream_Count_Limit of [0083]. */
  maxStreams: z.number().int().min(1).max(100_000).default(() => defaultLimits().maxStreams),
  /** MPEG_Bandwidth_Limit_In_KBPS of [0083]: sum of the streams' bit rates. */
  mpegBandwidthKbps: kbps.default(() => defaultLimits().mpegBandwidthKbps),
  /** Server_Bandwidth_Limit_In_KBPS of [0083]: everything the server sends. */
  serverBandwidthKbps: kbps.default(() => defaultLimits().serverBandwidthKbps),
}).strict().refine((l) => l.mpegBandwidthKbps <= l.serverBandwidthKbps, {
  message: 'mpegBandwidthKbps cannot exceed serverBandwidthKbps',
  path: ['mpegBandwidthKbps'],
});

const failoverSchema = z.object({
  /** Failover_Heartbeat_Freq of [0083], as a period in microseconds. */
  heartbeatPeriodUs: z.number().int().min(MIN_HEARTBEAT_PERIOD_US, `must be at least ${MIN_HEARTBEAT_PERIOD_US} µs: shorter periods would hand sending back and forth on ordinary scheduling noise`).default(2000),
  /** Max_Missed_Heartbeats of [0083]: a path running without progress on due work for period × this is hung. */
  maxMissedHeartbeats: z.number().int().min(1, 'must be at least 1').default(5),
  /**
   * true: the server walks the patent's start-up sequence itself (a Primary, b
   * Secondary) and brings every restarted path back to Secondary. false: both
   * paths start Undefined and an operator drives every step with twinframectl.
   */
  autoFailover: z.boolean().default(true),
}).strict().superRefine((f, ctx) => {
  // zod still runs this when a field failed its own check (a "dirty" parse): those
  // failures are already reported, so only the frame budget is checked here.
  if (!Number.isInteger(f.heartbeatPeriodUs) || f.heartbeatPeriodUs < MIN_HEARTBEAT_PERIOD_US) return;
  if (!Number.isInteger(f.maxMissedHeartbeats) || f.maxMissedHeartbeats < 1) return;
  const problem = timingProblem(f.heartbeatPeriodUs, f.maxMissedHeartbeats, FRAME_INTERVAL_MS.ntsc);
  if (problem !== null) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [problem.field], message: problem.message, params: { code: problem.code } });
});

/** Bounds of pacing.batchWindowUs: how early a datagram may leave with its turn's batch. */
export const BATCH_WINDOW_US = { min: 50, max: 1000, default: 500 } as const;

const pacingSchema = z.object({
  /**
   * A data path wakes at most once per window and sends every datagram due within
   * it in one batch: a datagram leaves at most this much before its deadline.
   */
  batchWindowUs: z.number().int().min(BATCH_WINDOW_US.min).max(BATCH_WINDOW_US.max).default(BATCH_WINDOW_US.default),
}).strict();

const adminSchema = z.object({
  /** Unix socket of the admin server (twinframectl). Relative paths: against the config file's directory. */
  socketPath: z.string().min(1).refine((p) => Buffer.byteLength(p) <= MAX_UNIX_SOCKET_PATH_BYTES, `longer than the ${MAX_UNIX_SOCKET_PATH_BYTES}-byte limit of a Unix socket path`)
    .default(defaultAdminSocketPath),
  /** The inject_fault admin command exists only when this is true. */
  faultInjection: z.boolean().default(false),
}).strict();

/**
 * Stored and synchronized as the patent lists them, but nothing in twinframe acts
 * on them yet: there is no load balancer to report to.
 */
const loadBalanceSchema = z.object({
  /** Load_Balance_Active of [0083]. The pair counts as one server for a balancer. */
  active: z.boolean().default(false),
  /** Load_Balance_Group_ID of [0083]. */
  groupId: z.number().int().min(0).default(0),
}).strict();

const routeSchema = z.object({
  destination: cidr,
  gateway: ipv4,
}).strict();

const networkSchema = z.object({
  /**
   * StreamIP of [0083]: the source address both paths' datagrams carry, for every
   * session. Unset (the default): each session's media leaves from the address its
   * viewer's RTSP connection reached, which the route back to that viewer uses.
   * A destination this address cannot reach is refused at SETUP (RTSP 462).
   */
  streamIp: ipv4.optional(),
  /** Stream_Mask of [0083]. Stored only: twinframe does not configure interfaces. */
  mask: netmask.default('255.0.0.0'),
  /**
   * Routes of [0083]. Kept and synchronized for completeness; twinframe does not
   * change the host's routing table.
   */
  routes: z.array(routeSchema).default([]),
}).strict();

/** How broadcasts to a multicast group are sent (a broadcast may name its own ttl). */
const multicastSchema = z.object({
  /**
   * IP_MULTICAST_TTL: how many routers the group crosses. Default 1, the kernel's
   * own default (and VLC's): the group stays on the local link until the operator
   * says how far it may go, rather than reaching routed networks by default.
   */
  ttl: z.number().int().min(0).max(255).default(1),
  /** The address of the interface the groups are sent on (IP_MULTICAST_IF); unset: the routing table's choice. */
  interface: ipv4.optional(),
}).strict();

/** One pair per two cores: each pair's sender and standby each want a core. */
export function defaultPairCount(): number {
  return Math.max(1, Math.floor(os.availableParallelism() / 2));
}

const pathsSchema = z.object({
  /**
   * How many pairs of data paths share the sessions. Each pair is two paths
   * (sender and standby) with its own control block and failover; a new session
   * goes to the least-loaded pair and stays there. Default: one per two cores.
   */
  pairs: z.number().int().min(1).max(64).default(defaultPairCount),
}).strict();

/** User names and realms go into quoted header parameters and HA1's colon-separated input: no ':', quotes or controls. */
const userName = z.string().regex(/^[A-Za-z0-9._~@+-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 . _ ~ @ + -");
const hex = (length: number): z.ZodString => z.string().regex(new RegExp(`^[0-9a-f]{${length}}$`), `must be ${length} lower-case hex digits`);

const authUserSchema = z.object({
  name: userName,
  /** The realm the hashes were made for: HA1 = H(name:realm:password). */
  realm: z.string(),
  /** HA1 with MD5 and with SHA-256: the password itself is never stored. */
  md5: hex(32),
  sha256: hex(64),
  /** For Basic: a salted scrypt hash of the password. */
  basic: z.string().regex(BASIC_SECRET_PATTERN, "must be a hash written by 'twinframectl user add'").optional(),
}).strict();

const accessRuleSchema = z.object({
  /** Asset path prefix, as mount prefixes are written ('' is every asset). */
  prefix: mountPrefix,
  /** Who may play assets under it. */
  users: z.array(userName),
}).strict();

const authSchema = z.object({
  /** Ask viewers for credentials. Off by default: the defaults run out of the box. */
  enabled: z.boolean().default(false),
  realm: z.string().regex(/^[A-Za-z0-9 ._~@+-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 space . _ ~ @ + -').default('twinframe'),
  /** Also accept Basic: the password crosses the network readable by anyone on the path. */
  basic: z.boolean().default(false),
  users: z.array(authUserSchema).default([]),
  /** Optional per-prefix access; the longest matching prefix decides, no match: every user. */
  access: z.array(accessRuleSchema).default([]),
  /** Failed logins from one address within lockoutSec before it is refused for lockoutSec. */
  maxFailures: z.number().int().min(1).max(1000).default(10),
  lockoutSec: z.number().int().min(1).max(86_400).default(60),
}).strict().superRefine((a, ctx) => {
  const names = new Set<string>();
  a.users.forEach((u, i) => {
    if (names.has(u.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['users', i, 'name'], message: `duplicate user '${u.name}'` });
    names.add(u.name);
    if (u.realm !== a.realm) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['users', i, 'realm'], message: `hashed for realm '${u.realm}', not auth.realm '${a.realm}': add the user again` });
    }
    if (a.basic && u.basic === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['users', i, 'basic'], message: 'auth.basic is on but this user has no Basic hash: add the user again' });
    }
  });
  const prefixes = new Set<string>();
  a.access.forEach((rule, i) => {
    if (prefixes.has(rule.prefix)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['access', i, 'prefix'], message: `duplicate prefix '${rule.prefix}'` });
    prefixes.add(rule.prefix);
    rule.users.forEach((name, j) => {
      if (!names.has(name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['access', i, 'users', j], message: `no user '${name}'` });
    });
  });
});

const logSchema = z.object({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** 'json': pino's JSON lines; 'pretty': readable lines; 'auto': pretty when the log goes to a terminal. */
  format: z.enum(['auto', 'json', 'pretty']).default('auto'),
}).strict();

/** `host:port` (an IPv6 host in brackets) → its parts, or undefined when malformed. */
export function parseListenAddress(listen: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

const metricsSchema = z.object({
  /**
   * Where the Prometheus metrics (GET /metrics) and the health probe (GET /healthz)
   * are served, as host:port; '' turns the listener off. Loopback by default.
   */
  listen: z.string().refine((l) => l === '' || parseListenAddress(l) !== undefined, "must be host:port (e.g. 127.0.0.1:9464, [::1]:9464) or '' (off)")
    .default('127.0.0.1:9464'),
}).strict();

// --- broadcasts (issue 16): the patent's broadcast table ([0083], [0090]) -------------------

/** A broadcast's name: it appears in rtsp://host/broadcast/<name>, so URL-safe characters only. */
export const broadcastName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -');

/** `address:port` of a broadcast's destination → its parts, or undefined when malformed. */
export function parseBroadcastDestination(to: string): { address: string; port: number } | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(to);
  if (m === null || !ipv4.safeParse(m[1]).success) return undefined;
  const p = Number(m[2]);
  return p >= 1 && p <= 65535 ? { address: m[1], port: p } : undefined;
}

/** ISO 8601 with a date, a time and a zone (Z or ±hh:mm), as Date.parse reads it. */
export const broadcastTime = z.string().datetime({ offset: true, message: 'must be an ISO 8601 time with its zone, such as 2026-12-01T20:00:00Z' });

export const broadcastEntrySchema = z.object({
  name: broadcastName,
  /** The asset's URL path, as the mounts resolve it (what a viewer would DESCRIBE), e.g. '/movies/a.ts'. */
  asset: z.string().min(2).max(1024).startsWith('/', "must be the asset's URL path, starting with '/'"),
  /** Where it goes, IPv4 address:port; the RTP port is even (RTCP is the port above). */
  to: z.string().refine((to) => parseBroadcastDestination(to)?.port !== undefined, 'must be an IPv4 address:port such as 239.1.1.1:5004')
    .refine((to) => (parseBroadcastDestination(to)?.port ?? 0) % 2 === 0, 'the port must be even (RTP; RTCP is the port above)'),
  /** When it starts (its schedule's time 0); absent: when it was added. */
  at: broadcastTime.optional(),
  /** Start again at the asset's beginning when it ends, seamlessly. */
  loop: z.boolean().default(false),
  transport: z.enum(['rtp', 'udp']).default('rtp'),
  /** Multicast TTL of this broadcast; absent: the server's default. */
  ttl: z.number().int().min(1).max(255).optional(),
  /** 'stopped': kept in the table, not sent. */
  state: z.enum(['running', 'stopped']).default('running'),
}).strict();

/** One row of the broadcast table, defaults filled in. */
export type BroadcastConfig = z.output<typeof broadcastEntrySchema>;

const broadcastsSchema = z.array(broadcastEntrySchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((b, i) => {
    if (seen.has(b.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'name'], message: `duplicate broadcast '${b.name}'` });
    seen.add(b.name);
  });
});

// --- the process pair (issue 17): a hot-standby twinframe process -----------------------

/** How long the shared secret of a process pair must be, at least. */
export const PAIR_SECRET_MIN_CHARS = 32;

const pairSchema = z.object({
  /** This process's role at start: the primary serves and listens on the link; a standby connects and follows. */
  role: z.enum(['primary', 'standby']),
  /** The private link's Unix socket path (the primary listens on it). */
  link: z.string().min(1).refine((p) => Buffer.byteLength(p) <= MAX_UNIX_SOCKET_PATH_BYTES, `longer than the ${MAX_UNIX_SOCKET_PATH_BYTES}-byte limit of a Unix socket path`),
  /** The shared secret both processes prove on the link (HMAC challenge); never sent. */
  secret: z.string().min(PAIR_SECRET_MIN_CHARS, `must be at least ${PAIR_SECRET_MIN_CHARS} characters`),
}).strict();

/** The process pair's settings, validated. */
export type PairConfig = z.output<typeof pairSchema>;

const configSchema = z.object({
  rtsp: rtspSchema.default({}),
  media: mediaSchema.default({}),
  limits: limitsSchema.default({}),
  failover: failoverSchema.default({}),
  pacing: pacingSchema.default({}),
  admin: adminSchema.default({}),
  loadBalance: loadBalanceSchema.default({}),
  network: networkSchema.default({}),
  multicast: multicastSchema.default({}),
  paths: pathsSchema.default({}),
  log: logSchema.default({}),
  metrics: metricsSchema.default({}),
  auth: authSchema.default({}),
  /** The broadcast table: scheduled sessions both paths carry, kept across restarts. */
  broadcasts: broadcastsSchema.default([]),
  /** A hot-standby process pair; absent: this process runs alone. */
  pair: pairSchema.optional(),
}).strict();

/** A complete, validated configuration (every default filled in). */
export type TwinframeConfig = z.output<typeof configSchema>;
/** What a configuration file may contain: any field may be left out. */
export type TwinframeConfigInput = z.input<typeof configSchema>;

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
/** A change to apply with updateConfig: nested objects merge, arrays and values replace. */
export type ConfigPatch = DeepPartial<TwinframeConfig>;

export interface ConfigIssue {
  /** Dotted path of the bad field, e.g. `rtsp.port` or `media.mounts[0].dir`. */
  readonly path: string;
  readonly message: string;
}

function issuePath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

/** Flattens a zod error into one entry per bad field (unknown keys each get their own). */
function configIssues(error: z.ZodError): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      for (const key of issue.keys) issues.push({ path: issuePath([...issue.path, key]), message: 'unknown field' });
    } else {
      issues.push({ path: issuePath(issue.path), message: issue.message });
    }
  }
  return issues;
}

/**
 * Validates a parsed JSON value. Throws TF_CONFIG_INVALID listing every bad field
 * (message and `details.issues`); `source` names the file in the message.
 */
export function parseConfig(raw: unknown, source = 'configuration'): TwinframeConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = configIssues(result.error);
  throw new TwinframeError('TF_CONFIG_INVALID',
    `${source} is invalid:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`,
    { source, issues });
}

/** The configuration used when there is no file. */
export function defaultConfig(): TwinframeConfig {
  return configSchema.parse({});
}
