// The admin server: accepts twinframectl connections on a Unix socket that only the
// owner can reach, reads newline-delimited JSON requests, dispatches them to an
// AdminBackend and writes replies and watch events. Whatever a client sends or does
// (garbage, huge lines, vanishing mid-reply), the server answers or closes that one
// connection and lives on.
//
// How the socket is made owner-only, without a window. chmod after listen leaves a
// moment in which the socket exists with the umask's mode and anyone may connect
// (and stay connected after the chmod); changing the umask is process-wide and would
// race with files other threads create meanwhile. Instead:
//   1. bind inside a fresh mkdtemp directory next to the target (mode 0700: nobody
//      else can even reach the socket there), chmod the socket to 0600;
//   2. hard-link it to the target path (link(2) fails with EEXIST instead of
//      clobbering a file that appeared meanwhile), then remove the temp directory.
// At the target the socket is 0600 from its first instant, and Linux checks write
// permission on a socket file at connect(2). (root bypasses permissions, as always.)
// A directory we create for the socket is made 0700 too.
//
// What may already be at the target path: nothing (fine); a socket nobody listens on,
// left by a crashed run (connect gives ECONNREFUSED: replaced); a live server
// (TF_ADMIN_SOCKET_IN_USE); anything else, i.e. file, directory, symlink
// (TF_ADMIN_SOCKET_IN_USE, and it is never deleted).

import type { Stats } from 'node:fs';
import { chmod, link, lstat, mkdtemp, rename, rm, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { TwinframeError, isTwinframeError } from '../errors.js';
import type { Logger } from '../log.js';
import { OrderedConnection } from '../net/ordered-connection.js';
import { nativeAddon } from '../shared/native.js';
import { ensurePrivateDirectory } from '../shared/private-dir.js';
import type { AdminBackend, WatchEvent } from './backend.js';
import {
  INTERNAL_ERROR_CODE,
  LineSplitter,
  MAX_REQUEST_LINE_BYTES,
  encodeError,
  encodeEvent,
  encodeResult,
  parseRequestLine,
  type AdminErrorBody,
  type AdminRequest,
  type RequestId,
} from './protocol.js';

const MAX_UNIX_SOCKET_PATH_BYTES = 107;

export interface AdminServerOptions {
  readonly socketPath: string;
  readonly backend: AdminBackend;
  readonly logger: Logger;
  /** Connections beyond this are told so and closed (each one costs a descriptor). */
  readonly maxClients?: number;
  /**
   * A watch client that lets this much output pile up unread is disconnected rather
   * than buffered without bound.
   */
  readonly maxPendingWriteBytes?: number;
  /** A client whose replies stay unread this long is dropped. Default 30 s. */
  readonly stalledClientMs?: number;
}

type Dispatch = (backend: AdminBackend, args: never) => Promise<unknown>;

/** Wire command → backend method. `watch` is handled by the server itself. */
const DISPATCH: Record<Exclude<AdminRequest['cmd'], 'watch'>, Dispatch> = {
  status: (b) => b.status(),
  sessions: (b) => b.sessions(),
  assets: (b) => b.assets(),
  set_config_type: (b, a) => b.setConfigType(a),
  start_streaming: (b, a) => b.startStreaming(a),
  stop_streaming: (b, a) => b.stopStreaming(a),
  failover_sync: (b, a) => b.failoverSync(a),
  failover_unsync: (b, a) => b.failoverUnsync(a),
  heartbeat: (b, a) => b.heartbeat(a),
  limits: (b, a) => b.limits(a),
  failover: (b, a) => b.failover(a),
  pair_switch: (b) => b.pairSwitch(),
  inject_fault: (b, a) => b.injectFault(a),
  reload: (b) => b.reload(),
  broadcast_add: (b, a) => b.broadcastAdd(a),
  broadcast_list: (b) => b.broadcastList(),
  broadcast_remove: (b, a) => b.broadcastRemove(a),
  broadcast_start: (b, a) => b.broadcastStart(a),
  broadcast_stop: (b, a) => b.broadcastStop(a),
};

/** Probes a socket file: does a server answer there? */
function probe(socketPath: string, timeoutMs = 1000): Promise<'live' | 'stale' | 'gone' | 'unknown'> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: socketPath });
    const done = (result: 'live' | 'stale' | 'gone' | 'unknown'): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(result);
    };
    // No answer in time (a listener with a full backlog, say): assume someone is there.
    const timer = setTimeout(() => done('unknown'), timeoutMs);
    sock.once('connect', () => done('live'));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      done(err.code === 'ECONNREFUSED' ? 'stale' : err.code === 'ENOENT' ? 'gone' : 'unknown');
    });
  });
}

function describeFileType(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  return 'not a socket';
}

/** Requests queued on one connection before we stop reading from it. */
const MAX_QUEUED_REQUESTS = 64;

/** A peer that never reads must not keep a closing connection open forever. */
const CLOSE_GRACE_MS = 2000;

