// RocksDB calls @nxtedition/rocksdb does not expose, from the etsd addon
// (native-bindings/src/rocksdb_compact.cc): a manual compaction of the whole
// key range (Maintenance.Defragment), integer properties, and the mutable
// column options the binding's open does not take.
//
// The addon reaches the binding's database through `db.handle` (the address
// of its C++ `struct Database`), whose leading fields it mirrors: that is
// only sound for the exact binding version the mirror was written against,
// so any other version (or no addon, or ETSD_NO_NATIVE=1) leaves
// `rocksdbNative` null with the reason in `rocksdbUnavailableReason`. There
// is no JS fallback: RocksDB cannot be compacted without this.
//
// The addon checks each handle before use (the mirrored location equals the
// `location` passed, the database is open and names itself so). The caller
// must keep the database open until every compaction it started settled.

import { createRequire } from 'node:module';
import { bindings } from './index.js';

/** The binding version rocksdb_compact.cc mirrors (package.json pins it exactly). */
export const MIRRORED_ROCKSDB_BINDING = '12.2.12';

export interface CompactionResult {
  /** rocksdb.total-sst-files-size before and after. */
  sstBefore: number;
  sstAfter: number;
}

export interface Compaction {
  /** Settles when RocksDB is done (rejects with its status text, e.g. when canceled). */
  readonly done: Promise<CompactionResult>;
  /** Asks RocksDB to stop soon; `done` then rejects. */
  cancel(): void;
}

export interface RocksdbNative {
  /**
   * Starts CompactRange over the whole key range of the default column family
   * (the only one etsd opens), bottommost level included, on a libuv thread.
   * Not exclusive: writes and automatic compactions go on meanwhile.
   * Throws at once if the handle does not check out.
   */
  compactAll(handle: bigint, location: string): Compaction;
  /** DB::GetIntProperty (e.g. rocksdb.total-sst-files-size); null when RocksDB does not know it. */
  intProperty(handle: bigint, location: string, name: string): number | null;
  /** DB::SetOptions on the default column family (mutable options only); throws RocksDB's refusal. */
  setOptions(handle: bigint, location: string, options: Readonly<Record<string, string>>): void;
  /** DB::SetDBOptions (mutable database-wide options only); throws RocksDB's refusal. */
  setDBOptions(handle: bigint, location: string, options: Readonly<Record<string, string>>): void;
  /**
   * Adds the records in records[0, length) to a WriteBatch of the binding (the
   * external its ChainedBatch holds) in one call, in order; the layout is
   * write-batch.ts's. Returns how many. Throws on a malformed record.
   */
  batchAppend(batch: object, records: Uint8Array, length: number): number;
}

interface RocksdbAddon {
  rocksdbCompactJob(): object;
  rocksdbCompactCancel(job: object): void;
  rocksdbCompact(handle: bigint, location: string, job: object): Promise<CompactionResult>;
  rocksdbIntProperty(handle: bigint, location: string, name: string): number | null;
  rocksdbSetOptions(handle: bigint, location: string, options: Readonly<Record<string, string>>): void;
  rocksdbSetDBOptions(handle: bigint, location: string, options: Readonly<Record<string, string>>): void;
  rocksdbBatchAppend(batch: object, records: Uint8Array, length: number): number;
}

function load(): { native: RocksdbNative | null; reason: string | null } {
  if (bindings.addonFile === null) return { native: null, reason: `the etsd native addon is not in use (${bindings.fallbackReason ?? 'unknown'})` };
  const req = createRequire(import.meta.url);
  const version = (req('@nxtedition/rocksdb/package.json') as { version: string }).version;
  if (version !== MIRRORED_ROCKSDB_BINDING) {
    return { native: null, reason: `@nxtedition/rocksdb is ${version}; the addon's RocksDB access is written for ${MIRRORED_ROCKSDB_BINDING} only` };
  }
  const addon = req(bindings.addonFile) as Partial<RocksdbAddon>;
  if (typeof addon.rocksdbCompact !== 'function' || typeof addon.rocksdbCompactJob !== 'function' ||
    typeof addon.rocksdbCompactCancel !== 'function' || typeof addon.rocksdbIntProperty !== 'function' ||
    typeof addon.rocksdbSetOptions !== 'function' || typeof addon.rocksdbSetDBOptions !== 'function' ||
    typeof addon.rocksdbBatchAppend !== 'function') {
    return { native: null, reason: `${bindings.addonFile} has no RocksDB functions (built before they were added; run npm run build:native)` };
  }
  const a = addon as RocksdbAddon;
  return {
    reason: null,
    native: {
      compactAll(handle, location) {
        const job = a.rocksdbCompactJob();
        return { done: a.rocksdbCompact(handle, location, job), cancel: () => a.rocksdbCompactCancel(job) };
      },
      intProperty: (handle, location, name) => a.rocksdbIntProperty(handle, location, name),
      setOptions: (handle, location, options) => a.rocksdbSetOptions(handle, location, options),
      setDBOptions: (handle, location, options) => a.rocksdbSetDBOptions(handle, location, options),
      batchAppend: a.rocksdbBatchAppend,
    },
  };
}

const loaded = load();

/** The RocksDB calls, or null (see rocksdbUnavailableReason). */
export const rocksdbNative: RocksdbNative | null = loaded.native;
/** Why rocksdbNative is null; null when it is not. */
export const rocksdbUnavailableReason: string | null = loaded.reason;
