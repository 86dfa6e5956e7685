// Power-cut journal: an LD_PRELOAD library for etsd members in fault runs.
//
// It interposes the libc calls that change or make durable the contents of
// regular files under $POWERCUT_DIR (a member's data dir) and appends, for
// each, a record to $POWERCUT_JOURNAL (one file per process, O_APPEND, one
// write(2) per record so concurrent writers never interleave). After every
// member is killed -9, test/faults/powercut/revert.ts reads the journals and
// puts each file back as it was at its last completed fsync/fdatasync: the
// data a power cut would lose (the model is in revert.ts).
//
// Records are an undo log keyed by inode (dev, ino), not by path: renames and
// unlinks then need no tracking, and a file written under a temporary name,
// synced and renamed is reverted under its new name. A MOD record is written
// BEFORE the change it describes and carries the bytes it replaces (read
// with pread) and the size before it: a kill between the record and the
// change leaves a record whose undo is a no-op. A sync is two records, BEGIN
// before the real call and END after it succeeded: only a sync that returned
// made anything durable, and it covers only what was recorded before BEGIN
// (a concurrent write may or may not be in it: we assume not).
//
// Thread-safe: a process-wide mutex around each journal append; per-fd state
// in atomics. Not seen (documented limits): writes through mmap, fwrite,
// io_uring (members run with UV_USE_IO_URING=0), raw syscall(2), fd
// duplicates made with fcntl(F_DUPFD), and closes libuv makes with
// syscall(SYS_close) (so each op re-checks that the fd still names the inode
// it was opened on, instead of trusting close()).
//
// Record layout (little-endian, 48-byte header then payload):
//   u32 total length, u32 type, u64 dev, u64 ino, u64 a, u64 b, u64 c
//   OPEN  (1): a = 1 if this open created the file, payload = path
//   MOD   (2): a = size before, b = offset, c = length of old bytes, payload = old bytes
//              (a pure size change has c = 0: truncate back to a)
//   SYNC_BEGIN (3) / SYNC_END (4): a = sync sequence number (fsync, fdatasync)
//   SYNCALL_BEGIN (5) / SYNCALL_END (6): a = sequence (sync, syncfs: every file)

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif

enum { R_OPEN = 1, R_MOD = 2, R_SYNC_BEGIN = 3, R_SYNC_END = 4, R_SYNCALL_BEGIN = 5, R_SYNCALL_END = 6 };

struct hdr { uint32_t len, type; uint64_t dev, ino, a, b, c; };

#define MAX_FD 65536
// ino + 1 of the tracked file per fd (0: not tracked); dev beside it.
static _Atomic uint64_t fd_ino[MAX_FD];
static _Atomic uint64_t fd_dev[MAX_FD];
static _Atomic uint64_t sync_seq;

static char dir_prefix[PATH_MAX + 1];
static size_t dir_len;
static int journal_fd = -1;
static pthread_mutex_t journal_mu = PTHREAD_MUTEX_INITIALIZER;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);

static void die(const char *what) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "powercut shim: %s: %s\n", what, strerror(errno));
  if (n > 0) (void)!syscall(SYS_write, 2, msg, (size_t)n);
  abort();
}

#define RESOLVE(name) do { real_##name = dlsym(RTLD_NEXT, #name); if (!real_##name) die("dlsym " #name); } while (0)

__attribute__((constructor)) static void init(void) {
  RESOLVE(open); RESOLVE(openat); RESOLVE(write); RESOLVE(pwrite); RESOLVE(writev); RESOLVE(pwritev);
  RESOLVE(pwritev2); RESOLVE(ftruncate); RESOLVE(truncate); RESOLVE(fallocate); RESOLVE(posix_fallocate);
  RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(syncfs); RESOLVE(sync); RESOLVE(close); RESOLVE(dup);
  RESOLVE(dup2); RESOLVE(dup3);
  const char *dir = getenv("POWERCUT_DIR");
  const char *journal = getenv("POWERCUT_JOURNAL");
  if (!dir || !journal) return;  // inert: every call passes straight through
  if (!realpath(dir, dir_prefix)) die("realpath POWERCUT_DIR");
  dir_len = strlen(dir_prefix);
  if (dir_len == 0 || dir_prefix[dir_len - 1] != '/') dir_prefix[dir_len++] = '/';
  dir_prefix[dir_len] = 0;
  journal_fd = real_open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (journal_fd < 0) die("open POWERCUT_JOURNAL");
}

