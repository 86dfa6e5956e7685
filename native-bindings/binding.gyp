# etsd native addon (N-API, plain node_api.h: no node-addon-api dependency).
# Built by `npm run build:native` (part of `prepare`); the JS fallbacks in
# src/native/index.ts are used when this does not build or load.
# rocksdb_compact.cc and rocksdb_batch.cc compile against the RocksDB headers
# @nxtedition/rocksdb ships (no RocksDB library is linked: they call through
# the vtables of its DB and WriteBatch).
{
  "targets": [
    {
      "target_name": "etsd_native",
      "sources": ["src/etsd_native.cc", "src/rocksdb_compact.cc", "src/rocksdb_batch.cc"],
      "include_dirs": ["../node_modules/@nxtedition/rocksdb/deps/rocksdb/rocksdb/include"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-fno-exceptions"],
      "cflags_cc": ["-Wall", "-Wextra", "-fno-exceptions", "-std=gnu++17"]
    }
  ]
}
