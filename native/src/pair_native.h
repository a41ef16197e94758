// The process pair's primitives (issue 17), each file defining its functions on
// the addon's exports; called from the addon's init.
#ifndef TWINFRAME_PAIR_NATIVE_H
#define TWINFRAME_PAIR_NATIVE_H

#include <stdbool.h>
#include <node_api.h>

#ifdef __cplusplus
extern "C" {
#endif

napi_status twinframe_define_shared_region(napi_env env, napi_value exports);
napi_status twinframe_define_process_exit(napi_env env, napi_value exports);
napi_status twinframe_define_fd_passing(napi_env env, napi_value exports);
napi_status twinframe_define_life_lock(napi_env env, napi_value exports);

// The descriptors a thread owns (twinframe_native.c): closed by udpClose/closeFd
// or when the thread's environment goes away.
bool remember_socket(napi_env env, int fd);
bool forget_socket(napi_env env, int fd);
// The one non-negative fd argument of a call; -1 after throwing `usage`.
int32_t fd_argument(napi_env env, napi_callback_info info, const char* usage);

#ifdef __cplusplus
}
#endif

#endif
