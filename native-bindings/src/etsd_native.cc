// etsd_native: small synchronous system helpers for the WAL worker.
//
//   crc32c(buf: Uint8Array, seed?: number): number   CRC-32C (Castagnoli),
//       SSE4.2 crc32 instruction when the CPU has it, else slicing-by-8 table.
//       Same contract as src/storage/wal/crc32c.ts: seed is a previous result,
//       crc32c(b, crc32c(a)) === crc32c(a ++ b).
//   fallocate(fd, offset, length): void   fallocate(fd, 0, ...): allocated,
//       zero-reading blocks; extends the file size. Throws Error{code,errno,syscall}.
//   fdatasync(fd): void                    throws Error{code,errno,syscall}.
//   pinThreadToCpu(cpu): boolean           pthread_setaffinity_np on the calling thread.
//   rocksdb*: manual compaction of the store (rocksdb_compact.cc), many
//       records into a write batch in one call (rocksdb_batch.cc).
//
// Everything runs on the calling thread (the WAL worker is synchronous by
// design). Context-aware (NAPI_MODULE_INIT), no per-instance state, so it
// loads in any number of worker threads.

#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ETSD_HAVE_SSE42_PATH 1
#include <nmmintrin.h>
#endif

namespace {

// ---------------------------------------------------------------- crc32c

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli

struct Crc32cTable {
  uint32_t t[8][256];
  constexpr Crc32cTable() : t{} {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t c = b;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t c = t[0][b];
      for (int k = 1; k < 8; k++) {
        c = t[0][c & 0xff] ^ (c >> 8);
        t[k][b] = c;
      }
    }
  }
};

constexpr Crc32cTable kTable{};

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// crc is the raw register (already inverted by the caller).
uint32_t crc32c_table(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTable.t;
  while (n >= 8) {
    const uint64_t w = load_le64(p) ^ crc;
    crc = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^
          t[4][(w >> 24) & 0xff] ^ t[3][(w >> 32) & 0xff] ^
          t[2][(w >> 40) & 0xff] ^ t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#ifdef ETSD_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(uint32_t crc,
                                                        const uint8_t* p,
                                                        size_t n) {
  // Align to 8 so the 64-bit loads never straddle a cache line needlessly.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
  uint64_t c = crc;
  // Three independent chains would hide the instruction's 3-cycle latency,
  // but need a combine step; one chain already runs at ~8 bytes / 3 cycles,
  // far beyond what the WAL needs.
  while (n >= 32) {
    c = _mm_crc32_u64(c, load_le64(p));
    c = _mm_crc32_u64(c, load_le64(p + 8));
    c = _mm_crc32_u64(c, load_le64(p + 16));
    c = _mm_crc32_u64(c, load_le64(p + 24));
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, load_le64(p));
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(c);
  while (n-- > 0) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#endif

using CrcFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

CrcFn pick_crc() {
#ifdef ETSD_HAVE_SSE42_PATH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) return crc32c_sse42;
#endif
  return crc32c_table;
}

// Chosen once at load (static init runs before any call; the choice is
// the same for every thread, so sharing it is fine).
const CrcFn g_crc = pick_crc();

// ---------------------------------------------------------------- helpers

const char* errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* s = strerrorname_np(e);
  if (s != nullptr) return s;
#else
  switch (e) {
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOSYS: return "ENOSYS";
    case ENODEV: return "ENODEV";
    case ESPIPE: return "ESPIPE";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case EDQUOT: return "EDQUOT";
    case EINTR: return "EINTR";
    default: break;
  }
#endif
  return "EUNKNOWN";
}

// Throws an Error shaped like Node's fs errors:
// { message: "EBADF: bad file descriptor, fdatasync", code, errno (negative), syscall }.
void throw_errno(napi_env env, int e, const char* syscall) {
  const char* code = errno_name(e);
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s, %s", code, strerror(e), syscall);
  napi_value code_v, msg_v, err, errno_v, syscall_v;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok ||
      napi_create_error(env, code_v, msg_v, &err) != napi_ok) {
    napi_throw_error(env, code, msg);
    return;
  }
  napi_create_int32(env, -e, &errno_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, err, "errno", errno_v);
  napi_set_named_property(env, err, "syscall", syscall_v);
  napi_throw(env, err);
}

void throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

