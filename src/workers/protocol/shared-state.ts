// The words the apply worker publishes to every thread (a BigInt64Array over
// a SharedArrayBuffer). One writer per slot; readers use Atomics.load.

export const enum Shared {
  AppliedIndex = 0,
  Revision = 1,
  CompactRevision = 2,
  /** Written by the main thread (raft's term, for response headers). */
  RaftTerm = 3,
  /**
   * Odd while the apply worker replaces the database with a snapshot, bumped
   * again when done: readers that saw it odd, or saw it change during a read,
   * discard what they read (a seqlock).
   */
  StorageEpoch = 4,
  /** Raised alarms as bits (1 << AlarmType): NOSPACE = 2, CORRUPT = 4. Written by the apply worker. */
  Alarms = 5,
  /** The database size in bytes (storage/mvcc/db-size.ts), what the space quota counts. Written by the apply worker. */
  DbSize = 6,
  Size = 8,
}

export function sharedState(sab: SharedArrayBuffer): BigInt64Array {
  return new BigInt64Array(sab);
}

export function loadShared(s: BigInt64Array, slot: Shared): number {
  return Number(Atomics.load(s, slot));
}

export function storeShared(s: BigInt64Array, slot: Shared, v: number): void {
  Atomics.store(s, slot, BigInt(v));
}
