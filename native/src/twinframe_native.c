// twinframe's Node-API addon: what Node cannot do for a single thread.
//
// setRealtimePriority(priority) puts the calling thread under SCHED_FIFO at the
// given priority. On Linux, sched_setscheduler(0, ...) applies to the calling
// thread only, so a data-path or supervisor worker raises itself and nothing
// else. Returns 0 or the errno (EPERM without CAP_SYS_NICE).
//
// demoteThread(tid) puts thread `tid` of this process back under SCHED_OTHER at
// nice 19: a hung data path spinning under SCHED_FIFO must not keep a core from
// its twin while it is being terminated. Lowering a priority needs no privilege.
// Returns 0 or the errno.
//
// threadCpuNs(tid) returns the CPU time of thread `tid` of this process in
// nanoseconds, exact to now (clock_gettime on the thread's CPU-time clock runs
// the scheduler's accounting for a thread that is on a CPU at this moment,
// where /proc/<tid>/schedstat lags by up to a scheduler tick). -1 on error.
//
// udpOpen(address, port) / udpConnect(fd, address, port) / udpClose(fd): a
// session's UDP socket, made here so the data path owns the descriptor alone
// (libuv never sees it): nonblocking, SO_REUSEADDR (its twin binds the same
// source port), bound, then connected. udpOpen returns the fd or -errno; the
// others 0 or the errno. The sockets a thread opened and has not closed are
// closed when its Node environment goes away (a data path terminated after a
// failure closes none itself).
//
// sendBatch(fds, buffers, lengths, count, results) sends the datagrams of one
// data-path turn in one call: datagram i is lengths[i] bytes of buffers[i] on
// socket fds[i]. Consecutive datagrams on the same socket leave in one
// sendmmsg. results[i] becomes 0 (sent) or the errno that refused it; after a
// refusal other than a destination error the rest of that socket's run is not
// tried (EAGAIN). An fd < 0 (a session closed since it was queued) sends
// nothing (EBADF). Returns the count sent.
//
// udpMulticast(fd, ttl, interfaceAddress): a socket made by udpOpen that sends
// to a multicast group: IP_MULTICAST_TTL, IP_MULTICAST_IF (the interface with
// that address; '' leaves the choice to the routing table) and IP_MULTICAST_LOOP
// on, so receivers on this host hear the group too. Set before udpConnect: the
// connect's route lookup then goes through that interface. 0 or the errno.
//
// dupFd(fd) / closeFd(fd): a second descriptor for an RTSP connection's socket,
// owned by the engine for as long as a data path may write to it: the
// connection's own descriptor is closed by Node when the client leaves, and its
// number may then name another file at once. closeFd closes only what dupFd made.
// setMmapThreshold(bytes) makes every allocation of at least `bytes` its own
// mmap, returned to the kernel when freed (glibc's M_MMAP_THRESHOLD, which also
// stops glibc from raising that threshold by itself). A restarted data path is a
// new thread, so its per-session buffers land in another malloc arena; left in
// the arenas, their freed memory kept the process's RSS rising at every path
// restart (README, section soak). 1 when set, 0 when refused or not glibc.
// mallocTrim() gives the kernel back the free pages of every arena (glibc's
// malloc_trim(0)): what a dead path's thread freed in smaller pieces. 1 when
// memory was released, 0 when none was (or not glibc).
//
// peerUid(fd): the user id of the process at the other end of a Unix socket
// (SO_PEERCRED: what the kernel recorded at connect, not what the peer claims),
// or -errno. The admin server serves its owner and root only.
//
// setSendBuffer(fd, bytes): SO_SNDBUF of a connection that carries interleaved
// RTP (bounds what the kernel queues for a viewer that reads slowly); 0 or errno.
//
// socketBytesWritten(fd): every byte the process(es) ever wrote to a TCP socket,
// as the kernel counts them: acknowledged by the peer (TCP_INFO tcpi_bytes_acked)
// plus still queued (SIOCOUTQ); -errno on failure. A process pair's survivor
// reads it to learn where a dead writer's last send really ended.
//
// The wire (src/shared/wire.ts): the bytes of one RTSP connection that carries
// interleaved RTP, as a ring in a SharedArrayBuffer that every thread of the
// process (and of the other process of a pair, mapping the same region) appends
// to and flushes from, one holder at a time (its LOCK word).
// Positions are byte counts that wrap at 2^32; the ring size is a power of two.
// wireAppend(wire, buffers, lengths, first, count, channel, mediaNext) appends
// frames first..first+count-1: with channel >= 0 each as an interleaved frame
// ('$', channel, 16-bit length, then lengths[i] bytes of buffers[i]), with
// channel < 0 as the bytes themselves (an RTSP response or RTCP frame built by
// the caller). Only whole frames that fit are appended. Then ONE 64-bit store
// publishes the new head with the media cursor after the last frame (mediaNext
// + appended; unchanged for channel < 0): a thread that dies after that store
// appended exactly those frames, one that dies before it none (a worker is
// terminated between JavaScript statements, never inside this call). Returns
// the count appended. wireSetMedia(wire, mediaNext) publishes a media cursor
// alone. wireFlush(fd, wire) sends from the tail to the head (MSG_DONTWAIT |
// MSG_NOSIGNAL) and stores the new tail in the same call, so bytes that left are
// never sent again by this process (a process killed between a send and its
// store: the survivor learns the real tail from socketBytesWritten, Wire.claim);
// returns the bytes sent, or -errno (-EAGAIN: the socket's buffer is full).
//
// The process pair's primitives (issue 17) are in their own files, defined on
// the exports by init through pair_native.h: shared_region.cc, fd_passing.c,
// process_exit.c, life_lock.c.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#include "pair_native.h"

