// The life lock (issue 17): a robust, process-shared pthread mutex inside a
// shared region (sharedRegionOpen) that a long-lived thread of the primary
// process (its main thread) holds for as long as the process lives. When that
// thread dies, the kernel walks its robust-futex list at the start of its exit
// and wakes a waiter with FUTEX_OWNER_DIED — before the dying process's memory
// is freed, which is what a pidfd or a closing socket wait for (tens of ms for
// a process of a few hundred MiB). A watcher thread of the standby that waits
// on the lock therefore learns of a SIGKILL of the primary within a wake-up.
//
// The lock is the words of an Int32Array view of the region (at least
// LIFE_LOCK_WORDS of them, 8-byte aligned); JavaScript never touches them.
// lifeLockInit(words): make the lock (once, by the region's creator; 0 or errno).
// lifeLockAcquire(words, timeoutMs): take it, waiting at most timeoutMs (0: try
// once, -1: no limit). Returns 0 (taken: it was free or released by its
// holder), EOWNERDEAD (taken: its holder died holding it; already made
// consistent), ETIMEDOUT, EDEADLK (this thread holds it), or another errno.
// lifeLockRelease(words): give it back (0, or EPERM when this thread does not
// hold it). A watcher that took the lock releases it at once: a lock held by a
// thread that then ends reads as a death to the next waiter.

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <node_api.h>

#include "pair_native.h"

#define LIFE_LOCK_WORDS 16  /* 64 bytes: room for pthread_mutex_t (40 on x86-64) */

_Static_assert(sizeof(pthread_mutex_t) <= LIFE_LOCK_WORDS * sizeof(int32_t), "pthread_mutex_t does not fit the life lock's words");

static napi_value int_value(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

// The mutex in an Int32Array argument, or NULL after throwing `usage`.
static pthread_mutex_t* lock_argument(napi_env env, napi_value value, const char* usage) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = NULL;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_int32_array ||
      length < LIFE_LOCK_WORDS || ((uintptr_t)data & 7) != 0) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return data;
}

static pthread_mutex_t* one_lock_argument(napi_env env, napi_callback_info info, const char* usage) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return lock_argument(env, argv[0], usage);
}

static napi_value life_lock_init(napi_env env, napi_callback_info info) {
  pthread_mutex_t* mutex = one_lock_argument(env, info, "lifeLockInit(words: Int32Array of >= 16 words, 8-byte aligned)");
  if (mutex == NULL) return NULL;
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
  if (rc == 0) rc = pthread_mutex_init(mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return int_value(env, rc);
}

static napi_value life_lock_acquire(napi_env env, napi_callback_info info) {
  static const char usage[] = "lifeLockAcquire(words: Int32Array of >= 16 words, 8-byte aligned, timeoutMs: integer >= -1)";
  size_t argc = 2;
  napi_value argv[2];
  int32_t timeout_ms = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[1], &timeout_ms) != napi_ok || timeout_ms < -1) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  pthread_mutex_t* mutex = lock_argument(env, argv[0], usage);
  if (mutex == NULL) return NULL;
  int rc;
  if (timeout_ms < 0) {
    rc = pthread_mutex_lock(mutex);
  } else if (timeout_ms == 0) {
    rc = pthread_mutex_trylock(mutex);
    if (rc == EBUSY) rc = ETIMEDOUT;
  } else {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000L;
    }
    rc = pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, &deadline);
  }
  // The holder died: the state it guarded is ours to judge; the lock itself is usable again.
  if (rc == EOWNERDEAD) pthread_mutex_consistent(mutex);
  return int_value(env, rc);
}

static napi_value life_lock_release(napi_env env, napi_callback_info info) {
  pthread_mutex_t* mutex = one_lock_argument(env, info, "lifeLockRelease(words: Int32Array of >= 16 words, 8-byte aligned)");
  if (mutex == NULL) return NULL;
  return int_value(env, pthread_mutex_unlock(mutex));
}

napi_status twinframe_define_life_lock(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "lifeLockInit", NULL, life_lock_init, NULL, NULL, NULL, napi_default, NULL },
    { "lifeLockAcquire", NULL, life_lock_acquire, NULL, NULL, NULL, napi_default, NULL },
    { "lifeLockRelease", NULL, life_lock_release, NULL, NULL, NULL, napi_default, NULL },
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
