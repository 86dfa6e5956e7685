// What etsd calls the database size: Maintenance.Status dbSize,
// etcd_mvcc_db_total_size_in_bytes and what the space quota counts, one
// number as in etcd (whose three are all the bbolt file's size).
//
// RocksDB's equivalent of that file: every SST file on disk (total, so files
// a compaction replaced but a reader still pins count until released, as
// etcd's free pages count until a defrag) plus the memtables (data written
// but not flushed yet; on disk it sits in RocksDB's WAL, and flushing moves
// it into an SST). Left out: RocksDB's WAL itself (the same bytes as the
// memtables), MANIFEST, OPTIONS and the info LOG. Memtables are counted as
// allocated arena memory: an empty memtable is 2 KiB, and a full one is a few
// per cent above its data (skiplist nodes).

/** The RocksDB integer properties the size is made of. */
export const DB_SIZE_PROPERTIES = ['rocksdb.total-sst-files-size', 'rocksdb.size-all-mem-tables'] as const;

/** The database size from RocksDB's integer properties (`get` returns null for an unknown property). */
export function dbSizeFrom(get: (property: string) => number | null): number {
  let n = 0;
  for (const p of DB_SIZE_PROPERTIES) {
    const v = get(p);
    if (v === null || !Number.isFinite(v)) throw new Error(`RocksDB has no integer property ${p}`);
    n += v;
  }
  return n;
}
