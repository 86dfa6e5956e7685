import type { RocksLevel } from '@nxtedition/rocksdb';
import type { KeyValue } from '../../proto/kv-types.js';
import {
  HISTORY_END, LATEST_END, decodeHistoryKey, historyKey, historyKeyEnd, historyScanStart,
  isFromKey, latestKey, userKeyFromLatest,
} from './keys.js';
import { decodeVersion, type StoredVersion } from './record.js';

const CHUNK = 1000;
const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

export function toKeyValue(key: Buffer, v: StoredVersion): KeyValue {
  return { key, createRevision: v.createRevision, modRevision: v.modRevision, version: v.version, value: v.value, lease: v.lease };
}

/** A source of the latest state per key: RocksDB alone, or RocksDB plus the apply worker's unwritten batch. */
export interface LatestSource {
  getLatest(key: Buffer): StoredVersion | null;
  scanLatest(start: Buffer, end: Buffer | null, fn: (key: Buffer, v: StoredVersion) => void): void;
}

/** Reads straight from RocksDB (shard workers; the apply worker wraps it with its overlay). */
export class DbReader implements LatestSource {
  constructor(readonly db: RocksLevel) {}

  getLatest(key: Buffer): StoredVersion | null {
    const [raw] = this.db._getManySync([latestKey(key)], { valueEncoding: 'buffer' });
    return raw ? decodeVersion(raw) : null;
  }

  /** getLatest of several keys in one RocksDB MultiGet (one call's overhead instead of one per key). */
  getLatestMany(keys: Buffer[]): (StoredVersion | null)[] {
    const raws = this.db._getManySync(keys.map(latestKey), { valueEncoding: 'buffer' });
    return raws.map((raw) => (raw ? decodeVersion(raw) : null));
  }

  /** Visits every 'l' record (live and tombstone) with start <= key < end (end null: no bound), in key order. */
  scanLatest(start: Buffer, end: Buffer | null, fn: (key: Buffer, v: StoredVersion) => void): void {
    let gte: Buffer = latestKey(start);
    const lt = end ? latestKey(end) : LATEST_END;
    for (;;) {
      const { rows } = this.db.querySync({ ...Q, gte, lt, limit: CHUNK });
      for (let i = 0; i < rows.length; i += 2) fn(userKeyFromLatest(rows[i]!), decodeVersion(rows[i + 1]!));
      // The binding reports finished whenever it hits the limit, so only a short chunk ends the scan.
      if (rows.length < CHUNK * 2) return;
      const last = rows[rows.length - 2]!;
      gte = Buffer.concat([last, Buffer.from([0])]);
    }
  }

  /** The version of key visible at rev (newest with mod <= rev), or null if absent/deleted. */
  getAt(key: Buffer, rev: number): StoredVersion | null {
    const { rows } = this.db.querySync({ ...Q, gte: historyKey(key, rev), lt: historyKeyEnd(key), limit: 1 });
    if (rows.length === 0) return null;
    const v = decodeVersion(rows[1]!);
    return v.tombstone ? null : v;
  }

  /** Every live key in [start, end) as of a past revision, from the history records. */
  scanAt(start: Buffer, end: Buffer | null, rev: number, fn: (key: Buffer, v: StoredVersion) => void): void {
    let gte = historyScanStart(start);
    const lt = end ? historyScanStart(end) : HISTORY_END;
    let current: Buffer | null = null;
    let done = false; // found the visible version of `current`
    for (;;) {
      const { rows } = this.db.querySync({ ...Q, gte, lt, limit: CHUNK });
      for (let i = 0; i < rows.length; i += 2) {
        const hk = decodeHistoryKey(rows[i]!);
        if (current === null || !hk.key.equals(current)) { current = hk.key; done = false; }
        if (done || hk.rev > rev) continue;
        done = true;
        const v = decodeVersion(rows[i + 1]!);
        if (!v.tombstone) fn(hk.key, v);
      }
      // The binding reports finished whenever it hits the limit, so only a short chunk ends the scan.
      if (rows.length < CHUNK * 2) return;
      gte = Buffer.concat([rows[rows.length - 2]!, Buffer.from([0])]);
    }
  }
}

export interface RangeResult {
  /** Matching keys in key order, at most `limit` when limit > 0. */
  kvs: KeyValue[];
  /** Every live key in the range at the revision, whatever the limit. */
  count: number;
}

/**
 * etcd's mvcc range at revision `rev`. `latestRev` is the revision the latest
 * source reflects (records newer than `rev` there came from a concurrent write
 * and are resolved from history).
 */
export function rangeKeys(
  src: LatestSource, hist: DbReader, key: Buffer, rangeEnd: Buffer, rev: number, latestRev: number,
  limit: number, countOnly: boolean,
): RangeResult {
  const kvs: KeyValue[] = [];
  let count = 0;
  const take = (k: Buffer, v: StoredVersion) => {
    count++;
    if (!countOnly && (limit <= 0 || kvs.length < limit)) kvs.push(toKeyValue(k, v));
  };
  if (rangeEnd.length === 0) {
    const v = rev >= latestRev ? resolveLatest(src, hist, key, rev) : hist.getAt(key, rev);
    if (v) take(key, v);
    return { kvs, count };
  }
  const end = isFromKey(rangeEnd) ? null : rangeEnd;
  if (end && Buffer.compare(key, end) >= 0) return { kvs, count };
  if (rev >= latestRev) {
    src.scanLatest(key, end, (k, v) => {
      const vis = v.modRevision <= rev ? (v.tombstone ? null : v) : hist.getAt(k, rev);
      if (vis) take(k, vis);
    });
  } else {
    hist.scanAt(key, end, rev, take);
  }
  return { kvs, count };
}

function resolveLatest(src: LatestSource, hist: DbReader, key: Buffer, rev: number): StoredVersion | null {
  const v = src.getLatest(key);
  if (!v) return null;
  if (v.modRevision <= rev) return v.tombstone ? null : v;
  return hist.getAt(key, rev);
}