static napi_value set_realtime_priority(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t priority = 0;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &priority) != napi_ok) {
    napi_throw_type_error(env, NULL, "setRealtimePriority(priority: number)");
    return NULL;
  }
  int min = sched_get_priority_min(SCHED_FIFO);
  int max = sched_get_priority_max(SCHED_FIFO);
  if (priority < min || priority > max) {
    napi_throw_range_error(env, NULL, "priority outside SCHED_FIFO range");
    return NULL;
  }
  struct sched_param param = { .sched_priority = priority };
  int rc = sched_setscheduler(0, SCHED_FIFO, &param) == 0 ? 0 : errno;
  napi_create_int32(env, rc, &result);
  return result;
}

// Reads the single positive-integer argument of demoteThread, threadCpuNs and
// setMmapThreshold; throws and returns 0 when it is missing or not positive.
static int32_t positive_int32_argument(napi_env env, napi_callback_info info, const char* usage) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t tid = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &tid) != napi_ok || tid <= 0) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return tid;
}

static napi_value demote_thread(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t tid = positive_int32_argument(env, info, "demoteThread(tid: positive integer)");
  if (tid == 0) return NULL;
  struct sched_param param = { .sched_priority = 0 };
  int rc = 0;
  if (sched_setscheduler(tid, SCHED_OTHER, &param) != 0) rc = errno;
  else if (setpriority(PRIO_PROCESS, (id_t)tid, 19) != 0) rc = errno;
  napi_create_int32(env, rc, &result);
  return result;
}

// The kernel's encoding of a per-thread CPU clock id (include/linux/posix-timers.h).
#define CPUCLOCK_SCHED 2
#define CPUCLOCK_PERTHREAD_MASK 4
#define MAKE_THREAD_CPUCLOCK(tid, clock) ((~(clockid_t)(tid) << 3) | (clock) | CPUCLOCK_PERTHREAD_MASK)

static napi_value thread_cpu_ns(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t tid = positive_int32_argument(env, info, "threadCpuNs(tid: positive integer)");
  if (tid == 0) return NULL;
  struct timespec ts;
  double ns = -1;
  if (clock_gettime(MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), &ts) == 0) ns = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
  napi_create_double(env, ns, &result);
  return result;
}

static napi_value set_mmap_threshold(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t bytes = positive_int32_argument(env, info, "setMmapThreshold(bytes: positive integer)");
  if (bytes == 0) return NULL;
#ifdef __GLIBC__
  int ok = mallopt(M_MMAP_THRESHOLD, bytes);
#else
  int ok = 0;
#endif
  napi_create_int32(env, ok, &result);
  return result;
}

static napi_value malloc_trim_all(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef __GLIBC__
  int released = malloc_trim(0);
#else
  int released = 0;
#endif
  napi_create_int32(env, released, &result);
  return result;
}

