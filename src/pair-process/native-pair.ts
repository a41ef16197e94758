// The native primitives of the process pair (issue 17), typed and checked:
// shared memory both processes map as a SharedArrayBuffer, file descriptors
// passed over a Unix socket, and knowing that a process died: a pidfd (when
// it has exited) and the life lock (when its holding thread began to die).
// Node has none of them, so there is no plain-Node fallback: without the addon
// (not built, stale, or TWINFRAME_NATIVE=off) every function here throws
// PairNativeUnavailableError and the process pair refuses to start with its
// message. Nothing else in twinframe imports this module.

import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nativeAddon, type NativeAddon } from '../shared/native.js';

export class PairNativeUnavailableError extends Error {
  constructor() {
    super(
      'the process pair needs twinframe\'s native addon (shared memory, descriptor passing, pidfd): ' +
      (process.env.TWINFRAME_NATIVE === 'off'
        ? 'TWINFRAME_NATIVE=off disables it'
        : 'native/build/Release/twinframe_native.node is missing or older than its source; run `npm install` (needs a C/C++ compiler)'),
    );
    this.name = 'PairNativeUnavailableError';
  }
}

/** The addon, or PairNativeUnavailableError: call once at the pair's start to refuse early. */
export function requirePairNative(): NativeAddon {
  if (!nativeAddon) throw new PairNativeUnavailableError();
  return nativeAddon;
}

/** An Error for a native -errno result, with Node's code ('EEXIST', …) and the call that failed. */
function errnoError(result: number, call: string): NodeJS.ErrnoException {
  const code = os.constants.errno;
  const name = Object.keys(code).find((key) => code[key as keyof typeof code] === -result) ?? `errno ${-result}`;
  const err: NodeJS.ErrnoException = new Error(`${call}: ${name}`);
  err.code = name;
  err.errno = result;
  return err;
}

// ---- 1. Shared memory two processes map -------------------------------------

/**
 * A private directory for the pair's shared regions and sockets:
 * /dev/shm/twinframe-<uid> (memory, never written back to a disk), mode 0700,
 * owned by this user, not a symlink. Made if missing; anything else there is refused.
 */
