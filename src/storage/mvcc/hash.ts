// Maintenance.HashKV and Maintenance.Hash over one member's RocksDB.
//
// The values are CRC-32C (src/common/crc32c.ts) over etsd's own record
// layout (keys.ts, record.ts), so they never equal what a real etcd answers
// for the same history: etcd hashes bbolt's key bucket with crc32 (IEEE).
// What they promise is etcd's property inside one etsd cluster: members that
// applied the same history give the same HashKV, whether or not a member has
// physically swept its last compaction yet.

import type { RocksLevel } from '@nxtedition/rocksdb';
import { crc32c } from '../../common/crc32c.js';
import { Errors } from '../../common/errors.js';
import { HISTORY_END, MAX_REV, PREFIX_HISTORY, PREFIX_META } from './keys.js';
import { isTombstoneRecord, modRevisionOf } from './record.js';

const CHUNK = 1000;
const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
const HISTORY_START = Buffer.from([PREFIX_HISTORY]);

/**
 * The revision HashKV hashes at, or etcd's error: above the current revision
 * is ErrFutureRev, below the compact revision ErrCompacted (equal is fine).
 * 0 means the current revision. etcd hashes nothing for a negative revision;
 * etsd reads it as 0, as Range does.
 */
export function hashKVRevision(requested: number, currentRev: number, compactRev: number): number {
  if (requested <= 0) return currentRev;
  if (requested > currentRev) throw Errors.futureRev();
  if (requested < compactRev) throw Errors.compacted();
  return requested;
}

/**
 * CRC-32C over the MVCC history as of revision `rev` after a compaction at
 * `compactRev`: for every key, in key order, each version with
 * compactRev < mod <= rev (newest first), then the newest version with
 * mod <= compactRev unless it is a tombstone. That is the set a finished
 * compaction leaves (compactor.ts), so the records a pending or half-done
 * sweep has not removed yet are skipped, and swept and unswept members agree.
 * Each version contributes its 'k' record key and value bytes (the value holds
 * create/mod revision, version, lease, sub-revision and the user value).
 *
 * The 'l' (latest) and 'r' (by-revision) families are derived from 'k', and
 * leases are not part of the key space (etcd hashes only the key bucket too).
 * Records above `rev` (writes applied while this runs) are skipped, so a
 * concurrent writer does not change the answer; a concurrent sweep of a newer
 * compaction does, and the caller must retry if the compact revision moved.
 */
export function hashKV(db: RocksLevel, rev: number, compactRev: number): number {
  if (rev < compactRev) throw new Error(`hashKV at ${rev} below the compact revision ${compactRev}`);
  let crc = 0;
  let gte = HISTORY_START;
  let current: Buffer | null = null;
  let kept = false; // the version at or below compactRev of `current` has been decided
  for (;;) {
    const { rows } = db.querySync({ ...Q, gte, lt: HISTORY_END, limit: CHUNK });
    for (let i = 0; i < rows.length; i += 2) {
      const k = rows[i]!;
      const v = rows[i + 1]!;
      const mod = modRevisionOf(v);
      // 'k' + esc(userKey) + 00 01 + ~rev(6B): all but the last 6 bytes name the key.
      const name = k.subarray(0, k.length - 6);
      if (MAX_REV - k.readUIntBE(k.length - 6, 6) !== mod) throw new Error(`history record ${k.toString('hex')} holds mod revision ${mod}`);
      if (current === null || !name.equals(current)) { current = name; kept = false; }
      if (mod > rev) continue;
      if (mod <= compactRev) {
        // Versions come newest first: only the first one at or below compactRev survives compaction.
        if (kept) continue;
        kept = true;
        if (isTombstoneRecord(v)) continue;
      }
      crc = crc32c(v, crc32c(k, crc));
    }
    // The binding reports finished whenever it hits the limit, so only a short chunk ends the scan.
    if (rows.length < CHUNK * 2) return crc;
    gte = Buffer.concat([rows[rows.length - 2]!, Buffer.from([0])]);
  }
}

/**
 * Maintenance.Hash: CRC-32C over every record in the database in key order
 * (key bytes, then value bytes), except the 'm' meta family. Meta records are
 * this member's bookkeeping (applied index and revision as of its last batch
 * boundary, compact and sweep progress, membership) and differ between
 * members, or between moments, that hold the same data. Unlike HashKV this
 * covers everything physically present: leases, lease attachments, the 'l'
 * and 'r' families, and versions a pending compaction sweep has not removed,
 * so it only matches across members that are quiet and fully swept. It is not
 * a snapshot: writes applied while it runs may or may not be counted (etcd
 * documents Hash as for testing only).
 */
export function hashAll(db: RocksLevel): number {
  const crc = hashRange(db, Buffer.alloc(0), Buffer.from([PREFIX_META]), 0);
  return hashRange(db, Buffer.from([PREFIX_META + 1]), null, crc);
}

/** CRC-32C of every record in [gte, lt) (lt null: to the end), continuing from crc. */
function hashRange(db: RocksLevel, gte: Buffer, lt: Buffer | null, crc: number): number {
  for (;;) {
    const { rows } = db.querySync(lt ? { ...Q, gte, lt, limit: CHUNK } : { ...Q, gte, limit: CHUNK });
    for (let i = 0; i < rows.length; i += 2) crc = crc32c(rows[i + 1]!, crc32c(rows[i]!, crc));
    if (rows.length < CHUNK * 2) return crc;
    gte = Buffer.concat([rows[rows.length - 2]!, Buffer.from([0])]);
  }
}