// An IPv4 address string and port argument pair into `out`; false (and a thrown
// TypeError) when either is not valid.
static bool ipv4_arguments(napi_env env, napi_value address, napi_value port, struct sockaddr_in* out) {
  char text[INET_ADDRSTRLEN];
  size_t len = 0;
  uint32_t number = 0;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  if (napi_get_value_string_utf8(env, address, text, sizeof text, &len) != napi_ok ||
      inet_pton(AF_INET, text, &out->sin_addr) != 1 ||
      napi_get_value_uint32(env, port, &number) != napi_ok || number > 65535) {
    napi_throw_type_error(env, NULL, "expected an IPv4 address and a port");
    return false;
  }
  out->sin_port = htons((uint16_t)number);
  return true;
}

static napi_value int_result(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

// The sockets one Node environment (thread) has open: closed with it.
typedef struct {
  int* fds;
  size_t count, capacity;
} open_sockets;

static void close_all_sockets(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  open_sockets* sockets = data;
  for (size_t i = 0; i < sockets->count; i++) close(sockets->fds[i]);
  free(sockets->fds);
  free(sockets);
}

static open_sockets* sockets_of(napi_env env) {
  void* data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

// Remember fd as open in this environment; false when out of memory.
bool remember_socket(napi_env env, int fd) {
  open_sockets* sockets = sockets_of(env);
  if (sockets->count == sockets->capacity) {
    size_t capacity = sockets->capacity ? 2 * sockets->capacity : 64;
    int* fds = realloc(sockets->fds, capacity * sizeof *fds);
    if (fds == NULL) return false;
    sockets->fds = fds;
    sockets->capacity = capacity;
  }
  sockets->fds[sockets->count++] = fd;
  return true;
}

// Forget fd; false when this environment did not open it.
bool forget_socket(napi_env env, int fd) {
  open_sockets* sockets = sockets_of(env);
  for (size_t i = 0; i < sockets->count; i++) {
    if (sockets->fds[i] == fd) {
      sockets->fds[i] = sockets->fds[--sockets->count];
      return true;
    }
  }
  return false;
}

static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct sockaddr_in addr;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !ipv4_arguments(env, argv[0], argv[1], &addr)) return NULL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_result(env, -errno);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return int_result(env, -err);
  }
  if (!remember_socket(env, fd)) {
    close(fd);
    return int_result(env, -ENOMEM);
  }
  return int_result(env, fd);
}

static napi_value udp_connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  struct sockaddr_in addr;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      !ipv4_arguments(env, argv[1], argv[2], &addr)) return NULL;
  return int_result(env, connect(fd, (struct sockaddr*)&addr, sizeof addr) == 0 ? 0 : errno);
}

static napi_value udp_multicast(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1, ttl = -1;
  char text[INET_ADDRSTRLEN];
  size_t len = 0;
  struct in_addr iface = { .s_addr = htonl(INADDR_ANY) };
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &ttl) != napi_ok || ttl < 0 || ttl > 255 ||
      napi_get_value_string_utf8(env, argv[2], text, sizeof text, &len) != napi_ok ||
      (len > 0 && inet_pton(AF_INET, text, &iface) != 1)) {
    napi_throw_type_error(env, NULL, "udpMulticast(fd: non-negative integer, ttl: 0..255, interfaceAddress: IPv4 address or '')");
    return NULL;
  }
  unsigned char hops = (unsigned char)ttl, loop = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &hops, sizeof hops) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) return int_result(env, errno);
  return int_result(env, 0);
}

// Reads the single descriptor argument of udpClose/closeFd/dupFd; throws and
// returns -1 when it is missing or negative.
int32_t fd_argument(napi_env env, napi_callback_info info, const char* usage) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  return fd;
}

static napi_value udp_close(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "udpClose/closeFd(fd: non-negative integer)");
  if (fd < 0) return NULL;
  // Only a socket this thread opened: never another file that happens to have the number.
  if (!forget_socket(env, fd)) return int_result(env, EBADF);
  return int_result(env, close(fd) == 0 ? 0 : errno);
}

// The data of an Int32Array argument with at least `min` elements, or NULL.
static int32_t* int32_array(napi_env env, napi_value value, size_t min) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = NULL;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_int32_array || length < min) return NULL;
  return data;
}

