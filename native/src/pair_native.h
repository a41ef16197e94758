// The process pair's primitives (issue 17), each file defining its functions on
// the addon's exports; called from the addon's init.
#ifndef TWINFRAME_PAIR_NATIVE_H
#define TWINFRAME_PAIR_NATIVE_H

#include <node_api.h>

#ifdef __cplusplus
extern "C" {
#endif

napi_status twinframe_define_shared_region(napi_env env, napi_value exports);
napi_status twinframe_define_process_exit(napi_env env, napi_value exports);
napi_status twinframe_define_fd_passing(napi_env env, napi_value exports);

#ifdef __cplusplus
}
#endif

#endif