export function pairRuntimeDir(base = '/dev/shm'): string {
  const uid = process.getuid?.() ?? 0;
  const dir = path.join(base, `twinframe-${uid}`);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a private directory of user ${uid} (mode 0700): refusing to share memory through it`);
  }
  return dir;
}

function mapRegion(file: string, bytes: number, create: boolean): SharedArrayBuffer {
  const result = requirePairNative().sharedRegionOpen(file, bytes, create);
  if (typeof result === 'number') throw errnoError(result, `${create ? 'create' : 'open'} shared region ${file}`);
  return result;
}

/**
 * Create the file `file` (it must not exist; mode 0600), size it to `bytes` (zeroed)
 * and map it shared. The SharedArrayBuffer's Atomics work across every process
 * that maps the file, and it can be posted to this process's worker threads.
 * Atomics.notify wakes waiters of this process only (V8 keeps its own wait lists).
 */
export function createSharedRegion(file: string, bytes: number): SharedArrayBuffer {
  return mapRegion(file, bytes, true);
}

/** Map a region another process created; its size must be `bytes` (EINVAL otherwise, also while its creator has not sized it yet). */
export function openSharedRegion(file: string, bytes: number): SharedArrayBuffer {
  return mapRegion(file, bytes, false);
}

/** Remove a region's name; processes that mapped it keep the memory until they drop their buffers. */
export function removeSharedRegion(file: string): void {
  fs.rmSync(file, { force: true });
}

// ---- 2. Passing file descriptors over a Unix socket --------------------------

/** The descriptor of a Node socket or server (libuv's handle): to pass it, never to close it. */
export function descriptorOf(handle: net.Socket | net.Server): number {
  const fd = (handle as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) throw new Error('the socket has no descriptor (not open, or not a TCP/Unix socket)');
  return fd;
}

/** A message received over an FdChannel: its bytes and the new descriptors it brought (this process owns them). */
export interface FdMessage {
  payload: Buffer;
  fds: number[];
}

/** The largest message an FdChannel receives, and the most descriptors in one (the addon's limit). */
export const FD_MESSAGE_BYTES = 64 * 1024;
export const FD_MESSAGE_FDS = 64;

/**
 * One end of a SOCK_SEQPACKET Unix connection that carries messages with
 * descriptors attached. Nonblocking: receive() returns what is waiting; wait for
 * more with a ReadableWatcher (native-watcher.ts) on `fd`, or waitReadable.
 */
export class FdChannel {
  readonly #payload = Buffer.alloc(FD_MESSAGE_BYTES);
  readonly #fdsOut = new Int32Array(FD_MESSAGE_FDS);
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  static connect(socketPath: string): FdChannel {
    const fd = requirePairNative().seqpacketConnect(socketPath);
    if (fd < 0) throw errnoError(fd, `connect ${socketPath}`);
    return new FdChannel(fd);
  }

  get fd(): number {
    return this.#fd;
  }

  /** The user id of the process at the other end (SO_PEERCRED), to authenticate it. */
  peerUid(): number {
    const uid = requirePairNative().peerUid(this.#fd);
    if (uid < 0) throw errnoError(uid, 'peer credentials');
    return uid;
  }

  /** Send one message with `fds` attached (the receiver gets its own copies); throws EAGAIN when the channel is full. */
  send(payload: Buffer, fds: readonly number[] = []): void {
    const sent = requirePairNative().sendFds(this.#fd, payload, Int32Array.from(fds), fds.length);
    if (sent < 0) throw errnoError(sent, 'send descriptors');
  }

  /** The next message, undefined when none is waiting, or 'closed' when the peer has gone. */
  receive(): FdMessage | undefined | 'closed' {
    const length = requirePairNative().recvFds(this.#fd, this.#payload, this.#fdsOut);
    if (length === -os.constants.errno.EAGAIN) return undefined;
    if (length < 0) throw errnoError(length, 'receive descriptors');
    if (length === 0) return 'closed';
    const fds = [...this.#fdsOut].filter((fd) => fd >= 0);
    return { payload: Buffer.from(this.#payload.subarray(0, length)), fds };
  }

  close(): void {
    if (this.#fd < 0) return;
    fs.closeSync(this.#fd);
    this.#fd = -1;
  }
}

/**
 * The calling thread owns a received descriptor from now on, as if the addon had
 * made it there: udpClose/closeFd close it, and so does the thread's end (a data
 * path that sends on a passed UDP socket). Throws EEXIST if it owns it already.
 */
export function adoptDescriptor(fd: number): void {
  const rc = requirePairNative().adoptFd(fd);
  if (rc !== 0) throw errnoError(-rc, `adopt descriptor ${fd}`);
}

/** A second descriptor of the same socket (close-on-exec), this thread's to close with closeDescriptor. */
export function duplicateDescriptor(fd: number): number {
  const dup = requirePairNative().dupFd(fd);
  if (dup < 0) throw errnoError(dup, `duplicate descriptor ${fd}`);
  return dup;
}

/** Close a descriptor duplicateDescriptor made. */
export function closeDescriptor(fd: number): void {
  requirePairNative().closeFd(fd);
}

/** Block this thread until `fd` is readable (an FdChannel: a message or its end is waiting), at most timeoutMs (-1: no limit); false on timeout. */
export function waitReadable(fd: number, timeoutMs: number): boolean {
  const result = requirePairNative().waitReadable(fd, timeoutMs);
  if (result < 0) throw errnoError(result, `wait for descriptor ${fd}`);
  return result === 1;
}

/** A Unix SOCK_SEQPACKET socket at `socketPath` that FdChannels connect to. */
export class FdChannelListener {
  #fd: number;

  constructor(readonly socketPath: string) {
    this.#fd = requirePairNative().seqpacketListen(socketPath);
    if (this.#fd < 0) throw errnoError(this.#fd, `listen ${socketPath}`);
  }

  get fd(): number {
    return this.#fd;
  }

  /** The next connection waiting, or undefined. */
  accept(): FdChannel | undefined {
    const fd = requirePairNative().seqpacketAccept(this.#fd);
    if (fd === -os.constants.errno.EAGAIN) return undefined;
    if (fd < 0) throw errnoError(fd, `accept on ${this.socketPath}`);
    return new FdChannel(fd);
  }

  /** Stop listening and remove the socket's name. */
  close(): void {
    if (this.#fd < 0) return;
    fs.closeSync(this.#fd);
    this.#fd = -1;
    fs.rmSync(this.socketPath, { force: true });
  }
}

// ---- 3. Knowing at once that a process died ----------------------------------

/** A pidfd for process `pid` (Linux 5.3+): readable once the process has exited. Close with fs.closeSync. */
export function openPidfd(pid: number): number {
  const fd = requirePairNative().pidfdOpen(pid);
  if (fd < 0) throw errnoError(fd, `pidfd of process ${pid}`);
  return fd;
}

/**
 * A pidfd for the process at the other end of a connected Unix socket (an
 * FdChannel's fd, or descriptorOf a net.Socket of the pair's link), named by the
 * kernel: the very process that connected, not whichever now has its pid.
 */
export function openPeerPidfd(socketFd: number): number {
  const fd = requirePairNative().peerPidfd(socketFd);
  if (fd < 0) throw errnoError(fd, 'pidfd of the socket\'s peer');
  return fd;
}

/** Block this thread until the process of `pidfd` exits, or timeoutMs passes (-1: no limit). For a watcher thread. */
export function waitProcessExit(pidfd: number, timeoutMs: number): 'exited' | 'timeout' {
  return waitReadable(pidfd, timeoutMs) ? 'exited' : 'timeout';
}

/** Bytes of a life lock in a shared region (8-byte aligned). */
export const LIFE_LOCK_BYTES = 64;

/**
 * The life lock at byteOffset of a shared region: a robust process-shared mutex
 * the primary's main thread holds while the process lives. The kernel releases
 * it as "owner died" when that thread starts to exit — before the process's
 * memory is freed, which a pidfd waits for — so a waiting thread of the standby
 * learns of a SIGKILL at once, whatever the size of the dead process.
 */
export function lifeLockWords(region: SharedArrayBuffer, byteOffset: number): Int32Array {
  if (byteOffset % 8 !== 0 || byteOffset + LIFE_LOCK_BYTES > region.byteLength) throw new RangeError(`a life lock needs ${LIFE_LOCK_BYTES} bytes at an 8-byte aligned offset of the region`);
  return new Int32Array(region, byteOffset, LIFE_LOCK_BYTES / 4);
}

/** Make the lock: once, by the region's creator, before any other process opens the region. */
export function initLifeLock(lock: Int32Array): void {
  const rc = requirePairNative().lifeLockInit(lock);
  if (rc !== 0) throw errnoError(-rc, 'initialize the life lock');
}

/** Linux's errno for a robust mutex whose holder died (Node's os.constants.errno lacks it). */
const EOWNERDEAD = 130;

/** 'taken' (free, or released by its holder), 'holder-died' (taken from a dead holder), or 'timeout'. */
export type LifeLockOutcome = 'taken' | 'holder-died' | 'timeout';

/**
 * Take the life lock, waiting at most timeoutMs (0: try once; -1: no limit).
 * The holder: the primary's main thread, once, for the process's life. A
 * watcher thread that takes it releases it at once (a holder thread that ends
 * reads as a death to the next waiter).
 */
export function acquireLifeLock(lock: Int32Array, timeoutMs: number): LifeLockOutcome {
  const rc = requirePairNative().lifeLockAcquire(lock, timeoutMs);
  const { ETIMEDOUT } = os.constants.errno;
  if (rc === ETIMEDOUT) return 'timeout';
  if (rc !== 0 && rc !== EOWNERDEAD) throw errnoError(-rc, 'take the life lock');
  heldLifeLocks.add(lock);
  return rc === 0 ? 'taken' : 'holder-died';
}

/** Give the life lock back (a lossless role switch: the standby's watcher sees 'taken', not a death). */
export function releaseLifeLock(lock: Int32Array): void {
  const rc = requirePairNative().lifeLockRelease(lock);
  if (rc !== 0) throw errnoError(-rc, 'release the life lock');
  heldLifeLocks.delete(lock);
}

/**
 * The locks this thread holds, kept reachable: a region is unmapped when its last
 * buffer is collected, and the kernel cannot mark a lock "owner died" in memory
 * the dying process no longer maps (the waiter would then sleep on). Found the
 * hard way: a holder that dropped its buffer and grew by 64 MiB was collected.
 */
const heldLifeLocks = new Set<Int32Array>();
