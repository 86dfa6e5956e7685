// One RocksDB WriteBatch, written and reused, instead of a new one per write.
//
// The binding frees a WriteBatch only when V8 collects its JS wrapper, and V8
// does not know the C++ buffer behind it: an apply batch of 64 txns of 100 puts
// is ~4 MB of batch, and the apply worker held ~280 MB of written batches at
// 300k keys waiting for a GC that had no reason to run (malloc arena of the
// apply thread, gdb malloc_stats). Reused, one buffer stays, at the size of the
// largest batch so far; past REPLACE_BYTES it is dropped for a fresh one (rare:
// a huge txn or restore chunk), so one outlier does not pin its size forever.
//
// Calls the binding's own unchecked methods (_put, _del, _writeSync, _clear):
// @nxtedition/rocksdb is pinned to an exact version (src/native/rocksdb.ts).
import type { ChainedBatch, RocksLevel } from '@nxtedition/rocksdb';

const REPLACE_BYTES = 16 * 1024 * 1024;

export class ReusableBatch {
  private batch: ChainedBatch;
  private bytes = 0;
  private count = 0;

  constructor(private readonly db: RocksLevel) {
    this.batch = db.batch();
  }

  /** Records in the batch since the last write. */
  get length(): number { return this.count; }
  /** Key and value bytes in the batch since the last write. */
  get byteLength(): number { return this.bytes; }

  put(key: Uint8Array, value: Uint8Array): void {
    this.batch._put(key, value);
    this.bytes += key.length + value.length;
    this.count++;
  }

  del(key: Uint8Array): void {
    this.batch._del(key);
    this.bytes += key.length;
    this.count++;
  }

  /** Writes what was added (atomically) and empties the batch for reuse. */
  write(sync = false): void {
    try {
      this.batch._writeSync({ sync });
    } finally {
      this.clear();
    }
  }

  /** Drops what was added without writing it. */
  clear(): void {
    if (this.bytes >= REPLACE_BYTES) {
      this.batch._closeSync();
      this.batch = this.db.batch();
    } else {
      this.batch._clear();
    }
    this.bytes = 0;
    this.count = 0;
  }
}
