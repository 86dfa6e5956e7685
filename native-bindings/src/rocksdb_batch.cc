// etsd_native, RocksDB write batches: many records added to a WriteBatch of
// @nxtedition/rocksdb in one call.
//
//   rocksdbBatchAppend(batch: External, records: Uint8Array, length: number): number
//       `batch` is the WriteBatch external a ChainedBatch of the binding holds
//       (binding.cc's batch_init: napi_create_external of a rocksdb::WriteBatch).
//       `records[0, length)` holds records laid out as src/storage/write-batch.ts
//       writes them:
//         u8 op (1 = put, 0 = delete), u32le keyLength, u32le valueLength
//         (0 for a delete), key bytes, value bytes
//       Each becomes WriteBatch::Put or Delete on the default column family,
//       in order, as the binding's batch_put/batch_del do. Returns how many.
//       Throws (and adds nothing more) on a malformed record or RocksDB's
//       refusal; records added before it stay in the batch, and the caller
//       clears the batch.
//
// Why: the binding takes one N-API call per record (~400 ns each with its
// argument checks), three or four per put; here a put costs a copy of its
// bytes into one buffer. Put and Delete are virtual members of WriteBatch, so
// they are called through its vtable: no RocksDB library is linked (see
// rocksdb_compact.cc), and the headers are those the binding was built with.

#include <node_api.h>

#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <stdint.h>
#include <string.h>

namespace {

uint32_t read_u32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

constexpr size_t kHeader = 9;

napi_value BatchAppend(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "rocksdbBatchAppend(batch, records, length)");
    return nullptr;
  }
  napi_valuetype t = napi_undefined;
  void* ext = nullptr;
  if (napi_typeof(env, args[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, args[0], &ext) != napi_ok ||
      ext == nullptr) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "batch must be a WriteBatch external of @nxtedition/rocksdb");
    return nullptr;
  }
  auto* batch = static_cast<rocksdb::WriteBatch*>(ext);
  bool is_ta = false;
  napi_typedarray_type type;
  size_t size = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, args[1], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, args[1], &type, &size, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "records must be a Uint8Array");
    return nullptr;
  }
  double length_d = -1;
  if (napi_get_value_double(env, args[2], &length_d) != napi_ok || !(length_d >= 0) || length_d > static_cast<double>(size)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "length must be within records");
    return nullptr;
  }
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t end = static_cast<size_t>(length_d);
  size_t at = 0;
  int32_t count = 0;
  while (at < end) {
    if (end - at < kHeader) {
      napi_throw_error(env, "ETSD_ROCKSDB_BATCH", "truncated record header");
      return nullptr;
    }
    const uint8_t op = p[at];
    const size_t klen = read_u32le(p + at + 1);
    const size_t vlen = read_u32le(p + at + 5);
    if (op > 1 || (op == 0 && vlen != 0) || klen > end - at - kHeader || vlen > end - at - kHeader - klen) {
      napi_throw_error(env, "ETSD_ROCKSDB_BATCH", "malformed record");
      return nullptr;
    }
    const rocksdb::Slice key(reinterpret_cast<const char*>(p + at + kHeader), klen);
    rocksdb::Status s;
    if (op == 1) {
      s = batch->Put(key, rocksdb::Slice(reinterpret_cast<const char*>(p + at + kHeader + klen), vlen));
    } else {
      s = batch->Delete(key);
    }
    if (!s.ok()) {
      napi_throw_error(env, "ETSD_ROCKSDB_BATCH", s.getState() != nullptr ? s.getState() : "WriteBatch refused a record");
      return nullptr;
    }
    at += kHeader + klen + vlen;
    count++;
  }
  napi_value out;
  napi_create_int32(env, count, &out);
  return out;
}

}  // namespace

// Called from etsd_native.cc's module init.
bool etsd_register_rocksdb_batch(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"rocksdbBatchAppend", nullptr, BatchAppend, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
