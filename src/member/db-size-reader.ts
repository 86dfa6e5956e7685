// The database size as Status and the metrics report it (the number the
// quota counts, storage/mvcc/db-size.ts). Read from RocksDB at the moment
// asked when the addon's RocksDB access is there (so a Defragment that just
// finished shows at once), else the apply worker's last published value
// (measured after each applied batch and each idle second).

import { dbSizeFrom } from '../storage/mvcc/db-size.js';
import type { RocksdbNative } from '../native/rocksdb.js';
import { Shared, loadShared } from '../workers/protocol/shared-state.js';

export function dbSizeReader(
  native: RocksdbNative | null, dbHandle: bigint, dbDir: string, state: BigInt64Array,
  /** False once the workers stop: the database may be closing, only the published value is safe then. */
  open: () => boolean,
): () => number {
  return () => {
    if (native !== null && open()) return dbSizeFrom((p) => native.intProperty(dbHandle, dbDir, p));
    return loadShared(state, Shared.DbSize);
  };
}
