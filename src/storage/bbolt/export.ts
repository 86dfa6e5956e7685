// etsd's MVCC state -> a bbolt file in etcd 3.4's schema (etcd-schema.ts), the
// body of Maintenance.Snapshot. exportEtcdDb runs as a one-off pool task
// (src/workers/pool-tasks.ts, kind 'etcdDb'): it blocks its thread for the
// whole dump, never the main thread, the apply worker or a shard.
//
// Everything comes from ONE RocksDB iterator, which is one point-in-time view:
// the meta records (applied index, revision, compaction), the leases, and the
// history. The bbolt key bucket is in revision order, so the by-revision family
// ('r': rev, sub -> user key) drives the walk and each version's record is
// found with a seek of the same iterator into the by-key family ('k').
// A compaction whose sweep has not finished is applied on the way out (only
// the newest version at or below the compact revision of each key is kept,
// and not if it is a tombstone), so the file holds what etcd holds after the
// compaction, and scheduledCompactRev = finishedCompactRev.

import type { Iterator, RocksLevel } from '@nxtedition/rocksdb';
import { PREFIX_BYREV, PREFIX_LEASE, PREFIX_META, historyKey, decodeByRevKey, leaseIdFromKey } from '../mvcc/keys.js';
import { decodeVersion } from '../mvcc/record.js';
import { writerStateFromMeta } from '../mvcc/writer.js';
import { INSTALL_MARKER } from '../snapshot/install.js';
import { BboltWriter, type BucketBuilder } from './writer.js';
import {
  AUTH_REVISION_KEY, B, CLUSTER_VERSION, CLUSTER_VERSION_KEY, META_CONSISTENT_INDEX, META_FINISHED_COMPACT, META_SCHEDULED_COMPACT,
  encodeKeyValue, encodeLease, encodeMember, memberKey, revBytes, u64be, type SchemaMember,
} from './etcd-schema.js';

export interface EtcdDbInfo {
  /** File size (pages in use * page size). */
  bytes: number;
  revision: number;
  compactRevision: number;
  consistentIndex: number;
  /** Pairs in the key bucket. */
  revisions: number;
  leases: number;
}

/** Rows fetched per iterator call. */
const ROWS_PER_READ = 1000;

/** Rows of one key family from `start`, a chunk at a time, until the prefix byte changes. */
function* family(it: Iterator, prefix: number, start: Buffer = Buffer.from([prefix])): Generator<[Buffer, Buffer]> {
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

/** Writes the bbolt file of db's current state to `path` (not synced to a final name: the caller owns the file). */
export async function exportEtcdDb(db: RocksLevel, path: string, members: SchemaMember[]): Promise<EtcdDbInfo> {
  const it = db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const w = new BboltWriter(path);
  try {
    const meta = new Map<string, Buffer>();
    for (const [k, v] of family(it, PREFIX_META)) meta.set(k.toString('latin1'), v);
    if (meta.has(INSTALL_MARKER.toString('latin1'))) throw new Error('the database is half-way through installing a snapshot');
    const st = writerStateFromMeta((k) => meta.get(k.toString('latin1')));
    const roots: { name: Buffer; root: number }[] = [];
    const done = (name: Buffer, b: BucketBuilder) => roots.push({ name, root: b.finish() });

    // Lease ids are stored as u64 BE in both layouts, so RocksDB order is bbolt order.
    const lease = w.bucket();
    for (const [k, v] of family(it, PREFIX_LEASE)) {
      const id = leaseIdFromKey(k);
      lease.put(u64be(id), encodeLease(id, Number(v.readBigInt64BE(0))));
    }

    const keyB = w.bucket();
    for (const [rk, userKey] of family(it, PREFIX_BYREV)) {
      const { rev, sub } = decodeByRevKey(rk);
      if (rev > st.rev) throw new Error(`by-revision record ${rev} above the store revision ${st.rev}`);
      const hk = historyKey(userKey, rev);
      // Below the compact revision only a key's newest version survives: seek to it directly.
      const row = seekOne(it, rev <= st.compactRev ? historyKey(userKey, st.compactRev) : hk);
      if (rev <= st.compactRev && (row === null || !row[0].equals(hk))) continue;
      if (row === null || !row[0].equals(hk)) throw new Error(`no history record for revision ${rev}_${sub} of key ${userKey.toString('hex')}`);
      const v = decodeVersion(row[1]);
      if (v.tombstone) {
        if (rev <= st.compactRev) continue;
        keyB.put(revBytes(rev, sub, true), encodeKeyValue({ key: userKey, createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n }));
      } else {
        keyB.put(revBytes(rev, sub), encodeKeyValue({
          key: userKey, createRevision: v.createRevision, modRevision: v.modRevision, version: v.version, value: v.value, lease: v.lease,
        }));
      }
    }
    const revisions = keyB.count;
    const leases = lease.count;

    const metaB = w.bucket();
    metaB.put(META_CONSISTENT_INDEX, u64be(st.appliedIndex));
    if (st.compactRev > 0) {
      metaB.put(META_FINISHED_COMPACT, revBytes(st.compactRev, 0));
      metaB.put(META_SCHEDULED_COMPACT, revBytes(st.compactRev, 0));
    }
    const membersB = w.bucket();
    for (const m of [...members].sort((a, b) => Buffer.compare(memberKey(a.id), memberKey(b.id)))) membersB.put(memberKey(m.id), encodeMember(m));
    const cluster = w.bucket();
    cluster.put(CLUSTER_VERSION_KEY, Buffer.from(CLUSTER_VERSION));

    // etsd keeps no auth state in the store yet: the auth bucket of a fresh etcd (revision 1, disabled).
    const auth = w.bucket();
    auth.put(AUTH_REVISION_KEY, u64be(1));

    // Root entries ascend by name.
    done(B.alarm, w.bucket());
    done(B.auth, auth);
    done(B.authRoles, w.bucket());
    done(B.authUsers, w.bucket());
    done(B.cluster, cluster);
    done(B.key, keyB);
    done(B.lease, lease);
    done(B.members, membersB);
    done(B.membersRemoved, w.bucket());
    done(B.meta, metaB);
    const bytes = w.finish(roots);
    return { bytes, revision: st.rev, compactRevision: st.compactRev, consistentIndex: st.appliedIndex, revisions, leases };
  } finally {
    w.close();
    await it.close();
  }
}
