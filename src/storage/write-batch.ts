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
// Records are staged in JS buffers and handed to the WriteBatch in one addon
// call per lane at write() (native/rocksdb.ts batchAppend): the binding's own
// _put costs an N-API call with argument checks per record (~400 ns; three or
// four per put). Without the addon the staged records go through _put and
// _del. The staged layout, one record after another:
//   u8 op (1 = put, 0 = delete), u32le keyLength, u32le valueLength, key, value
//
// Lanes: a batch's records reach RocksDB lane by lane, each lane in the order
// its records were added. The MVCC writer keeps each record family in a lane
// of its own: RocksDB inserts a batch into the memtable's skiplist in order,
// and each search starts near the previous insert. A caller may also write a
// record's bytes in place (reservePut), without a key or value buffer.
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

/** One lane's staged records. */
class Lane {
  stage = Buffer.allocUnsafe(64 * 1024);
  staged = 0;

  /** Room for `bytes` more, keeping what is staged. */
  grow(bytes: number): void {
    const need = this.staged + bytes;
    if (need <= this.stage.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.stage.length * 2));
    this.stage.copy(grown, 0, 0, this.staged);
    this.stage = grown;
  }
}

export class ReusableBatch {
  private batch: ChainedBatch;
  private ext: object | null;
  private bytes = 0;
  private count = 0;
  private readonly lanes: Lane[];

  /** `lanes`: how many lanes; put() and del() go to lane 0. */
  constructor(private readonly db: RocksLevel, lanes = 1) {
    this.batch = db.batch();
    this.ext = rocksdbNative ? batchExternal(this.batch) : null;
    this.lanes = Array.from({ length: lanes }, () => new Lane());
  }

  /** Records in the batch since the last write. */
  get length(): number { return this.count; }
  /** Key and value bytes in the batch since the last write. */
  get byteLength(): number { return this.bytes; }

  put(key: Uint8Array, value: Uint8Array): void {
    const at = this.reservePut(0, key.length, value.length);
    const s = this.lanes[0]!.stage;
    s.set(key, at);
    s.set(value, at + key.length);
  }

  del(key: Uint8Array): void {
    const at = this.reserve(0, OP_DEL, key.length, 0);
    this.lanes[0]!.stage.set(key, at);
  }

  /**
   * Stages a put in `lane` whose key (`keyLength` bytes) and then value
   * (`valueLength` bytes) the caller writes at the returned offset of
   * stageOf(lane), before anything else is added to that lane.
   */
  reservePut(lane: number, keyLength: number, valueLength: number): number {
    return this.reserve(lane, OP_PUT, keyLength, valueLength);
  }

  /** The buffer a lane's reservations are written into (it may move at each reservation). */
  stageOf(lane: number): Buffer {
    return this.lanes[lane]!.stage;
  }

  /** Writes what was added (atomically) and empties the batch for reuse. */
  write(sync = false): void {
    try {
      for (const lane of this.lanes) {
        if (lane.staged === 0) continue;
        if (this.ext !== null) rocksdbNative!.batchAppend(this.ext, lane.stage, lane.staged);
        else this.replay(lane);
      }
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
    for (const lane of this.lanes) {
      if (lane.stage.length > STAGE_KEEP_BYTES) lane.stage = Buffer.allocUnsafe(64 * 1024);
      lane.staged = 0;
    }
    this.bytes = 0;
    this.count = 0;
  }

  private reserve(lane: number, op: number, keyLength: number, valueLength: number): number {
    const l = this.lanes[lane]!;
    l.grow(RECORD_HEADER + keyLength + valueLength);
    const s = l.stage;
    const at = l.staged;
    s[at] = op;
    s.writeUInt32LE(keyLength, at + 1);
    s.writeUInt32LE(valueLength, at + 5);
    l.staged = at + RECORD_HEADER + keyLength + valueLength;
    this.bytes += keyLength + valueLength;
    this.count++;
    return at + RECORD_HEADER;
  }

  /** Without the addon: the lane's records through the binding's _put and _del. */
  private replay(lane: Lane): void {
    const s = lane.stage;
    for (let at = 0; at < lane.staged;) {
      const op = s[at]!;
      const klen = s.readUInt32LE(at + 1);
      const vlen = s.readUInt32LE(at + 5);
      const k = at + RECORD_HEADER;
      // Views are enough: the WriteBatch copies a record's bytes when it is added.
      const key = s.subarray(k, k + klen);
      if (op === OP_PUT) this.batch._put(key, s.subarray(k + klen, k + klen + vlen));
      else this.batch._del(key);
      at = k + klen + vlen;
    }
  }
}
