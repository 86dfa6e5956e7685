import type { RocksLevel } from '@nxtedition/rocksdb';
import { Errors } from '../../common/errors.js';
import { LEASE_END, PREFIX_LEASE, attachRange, leaseIdFromKey } from './keys.js';
import type { MvccWriter } from './writer.js';

const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/**
 * Which leases exist and their granted TTLs: the apply-side half of etcd's
 * lessor. Grant and revoke arrive through the raft log; expiry is decided on
 * the main thread and also arrives here as a revoke.
 */
export class LeaseTable {
  private ttls = new Map<bigint, number>();

  static load(db: RocksLevel): LeaseTable {
    const t = new LeaseTable();
    const { rows } = db.querySync({ ...Q, gte: Buffer.from([PREFIX_LEASE]), lt: LEASE_END });
    for (let i = 0; i < rows.length; i += 2) t.ttls.set(leaseIdFromKey(rows[i]!), Number(rows[i + 1]!.readBigInt64BE(0)));
    return t;
  }

  has(id: bigint): boolean { return this.ttls.has(id); }

  all(): { id: bigint; ttl: number }[] {
    return [...this.ttls].map(([id, ttl]) => ({ id, ttl }));
  }

  grant(w: MvccWriter, id: bigint, ttl: number): void {
    if (this.ttls.has(id)) throw Errors.leaseExists();
    this.ttls.set(id, ttl);
    w.putLease(id, ttl);
  }

  /** Deletes every key attached to the lease in one revision (sorted key order, as etcd). The writer must be flushed. */
  revoke(w: MvccWriter, id: bigint): void {
    if (!this.ttls.has(id)) throw Errors.leaseNotFound();
    const keys = attachedKeys(w.db, id);
    w.begin();
    for (const key of keys) {
      const v = w.getLatest(key);
      if (v && !v.tombstone && v.lease === id) w.del(key);
    }
    w.end();
    w.delLease(id);
    this.ttls.delete(id);
  }
}

/** The user keys attached to a lease, in key order. */
export function attachedKeys(db: RocksLevel, id: bigint): Buffer[] {
  const { gte, lt } = attachRange(id);
  const { rows } = db.querySync({ ...Q, gte, lt });
  const out: Buffer[] = [];
  for (let i = 0; i < rows.length; i += 2) out.push(rows[i]!.subarray(9));
  return out;
}
