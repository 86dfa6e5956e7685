import type { RocksLevel } from '@nxtedition/rocksdb';
import { byRevKey, decodeByRevKey, historyKey, historyKeyEnd, latestKey, MAX_REV } from './keys.js';
import { decodeVersion, modRevisionOf } from './record.js';

const CHUNK = 1000;
const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/**
 * Physical compaction of revisions in (fromRev, toRev]: for every key changed
 * there, keep only its newest version at or below toRev, and drop that one too
 * if it is a tombstone (etcd's rule). Works through the by-revision records in
 * chunks, one RocksDB batch per chunk. Returns the number of versions removed.
 */
export async function compactRange(db: RocksLevel, fromRev: number, toRev: number): Promise<number> {
  let gte = byRevKey(fromRev + 1, 0);
  const lt = byRevKey(Math.min(toRev + 1, MAX_REV), 0);
  let removed = 0;
  for (;;) {
    const { rows } = db.querySync({ ...Q, gte, lt, limit: CHUNK });
    if (rows.length === 0) return removed;
    const batch = db.batch();
    for (let i = 0; i < rows.length; i += 2) {
      const { rev } = decodeByRevKey(rows[i]!);
      const key = rows[i + 1]!;
      // Only the newest version <= toRev of a key does the work for that key.
      const newest = db.querySync({ ...Q, gte: historyKey(key, toRev), lt: historyKeyEnd(key), limit: 1 }).rows;
      if (newest.length === 0) continue;
      const keep = decodeVersion(newest[1]!);
      if (keep.modRevision !== rev) continue;
      // Everything older than the kept version goes.
      const older = db.querySync({ ...Q, gte: historyKey(key, rev - 1), lt: historyKeyEnd(key) }).rows;
      for (let j = 0; j < older.length; j += 2) {
        const ov = decodeVersion(older[j + 1]!);
        batch.del(older[j]!);
        batch.del(byRevKey(ov.modRevision, ov.sub));
        removed++;
      }
      if (keep.tombstone) {
        batch.del(newest[0]!);
        batch.del(byRevKey(keep.modRevision, keep.sub));
        const [latest] = db._getManySync([latestKey(key)], { valueEncoding: 'buffer' });
        if (latest && modRevisionOf(latest) === keep.modRevision) batch.del(latestKey(key));
        removed++;
      }
    }
    await batch.write({ sync: false });
    // The binding reports finished whenever it hits the limit, so only a short chunk ends the scan.
    if (rows.length < CHUNK * 2) return removed;
    gte = Buffer.concat([rows[rows.length - 2]!, Buffer.from([0])]);
  }
}