void throw_range(napi_env env, const char* msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

// Reads args[i] as a number that is an integer in [min, max].
bool get_int(napi_env env, napi_value v, const char* name, double min,
             double max, int64_t* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a number", name);
    throw_type(env, m);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<int64_t>(d))) {
    char m[128];
    snprintf(m, sizeof m, "%s must be an integer in [%.0f, %.0f]", name, min, max);
    throw_range(env, m);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

constexpr double kMaxSafe = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

// ---------------------------------------------------------------- exports

napi_value Crc32c(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok) return nullptr;
  bool is_ta = false;
  if (argc < 1 || napi_is_typedarray(env, args[0], &is_ta) != napi_ok || !is_ta) {
    throw_type(env, "crc32c: data must be a Uint8Array");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  // data already points at the first element (byteOffset applied).
  if (napi_get_typedarray_info(env, args[0], &type, &length, &data, nullptr, nullptr) != napi_ok)
    return nullptr;
  if (type != napi_uint8_array && type != napi_uint8_clamped_array) {
    throw_type(env, "crc32c: data must be a Uint8Array");
    return nullptr;
  }
  uint32_t seed = 0;
  if (argc >= 2) {
    napi_valuetype t;
    napi_typeof(env, args[1], &t);
    if (t == napi_number) {
      // ToUint32 semantics, like `~seed` in the JS version.
      napi_get_value_uint32(env, args[1], &seed);
    } else if (t != napi_undefined) {
      throw_type(env, "crc32c: seed must be a number");
      return nullptr;
    }
  }
  uint32_t crc = ~seed;
  if (length > 0) crc = g_crc(crc, static_cast<const uint8_t*>(data), length);
  napi_value out;
  napi_create_uint32(env, ~crc, &out);
  return out;
}

napi_value Fallocate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 3) {
    throw_type(env, "fallocate(fd, offset, length): 3 arguments required");
    return nullptr;
  }
  int64_t fd, off, len;
  if (!get_int(env, args[0], "fd", 0, 2147483647.0, &fd) ||
      !get_int(env, args[1], "offset", 0, kMaxSafe, &off) ||
      !get_int(env, args[2], "length", 0, kMaxSafe, &len))
    return nullptr;
  if (len == 0) return nullptr;  // nothing to do (the syscall would say EINVAL)
#if defined(__linux__)
  int r;
  do {
    r = fallocate(static_cast<int>(fd), 0, static_cast<off_t>(off), static_cast<off_t>(len));
  } while (r != 0 && errno == EINTR);
  if (r != 0) throw_errno(env, errno, "fallocate");
#else
  throw_errno(env, ENOSYS, "fallocate");
#endif
  return nullptr;
}

napi_value Fdatasync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 1) {
    throw_type(env, "fdatasync(fd): fd required");
    return nullptr;
  }
  int64_t fd;
  if (!get_int(env, args[0], "fd", 0, 2147483647.0, &fd)) return nullptr;
  int r;
  // Retry only EINTR (no I/O happened). Any other failure is reported, never
  // retried: after a failed fdatasync the page cache state is unknown.
  do {
#if defined(__APPLE__)
    r = fsync(static_cast<int>(fd));
#else
    r = fdatasync(static_cast<int>(fd));
#endif
  } while (r != 0 && errno == EINTR);
  if (r != 0) throw_errno(env, errno, "fdatasync");
  return nullptr;
}

napi_value PinThreadToCpu(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  if (napi_get_cb_info(env, info, &argc, args, nullptr, nullptr) != napi_ok) return nullptr;
  bool ok = false;
#if defined(__linux__)
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, args[0], &t);
  if (t == napi_number) {
    double d;
    napi_get_value_double(env, args[0], &d);
    if (d >= 0 && d < CPU_SETSIZE && d == static_cast<double>(static_cast<int>(d))) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(static_cast<int>(d), &set);
      ok = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
    }
  }
#endif
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

napi_value HasHardwareCrc(napi_env env, napi_callback_info) {
  napi_value out;
#ifdef ETSD_HAVE_SSE42_PATH
  napi_get_boolean(env, g_crc == crc32c_sse42, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

}  // namespace

bool etsd_register_rocksdb(napi_env env, napi_value exports);
bool etsd_register_rocksdb_batch(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"crc32c", nullptr, Crc32c, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fallocate", nullptr, Fallocate, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fdatasync", nullptr, Fdatasync, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"pinThreadToCpu", nullptr, PinThreadToCpu, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"hasHardwareCrc", nullptr, HasHardwareCrc, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return nullptr;
  if (!etsd_register_rocksdb(env, exports)) return nullptr;
  if (!etsd_register_rocksdb_batch(env, exports)) return nullptr;
  return exports;
}
