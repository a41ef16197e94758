{
  "targets": [
    {
      "target_name": "twinframe_native",
      "sources": ["src/twinframe_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
