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
// Records are staged in one JS buffer and handed to the WriteBatch in one
// addon call at write() (native/rocksdb.ts batchAppend): the binding's own
// _put costs an N-API call with argument checks per record (~400 ns; three or
// four per put). Without the addon they go through _put and _del as before.
// The staged layout, one record after another:
//   u8 op (1 = put, 0 = delete), u32le keyLength, u32le valueLength, key, value
//
// Calls the binding's own unchecked methods (_put, _del, _writeSync, _clear)
// and reads its batch's external: @nxtedition/rocksdb is pinned to an exact
// version (src/native/rocksdb.ts).
import type { ChainedBatch, RocksLevel } from '@nxtedition/rocksdb';
import { rocksdbNative } from '../native/rocksdb.js';

const REPLACE_BYTES = 16 * 1024 * 1024;
const RECORD_HEADER = 9;
const OP_DEL = 0;
const OP_PUT = 1;
/** Staging buffers above this are dropped after their write, as large WriteBatches are. */
const STAGE_KEEP_BYTES = 1024 * 1024;

/** The WriteBatch external a ChainedBatch of the binding holds (binding.batch_init), or null. */
function batchExternal(batch: ChainedBatch): object | null {
  const sym = Object.getOwnPropertySymbols(batch).find((s) => s.description === 'batchContext');
  if (sym === undefined) return null;
  const ext = (batch as unknown as Record<symbol, unknown>)[sym];
  return typeof ext === 'object' && ext !== null ? ext : null;
}

export class ReusableBatch {
  private batch: ChainedBatch;
  private ext: object | null;
  private bytes = 0;
  private count = 0;
  private stage = Buffer.allocUnsafe(64 * 1024);
  private staged = 0;

  constructor(private readonly db: RocksLevel) {
    this.batch = db.batch();
    this.ext = rocksdbNative ? batchExternal(this.batch) : null;
  }

  /** Records in the batch since the last write. */
  get length(): number { return this.count; }
  /** Key and value bytes in the batch since the last write. */
  get byteLength(): number { return this.bytes; }

  put(key: Uint8Array, value: Uint8Array): void {
    if (this.ext !== null) this.stageRecord(OP_PUT, key, value);
    else this.batch._put(key, value);
    this.bytes += key.length + value.length;
    this.count++;
  }

  del(key: Uint8Array): void {
    if (this.ext !== null) this.stageRecord(OP_DEL, key, null);
    else this.batch._del(key);
    this.bytes += key.length;
    this.count++;
  }

  /** Writes what was added (atomically) and empties the batch for reuse. */
  write(sync = false): void {
    try {
      if (this.staged > 0) rocksdbNative!.batchAppend(this.ext!, this.stage, this.staged);
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
      this.ext = rocksdbNative ? batchExternal(this.batch) : null;
    } else {
      this.batch._clear();
    }
    if (this.stage.length > STAGE_KEEP_BYTES) this.stage = Buffer.allocUnsafe(64 * 1024);
    this.staged = 0;
    this.bytes = 0;
    this.count = 0;
  }

  private stageRecord(op: number, key: Uint8Array, value: Uint8Array | null): void {
    const vlen = value === null ? 0 : value.length;
    const need = this.staged + RECORD_HEADER + key.length + vlen;
    if (need > this.stage.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.stage.length * 2));
      this.stage.copy(grown, 0, 0, this.staged);
      this.stage = grown;
    }
    const s = this.stage;
    let at = this.staged;
    s[at] = op;
    s.writeUInt32LE(key.length, at + 1);
    s.writeUInt32LE(vlen, at + 5);
    at += RECORD_HEADER;
    s.set(key, at);
    at += key.length;
    if (value !== null) {
      s.set(value, at);
      at += vlen;
    }
    this.staged = at;
  }
}
