// Maintenance work that reads the whole store (Hash, HashKV, the etcd-format
// database for Maintenance.Snapshot): run in the one-off pool, so neither
// watch delivery on a shard nor the apply worker waits for a full scan.

import { EtcdError, type GrpcCode } from '../common/errors.js';
import type { OneOffPool } from '../workers/pool.js';
import type { HashResult, PoolError } from '../workers/pool-tasks.js';
import type { EtcdDbInfo } from '../storage/bbolt/export.js';
import type { SchemaMember } from '../storage/bbolt/etcd-schema.js';

export type { HashResult } from '../workers/pool-tasks.js';
import type { AlarmMember } from '../storage/mvcc/alarms.js';
export type { EtcdDbInfo } from '../storage/bbolt/export.js';

export class MaintenanceJobs {
  constructor(private readonly pool: OneOffPool, private readonly dbHandle: bigint, private readonly shared: SharedArrayBuffer) {}

  /** Maintenance.HashKV at `revision` (0: the current one). */
  async hashKV(revision: number): Promise<HashResult> {
    return unwrap(await this.pool.run({ kind: 'hashKV', handle: this.dbHandle, shared: this.shared, revision }));
  }

  /** Maintenance.Snapshot: writes the store as an etcd 3.4 bbolt file at `path` (the caller removes it). */
  etcdDb(path: string, members: SchemaMember[]): Promise<EtcdDbInfo> {
    return this.pool.run({ kind: 'etcdDb', handle: this.dbHandle, path, members });
  }

  /** The raised alarms with the members that raised them, in member id order. */
  alarms(): Promise<AlarmMember[]> {
    return this.pool.run({ kind: 'alarms', handle: this.dbHandle });
  }

  /** Maintenance.Hash: the whole store. */
  async hash(): Promise<HashResult> {
    return unwrap(await this.pool.run({ kind: 'hash', handle: this.dbHandle, shared: this.shared }));
  }
}

function unwrap(r: HashResult | PoolError): HashResult {
  if ('error' in r) throw new EtcdError(r.error.code as GrpcCode, r.error.message);
  return r;
}
