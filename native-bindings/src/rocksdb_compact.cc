// etsd_native, RocksDB part: a manual compaction of the whole key range of
// the database @nxtedition/rocksdb opened (Maintenance.Defragment), which
// that binding does not expose.
//
//   rocksdbCompactJob(): External            a cancel flag for one compaction
//   rocksdbCompactCancel(job): void           sets it (RocksDB stops the job soon after)
//   rocksdbCompact(handle: bigint, location: string, job): Promise<{ sstBefore, sstAfter }>
//       CompactRange over the whole range of the default column family (the
//       only one etsd opens), on a libuv thread: no JS thread waits. Bottommost
//       files are rewritten too, so deleted records and tombstones go away.
//       Rejects with an Error whose message is RocksDB's status.
//   rocksdbIntProperty(handle: bigint, location: string, name: string): number | null
//       DB::GetIntProperty on the default column family (null if unknown).
//   rocksdbSetOptions(handle: bigint, location: string, options: Record<string, string>): void
//       DB::SetOptions on the default column family: the mutable column options
//       (write_buffer_size, memtable bloom) the binding's open does not take.
//       Throws an Error whose message is RocksDB's status if it refuses one.
//   rocksdbSetDBOptions(handle: bigint, location: string, options: Record<string, string>): void
//       DB::SetDBOptions: the mutable database-wide options (bytes_per_sync).
//
// `handle` is what the binding's `db.handle` getter returns: the address of
// its `struct Database` (binding.cc). We never link RocksDB: we mirror that
// struct's two leading fields, check them against the location the caller
// passes, and call RocksDB through the DB object's vtable, whose layout
// comes from the headers that binding ships (deps/rocksdb/rocksdb/include,
// the same ones its prebuilt library was compiled from). The JS side loads
// this only for the exact binding version the mirror was written against.
//
// The caller keeps the database open until every compaction it started has
// settled (cancel, then wait): RocksDB's Close does not wait for a manual
// compaction running on another thread.

#include <node_api.h>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/version.h>

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#if ROCKSDB_MAJOR != 9 || ROCKSDB_MINOR != 7
#error "rocksdb_compact.cc mirrors @nxtedition/rocksdb 12.2.12, which ships RocksDB 9.7"
#endif
#if !defined(_GLIBCXX_USE_CXX11_ABI) || _GLIBCXX_USE_CXX11_ABI != 1
#error "the binding is built with libstdc++'s cxx11 std::string; ours must match to read Database::location"
#endif

namespace {

// binding.cc: struct Database final { const std::string location;
// std::unique_ptr<rocksdb::DB> db; std::map<...> columns; ... } - no virtuals,
// so these are its first two fields at offsets 0 and sizeof(std::string).
struct DatabaseHead {
  std::string location;
  rocksdb::DB* db;
};
static_assert(sizeof(std::unique_ptr<rocksdb::DB>) == sizeof(rocksdb::DB*),
              "unique_ptr with the default deleter is one pointer");

// Longest location we accept: a sanity bound before comparing bytes.
constexpr size_t kMaxLocation = 4096;

const char* status_code_name(rocksdb::Status::Code c) {
  switch (c) {
    case rocksdb::Status::kOk: return "OK";
    case rocksdb::Status::kNotFound: return "NotFound";
    case rocksdb::Status::kCorruption: return "Corruption";
    case rocksdb::Status::kNotSupported: return "Not implemented";
    case rocksdb::Status::kInvalidArgument: return "Invalid argument";
    case rocksdb::Status::kIOError: return "IO error";
    case rocksdb::Status::kMergeInProgress: return "Merge in progress";
    case rocksdb::Status::kIncomplete: return "Result incomplete";
    case rocksdb::Status::kShutdownInProgress: return "Shutdown in progress";
    case rocksdb::Status::kTimedOut: return "Operation timed out";
    case rocksdb::Status::kAborted: return "Operation aborted";
    case rocksdb::Status::kBusy: return "Resource busy";
    case rocksdb::Status::kExpired: return "Operation expired";
    case rocksdb::Status::kTryAgain: return "Operation failed. Try again.";
    case rocksdb::Status::kCompactionTooLarge: return "Compaction too large";
    case rocksdb::Status::kColumnFamilyDropped: return "Column family dropped";
    default: return "Unknown status";
  }
}

// Status::ToString is not inline (it lives in the binding's library, which we
// do not link): the same text from the inline accessors.
std::string status_text(const rocksdb::Status& s) {
  std::string out = status_code_name(s.code());
  if (s.code() == rocksdb::Status::kIncomplete && s.subcode() == rocksdb::Status::kManualCompactionPaused)
    out += ": manual compaction paused (canceled)";
  const char* state = s.getState();
  if (state != nullptr) {
    out += ": ";
    out += state;
  }
  return out;
}

bool get_string(napi_env env, napi_value v, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return false;
  out->resize(len);
  return napi_get_value_string_utf8(env, v, &(*out)[0], len + 1, &len) == napi_ok;
}

// Reads the first n arguments into args; throws a TypeError naming `usage` when fewer came.
bool take_args(napi_env env, napi_callback_info info, size_t n, napi_value* args, const char* usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok) return false;
  if (argc >= n) return true;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
  return false;
}

