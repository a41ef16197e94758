// Loads twinframe's optional Node-API addon (native/). Everything it offers has
// a slower or coarser fallback in plain Node, so a missing build is not an
// error: callers get undefined and use their fallback. A build that is there but
// unusable (older than its source, or not loadable) is dropped the same way, with
// one process warning that names the file and why. TWINFRAME_NATIVE=off forces
// the fallback (the test suite runs both ways).

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

const ADDON = '../../../native/build/Release/twinframe_native.node';

export interface NativeAddon {
  /** SCHED_FIFO for the calling thread; 0 or an errno. */
  setRealtimePriority(priority: number): number;
  /** CPU time of a thread of this process, exact to now; -1 on error. */
  threadCpuNs(tid: number): number;
  /** Every allocation of at least `bytes` its own mmap, unmapped when freed (glibc M_MMAP_THRESHOLD); 1 set, 0 not. */
  setMmapThreshold(bytes: number): number;
  /** Give the kernel back the free pages of every malloc arena (glibc malloc_trim(0)); 1 released some, 0 not. */
  mallocTrim(): number;
  /** Put a thread of this process back under SCHED_OTHER at nice 19; 0 or an errno. */
  demoteThread(tid: number): number;
  /** A nonblocking UDP socket with SO_REUSEADDR, bound to address:port; the fd or -errno. */
  udpOpen(address: string, port: number): number;
  /** Connect a socket made by udpOpen; 0 or an errno. */
  udpConnect(fd: number, address: string, port: number): number;
  /** Multicast TTL, outgoing interface ('' = by route) and loopback on for a socket made by udpOpen, before udpConnect; 0 or an errno. */
  udpMulticast(fd: number, ttl: number, interfaceAddress: string): number;
  /** Close a socket made by udpOpen; 0 or an errno. */
  udpClose(fd: number): number;
  /**
   * Send datagram i (lengths[i] bytes of buffers[i]) on socket fds[i], for i < count,
   * consecutive ones on the same socket in one sendmmsg. results[i]: 0 sent, or the
   * errno that refused it (EAGAIN for the rest of a socket's run after an EAGAIN;
   * EBADF, nothing sent, for fd < 0). Returns how many were sent.
   */
  sendBatch(fds: Int32Array, buffers: readonly Buffer[], lengths: Int32Array, count: number, results: Int32Array): number;
  /** A second descriptor (close-on-exec) for the same socket; the fd or -errno. */
  dupFd(fd: number): number;
  /** The user id of the peer of a connected Unix socket (SO_PEERCRED), or -errno. */
  peerUid(fd: number): number;
  /** SO_SNDBUF of a socket; 0 or an errno. */
  setSendBuffer(fd: number, bytes: number): number;
  /** Close a descriptor made by dupFd; 0 or an errno. */
  closeFd(fd: number): number;
  /** Bytes ever written to a TCP socket, as the kernel counts them (acknowledged + queued); or -errno. */
  socketBytesWritten(fd: number): number;
  /** The wire (src/shared/wire.ts): append whole frames and publish them with the media cursor; returns how many fitted. */
  wireAppend(wire: Int32Array, buffers: readonly Buffer[], lengths: Int32Array, first: number, count: number, channel: number, mediaNext: number): number;
  /** The wire: publish a media cursor alone. */
  wireSetMedia(wire: Int32Array, mediaNext: number): number;
  /** The wire: send from its tail on `fd`, storing the new tail; bytes sent or -errno. */
  wireFlush(fd: number, wire: Int32Array): number;
  /** Issue 17, the process pair (wrapped by src/pair-process/native-pair.ts): map file `path` (create: new, 0600, sized to `bytes`; else existing, of exactly `bytes`) MAP_SHARED as a SharedArrayBuffer; or -errno. */
  sharedRegionOpen(path: string, bytes: number, create: boolean): SharedArrayBuffer | number;
  /** A pidfd (close-on-exec) for process `pid`; the fd or -errno. */
  pidfdOpen(pid: number): number;
  /** A pidfd for the process at the other end of a connected Unix socket (SO_PEERPIDFD; SO_PEERCRED's pid before Linux 6.5); the fd or -errno. */
  peerPidfd(fd: number): number;
  /** Block this thread until `fd` is readable (a pidfd: its process exited), at most timeoutMs (-1: no limit); 1 readable, 0 timed out, or -errno. */
  waitReadable(fd: number, timeoutMs: number): number;
  /** A nonblocking SOCK_SEQPACKET Unix socket listening at `path`; the fd or -errno. */
  seqpacketListen(path: string): number;
  /** A nonblocking SOCK_SEQPACKET connection to `path`; the fd or -errno. */
  seqpacketConnect(path: string): number;
  /** The next connection waiting on a seqpacketListen socket; the fd, or -errno (-EAGAIN: none). */
  seqpacketAccept(listenFd: number): number;
  /** One message: payload (>= 1 byte) with fds[0..count-1] attached (SCM_RIGHTS, at most 64); bytes sent or -errno. */
  sendFds(fd: number, payload: Buffer, fds: Int32Array, count: number): number;
  /** The next message into payload, its descriptors into fdsOut (-1 in the rest); its length, 0 when the peer closed, or -errno (-EMSGSIZE: did not fit, its descriptors closed). */
  recvFds(fd: number, payload: Buffer, fdsOut: Int32Array): number;
  /** The calling thread owns a received descriptor from now on (udpClose/closeFd and the thread's end close it); 0 or an errno (EBADF, EEXIST). */
  adoptFd(fd: number): number;
  /** The life lock (a robust process-shared mutex in a shared region; words: >= 16, 8-byte aligned): make it; 0 or an errno. */
  lifeLockInit(words: Int32Array): number;
  /** Take the life lock within timeoutMs (0: try, -1: no limit): 0, EOWNERDEAD (its holder died; taken), ETIMEDOUT, EDEADLK or an errno. */
  lifeLockAcquire(words: Int32Array, timeoutMs: number): number;
  /** Give the life lock back; 0 or an errno (EPERM: not held by this thread). */
  lifeLockRelease(words: Int32Array): number;
}

