// Shared memory that two processes map, as a SharedArrayBuffer (issue 17: the
// process pair's exact cursors).
//
// sharedRegionOpen(path, bytes, create) opens the file `path` (create: a new
// file, O_EXCL, mode 0600, sized to `bytes` with ftruncate; otherwise an
// existing one, whose size must be `bytes`), maps it MAP_SHARED and returns a
// SharedArrayBuffer over the mapping, or -errno. The descriptor is closed at
// once: the mapping keeps the memory. Atomics on the buffer are atomic
// instructions on that memory, so they hold across processes; the buffer can
// be posted to worker threads (they share its backing store, which is
// unmapped when the last thread drops it). Atomics.wait/notify are V8's
// in-process wait lists: a notify wakes waiters of this process only.
//
// Node-API cannot make a SharedArrayBuffer over external memory; the V8 API
// can. The buffer crosses from V8 to Node-API through a property of the global
// object that is set and deleted inside this one call (no JavaScript runs in
// between), so no assumption about how a napi_value is represented is needed.
//
// The munmap deleter is code of this library, run when V8 frees the backing
// store, which can be after Node unloaded the addon (a worker thread that
// loaded it ends: its heap is torn down after its addons are closed). So the
// library pins itself in memory (RTLD_NODELETE) before it maps the first region.

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include <node_api.h>
#include <v8.h>

#include "pair_native.h"

namespace {

const char kBridge[] = "__twinframeSharedRegion";

napi_value int_value(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

// Opens or creates the file and maps `bytes` of it; the mapping or MAP_FAILED with errno set.
void* map_region(const char* path, size_t bytes, bool create) {
  int fd = create ? open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)
                  : open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return MAP_FAILED;
  struct stat st;
  if (create ? ftruncate(fd, static_cast<off_t>(bytes)) != 0 : fstat(fd, &st) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return MAP_FAILED;
  }
  if (!create && static_cast<size_t>(st.st_size) != bytes) {
    close(fd);
    errno = EINVAL;  // not the region the caller expects (or not sized yet by its creator)
    return MAP_FAILED;
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int saved = errno;
  close(fd);
  errno = saved;
  return data;
}

void unmap_region(void* data, size_t length, void* /*deleter_data*/) {
  munmap(data, length);
}

// Keeps this library loaded for the life of the process; false if it could not.
bool pin_library() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&unmap_region), &info) == 0 || info.dli_fname == nullptr) return false;
  // A second reference that is never closed, and NODELETE for good measure.
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}

napi_value shared_region_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char path[4096];
  size_t path_length = 0;
  int64_t bytes = 0;
  bool create = false;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_length) != napi_ok ||
      path_length == 0 || path_length >= sizeof path - 1 ||
      napi_get_value_int64(env, argv[1], &bytes) != napi_ok || bytes <= 0 ||
      napi_get_value_bool(env, argv[2], &create) != napi_ok) {
    napi_throw_type_error(env, nullptr, "sharedRegionOpen(path: string, bytes: positive integer, create: boolean)");
    return nullptr;
  }
  static const bool pinned = pin_library();  // once per process (thread-safe static)
  if (!pinned) return int_value(env, -ENOTSUP);
  void* data = map_region(path, static_cast<size_t>(bytes), create);
  if (data == MAP_FAILED) return int_value(env, -errno);

  {
    // Its own scope: the handles below are dropped before the Node-API calls make theirs.
    v8::Isolate* isolate = v8::Isolate::GetCurrent();
    v8::HandleScope scope(isolate);
    v8::Local<v8::Context> context = isolate->GetCurrentContext();
    std::shared_ptr<v8::BackingStore> store =
        v8::SharedArrayBuffer::NewBackingStore(data, static_cast<size_t>(bytes), unmap_region, nullptr);
    v8::Local<v8::SharedArrayBuffer> buffer = v8::SharedArrayBuffer::New(isolate, store);
    v8::Local<v8::String> key = v8::String::NewFromUtf8Literal(isolate, kBridge);
    if (!context->Global()->Set(context, key, buffer).FromMaybe(false)) {
      napi_throw_error(env, nullptr, "sharedRegionOpen: could not hand the buffer over");
      return nullptr;  // the buffer, and with it the mapping, is collected
    }
  }
  napi_value global;
  napi_value result = nullptr;
  napi_get_global(env, &global);
  napi_get_named_property(env, global, kBridge, &result);
  bool deleted = false;
  napi_value bridge_key;
  napi_create_string_utf8(env, kBridge, NAPI_AUTO_LENGTH, &bridge_key);
  napi_delete_property(env, global, bridge_key, &deleted);
  return result;
}

}  // namespace

extern "C" napi_status twinframe_define_shared_region(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "sharedRegionOpen", nullptr, shared_region_open, nullptr, nullptr, nullptr, napi_default, nullptr },
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
