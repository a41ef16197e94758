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

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <node_api.h>

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

// Reads the single thread-id argument of demoteThread/threadCpuNs; throws and
// returns 0 when it is missing or not a positive integer.
static int32_t tid_argument(napi_env env, napi_callback_info info, const char* usage) {
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
  int32_t tid = tid_argument(env, info, "demoteThread(tid: positive integer)");
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
  int32_t tid = tid_argument(env, info, "threadCpuNs(tid: positive integer)");
  if (tid == 0) return NULL;
  struct timespec ts;
  double ns = -1;
  if (clock_gettime(MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), &ts) == 0) ns = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
  napi_create_double(env, ns, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "setRealtimePriority", NULL, set_realtime_priority, NULL, NULL, NULL, napi_default, NULL },
    { "threadCpuNs", NULL, thread_cpu_ns, NULL, NULL, NULL, napi_default, NULL },
    { "demoteThread", NULL, demote_thread, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