static void journal(uint32_t type, uint64_t dev, uint64_t ino, uint64_t a, uint64_t b, uint64_t c, const void *payload, size_t plen) {
  struct hdr h = { (uint32_t)(sizeof h + plen), type, dev, ino, a, b, c };
  char stackbuf[4096];
  char *buf = sizeof h + plen <= sizeof stackbuf ? stackbuf : malloc(sizeof h + plen);
  if (!buf) die("malloc journal record");
  memcpy(buf, &h, sizeof h);
  if (plen) memcpy(buf + sizeof h, payload, plen);
  pthread_mutex_lock(&journal_mu);
  size_t done = 0;
  while (done < h.len) {
    ssize_t n = real_write(journal_fd, buf + done, h.len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("write POWERCUT_JOURNAL");  // a journal with a hole would make the revert lie
    done += (size_t)n;
  }
  pthread_mutex_unlock(&journal_mu);
  if (buf != stackbuf) free(buf);
}

static int under_dir(const char *path) { return strncmp(path, dir_prefix, dir_len) == 0; }

/** The fd's file if it is tracked and still the same inode (libuv may have closed it behind our back). */
static int tracked(int fd, struct stat *st) {
  if (journal_fd < 0 || fd < 0 || fd >= MAX_FD) return 0;
  uint64_t ino = atomic_load(&fd_ino[fd]);
  if (ino == 0) return 0;
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || (uint64_t)st->st_ino + 1 != ino || (uint64_t)st->st_dev != atomic_load(&fd_dev[fd])) {
    atomic_store(&fd_ino[fd], 0);
    return 0;
  }
  return 1;
}

/** After a successful open: track the fd if it is a regular file under the directory. */
static void after_open(int fd, int created) {
  if (journal_fd < 0 || fd < 0 || fd >= MAX_FD) return;
  atomic_store(&fd_ino[fd], 0);
  char link[64], path[PATH_MAX + 1];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, PATH_MAX);
  if (n <= 0) return;
  path[n] = 0;
  struct stat st;
  if (!under_dir(path) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  journal(R_OPEN, (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)created, 0, 0, path, (size_t)n);
  atomic_store(&fd_dev[fd], (uint64_t)st.st_dev);
  atomic_store(&fd_ino[fd], (uint64_t)st.st_ino + 1);
}

/** Records the bytes [off, off+len) are about to change (and the size may grow past them). */
static void record_mod(int fd, const struct stat *st, uint64_t off, uint64_t len) {
  uint64_t size = (uint64_t)st->st_size;
  uint64_t old = off < size ? (len < size - off ? len : size - off) : 0;
  char *buf = NULL;
  if (old > 0) {
    buf = malloc(old);
    if (!buf) die("malloc old bytes");
    // A write-only fd cannot be read: the same file opened again for reading through /proc.
    int rfd = fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_ACCMODE) == O_WRONLY) {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
      rfd = real_open(link, O_RDONLY | O_CLOEXEC);
      if (rfd < 0) die("reopen a write-only fd for reading");
    }
    uint64_t got = 0;
    while (got < old) {
      ssize_t n = pread(rfd, buf + got, old - got, (off_t)(off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die("pread old bytes");
      if (n == 0) break;
      got += (uint64_t)n;
    }
    if (rfd != fd) real_close(rfd);
    old = got;
  }
  journal(R_MOD, (uint64_t)st->st_dev, (uint64_t)st->st_ino, size, off, old, buf, old);
  free(buf);
}

/** The offset a write() without one lands at. */
static uint64_t current_offset(int fd, const struct stat *st) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_APPEND)) return (uint64_t)st->st_size;
  off_t o = lseek(fd, 0, SEEK_CUR);
  return o < 0 ? (uint64_t)st->st_size : (uint64_t)o;
}

static size_t iov_len(const struct iovec *iov, int cnt) {
  size_t n = 0;
  for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
  return n;
}

/** Resolves (dirfd, path) to an absolute path, without following a final symlink. */
static int resolve_at(int dirfd, const char *p, char *out) {
  if (p[0] == '/') { snprintf(out, PATH_MAX, "%s", p); return 1; }
  char base[PATH_MAX + 1];
  if (dirfd == AT_FDCWD) { if (!getcwd(base, sizeof base)) return 0; } else {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, base, PATH_MAX);
    if (n <= 0) return 0;
    base[n] = 0;
  }
  return snprintf(out, PATH_MAX, "%s/%s", base, p) < PATH_MAX;
}

