import type { RocksLevel } from '@nxtedition/rocksdb';
import { byRevKey, decodeByRevKey, historyKey, historyKeyEnd, latestKey, MAX_REV } from './keys.js';
import { decodeVersion, modRevisionOf } from './record.js';
import { ReusableBatch } from '../write-batch.js';

const CHUNK = 1000;
/** Keys whose newest version <= toRev the sweep remembers (cleared when full). */
const NEWEST_CACHE_MAX = 200_000;
const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/**
 * Physical compaction of revisions in (fromRev, toRev], a chunk at a time: for
 * every key changed there, keep only its newest version at or below toRev, and
 * drop that one too if it is a tombstone (etcd's rule). Works through the
 * by-revision records in order, one RocksDB batch per chunk, and remembers
 * where it stopped, so the caller can apply writes between chunks (etcd
 * sweeps in batches with pauses too).
 *
 * Between two chunks the caller may write anything, with one rule: each
 * step() must see every earlier write of the database and no write may be in
 * flight meanwhile (the chunk reads a key's records, then deletes by what it
 * read). Writes after the compaction only add versions above toRev, which the
 * sweep never removes; a key recreated after a tombstone it removes keeps its
 * new 'l' record (only an 'l' record still at the tombstone's revision goes).
 */
export class Sweep {
  private cursor: Buffer;
  private removedCount = 0;
  /**
   * Each key's newest revision <= toRev (0: none), once looked up: a key written n times in the
   * range has n by-revision records, and only the first needs the seek. Stays true between steps
   * (later writes land above toRev) until extend() moves toRev.
   */
  private readonly newest = new Map<string, number>();
  private readonly batch: ReusableBatch;

  constructor(private readonly db: RocksLevel, fromRev: number, private upTo: number) {
    this.cursor = byRevKey(fromRev + 1, 0);
    this.batch = new ReusableBatch(db);
  }

  /** The revision this sweep compacts up to. */
  get toRev(): number { return this.upTo; }
  /** Versions removed so far. */
  get removed(): number { return this.removedCount; }

  /**
   * A newer compaction at `toRev` (>= the current one): sweep on up to it. The
   * records already passed need no second look: a key with a version in
   * (old, new toRev] is found again by that version's by-revision record.
   */
  extend(toRev: number): void {
    if (toRev < this.upTo) throw new Error(`a sweep to ${this.upTo} cannot shrink to ${toRev}`);
    if (toRev !== this.upTo) this.newest.clear();
    this.upTo = toRev;
  }

  /** Sweeps up to `limit` by-revision records; true when nothing is left up to toRev. */
  async step(limit = CHUNK): Promise<boolean> {
    const { db } = this;
    const toRev = this.upTo;
    const lt = byRevKey(Math.min(toRev + 1, MAX_REV), 0);
    const { rows } = db.querySync({ ...Q, gte: this.cursor, lt, limit });
    if (rows.length === 0) return true;
    const batch = this.batch;
    for (let i = 0; i < rows.length; i += 2) {
      const { rev } = decodeByRevKey(rows[i]!);
      const key = rows[i + 1]!;
      // Only the newest version <= toRev of a key does the work for that key.
      const name = key.toString('latin1');
      const known = this.newest.get(name);
      if (known !== undefined && known !== rev) continue;
      const newest = db.querySync({ ...Q, gte: historyKey(key, toRev), lt: historyKeyEnd(key), limit: 1 }).rows;
      const keep = newest.length === 0 ? null : decodeVersion(newest[1]!);
      if (this.newest.size >= NEWEST_CACHE_MAX) this.newest.clear();
      this.newest.set(name, keep === null ? 0 : keep.modRevision);
      if (keep === null || keep.modRevision !== rev) continue;
      // Everything older than the kept version goes.
      const older = db.querySync({ ...Q, gte: historyKey(key, rev - 1), lt: historyKeyEnd(key) }).rows;
      for (let j = 0; j < older.length; j += 2) {
        const ov = decodeVersion(older[j + 1]!);
        batch.del(older[j]!);
        batch.del(byRevKey(ov.modRevision, ov.sub));
        this.removedCount++;
      }
      if (keep.tombstone) {
        batch.del(newest[0]!);
        batch.del(byRevKey(keep.modRevision, keep.sub));
        const [latest] = db._getManySync([latestKey(key)], { valueEncoding: 'buffer' });
        if (latest && modRevisionOf(latest) === keep.modRevision) batch.del(latestKey(key));
        this.removedCount++;
      }
    }
    batch.write(false);
    this.cursor = Buffer.concat([rows[rows.length - 2]!, Buffer.from([0])]);
    // The binding reports finished whenever it hits the limit, so only a short chunk ends the scan.
    return rows.length < limit * 2;
  }
}

/** The whole sweep of (fromRev, toRev] at once (boot, snapshot install, tests). Returns the number of versions removed. */
export async function compactRange(db: RocksLevel, fromRev: number, toRev: number): Promise<number> {
  const s = new Sweep(db, fromRev, toRev);
  while (!(await s.step())) { /* next chunk */ }
  return s.removed;
}
