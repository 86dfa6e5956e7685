// Maintenance.HashKV and Maintenance.Hash over one member's RocksDB.
//
// HashKV is etcd 3.4's (mvcc/kvstore.go hashByRev), bit for bit: CRC-32C
// (Castagnoli) over "key", then the key bucket's pairs (revision key, then
// mvccpb.KeyValue bytes) in revision order, as ../bbolt/key-bucket.ts shows
// etsd's records in etcd's layout. So an etsd member and a real etcd that
// applied the same operations answer the same HashKV, and swept and unswept
// members agree.
//
// Hash stays etsd's own (CRC-32C over etsd's records): etcd's Hash covers the
// whole bbolt file, members and raft indexes included.

import type { RocksLevel } from '@nxtedition/rocksdb';
import { crc32c } from '../../common/crc32c.js';
import { Errors } from '../../common/errors.js';
import { PREFIX_META } from './keys.js';
import { anyKeyAliveAt, isNewestAt, keyBucket } from '../bbolt/key-bucket.js';

const CHUNK = 1000;
const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
const KEY_BUCKET_NAME = Buffer.from('key');

/**
 * The revision HashKV hashes at, or etcd 3.4's error: above the current
 * revision is ErrFutureRev, at or below the compact revision ErrCompacted
 * (etcd 3.4 refuses the compact revision itself). 0 means the current
 * revision. etcd hashes nothing for a negative revision; etsd reads it as 0,
 * as Range does.
 */
export function hashKVRevision(requested: number, currentRev: number, compactRev: number): number {
  if (requested <= 0) return currentRev;
  if (requested <= compactRev) throw Errors.compacted();
  if (requested > currentRev) throw Errors.futureRev();
  return requested;
}

/**
 * etcd's hashByRev(rev) after a compaction at `compactRev`: every key-bucket
 * pair with main revision in (compactRev, rev], and of the pairs at or below
 * compactRev (each key's survivor of the compaction) only those in etcd's
 * keep set, kvindex.Keep(rev): the version each key has at rev, if it exists
 * then. When no key exists at rev the keep set is empty and etcd skips
 * nothing ("don't skip if there isn't one").
 *
 * One iterator, one point-in-time view; pairs above `rev` (writes applied
 * while this runs) are not read. A concurrent sweep of a newer compaction
 * does change the answer: the caller retries if the compact revision moved.
 */
export function hashKV(db: RocksLevel, rev: number, compactRev: number): number {
  if (rev < compactRev) throw new Error(`hashKV at ${rev} below the compact revision ${compactRev}`);
  const it = db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    let crc = crc32c(KEY_BUCKET_NAME);
    let keepEmpty: boolean | null = null; // decided at the first pair at or below compactRev
    for (const p of keyBucket(it, compactRev, rev)) {
      if (p.main <= compactRev) {
        keepEmpty ??= !anyKeyAliveAt(it, rev);
        if (!keepEmpty && (p.tombstone || !isNewestAt(it, p.userKey, p.main, rev))) continue;
      }
      crc = crc32c(p.kv, crc32c(p.revKey, crc));
    }
    return crc;
  } finally {
    // Synchronous like the rest of the hash: the snapshot is released before the retry check.
    it._closeSync();
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