// The open rocksdb::DB behind `handle`, after checking that the mirrored
// fields say what the caller expects: the location string equals `location`,
// the DB pointer is set (open), and the DB itself reports that name. Throws a
// JS Error and returns null otherwise.
rocksdb::DB* checked_db(napi_env env, napi_value handle_v, napi_value location_v) {
  int64_t addr = 0;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, handle_v, &addr, &lossless) != napi_ok || !lossless || addr == 0 ||
      (addr & (alignof(DatabaseHead) - 1)) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "handle must be the bigint of an open @nxtedition/rocksdb database (db.handle)");
    return nullptr;
  }
  std::string location;
  if (!get_string(env, location_v, &location) || location.empty() || location.size() > kMaxLocation) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "location must be the database's path");
    return nullptr;
  }
  const auto* head = reinterpret_cast<const DatabaseHead*>(static_cast<intptr_t>(addr));
  const size_t n = head->location.size();
  if (n != location.size() || head->location.data() == nullptr || head->location.compare(location) != 0) {
    napi_throw_error(env, "ETSD_ROCKSDB_LAYOUT", "the database handle does not hold the expected location (binding layout changed?)");
    return nullptr;
  }
  rocksdb::DB* db = head->db;
  if (db == nullptr) {
    napi_throw_error(env, "ETSD_ROCKSDB_CLOSED", "the database is not open");
    return nullptr;
  }
  if (db->GetName() != location) {
    napi_throw_error(env, "ETSD_ROCKSDB_LAYOUT", "the database reports another name than its location (binding layout changed?)");
    return nullptr;
  }
  return db;
}

uint64_t sst_bytes(rocksdb::DB* db) {
  uint64_t v = 0;
  if (!db->GetIntProperty(db->DefaultColumnFamily(), rocksdb::Slice("rocksdb.total-sst-files-size"), &v)) return 0;
  return v;
}

// ---------------------------------------------------------------- cancel flag

struct CompactJob {
  std::atomic<bool> canceled{false};
};

void finalize_job(napi_env, void* data, void*) { delete static_cast<CompactJob*>(data); }

napi_value CompactJobCreate(napi_env env, napi_callback_info) {
  auto* job = new CompactJob();
  napi_value out;
  if (napi_create_external(env, job, finalize_job, nullptr, &out) != napi_ok) {
    delete job;
    return nullptr;
  }
  return out;
}

CompactJob* get_job(napi_env env, napi_value v) {
  napi_valuetype t;
  void* data = nullptr;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "job must come from rocksdbCompactJob()");
    return nullptr;
  }
  return static_cast<CompactJob*>(data);
}

napi_value CompactCancel(napi_env env, napi_callback_info info) {
  napi_value args[1];
  if (!take_args(env, info, 1, args, "rocksdbCompactCancel(job)")) return nullptr;
  CompactJob* job = get_job(env, args[0]);
  if (job != nullptr) job->canceled.store(true);
  return nullptr;
}

// ---------------------------------------------------------------- compaction

struct CompactWork {
  rocksdb::DB* db = nullptr;
  CompactJob* job = nullptr;
  napi_ref job_ref = nullptr;  // keeps the job (its flag) alive until complete
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  uint64_t sst_before = 0;
  uint64_t sst_after = 0;
  bool ok = false;
  std::string error;
};

void compact_execute(napi_env, void* data) {
  auto* w = static_cast<CompactWork*>(data);
  w->sst_before = sst_bytes(w->db);
  rocksdb::CompactRangeOptions o;
  // Not exclusive: automatic compactions go on beside it, so writes never stall on it.
  o.exclusive_manual_compaction = false;
  o.change_level = false;
  // Rewrite the last level too: that is where deleted records and tombstones sit.
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  // Wait rather than push the DB into a write stall.
  o.allow_write_stall = false;
  o.canceled = &w->job->canceled;
  const rocksdb::Status s = w->db->CompactRange(o, w->db->DefaultColumnFamily(), nullptr, nullptr);
  w->ok = s.ok();
  if (!w->ok) w->error = status_text(s);
  w->sst_after = sst_bytes(w->db);
}

