// How every RocksDB that holds an etsd store is opened: by the apply worker,
// and by the offline tools that build one (etsdutl snapshot restore, the
// takeover of an etcd data dir), so a restored store is written the way it
// will be read.
import type { OpenOptions, RocksLevel } from '@nxtedition/rocksdb';
import { rocksdbNative, rocksdbUnavailableReason } from '../native/rocksdb.js';

export const STORE_OPEN_OPTIONS: Readonly<OpenOptions> = {
  createIfMissing: true,
  cacheSize: 64 * 1024 * 1024,
  // The raft WAL is our log of record: RocksDB's own WAL is never fsynced on the hot path, and
  // compressing it (the binding's default, zstd) costs the writing thread more than the data
  // saves. SSTs are not compressed either: the store runs without, and a restore that wrote
  // zstd files spent most of its time compressing.
  walCompression: false,
  compression: false,
  // Bloom filters keep the point reads of keys that do not exist yet cheap.
  filterPolicy: 'bloomfilter:10:false',
};

/**
 * Mutable column options set right after open, through the etsd addon
 * (DB::SetOptions): the binding's open does not take them.
 * - 16 MiB memtables instead of 64: a put inserts three records, and in a
 *   smaller skiplist each insert walks fewer cache-missing levels (a write
 *   batch of 64 puts measured 7.0 -> 5.2 us per put, rw microbench); two of
 *   them hold 32 MiB where 128 MiB was.
 * - A whole-key bloom filter on the memtable: the writer reads the latest
 *   record of every key it has not cached, and a new key then answers from
 *   the filter instead of a skiplist search.
 */
export const STORE_TUNING: Readonly<Record<string, string>> = {
  write_buffer_size: String(16 * 1024 * 1024),
  memtable_whole_key_filtering: 'true',
  memtable_prefix_bloom_size_ratio: '0.05',
};

/**
 * Database-wide options set the same way. RocksDB writes its own log, memtable
 * flushes and compactions through the page cache unsynced; after a burst of
 * writes the kernel's writeback of that backlog sat in front of every raft WAL
 * fdatasync. Syncing RocksDB's files a MiB at a time as they are written keeps
 * the backlog small.
 */
export const STORE_DB_TUNING: Readonly<Record<string, string>> = {
  bytes_per_sync: String(1024 * 1024),
  wal_bytes_per_sync: String(1024 * 1024),
};

/** Applies STORE_TUNING and STORE_DB_TUNING to a store open at `location` (as given to the binding); the reason when it cannot (no addon), null when done. */
export function tuneStore(db: RocksLevel, location: string): string | null {
  if (rocksdbNative === null) return rocksdbUnavailableReason;
  rocksdbNative.setOptions(db.handle, location, STORE_TUNING);
  rocksdbNative.setDBOptions(db.handle, location, STORE_DB_TUNING);
  return null;
}
