// Passing file descriptors between processes over a Unix socket (issue 17: the
// primary hands its UDP sending sockets, its RTSP listening socket and every
// accepted RTSP connection to the standby, so they outlive the primary).
//
// The channel is a SOCK_SEQPACKET Unix socket owned here, not a net.Socket:
// libuv reads a net.Socket with read(2), which would drop the descriptors
// attached to a message, and a seqpacket socket keeps each message whole with
// its descriptors. All sockets are nonblocking and close-on-exec; a thread
// waits for one with waitReadable (process_exit.c); JavaScript closes them with
// fs.closeSync.
//
// seqpacketListen(path) / seqpacketConnect(path) / seqpacketAccept(listenFd):
// the listening socket bound at `path`, a connection to it, and the next
// connection waiting (-EAGAIN: none). Each returns the fd or -errno.
//
// sendFds(fd, payload, fds, count): one message of payload.length bytes (>= 1)
// carrying fds[0..count-1] (SCM_RIGHTS, at most MAX_FDS). The receiver gets its
// own descriptors for the same open files (sockets included): they stay open
// when the sender exits or closes its own. Returns the bytes sent or -errno
// (-EAGAIN: the channel is full).
//
// recvFds(fd, payload, fdsOut): the next message into payload, its descriptors
// (close-on-exec) into fdsOut, and -1 in the rest of fdsOut. Returns its length,
// 0 when the peer has closed, or -errno (-EAGAIN: nothing waiting; -EMSGSIZE:
// the message or its descriptors did not fit, and the descriptors it brought
// are closed, never leaked).
//
// adoptFd(fd): the calling thread takes a received descriptor as its own, as if
// udpOpen/dupFd had made it: udpClose/closeFd close it, and so does the end of
// the thread (a data path sending on a passed UDP socket). 0, EBADF (not open)
// or EEXIST (this thread owns it already).

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>

#include "pair_native.h"

// SCM_MAX_FD in the kernel is 253; a message of the pair carries far fewer.
#define MAX_FDS 64

// Room for the SCM_RIGHTS header of one message, aligned for it.
typedef union {
  char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
  struct cmsghdr align;
} fd_control;

static napi_value int_value(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

// A Unix address from the string argument; false (and a thrown TypeError) when it does not fit.
static bool unix_address(napi_env env, napi_value value, struct sockaddr_un* addr, const char* usage) {
  size_t length = 0;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, value, addr->sun_path, sizeof addr->sun_path, &length) != napi_ok ||
      length == 0 || length >= sizeof addr->sun_path - 1) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

static bool path_argument(napi_env env, napi_callback_info info, struct sockaddr_un* addr, const char* usage) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return unix_address(env, argv[0], addr, usage);
}

static int32_t fail_closing(int fd) {
  int saved = errno;
  close(fd);
  return -saved;
}

static napi_value seqpacket_listen(napi_env env, napi_callback_info info) {
  struct sockaddr_un addr;
  if (!path_argument(env, info, &addr, "seqpacketListen(path: string, shorter than 107 bytes)")) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_value(env, -errno);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) return int_value(env, fail_closing(fd));
  return int_value(env, fd);
}

static napi_value seqpacket_connect(napi_env env, napi_callback_info info) {
  struct sockaddr_un addr;
  if (!path_argument(env, info, &addr, "seqpacketConnect(path: string, shorter than 107 bytes)")) return NULL;
  // Blocking connect (a Unix connect completes at once or fails), then nonblocking.
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_value(env, -errno);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) return int_value(env, fail_closing(fd));
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return int_value(env, fail_closing(fd));
  return int_value(env, fd);
}

static bool fd_value(napi_env env, napi_value value, int32_t* fd) {
  return napi_get_value_int32(env, value, fd) == napi_ok && *fd >= 0;
}

static napi_value seqpacket_accept(napi_env env, napi_callback_info info) {
  int32_t listen_fd = fd_argument(env, info, "seqpacketAccept(listenFd: non-negative integer)");
  if (listen_fd < 0) return NULL;
  int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return int_value(env, fd < 0 ? -errno : fd);
}