/**
 * Before an open that truncates an existing file under the directory: the bytes it drops are
 * recorded as a modification (an O_TRUNC that was never followed by a sync does not stick).
 */
static void before_trunc_open(int dirfd, const char *p) {
  char abs[PATH_MAX + 1], real[PATH_MAX + 1];
  if (journal_fd < 0 || !resolve_at(dirfd, p, abs) || !realpath(abs, real) || !under_dir(real)) return;
  int fd = real_open(real, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) record_mod(fd, &st, 0, (uint64_t)st.st_size);
  real_close(fd);
}

static int do_openat(int dirfd, const char *p, int flags, mode_t mode) {
  int existed = 1;
  if (journal_fd >= 0 && (flags & O_CREAT)) existed = faccessat(dirfd, p, F_OK, 0) == 0;
  if (existed && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) before_trunc_open(dirfd, p);
  int fd = real_openat(dirfd, p, flags, mode);
  if (fd >= 0) after_open(fd, !existed);
  return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *p, int flags, ...) { va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap); return do_openat(AT_FDCWD, p, flags, m); }
int open64(const char *p, int flags, ...) { va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap); return do_openat(AT_FDCWD, p, flags, m); }
int openat(int d, const char *p, int flags, ...) { va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap); return do_openat(d, p, flags, m); }
int openat64(int d, const char *p, int flags, ...) { va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap); return do_openat(d, p, flags, m); }
int __open_2(const char *p, int flags) { return do_openat(AT_FDCWD, p, flags, 0); }
int __open64_2(const char *p, int flags) { return do_openat(AT_FDCWD, p, flags, 0); }
int __openat_2(int d, const char *p, int flags) { return do_openat(d, p, flags, 0); }
int __openat64_2(int d, const char *p, int flags) { return do_openat(d, p, flags, 0); }
int creat(const char *p, mode_t m) { return do_openat(AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC, m); }
int creat64(const char *p, mode_t m) { return do_openat(AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC, m); }

ssize_t write(int fd, const void *b, size_t n) {
  struct stat st;
  if (tracked(fd, &st)) record_mod(fd, &st, current_offset(fd, &st), n);
  return real_write(fd, b, n);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
  struct stat st;
  if (tracked(fd, &st)) record_mod(fd, &st, (uint64_t)off, n);
  return real_pwrite(fd, b, n, off);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) { return pwrite(fd, b, n, off); }
ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  struct stat st;
  if (tracked(fd, &st)) record_mod(fd, &st, current_offset(fd, &st), iov_len(iov, cnt));
  return real_writev(fd, iov, cnt);
}
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  struct stat st;
  if (tracked(fd, &st)) record_mod(fd, &st, (uint64_t)off, iov_len(iov, cnt));
  return real_pwritev(fd, iov, cnt, off);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) { return pwritev(fd, iov, cnt, off); }
ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
  struct stat st;
  if (tracked(fd, &st)) record_mod(fd, &st, off == -1 ? current_offset(fd, &st) : (uint64_t)off, iov_len(iov, cnt));
  return real_pwritev2(fd, iov, cnt, off, flags);
}
ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) { return pwritev2(fd, iov, cnt, off, flags); }

/** A size change to `len`: the bytes cut off are recorded, or only the size when it grows. */
static void record_resize(int fd, const struct stat *st, uint64_t len) {
  uint64_t size = (uint64_t)st->st_size;
  record_mod(fd, st, len < size ? len : size, len < size ? size - len : 0);
}
int ftruncate(int fd, off_t len) {
  struct stat st;
  if (tracked(fd, &st) && (uint64_t)len != (uint64_t)st.st_size) record_resize(fd, &st, (uint64_t)len);
  return real_ftruncate(fd, len);
}
int ftruncate64(int fd, off_t len) { return ftruncate(fd, len); }
int truncate(const char *p, off_t len) {
  char abs[PATH_MAX + 1], real[PATH_MAX + 1];
  if (journal_fd >= 0 && resolve_at(AT_FDCWD, p, abs) && realpath(abs, real) && under_dir(real)) {
    int fd = real_open(real, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)len != (uint64_t)st.st_size) record_resize(fd, &st, (uint64_t)len);
    if (fd >= 0) real_close(fd);
  }
  return real_truncate(p, len);
}
int truncate64(const char *p, off_t len) { return truncate(p, len); }