/** Datagrams per sendmmsg: the message headers live on the stack. */
#define CHUNK 64

// Errors about where a datagram goes, not about this socket: the datagram is
// dropped and the stream goes on (src/datapath/path-session.ts, DESTINATION_ERRORS
// without EACCES, which ends the session).
static int is_destination_error(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
         err == ENETDOWN || err == EPERM || err == EMSGSIZE;
}

static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint32_t count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok) goto usage;
  int32_t* fds = int32_array(env, argv[0], count);
  int32_t* lengths = int32_array(env, argv[2], count);
  int32_t* results = int32_array(env, argv[4], count);
  if (fds == NULL || lengths == NULL || results == NULL) goto usage;

  struct mmsghdr msgs[CHUNK];
  struct iovec iov[CHUNK];
  int32_t sent = 0;
  for (uint32_t i = 0; i < count;) {
    // The run of datagrams on fds[i], at most CHUNK of them.
    int fd = fds[i];
    uint32_t n = 0;
    for (; i + n < count && n < CHUNK && fds[i + n] == fd; n++) {
      napi_value buffer;
      void* data = NULL;
      size_t size = 0;
      if (napi_get_element(env, argv[1], i + n, &buffer) != napi_ok ||
          napi_get_buffer_info(env, buffer, &data, &size) != napi_ok ||
          lengths[i + n] < 0 || (size_t)lengths[i + n] > size) goto usage;
      iov[n] = (struct iovec){ .iov_base = data, .iov_len = (size_t)lengths[i + n] };
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
    }
    for (uint32_t k = 0; k < n;) {
      int r = fd < 0 ? -1 : sendmmsg(fd, msgs + k, n - k, MSG_DONTWAIT);
      int err = fd < 0 ? EBADF : errno;
      if (r > 0) {
        for (int j = 0; j < r; j++) results[i + k + j] = 0;
        k += (uint32_t)r;
        sent += r;
        continue;
      }
      if (r < 0 && err == EINTR) continue;
      // The kernel refused datagram k: note why. After a destination error (such
      // as ECONNREFUSED, reported once, then cleared) the datagram is dropped and
      // the run goes on; after any other refusal the rest of the run is not tried
      // (EAGAIN): the caller advances the cursor only up to the refused datagram,
      // so a datagram sent after it would be sent again.
      results[i + k++] = r < 0 ? err : EIO;
      if (r >= 0 || !is_destination_error(err)) while (k < n) results[i + k++] = EAGAIN;
    }
    i += n;
  }
  return int_result(env, sent);
usage:
  napi_throw_type_error(env, NULL, "sendBatch(fds: Int32Array, buffers: Buffer[], lengths: Int32Array, count: number, results: Int32Array)");
  return NULL;
}

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "dupFd(fd: non-negative integer)");
  if (fd < 0) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return int_result(env, -errno);
  if (!remember_socket(env, copy)) {
    close(copy);
    return int_result(env, -ENOMEM);
  }
  return int_result(env, copy);
}

static napi_value peer_uid(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "peerUid(fd: non-negative integer)");
  if (fd < 0) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return int_result(env, -errno);
  return int_result(env, (int32_t)cred.uid);
}

static napi_value set_send_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, bytes = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &bytes) != napi_ok || bytes <= 0) {
    napi_throw_type_error(env, NULL, "setSendBuffer(fd: non-negative integer, bytes: positive integer)");
    return NULL;
  }
  return int_result(env, setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == 0 ? 0 : errno);
}

static napi_value socket_bytes_written(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "socketBytesWritten(fd: non-negative integer)");
    return NULL;
  }
  // Two readings: an acknowledgement between them would make the sum short. Read the
  // acknowledged count again after the queue and retry until it did not move.
  for (int attempt = 0; attempt < 16; attempt++) {
    struct tcp_info before, after;
    socklen_t len = sizeof before;
    memset(&before, 0, sizeof before);
    int queued = 0;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &before, &len) != 0) return int_result(env, -errno);
    if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof before.tcpi_bytes_acked) return int_result(env, -ENOTSUP);
    if (ioctl(fd, SIOCOUTQ, &queued) != 0) return int_result(env, -errno);
    len = sizeof after;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &after, &len) != 0) return int_result(env, -errno);
    if (after.tcpi_bytes_acked != before.tcpi_bytes_acked) continue;
    napi_value result;
    napi_create_double(env, (double)(before.tcpi_bytes_acked + (uint64_t)queued), &result);
    return result;
  }
  return int_result(env, -EAGAIN);
}