/** Every function of a current build (`satisfies`: the list cannot miss one the interface adds). */
const FUNCTIONS = Object.keys({
  setRealtimePriority: 1, threadCpuNs: 1, setMmapThreshold: 1, mallocTrim: 1, demoteThread: 1, udpOpen: 1, udpConnect: 1, udpMulticast: 1, udpClose: 1, sendBatch: 1, dupFd: 1,
  peerUid: 1, setSendBuffer: 1, socketBytesWritten: 1, closeFd: 1, wireAppend: 1, wireSetMedia: 1, wireFlush: 1, sharedRegionOpen: 1, pidfdOpen: 1, peerPidfd: 1,
  waitReadable: 1, seqpacketListen: 1, seqpacketConnect: 1, seqpacketAccept: 1, sendFds: 1, recvFds: 1, adoptFd: 1, lifeLockInit: 1,
  lifeLockAcquire: 1, lifeLockRelease: 1,
} satisfies Record<keyof NativeAddon, 1>) as ReadonlyArray<keyof NativeAddon>;

/** The functions a loaded build lacks (a build older than its source): none for a current one. */
export function missingFunctions(addon: Partial<Record<keyof NativeAddon, unknown>>): Array<keyof NativeAddon> {
  return FUNCTIONS.filter((name) => typeof addon[name] !== 'function');
}

function load(): NativeAddon | undefined {
  if (process.env.TWINFRAME_NATIVE === 'off') return undefined;
  const require = createRequire(import.meta.url);
  const file = fileURLToPath(new URL(ADDON, import.meta.url));
  let addon: Partial<NativeAddon>;
  try {
    addon = require(ADDON) as Partial<NativeAddon>;
  } catch (err) {
    // Not built at all is the documented fallback; a build that is there but cannot be loaded is news.
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') dropped(file, `it cannot be loaded: ${(err as Error).message}`);
    return undefined;
  }
  // A build older than its source (not rebuilt after an upgrade) lacks the newest
  // functions: treated as no addon, rather than failing a path when it is called.
  const missing = missingFunctions(addon);
  if (missing.length === 0) return addon as NativeAddon;
  dropped(file, `it lacks ${missing.join(', ')} (built from an older source; rebuild it: npm install, or node-gyp rebuild --directory=native)`);
  return undefined;
}

/** Say once per process (its main thread; each worker loads this module again) why the addon is not used. */
function dropped(file: string, why: string): void {
  if (isMainThread) process.emitWarning(`twinframe's native addon ${file} is not used, the plain-Node fallbacks are: ${why}`, { code: 'TWINFRAME_NATIVE_DROPPED' });
}

export const nativeAddon: NativeAddon | undefined = load();
