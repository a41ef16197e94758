{
  "targets": [
    {
      "target_name": "twinframe_native",
      "sources": ["src/twinframe_native.c", "src/shared_region.cc", "src/process_exit.c", "src/fd_passing.c", "src/life_lock.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