class Connection {
  private readonly splitter = new LineSplitter(MAX_REQUEST_LINE_BYTES);
  private readonly ordered: OrderedConnection;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly server: AdminServer,
    private readonly backend: AdminBackend,
    private readonly logger: Logger,
    maxPendingWriteBytes: number,
    stalledClientMs: number,
  ) {
    // One request at a time per connection, so replies keep the request order. A
    // client that pipelines requests without reading the replies is throttled: we stop
    // reading its socket while too many requests wait, and wait for its replies to
    // drain before taking the next, so neither side's buffers grow without bound.
    this.ordered = new OrderedConnection(socket, {
      pauseAt: MAX_QUEUED_REQUESTS + 1,
      resumeAt: MAX_QUEUED_REQUESTS / 4,
      closeGraceMs: CLOSE_GRACE_MS,
      drainTo: maxPendingWriteBytes,
      drainTimeoutMs: stalledClientMs,
      destroyWhenFlushed: true,
      // Bounds watch events only: replies are throttled by drainTo instead.
      maxUnreadBytes: maxPendingWriteBytes,
      onUnreadLimit: (pendingBytes) => this.logger.warn({ pendingBytes }, 'admin client is not reading; disconnecting it'),
      onTaskError: (err) => this.logger.error({ err }, 'admin connection task failed'),
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // `echo '{…}' | nc -U` sends its request and half-closes: answer what was asked, then end.
    socket.on('end', () => this.ordered.enqueue(() => this.end()));
    // A client that vanishes (EPIPE, ECONNRESET) is not the server's problem.
    socket.on('error', (err) => this.logger.debug({ err }, 'admin client connection error'));
    socket.on('close', () => this.cleanup());
  }

  private onData(chunk: Buffer): void {
    if (this.ordered.ending) return;
    const { lines, overflow } = this.splitter.push(chunk);
    for (const line of lines) {
      if (line.trim() === '') continue;
      this.ordered.enqueue(() => this.handleLine(line));
    }
    if (overflow) {
      this.ordered.stopReading();
      this.socket.pause();
      this.ordered.enqueue(() => {
        this.write(encodeError(null, {
          code: 'TF_ADMIN_BAD_REQUEST',
          message: `request line longer than ${MAX_REQUEST_LINE_BYTES} bytes; closing the connection`,
          details: { maxBytes: MAX_REQUEST_LINE_BYTES },
        }));
        this.end();
      });
    }
  }

  private async handleLine(line: string): Promise<void> {
    if (this.socket.destroyed) return;
    const parsed = parseRequestLine(line);
    if (!parsed.ok) {
      this.logger.debug({ message: parsed.error.message }, 'bad admin request');
      this.writeError(parsed.id, parsed.error);
      return;
    }
    const { id, cmd, args } = parsed.request;
    if (cmd === 'watch') {
      this.startWatching();
      this.writeResult(id, { watching: true });
      return;
    }
    try {
      const result = await DISPATCH[cmd](this.backend, args as never);
      this.writeResult(id, result);
    } catch (err) {
      this.writeError(id, err);
    }
  }

  private startWatching(): void {
    if (this.unsubscribe !== null) return;
    this.unsubscribe = this.backend.subscribe((event: WatchEvent) => {
      if (this.socket.destroyed || this.ordered.ending) return;
      let line: string;
      try {
        line = encodeEvent(event);
      } catch (err) {
        this.logger.error({ err, type: (event as { type?: unknown }).type }, 'watch event cannot be encoded; dropped');
        return;
      }
      this.ordered.writeBounded(line);
    });
  }

  private writeResult(id: RequestId, result: unknown): void {
    let line: string;
    try {
      line = encodeResult(id, result);
    } catch (err) {
      this.logger.error({ err }, 'admin result cannot be encoded as JSON');
      line = encodeError(id, { code: INTERNAL_ERROR_CODE, message: `result cannot be encoded: ${(err as Error).message}`, details: {} });
    }
    this.write(line);
  }

  private writeError(id: RequestId | null, err: unknown): void {
    let body: AdminErrorBody;
    if (isTwinframeError(err)) {
      body = { code: err.code, message: err.message, details: { ...err.details } };
    } else {
      this.logger.error({ err }, 'admin backend failed');
      body = { code: INTERNAL_ERROR_CODE, message: err instanceof Error ? err.message : String(err), details: {} };
    }
    let line: string;
    try {
      line = encodeError(id, body);
    } catch {
      line = encodeError(id, { code: body.code, message: body.message, details: {} }); // details not encodable
    }
    this.write(line);
  }

  private write(line: string): void {
    this.ordered.write(line);
  }

  /** Half-close after what is queued has been written, then drop the connection. */
  end(): void {
    this.ordered.end();
  }

  private cleanup(): void {
    this.ordered.stopReading();
    if (this.unsubscribe !== null) {
      const unsubscribe = this.unsubscribe;
      this.unsubscribe = null;
      try {
        unsubscribe();
      } catch (err) {
        this.logger.error({ err }, 'admin backend unsubscribe failed');
      }
    }
    this.server.forget(this);
  }
}

export class AdminServer {
  private readonly socketPath: string;
  private readonly backend: AdminBackend;
  private readonly logger: Logger;
  private readonly maxClients: number;
  private readonly maxPendingWriteBytes: number;
  private readonly stalledClientMs: number;
  private server: net.Server | null = null;
  private readonly connections = new Set<Connection>();
  /** Identity of the socket file we put at socketPath, so close() removes only ours. */
  private boundFile: { dev: number; ino: number } | null = null;

  constructor(options: AdminServerOptions) {
    this.socketPath = path.resolve(options.socketPath);
    this.backend = options.backend;
    this.logger = options.logger;
    this.maxClients = options.maxClients ?? 64;
    this.maxPendingWriteBytes = options.maxPendingWriteBytes ?? 4 * 1024 * 1024;
    this.stalledClientMs = options.stalledClientMs ?? 30_000;
  }

  get path(): string {
    return this.socketPath;
  }

  /** Creates the owner-only socket (see the header) and starts accepting connections. */
  async listen(): Promise<void> {
    if (this.server !== null) throw new Error('AdminServer is already listening');
    const target = this.socketPath;
    if (Buffer.byteLength(target) > MAX_UNIX_SOCKET_PATH_BYTES) {
      throw new TwinframeError('TF_CONFIG_INVALID', `admin socket path ${target} is longer than the ${MAX_UNIX_SOCKET_PATH_BYTES}-byte limit of a Unix socket`);
    }
    const dir = path.dirname(target);
    // Ours and writable by nobody else: another user could replace the socket and read every operator command.
    await ensurePrivateDirectory(dir, 'admin socket directory', 'another user could replace the socket; remove it or choose another admin.socketPath');
    await this.clearStaleSocket(target);

    const tmpDir = await mkdtemp(path.join(dir, '.tfadmin-'));
    const tmpSock = path.join(tmpDir, 's');
    // Half-open allowed so a client that half-closes after its request still gets the reply.
    const server = net.createServer({ allowHalfOpen: true });
    server.on('connection', (socket) => this.accept(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(tmpSock, () => {
          server.off('error', reject);
          resolve();
        });
      });
      await chmod(tmpSock, 0o600);
      try {
        await link(tmpSock, target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          throw new TwinframeError('TF_ADMIN_SOCKET_IN_USE', `admin socket path ${target} was taken by another process while starting`, { socketPath: target });
        }
        // A filesystem without hard links: rename, after checking the path is still free.
        this.logger.debug({ err }, 'cannot hard-link the admin socket; renaming it instead');
        await this.clearStaleSocket(target);
        await rename(tmpSock, target);
      }
      const st = await stat(target);
      this.boundFile = { dev: st.dev, ino: st.ino };
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
    server.on('error', (err) => this.logger.error({ err }, 'admin server error'));
    this.server = server;
    this.logger.info({ socketPath: target }, 'admin server listening');
  }

  private async clearStaleSocket(target: string): Promise<void> {
    let st;
    try {
      st = await lstat(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (!st.isSocket()) {
      throw new TwinframeError('TF_ADMIN_SOCKET_IN_USE', `admin socket path ${target} is ${describeFileType(st)}, not a socket; refusing to replace it`, {
        socketPath: target,
      });
    }
    const state = await probe(target);
    if (state === 'gone') return;
    if (state !== 'stale') {
      throw new TwinframeError('TF_ADMIN_SOCKET_IN_USE', `another server is listening on admin socket ${target}`, { socketPath: target });
    }
    // Left by a crashed run. Unlink it only if it is still the very same file.
    const again = await lstat(target).catch(() => null);
    if (again !== null && again.isSocket() && again.ino === st.ino && again.dev === st.dev) {
      this.logger.info({ socketPath: target }, 'replacing stale admin socket');
      await unlink(target).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.maxClients) {
      socket.on('error', () => undefined);
      socket.end(encodeError(null, { code: 'TF_ADMIN_BAD_REQUEST', message: `too many admin connections (limit ${this.maxClients})`, details: {} }));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    // The socket is 0600 in a private directory; the kernel's record of who connected says so
    // again (root, or a permission mistake, could reach it otherwise). Without the addon the
    // permissions alone decide.
    const uid = nativeAddon ? nativeAddon.peerUid((socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1) : undefined;
    const self = process.getuid?.();
    if (uid !== undefined && self !== undefined && uid !== self && uid !== 0) {
      this.logger.warn({ peerUid: uid, uid: self }, 'admin connection from another user refused');
      socket.destroy();
      return;
    }
    this.connections.add(new Connection(socket, this, this.backend, this.logger, this.maxPendingWriteBytes, this.stalledClientMs));
  }

  /** @internal called by a connection when it closes */
  forget(conn: Connection): void {
    this.connections.delete(conn);
  }

  get clientCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, closes every connection (watchers see the end), removes our socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of [...this.connections]) conn.end();
    await closed;
    if (this.boundFile !== null) {
      const ours = this.boundFile;
      this.boundFile = null;
      const st = await lstat(this.socketPath).catch(() => null);
      if (st !== null && st.isSocket() && st.ino === ours.ino && st.dev === ours.dev) {
        await unlink(this.socketPath).catch(() => undefined);
      }
    }
    this.logger.info({ socketPath: this.socketPath }, 'admin server closed');
  }
}