// The wire's header, in Int32 words (src/shared/wire.ts, WIRE_I32: keep in step).
#define WIRE_TAIL 1
#define WIRE_COMMIT 2 /* 64-bit: head (low word), media cursor (high word) */
#define WIRE_CAPACITY 4
#define WIRE_DATA_BYTES 64

typedef struct {
  int32_t* words;
  uint8_t* data;
  uint32_t capacity; /* a power of two */
} wire_view;

static bool wire_argument(napi_env env, napi_value value, wire_view* out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = NULL;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_int32_array || length * 4 < WIRE_DATA_BYTES) return false;
  out->words = data;
  out->data = (uint8_t*)data + WIRE_DATA_BYTES;
  out->capacity = (uint32_t)__atomic_load_n(&out->words[WIRE_CAPACITY], __ATOMIC_ACQUIRE);
  return out->capacity > 0 && (out->capacity & (out->capacity - 1)) == 0 &&
         (size_t)out->capacity + WIRE_DATA_BYTES <= length * 4;
}

static void wire_copy(wire_view* w, uint32_t at, const uint8_t* bytes, uint32_t n) {
  uint32_t index = at & (w->capacity - 1);
  uint32_t first = w->capacity - index < n ? w->capacity - index : n;
  memcpy(w->data + index, bytes, first);
  memcpy(w->data, bytes + first, n - first);
}

static void wire_commit(wire_view* w, uint32_t head, uint32_t media) {
  uint64_t word = ((uint64_t)media << 32) | head;
  __atomic_store_n((uint64_t*)&w->words[WIRE_COMMIT], word, __ATOMIC_RELEASE);
}

static napi_value wire_append(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  wire_view w;
  uint32_t first = 0, count = 0, media = 0;
  int32_t channel = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7 ||
      !wire_argument(env, argv[0], &w) ||
      napi_get_value_uint32(env, argv[3], &first) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &count) != napi_ok ||
      napi_get_value_int32(env, argv[5], &channel) != napi_ok || channel > 255 ||
      napi_get_value_uint32(env, argv[6], &media) != napi_ok) goto usage;
  int32_t* lengths = int32_array(env, argv[2], first + count);
  if (lengths == NULL) goto usage;
  uint64_t commit = __atomic_load_n((uint64_t*)&w.words[WIRE_COMMIT], __ATOMIC_ACQUIRE);
  uint32_t head = (uint32_t)commit;
  uint32_t tail = (uint32_t)__atomic_load_n(&w.words[WIRE_TAIL], __ATOMIC_ACQUIRE);
  uint32_t appended = 0;
  for (; appended < count; appended++) {
    uint32_t i = first + appended;
    napi_value buffer;
    void* data = NULL;
    size_t size = 0;
    if (napi_get_element(env, argv[1], i, &buffer) != napi_ok ||
        napi_get_buffer_info(env, buffer, &data, &size) != napi_ok ||
        lengths[i] < 0 || (size_t)lengths[i] > size || (channel >= 0 && lengths[i] > 0xffff)) goto usage;
    uint32_t n = (uint32_t)lengths[i];
    uint32_t frame = channel >= 0 ? n + 4 : n;
    if (frame > w.capacity - (head - tail)) break; /* full: the rest waits */
    if (channel >= 0) {
      uint8_t prefix[4] = { '$', (uint8_t)channel, (uint8_t)(n >> 8), (uint8_t)n };
      wire_copy(&w, head, prefix, 4);
      head += 4;
    }
    wire_copy(&w, head, data, n);
    head += n;
  }
  if (appended > 0) wire_commit(&w, head, channel >= 0 ? media + appended : (uint32_t)(commit >> 32));
  return int_result(env, (int32_t)appended);
usage:
  napi_throw_type_error(env, NULL, "wireAppend(wire: Int32Array, buffers: Buffer[], lengths: Int32Array, first, count, channel, mediaNext)");
  return NULL;
}

