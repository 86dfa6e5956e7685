// How every RocksDB that holds an etsd store is opened: by the apply worker,
// and by the offline tools that build one (etsdutl snapshot restore, the
// takeover of an etcd data dir), so a restored store is written the way it
// will be read.
import type { OpenOptions } from '@nxtedition/rocksdb';

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
