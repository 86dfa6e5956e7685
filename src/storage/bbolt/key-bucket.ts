// etcd 3.4's key bucket as a view of etsd's MVCC records: the pairs
// rev(main, sub)[+'t'] -> mvccpb.KeyValue in revision order, exactly as a
// real etcd's bbolt holds them after its compaction at `compactRev` has
// finished. Used by the snapshot export (export.ts) and by HashKV
// (../mvcc/hash.ts), so both see etcd's bytes.
//
// Everything is read through ONE RocksDB iterator (one point-in-time view).
// The by-revision family ('r': rev, sub -> user key) drives the walk; each
// version's record is found with a seek of the same iterator into the
// by-key family ('k'). A compaction whose sweep has not finished is applied
// on the way out: below the compact revision only a key's newest version
// survives, and not if it is a tombstone (etcd's keyIndex.compact).

import type { Iterator } from '@nxtedition/rocksdb';
import { PREFIX_BYREV, PREFIX_HISTORY, decodeByRevKey, historyKey } from '../mvcc/keys.js';
import { decodeVersion, isTombstoneRecord, modRevisionOf } from '../mvcc/record.js';
import { encodeKeyValue, revBytes } from './etcd-schema.js';

/** Rows fetched per iterator call. */
const ROWS_PER_READ = 1000;

/** Rows of one key family from `start`, a chunk at a time, until the prefix byte changes. */
export function* family(it: Iterator, prefix: number, start: Buffer = Buffer.from([prefix])): Generator<[Buffer, Buffer]> {
  let from = start;
  for (;;) {
    it._seekSync(from);
    const { rows, finished } = it._nextvSync(ROWS_PER_READ);
    let last: Buffer | null = null;
    for (let i = 0; i < rows.length; i += 2) {
      const k = rows[i]!;
      if (k[0] !== prefix) return;
      last = k;
      yield [k, rows[i + 1]!];
    }
    if (finished || rows.length < ROWS_PER_READ * 2 || last === null) return;
    // The caller may have moved the iterator (seeks into other families): resume after the last row.
    from = Buffer.concat([last, Buffer.from([0])]);
  }
}

/** The first row at or after `key`, or null. */
function seekOne(it: Iterator, key: Buffer): [Buffer, Buffer] | null {
  it._seekSync(key);
  const { rows } = it._nextvSync(1);
  return rows.length >= 2 ? [rows[0]!, rows[1]!] : null;
}

export interface KeyBucketPair {
  /** bbolt key: 8 B main, '_', 8 B sub, then 't' for a tombstone. */
  revKey: Buffer;
  /** mvccpb.KeyValue as etcd marshals it (a tombstone's holds only the key). */
  kv: Buffer;
  main: number;
  sub: number;
  tombstone: boolean;
  userKey: Buffer;
}

/** The key bucket's pairs with main revision <= `upTo`, in bucket (revision) order. */
export function* keyBucket(it: Iterator, compactRev: number, upTo: number): Generator<KeyBucketPair> {
  for (const [rk, userKey] of family(it, PREFIX_BYREV)) {
    const { rev, sub } = decodeByRevKey(rk);
    if (rev > upTo) return;
    const hk = historyKey(userKey, rev);
    // Below the compact revision only a key's newest version survives: seek to it directly.
    const row = seekOne(it, rev <= compactRev ? historyKey(userKey, compactRev) : hk);
    if (rev <= compactRev && (row === null || !row[0].equals(hk))) continue;
    if (row === null || !row[0].equals(hk)) throw new Error(`no history record for revision ${rev}_${sub} of key ${userKey.toString('hex')}`);
    const v = decodeVersion(row[1]);
    if (v.tombstone) {
      if (rev <= compactRev) continue;
      yield {
        revKey: revBytes(rev, sub, true), main: rev, sub, tombstone: true, userKey,
        kv: encodeKeyValue({ key: userKey, createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n }),
      };
    } else {
      yield {
        revKey: revBytes(rev, sub), main: rev, sub, tombstone: false, userKey,
        kv: encodeKeyValue({ key: userKey, createRevision: v.createRevision, modRevision: v.modRevision, version: v.version, value: v.value, lease: v.lease }),
      };
    }
  }
}

/** True when this version is `userKey`'s newest at or below `rev` (it is the key's state at rev). */
export function isNewestAt(it: Iterator, userKey: Buffer, main: number, rev: number): boolean {
  const row = seekOne(it, historyKey(userKey, rev));
  return row !== null && row[0].equals(historyKey(userKey, main));
}

/** True when some key exists (its newest version at or below `rev` is not a tombstone). */
export function anyKeyAliveAt(it: Iterator, rev: number): boolean {
  let current: Buffer | null = null;
  let decided = false;
  for (const [k, v] of family(it, PREFIX_HISTORY)) {
    // 'k' + esc(userKey) + 00 01 + ~rev(6B): all but the last 6 bytes name the key.
    const name = k.subarray(0, k.length - 6);
    if (current === null || !name.equals(current)) { current = name; decided = false; }
    if (decided || modRevisionOf(v) > rev) continue;
    // Versions come newest first: the first at or below rev is the key's state at rev.
    decided = true;
    if (!isTombstoneRecord(v)) return true;
  }
  return false;
}