static napi_value wire_set_media(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  wire_view w;
  uint32_t media = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !wire_argument(env, argv[0], &w) || napi_get_value_uint32(env, argv[1], &media) != napi_ok) {
    napi_throw_type_error(env, NULL, "wireSetMedia(wire: Int32Array, mediaNext: number)");
    return NULL;
  }
  uint64_t commit = __atomic_load_n((uint64_t*)&w.words[WIRE_COMMIT], __ATOMIC_ACQUIRE);
  wire_commit(&w, (uint32_t)commit, media);
  return int_result(env, 0);
}

static napi_value wire_flush(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  wire_view w;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || !wire_argument(env, argv[1], &w)) {
    napi_throw_type_error(env, NULL, "wireFlush(fd: number, wire: Int32Array)");
    return NULL;
  }
  if (fd < 0) return int_result(env, -EBADF);
  uint32_t head = (uint32_t)__atomic_load_n((uint64_t*)&w.words[WIRE_COMMIT], __ATOMIC_ACQUIRE);
  uint32_t tail = (uint32_t)__atomic_load_n(&w.words[WIRE_TAIL], __ATOMIC_ACQUIRE);
  int32_t total = 0;
  while (head != tail) {
    uint32_t pending = head - tail;
    uint32_t index = tail & (w.capacity - 1);
    struct iovec iov[2];
    int parts = 1;
    iov[0].iov_base = w.data + index;
    iov[0].iov_len = w.capacity - index < pending ? w.capacity - index : pending;
    if (iov[0].iov_len < pending) {
      iov[1].iov_base = w.data;
      iov[1].iov_len = pending - iov[0].iov_len;
      parts = 2;
    }
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)parts };
    ssize_t sent = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return int_result(env, total > 0 && errno == EAGAIN ? total : -errno);
    }
    tail += (uint32_t)sent;
    __atomic_store_n(&w.words[WIRE_TAIL], (int32_t)tail, __ATOMIC_RELEASE);
    total += (int32_t)sent;
    if ((uint32_t)sent < pending) break; /* the socket's buffer is full */
  }
  return int_result(env, total);
}

static napi_value init(napi_env env, napi_value exports) {
  open_sockets* sockets = calloc(1, sizeof *sockets);
  if (sockets == NULL || napi_set_instance_data(env, sockets, close_all_sockets, NULL) != napi_ok) {
    free(sockets);
    napi_throw_error(env, NULL, "twinframe_native: out of memory");
    return NULL;
  }
  napi_property_descriptor props[] = {
    { "setRealtimePriority", NULL, set_realtime_priority, NULL, NULL, NULL, napi_default, NULL },
    { "threadCpuNs", NULL, thread_cpu_ns, NULL, NULL, NULL, napi_default, NULL },
    { "setMmapThreshold", NULL, set_mmap_threshold, NULL, NULL, NULL, napi_default, NULL },
    { "mallocTrim", NULL, malloc_trim_all, NULL, NULL, NULL, napi_default, NULL },
    { "demoteThread", NULL, demote_thread, NULL, NULL, NULL, napi_default, NULL },
    { "udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL },
    { "udpConnect", NULL, udp_connect, NULL, NULL, NULL, napi_default, NULL },
    { "udpMulticast", NULL, udp_multicast, NULL, NULL, NULL, napi_default, NULL },
    { "udpClose", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL },
    { "sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_default, NULL },
    { "dupFd", NULL, dup_fd, NULL, NULL, NULL, napi_default, NULL },
    { "setSendBuffer", NULL, set_send_buffer, NULL, NULL, NULL, napi_default, NULL },
    { "socketBytesWritten", NULL, socket_bytes_written, NULL, NULL, NULL, napi_default, NULL },
    { "peerUid", NULL, peer_uid, NULL, NULL, NULL, napi_default, NULL },
    { "closeFd", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL },
    { "wireAppend", NULL, wire_append, NULL, NULL, NULL, napi_default, NULL },
    { "wireSetMedia", NULL, wire_set_media, NULL, NULL, NULL, napi_default, NULL },
    { "wireFlush", NULL, wire_flush, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  twinframe_define_shared_region(env, exports);
  twinframe_define_process_exit(env, exports);
  twinframe_define_fd_passing(env, exports);
  twinframe_define_life_lock(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
