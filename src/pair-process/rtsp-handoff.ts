// The viewer's RTSP connection itself survives a takeover (issue 17 item 3).
// The primary passes its RTSP listening socket and every RTSP connection it
// accepts to its standby as descriptors (SCM_RIGHTS over a SOCK_SEQPACKET Unix
// socket beside the link, native-pair.ts), and says when each one closes. The
// standby holds them without reading; at takeover its RTSP server listens on the
// passed socket (no wait for the dead primary's port, no connection in its
// accept queue lost) and serves every held connection as one of its own: a
// player on it sends its keep-alives and TEARDOWN as if nothing happened.
//
// What a takeover loses on a connection: whatever the dead primary had read from
// it and not answered (a request half or wholly read: it never gets a reply, and
// the bytes of a half-read one are gone, so the next request on the connection
// may be misframed and refused with 400), and a reply it had only partly written.
//
// An operator's role switch loses nothing: the primary stops answering at a
// request boundary on every connection and answers what it had read (quiesce),
// hands sending over, then lets go of its copies and says on the link which
// connections the standby serves, each with the bytes it had received since
// ('rtsp-release'); the standby serves them from there.

import fs from 'node:fs';
import type net from 'node:net';
import type { Logger } from '../log.js';
import { FdChannel, FdChannelListener, descriptorOf, duplicateDescriptor, openPeerPidfd } from './native-pair.js';
import { ReadableWatcher } from './native-watcher.js';
import type { HandoffMessage } from './link-messages.js';
import type { ConnectionWatcher, RtspHandover } from '../rtsp/server.js';

/** What the handoff needs of this process's RTSP server (src/rtsp/server.ts). */
export interface RtspConnectionServer {
  /** The listening socket while it listens, every open connection, and from now on each one opened and closed. */
  watchConnections(listener: ConnectionWatcher): { readonly listening: net.Server | undefined; readonly open: ReadonlyArray<{ readonly id: number; readonly socket: net.Socket }>; stop(): void };
  /** Listen on a passed listening socket's descriptor. */
  listen(fd?: number): Promise<unknown>;
  /** Serve a passed connection's descriptor as one accepted here, under the primary's `id`, `pending` bytes first. */
  adoptConnection(fd: number, pending: Buffer | undefined, id: number): void;
  /** A role switch: stop answering at request boundaries once what was read is answered (TF_PAIR_SWITCH if it cannot). */
  quiesce(timeoutMs: number): Promise<RtspHandover>;
}

/** The connections a primary released at a role switch (rtsp-release), by id, each with what it had received and not answered. */
export type ReleasedConnections = ReadonlyMap<number, Buffer>;

/** Where the descriptor channel listens: beside the link. */
export function handoffPath(link: string): string {
  return `${link}.fds`;
}

/** Closed connections a standby remembers (a wait for one of them fails at once). */
const CLOSED_KEPT = 4096;
/** How long the primary waits for the standby it linked to connect its descriptor channel, and how often it looks. */
const CHANNEL_WAIT_MS = 2000;
const CHANNEL_POLL_MS = 5;