// The bytes of a Buffer argument, or NULL.
static void* buffer_argument(napi_env env, napi_value value, size_t* length) {
  bool is_buffer = false;
  void* data = NULL;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &data, length) != napi_ok) return NULL;
  return data;
}

// The elements of an Int32Array argument into *data (NULL when it is empty); false when it is not one.
static bool int32_argument(napi_env env, napi_value value, int32_t** data, size_t* length) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, value, &type, length, (void**)data, NULL, NULL) == napi_ok && type == napi_int32_array;
}

static napi_value send_fds(napi_env env, napi_callback_info info) {
  static const char usage[] = "sendFds(fd: non-negative integer, payload: non-empty Buffer, fds: Int32Array, count: 0..min(fds.length, 64))";
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd = -1;
  int32_t count = -1;
  size_t length = 0;
  size_t fds_length = 0;
  void* payload = NULL;
  int32_t* fds = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || !fd_value(env, argv[0], &fd) ||
      (payload = buffer_argument(env, argv[1], &length)) == NULL || length == 0 ||
      !int32_argument(env, argv[2], &fds, &fds_length) ||
      napi_get_value_int32(env, argv[3], &count) != napi_ok || count < 0 || (size_t)count > fds_length || count > MAX_FDS) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  fd_control control;
  struct iovec iov = { .iov_base = payload, .iov_len = length };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (count > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)count * sizeof(int));
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN((size_t)count * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, (size_t)count * sizeof(int));
  }
  ssize_t sent;
  do sent = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return int_value(env, sent < 0 ? -errno : (int32_t)sent);
}

static napi_value recv_fds(napi_env env, napi_callback_info info) {
  static const char usage[] = "recvFds(fd: non-negative integer, payload: Buffer, fdsOut: Int32Array)";
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  size_t length = 0;
  size_t out_length = 0;
  void* payload = NULL;
  int32_t* out = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !fd_value(env, argv[0], &fd) ||
      (payload = buffer_argument(env, argv[1], &length)) == NULL ||
      !int32_argument(env, argv[2], &out, &out_length)) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  fd_control control;
  struct iovec iov = { .iov_base = payload, .iov_len = length };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  ssize_t received;
  do received = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (received < 0 && errno == EINTR);
  if (received < 0) return int_value(env, -errno);
  for (size_t i = 0; i < out_length; i++) out[i] = -1;
  size_t got = 0;
  bool overflow = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int* fds = (int*)CMSG_DATA(cmsg);
    for (size_t i = 0; i < n; i++) {
      if (got < out_length && !overflow) out[got++] = fds[i];
      else {
        close(fds[i]);
        overflow = true;
      }
    }
  }
  if (overflow) {
    for (size_t i = 0; i < got; i++) {
      close(out[i]);
      out[i] = -1;
    }
    return int_value(env, -EMSGSIZE);
  }
  return int_value(env, (int32_t)received);
}

static napi_value adopt_fd(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "adoptFd(fd: non-negative integer)");
  if (fd < 0) return NULL;
  if (fcntl(fd, F_GETFD) < 0) return int_value(env, EBADF);
  if (forget_socket(env, fd)) {
    remember_socket(env, fd);  // it was there: room for it exists
    return int_value(env, EEXIST);
  }
  return int_value(env, remember_socket(env, fd) ? 0 : ENOMEM);
}

napi_status twinframe_define_fd_passing(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "seqpacketListen", NULL, seqpacket_listen, NULL, NULL, NULL, napi_default, NULL },
    { "seqpacketConnect", NULL, seqpacket_connect, NULL, NULL, NULL, napi_default, NULL },
    { "seqpacketAccept", NULL, seqpacket_accept, NULL, NULL, NULL, napi_default, NULL },
    { "sendFds", NULL, send_fds, NULL, NULL, NULL, napi_default, NULL },
    { "recvFds", NULL, recv_fds, NULL, NULL, NULL, napi_default, NULL },
    { "adoptFd", NULL, adopt_fd, NULL, NULL, NULL, napi_default, NULL },
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
