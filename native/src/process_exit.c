// Knowing at once that a process died (issue 17: the standby learns of the
// primary's death from the kernel, not from a timeout).
//
// pidfdOpen(pid): a pidfd for process `pid` (pidfd_open(2), Linux 5.3; close-on-
// exec), or -errno. Any process the caller may see works, not only a child.
// The caller closes it (fs.closeSync).
//
// waitReadable(fd, timeoutMs): blocks the calling thread in poll(2) until `fd`
// is readable, at most timeoutMs (-1: no limit). A pidfd becomes readable when
// its process has exited; a socket when a message (or its end) is waiting.
// Returns 1 readable, 0 timed out, or -errno. Meant for a watcher worker
// thread: the thread sleeps in the kernel and wakes within a scheduler
// wake-up of the death. A signal does not end the wait early (EINTR is
// retried with the time left).
//
// peerPidfd(fd): a pidfd for the process at the other end of a connected Unix
// socket, named by the kernel: SO_PEERPIDFD (Linux 6.5+) names the very process
// that connected, even if it died and its pid was reused since; before 6.5,
// pidfd_open of SO_PEERCRED's pid (a pid reused in between would be misnamed).
// The fd or -errno.

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#include "pair_native.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

static napi_value int_value(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static napi_value pidfd_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t pid = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, "pidfdOpen(pid: positive integer)");
    return NULL;
  }
  // pidfds are close-on-exec by the kernel.
  long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
  return int_value(env, fd < 0 ? -errno : (int32_t)fd);
}

static napi_value peer_pidfd(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "peerPidfd(fd: non-negative integer)");
  if (fd < 0) return NULL;
  int pidfd = -1;
  socklen_t length = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &length) == 0) return int_value(env, pidfd);
  if (errno != ENOPROTOOPT) return int_value(env, -errno);
  struct ucred cred;
  length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return int_value(env, -errno);
  long opened = syscall(SYS_pidfd_open, cred.pid, 0);
  return int_value(env, opened < 0 ? -errno : (int32_t)opened);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static napi_value wait_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  int32_t timeout_ms = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &timeout_ms) != napi_ok || timeout_ms < -1) {
    napi_throw_type_error(env, NULL, "waitReadable(fd: non-negative integer, timeoutMs: integer >= -1)");
    return NULL;
  }
  int64_t deadline = now_ms() + timeout_ms;
  struct pollfd p = { .fd = fd, .events = POLLIN };
  for (;;) {
    int left = timeout_ms < 0 ? -1 : (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
    int n = poll(&p, 1, left);
    if (n > 0) return int_value(env, (p.revents & POLLNVAL) ? -EBADF : 1);
    if (n == 0) return int_value(env, 0);
    if (errno != EINTR) return int_value(env, -errno);
  }
}

napi_status twinframe_define_process_exit(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "pidfdOpen", NULL, pidfd_open, NULL, NULL, NULL, napi_default, NULL },
    { "waitReadable", NULL, wait_readable, NULL, NULL, NULL, napi_default, NULL },
    { "peerPidfd", NULL, peer_pidfd, NULL, NULL, NULL, napi_default, NULL },
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