function encode(message: HandoffMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/** The pid of the process at the other end of a Unix socket, as the kernel names it. */
function peerPid(socketFd: number): number {
  const pidfd = openPeerPidfd(socketFd);
  try {
    return Number(/^Pid:\s+(-?\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'))?.[1] ?? -1);
  } finally {
    fs.closeSync(pidfd);
  }
}

/** Whether the process at the other end of `channel` is process `pid` of this user (one that died meanwhile is not). */
function isProcess(channel: FdChannel, pid: number): boolean {
  try {
    return channel.peerUid() === process.getuid?.() && peerPid(channel.fd) === pid;
  } catch {
    return false;
  }
}

/** The primary side: hands the listening socket and each connection to the linked standby. */
export class ConnectionHandoff {
  #listener: FdChannelListener | undefined;
  #server: RtspConnectionServer | undefined;
  #channel: FdChannel | undefined;
  #watch: { stop(): void } | undefined;
  #poll: NodeJS.Timeout | undefined;
  readonly #log: Logger;

  constructor(logger: Logger) {
    this.#log = logger.child({ component: 'pair-rtsp' });
  }

  /** Listen for the standby's channel (this process just became the primary on `link`: a stale socket file is a dead one's). */
  listen(link: string): void {
    const path = handoffPath(link);
    this.#listener?.close(); // one it listened on before a role switch made it the standby
    this.#listener = undefined;
    try {
      fs.rmSync(path, { force: true });
      this.#listener = new FdChannelListener(path);
      fs.chmodSync(path, 0o600);
    } catch (err) {
      this.#log.error({ path, err: (err as Error).message }, 'process pair: cannot listen for the descriptor channel; viewers\' RTSP connections end with this process');
    }
  }

  attach(server: RtspConnectionServer): void {
    this.#server = server;
    // A standby linked before the RTSP server listened: hand it everything now.
    if (this.#channel && !this.#watch) this.#start(this.#channel);
  }

  /** The standby process `pid` is linked: take its channel (the one whose peer the kernel names `pid`) and hand it everything. */
  linked(pid: number): void {
    this.unlinked();
    const listener = this.#listener;
    if (!listener) return;
    const deadline = Date.now() + CHANNEL_WAIT_MS;
    const look = (): void => {
      try {
        for (let c = listener.accept(); c; c = listener.accept()) {
          if (!this.#channel && isProcess(c, pid)) this.#channel = c;
          else c.close();
        }
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'process pair: cannot accept on the descriptor channel');
      }
      if (this.#channel) {
        clearInterval(this.#poll);
        this.#poll = undefined;
        this.#start(this.#channel);
      } else if (Date.now() > deadline) {
        clearInterval(this.#poll);
        this.#poll = undefined;
        this.#log.warn({ pid }, 'process pair: the standby opened no descriptor channel; viewers\' RTSP connections end with this process');
      }
    };
    this.#poll = setInterval(look, CHANNEL_POLL_MS);
    look();
  }

  /** The standby holds a copy of every connection (its channel is up and this server's connections are watched). */
  get handing(): boolean {
    return this.#watch !== undefined;
  }

  /** The standby left: it closes what it held. */
  unlinked(): void {
    clearInterval(this.#poll);
    this.#poll = undefined;
    this.#watch?.stop();
    this.#watch = undefined;
    this.#channel?.close();
    this.#channel = undefined;
  }

  close(): void {
    this.unlinked();
    this.#listener?.close();
    this.#listener = undefined;
  }

  #start(channel: FdChannel): void {
    const server = this.#server;
    if (!server) return; // no RTSP server yet: no connection to hand
    const watch = server.watchConnections({
      listening: (listener) => this.#send(channel, { kind: 'listener' }, listener),
      opened: (id, socket) => this.#send(channel, { kind: 'connection', id }, socket),
      closed: (id) => this.#send(channel, { kind: 'closed', id }),
    });
    this.#watch = watch;
    if (watch.listening) this.#send(channel, { kind: 'listener' }, watch.listening);
    for (const { id, socket } of watch.open) this.#send(channel, { kind: 'connection', id }, socket);
  }

  #send(channel: FdChannel, message: HandoffMessage, handle?: net.Socket | net.Server): void {
    if (channel !== this.#channel) return;
    try {
      channel.send(encode(message), handle ? [descriptorOf(handle)] : []);
    } catch (err) {
      // A standby that does not read its channel (EAGAIN) or is gone: it holds nothing consistent any more.
      this.#log.warn({ message, err: (err as Error).message }, 'process pair: the descriptor channel failed; viewers\' RTSP connections end with this process');
      this.unlinked();
    }
  }
}

/** The standby side: the primary's listening socket and connections, held unread until a takeover. */
export class HeldConnections {
  #channel: FdChannel | undefined;
  #watcher: ReadableWatcher | undefined;
  #listenerFd: number | undefined;
  readonly #connections = new Map<number, number>();
  /** Who waits for a connection's descriptor (an interleaved session's open step can cross the link first). */
  readonly #heldWaiters = new Map<number, Array<(fd: number | undefined) => void>>();
  /** Connections the primary said closed since this channel opened (the latest CLOSED_KEPT): a wait for one fails at once. */
  readonly #closedIds = new Set<number>();
  /** What the primary released at a role switch, and who waits for it. */
  #released: ReleasedConnections | undefined;
  #releaseWaiter: ((released: ReleasedConnections | undefined) => void) | undefined;
  readonly #log: Logger;

  constructor(logger: Logger) {
    this.#log = logger.child({ component: 'pair-rtsp' });
  }

  /** The primary stopped answering at a role switch (rtsp-release on the link): the connections to serve. */
  released(connections: ReleasedConnections): void {
    this.#released = connections;
    this.#releaseWaiter?.(connections);
  }

  /** Resolves with what the primary released, once it did; undefined if it did not within `timeoutMs` (it died meanwhile). */
  whenReleased(timeoutMs: number): Promise<ReleasedConnections | undefined> {
    if (this.#released) return Promise.resolve(this.#released);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#releaseWaiter = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.#releaseWaiter = (released) => {
        clearTimeout(timer);
        this.#releaseWaiter = undefined;
        resolve(released);
      };
    });
  }

  /**
   * A duplicate of the descriptor held for the primary's connection `id` (the
   * caller's to close: closeDescriptor), once the channel brought it: it may come
   * after the link's step that names it. An Error at once if the connection
   * closed or there is no channel, or if it is not passed within `timeoutMs`.
   */
  whenHeld(id: number, timeoutMs: number): Promise<number> {
    const channel = this.#channel;
    if (channel) this.#drain(channel);
    const fd = this.#connections.get(id);
    if (fd !== undefined) return Promise.resolve(duplicateDescriptor(fd));
    if (!this.#channel || this.#closedIds.has(id)) return Promise.reject(new Error(`the primary's RTSP connection ${id} ${this.#channel ? 'closed' : 'cannot be passed: no descriptor channel'}`));
    return new Promise((resolve, reject) => {
      const waiters = this.#heldWaiters.get(id) ?? [];
      this.#heldWaiters.set(id, waiters);
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      // Called while the descriptor is held (before a later message may close it): duplicated at once.
      const settle = (held: number | undefined): void => {
        clearTimeout(timer);
        const left = (this.#heldWaiters.get(id) ?? []).filter((w) => w !== settle);
        if (left.length > 0) this.#heldWaiters.set(id, left);
        else this.#heldWaiters.delete(id);
        if (held === undefined) reject(new Error(`the primary's RTSP connection ${id} was not passed within ${timeoutMs} ms, or it closed`));
        else {
          try {
            resolve(duplicateDescriptor(held));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        }
      };
      waiters.push(settle);
    });
  }

  /** Joined the primary on `link`: open the channel beside it (what an earlier primary passed is let go). */
  connect(link: string): void {
    this.#release();
    try {
      const channel = FdChannel.connect(handoffPath(link));
      this.#channel = channel;
      this.#watcher = new ReadableWatcher(channel.fd, {
        once: false,
        onReadable: () => this.#drain(channel),
        onError: (err) => this.#log.error({ err: err.message }, 'process pair: the descriptor channel\'s watcher failed'),
      });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'process pair: no descriptor channel to the primary; viewers\' RTSP connections end with it');
    }
  }

  /**
   * Took over: the RTSP server listens on the primary's socket and serves every
   * connection it held, or, after a role switch, those `released` (their pending
   * bytes first; the others were closing). True if it listens on that socket.
   */
  takeOver(server: RtspConnectionServer, released?: ReleasedConnections): boolean {
    const channel = this.#channel;
    if (channel) this.#drain(channel); // what the primary sent last, before it died or released them
    this.#stopWatching();
    const listenerFd = this.#listenerFd;
    this.#listenerFd = undefined;
    for (const [id, fd] of this.#connections) {
      if (released && !released.has(id)) {
        fs.closeSync(fd);
        continue;
      }
      try {
        server.adoptConnection(fd, released?.get(id), id);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'process pair: a connection of the primary cannot be served');
        fs.closeSync(fd);
      }
    }
    const connections = this.#connections.size;
    this.#connections.clear();
    if (listenerFd !== undefined) {
      server.listen(listenerFd).catch((err: Error) => {
        this.#log.error({ err: err.message }, 'process pair: cannot listen on the primary\'s RTSP socket');
        fs.closeSync(listenerFd);
      });
    }
    this.#log.info({ connections, listener: listenerFd !== undefined }, 'process pair: serving the primary\'s RTSP connections');
    return listenerFd !== undefined;
  }

  close(): void {
    this.#release();
  }

  #drain(channel: FdChannel): void {
    if (channel !== this.#channel) return;
    for (let m = channel.receive(); m !== undefined; m = channel.receive()) {
      if (m === 'closed') {
        this.#stopWatching(); // an ended socket stays readable; what it passed is kept for a takeover
        return;
      }
      this.#hold(JSON.parse(m.payload.toString('utf8')) as HandoffMessage, m.fds);
    }
  }

  #hold(message: HandoffMessage, fds: number[]): void {
    const [fd] = fds;
    for (const extra of fds.slice(1)) fs.closeSync(extra);
    switch (message.kind) {
      case 'listener':
        if (this.#listenerFd !== undefined) fs.closeSync(this.#listenerFd);
        this.#listenerFd = fd;
        break;
      case 'connection':
        if (fd === undefined) break;
        this.#connections.set(message.id, fd);
        for (const settle of this.#heldWaiters.get(message.id) ?? []) settle(fd);
        this.#log.debug({ connection: message.id }, 'process pair: an RTSP connection of the primary held');
        break;
      case 'closed': {
        const held = this.#connections.get(message.id);
        this.#connections.delete(message.id);
        this.#closedIds.add(message.id);
        if (this.#closedIds.size > CLOSED_KEPT) this.#closedIds.delete(this.#closedIds.values().next().value!);
        for (const settle of this.#heldWaiters.get(message.id) ?? []) settle(undefined);
        if (held !== undefined) fs.closeSync(held);
        break;
      }
    }
  }

  #stopWatching(): void {
    void this.#watcher?.stop();
    this.#watcher = undefined;
    this.#channel?.close();
    this.#channel = undefined;
  }

  #release(): void {
    this.#stopWatching();
    for (const waiters of [...this.#heldWaiters.values()]) for (const settle of waiters) settle(undefined);
    this.#closedIds.clear();
    this.#released = undefined;
    this.#releaseWaiter?.(undefined);
    for (const fd of this.#connections.values()) fs.closeSync(fd);
    this.#connections.clear();
    if (this.#listenerFd !== undefined) fs.closeSync(this.#listenerFd);
    this.#listenerFd = undefined;
  }
}