void compact_complete(napi_env env, napi_status status, void* data) {
  auto* w = static_cast<CompactWork*>(data);
  napi_value result = nullptr;
  if (status == napi_ok && w->ok) {
    napi_value before, after;
    napi_create_object(env, &result);
    napi_create_double(env, static_cast<double>(w->sst_before), &before);
    napi_create_double(env, static_cast<double>(w->sst_after), &after);
    napi_set_named_property(env, result, "sstBefore", before);
    napi_set_named_property(env, result, "sstAfter", after);
    napi_resolve_deferred(env, w->deferred, result);
  } else {
    const std::string text = status == napi_ok ? w->error : std::string("compaction work was cancelled before it ran");
    napi_value msg, code, err;
    napi_create_string_utf8(env, text.c_str(), text.size(), &msg);
    napi_create_string_utf8(env, "ETSD_ROCKSDB_COMPACT", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &err);
    napi_reject_deferred(env, w->deferred, err);
  }
  napi_delete_reference(env, w->job_ref);
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value Compact(napi_env env, napi_callback_info info) {
  napi_value args[3];
  if (!take_args(env, info, 3, args, "rocksdbCompact(handle, location, job)")) return nullptr;
  rocksdb::DB* db = checked_db(env, args[0], args[1]);
  if (db == nullptr) return nullptr;
  CompactJob* job = get_job(env, args[2]);
  if (job == nullptr) return nullptr;

  auto w = std::make_unique<CompactWork>();
  w->db = db;
  w->job = job;
  napi_value promise, name;
  if (napi_create_reference(env, args[2], 1, &w->job_ref) != napi_ok) {
    napi_throw_error(env, "ETSD_ROCKSDB_COMPACT", "could not hold the job");
    return nullptr;
  }
  if (napi_create_string_utf8(env, "etsd.rocksdbCompact", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, nullptr, name, compact_execute, compact_complete, w.get(), &w->work) != napi_ok) {
    napi_delete_reference(env, w->job_ref);
    napi_throw_error(env, "ETSD_ROCKSDB_COMPACT", "could not create the compaction work");
    return nullptr;
  }
  // The promise last: once it exists, only compact_complete settles it.
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok || napi_queue_async_work(env, w->work) != napi_ok) {
    napi_delete_async_work(env, w->work);
    napi_delete_reference(env, w->job_ref);
    napi_throw_error(env, "ETSD_ROCKSDB_COMPACT", "could not queue the compaction work");
    return nullptr;
  }
  w.release();  // compact_complete frees it
  return promise;
}

napi_value IntProperty(napi_env env, napi_callback_info info) {
  napi_value args[3];
  if (!take_args(env, info, 3, args, "rocksdbIntProperty(handle, location, name)")) return nullptr;
  rocksdb::DB* db = checked_db(env, args[0], args[1]);
  if (db == nullptr) return nullptr;
  std::string prop;
  if (!get_string(env, args[2], &prop)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "name must be a string");
    return nullptr;
  }
  uint64_t v = 0;
  napi_value out;
  if (!db->GetIntProperty(db->DefaultColumnFamily(), rocksdb::Slice(prop), &v)) {
    napi_get_null(env, &out);
  } else {
    napi_create_double(env, static_cast<double>(v), &out);
  }
  return out;
}

napi_value SetOptionsOf(napi_env env, napi_callback_info info, bool db_wide) {
  napi_value args[3];
  if (!take_args(env, info, 3, args, "rocksdbSetOptions/rocksdbSetDBOptions(handle, location, options)")) return nullptr;
  rocksdb::DB* db = checked_db(env, args[0], args[1]);
  if (db == nullptr) return nullptr;
  napi_value names;
  uint32_t n = 0;
  if (napi_get_property_names(env, args[2], &names) != napi_ok || napi_get_array_length(env, names, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "options must be an object of strings");
    return nullptr;
  }
  std::unordered_map<std::string, std::string> opts;
  for (uint32_t i = 0; i < n; i++) {
    napi_value k, v;
    std::string key, value;
    if (napi_get_element(env, names, i, &k) != napi_ok || !get_string(env, k, &key) ||
        napi_get_property(env, args[2], k, &v) != napi_ok || !get_string(env, v, &value)) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "options must be an object of strings");
      return nullptr;
    }
    opts[key] = value;
  }
  const rocksdb::Status s = db_wide ? db->SetDBOptions(opts) : db->SetOptions(db->DefaultColumnFamily(), opts);
  if (!s.ok()) {
    const std::string text = status_text(s);
    napi_throw_error(env, "ETSD_ROCKSDB_OPTIONS", text.c_str());
  }
  return nullptr;
}

napi_value SetOptions(napi_env env, napi_callback_info info) { return SetOptionsOf(env, info, false); }
napi_value SetDBOptions(napi_env env, napi_callback_info info) { return SetOptionsOf(env, info, true); }

}  // namespace

// Called from etsd_native.cc's module init.
bool etsd_register_rocksdb(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"rocksdbCompactJob", nullptr, CompactJobCreate, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rocksdbCompactCancel", nullptr, CompactCancel, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rocksdbCompact", nullptr, Compact, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rocksdbIntProperty", nullptr, IntProperty, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rocksdbSetOptions", nullptr, SetOptions, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"rocksdbSetDBOptions", nullptr, SetDBOptions, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
