// Maintenance work that reads the whole store (Hash, HashKV): run in the
// one-off pool, so neither watch delivery on a shard nor the apply worker
// waits for a full scan.

import { EtcdError, type GrpcCode } from '../common/errors.js';
import type { OneOffPool } from '../workers/pool.js';
import type { HashResult, PoolError } from '../workers/pool-tasks.js';

export type { HashResult } from '../workers/pool-tasks.js';

export class MaintenanceJobs {
  constructor(private readonly pool: OneOffPool, private readonly dbHandle: bigint, private readonly shared: SharedArrayBuffer) {}

  /** Maintenance.HashKV at `revision` (0: the current one). */
  async hashKV(revision: number): Promise<HashResult> {
    return unwrap(await this.pool.run({ kind: 'hashKV', handle: this.dbHandle, shared: this.shared, revision }));
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
