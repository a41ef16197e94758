// The client side of the admin protocol: one connection to the admin socket, typed
// requests matched to their replies by id, and `watch` as an async iterator of events.
// Failures come in two kinds scripts must tell apart: the server refused
// (AdminReplyError, with the server's code) or the server could not be reached or
// went away (AdminConnectionError).

import net from 'node:net';
import type { CommandResults, WatchEvent } from './backend.js';
import {
  LineSplitter,
  MAX_REPLY_LINE_BYTES,
  encodeRequest,
  serverLineSchema,
  type AdminCommand,
  type CommandArgs,
  type RequestId,
} from './protocol.js';

/** The server answered with ok: false. */
export class AdminReplyError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown>) {
    super(message);
    this.name = 'AdminReplyError';
    this.code = code;
    this.details = details;
  }
}

/** Could not connect, timed out, the connection was lost, or the server spoke nonsense. */
export class AdminConnectionError extends Error {
  /** errno code (ENOENT, ECONNREFUSED, EACCES…), 'ETIMEDOUT', 'ECLOSED' or 'EPROTO'. */
  readonly code: string;
  readonly socketPath: string;

  constructor(code: string, message: string, socketPath: string) {
    super(message);
    this.name = 'AdminConnectionError';
    this.code = code;
    this.socketPath = socketPath;
  }
}

export interface AdminClientOptions {
  /** Per-request reply timeout; 0 disables it. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout | null;
}

/** Arguments are optional for commands whose arguments are all optional. */
type Args<C extends AdminCommand> = Record<string, never> extends CommandArgs<C> ? [args?: CommandArgs<C>] : [args: CommandArgs<C>];

export class AdminClient {
  private readonly pending = new Map<RequestId, Pending>();
  private readonly splitter = new LineSplitter(MAX_REPLY_LINE_BYTES);
  private nextId = 1;
  private closedError: AdminConnectionError | null = null;
  private readonly eventListeners = new Set<(event: WatchEvent) => void>();
  private readonly closeListeners = new Set<(err: AdminConnectionError | null) => void>();
  private closedByUs = false;

  private constructor(private readonly socket: net.Socket, readonly socketPath: string, private readonly timeoutMs: number) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new AdminConnectionError(err.code ?? 'EIO', `admin connection error: ${err.message}`, socketPath)));
    socket.on('close', () => this.fail(new AdminConnectionError('ECLOSED', 'the admin server closed the connection', socketPath)));
  }

  /** Connects to the admin socket. Rejects with AdminConnectionError. */
  static connect(socketPath: string, options: AdminClientOptions = {}): Promise<AdminClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: socketPath });
      const timer = timeoutMs > 0
        ? setTimeout(() => {
          socket.destroy();
          reject(new AdminConnectionError('ETIMEDOUT', `timed out connecting to the admin socket ${socketPath}`, socketPath));
        }, timeoutMs)
        : null;
      const onError = (err: NodeJS.ErrnoException): void => {
        if (timer !== null) clearTimeout(timer);
        const why = err.code === 'ENOENT' ? 'no admin socket there (is twinframe running?)'
          : err.code === 'ECONNREFUSED' ? 'nothing is listening (a stale socket from a stopped server?)'
            : err.code === 'EACCES' ? 'permission denied (the socket belongs to another user)'
              : err.message;
        reject(new AdminConnectionError(err.code ?? 'EIO', `cannot connect to ${socketPath}: ${why}`, socketPath));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        if (timer !== null) clearTimeout(timer);
        socket.off('error', onError);
        resolve(new AdminClient(socket, socketPath, timeoutMs));
      });
    });
  }

  /** Sends one command and resolves with its result, or rejects with AdminReplyError / AdminConnectionError. */
  request<C extends Exclude<AdminCommand, 'watch'>>(cmd: C, ...rest: Args<C>): Promise<CommandResults[C]> {
    return this.send(cmd, rest[0] ?? {}) as Promise<CommandResults[C]>;
  }

  private send(cmd: AdminCommand, args: unknown): Promise<unknown> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = this.timeoutMs > 0 && cmd !== 'watch'
        ? setTimeout(() => {
          this.pending.delete(id);
          reject(new AdminConnectionError('ETIMEDOUT', `no reply to '${cmd}' within ${this.timeoutMs} ms`, this.socketPath));
        }, this.timeoutMs)
        : null;
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeRequest(id, cmd, args));
    });
  }

  /**
   * Subscribes to events. Yields each event until the server closes the connection
   * or close() is called (then the iteration simply ends; `lastError` tells which).
   */
  async *watch(): AsyncGenerator<WatchEvent, void, undefined> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    const onEvent = (event: WatchEvent): void => {
      queue.push(event);
      wake?.();
    };
    const onClose = (): void => {
      ended = true;
      wake?.();
    };
    this.eventListeners.add(onEvent);
    this.closeListeners.add(onClose);
    try {
      await this.send('watch', {});
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (ended) return;
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = null;
      }
    } finally {
      this.eventListeners.delete(onEvent);
      this.closeListeners.delete(onClose);
    }
  }

  /** Why the connection ended: null while open or when close() ended it. */
  get lastError(): AdminConnectionError | null {
    return this.closedByUs ? null : this.closedError;
  }

  close(): void {
    this.closedByUs = true;
    this.socket.destroy();
    this.fail(new AdminConnectionError('ECLOSED', 'the admin connection was closed', this.socketPath));
  }

  private onData(chunk: Buffer): void {
    const { lines, overflow } = this.splitter.push(chunk);
    for (const line of lines) {
      if (line.trim() !== '') this.onLine(line);
    }
    if (overflow) this.protocolError(`reply longer than ${MAX_REPLY_LINE_BYTES} bytes`);
  }

  private onLine(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.protocolError('the server sent a line that is not JSON');
      return;
    }
    const parsed = serverLineSchema.safeParse(value);
    if (!parsed.success) {
      this.protocolError('the server sent a line that is not a reply or an event');
      return;
    }
    const msg = parsed.data;
    if ('event' in msg) {
      for (const l of this.eventListeners) l(msg.event as unknown as WatchEvent);
      return;
    }
    if (msg.id === null) {
      // A complaint about a line we sent that the server could not attribute: fail everything in flight.
      if (!msg.ok) this.failAll(new AdminReplyError(msg.error.code, msg.error.message, msg.error.details));
      return;
    }
    const p = this.pending.get(msg.id);
    if (p === undefined) return; // timed out earlier
    this.pending.delete(msg.id);
    if (p.timer !== null) clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new AdminReplyError(msg.error.code, msg.error.message, msg.error.details));
  }

  private protocolError(message: string): void {
    this.fail(new AdminConnectionError('EPROTO', message, this.socketPath));
    this.socket.destroy();
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(err);
    }
  }

  private fail(err: AdminConnectionError): void {
    if (this.closedError === null) this.closedError = err;
    this.failAll(this.closedError);
    for (const l of this.closeListeners) l(this.closedError);
  }
}
