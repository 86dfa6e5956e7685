// etsd's MVCC state -> a bbolt file in etcd 3.4's schema (etcd-schema.ts), the
// body of Maintenance.Snapshot. exportEtcdDb runs as a one-off pool task
// (src/workers/pool-tasks.ts, kind 'etcdDb'): it blocks its thread for the
// whole dump, never the main thread, the apply worker or a shard.
//
// Everything comes from ONE RocksDB iterator, which is one point-in-time view:
// the meta records (applied index, revision, compaction), the leases, and the
// history as etcd's key bucket (key-bucket.ts: a compaction whose sweep has
// not finished is applied on the way out, so the file holds what etcd holds
// after the compaction, and scheduledCompactRev = finishedCompactRev), and
// the auth store's record as etcd's auth buckets (auth-buckets.ts).

import type { RocksLevel } from '@nxtedition/rocksdb';
import { PREFIX_LEASE, PREFIX_META, leaseIdFromKey } from '../mvcc/keys.js';
import { META_AUTH, writerStateFromMeta } from '../mvcc/writer.js';
import { decodeAuthState } from '../../auth/state-record.js';
import { INSTALL_MARKER } from '../snapshot/install.js';
import { BboltWriter, type BucketBuilder } from './writer.js';
import { family, keyBucket } from './key-bucket.js';
import { FRESH_AUTH, putAuthBuckets } from './auth-buckets.js';
import {
  B, CLUSTER_VERSION, CLUSTER_VERSION_KEY, META_CONSISTENT_INDEX, META_FINISHED_COMPACT, META_SCHEDULED_COMPACT,
  encodeLease, encodeMember, memberKey, revBytes, u64be, type SchemaMember,
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
    for (const p of keyBucket(it, st.compactRev, Number.MAX_SAFE_INTEGER)) {
      if (p.main > st.rev) throw new Error(`by-revision record ${p.main} above the store revision ${st.rev}`);
      keyB.put(p.revKey, p.kv);
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

    // The auth store as its record stands in the same view (none before the first auth request).
    const authRecord = meta.get(META_AUTH.toString('latin1'));
    const auth = { auth: w.bucket(), users: w.bucket(), roles: w.bucket() };
    putAuthBuckets(authRecord === undefined ? FRESH_AUTH : decodeAuthState(authRecord), auth);

    // Root entries ascend by name.
    done(B.alarm, w.bucket());
    done(B.auth, auth.auth);
    done(B.authRoles, auth.roles);
    done(B.authUsers, auth.users);
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