/** fallocate: KEEP_SIZE allocation changes no content; punching, zeroing or growing the size does. */
int fallocate(int fd, int mode, off_t off, off_t len) {
  struct stat st;
  if (tracked(fd, &st)) {
    uint64_t end = (uint64_t)off + (uint64_t)len, size = (uint64_t)st.st_size;
    if (mode & ~FALLOC_FL_KEEP_SIZE) record_mod(fd, &st, (uint64_t)off, mode & FALLOC_FL_KEEP_SIZE ? (uint64_t)len : (end > size ? end : size) - (uint64_t)off);
    else if (!(mode & FALLOC_FL_KEEP_SIZE) && end > size) record_resize(fd, &st, end);
  }
  return real_fallocate(fd, mode, off, len);
}
int fallocate64(int fd, int mode, off_t off, off_t len) { return fallocate(fd, mode, off, len); }
int posix_fallocate(int fd, off_t off, off_t len) {
  struct stat st;
  if (tracked(fd, &st) && (uint64_t)off + (uint64_t)len > (uint64_t)st.st_size) record_resize(fd, &st, (uint64_t)off + (uint64_t)len);
  return real_posix_fallocate(fd, off, len);
}
int posix_fallocate64(int fd, off_t off, off_t len) { return posix_fallocate(fd, off, len); }

static int synced(int fd, int (*real)(int)) {
  struct stat st;
  if (!tracked(fd, &st)) return real(fd);
  uint64_t seq = atomic_fetch_add(&sync_seq, 1);
  journal(R_SYNC_BEGIN, (uint64_t)st.st_dev, (uint64_t)st.st_ino, seq, 0, 0, NULL, 0);
  int r = real(fd);
  int e = errno;
  if (r == 0) journal(R_SYNC_END, (uint64_t)st.st_dev, (uint64_t)st.st_ino, seq, 0, 0, NULL, 0);
  errno = e;
  return r;
}
int fsync(int fd) { return synced(fd, real_fsync); }
int fdatasync(int fd) { return synced(fd, real_fdatasync); }
// sync_file_range is not interposed: it starts writeback of a range but neither flushes the
// device's cache nor commits metadata, so it makes nothing durable (RocksDB's bytes_per_sync).

int syncfs(int fd) {
  if (journal_fd < 0) return real_syncfs(fd);
  uint64_t seq = atomic_fetch_add(&sync_seq, 1);
  journal(R_SYNCALL_BEGIN, 0, 0, seq, 0, 0, NULL, 0);
  int r = real_syncfs(fd);
  int e = errno;
  if (r == 0) journal(R_SYNCALL_END, 0, 0, seq, 0, 0, NULL, 0);
  errno = e;
  return r;
}
void sync(void) {
  if (journal_fd < 0) { real_sync(); return; }
  uint64_t seq = atomic_fetch_add(&sync_seq, 1);
  journal(R_SYNCALL_BEGIN, 0, 0, seq, 0, 0, NULL, 0);
  real_sync();
  journal(R_SYNCALL_END, 0, 0, seq, 0, 0, NULL, 0);
}

int close(int fd) {
  // Forgotten before the real close: once closed, another thread may get the same number.
  if (fd >= 0 && fd < MAX_FD) atomic_store(&fd_ino[fd], 0);
  return real_close(fd);
}

static void copy_tracking(int from, int to) {
  if (from < 0 || from >= MAX_FD || to < 0 || to >= MAX_FD) return;
  atomic_store(&fd_dev[to], atomic_load(&fd_dev[from]));
  atomic_store(&fd_ino[to], atomic_load(&fd_ino[from]));
}
int dup(int fd) { int r = real_dup(fd); if (r >= 0) copy_tracking(fd, r); return r; }
int dup2(int fd, int to) { int r = real_dup2(fd, to); if (r >= 0) copy_tracking(fd, r); return r; }
int dup3(int fd, int to, int fl) { int r = real_dup3(fd, to, fl); if (r >= 0) copy_tracking(fd, r); return r; }
