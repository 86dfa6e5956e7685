// The tasks the one-off pool (pool.ts) runs, in a piscina worker thread.
// Each is bounded, CPU- or I/O-heavy, and off every hot path. Tasks that
// read the database open it from the apply worker's handle, as the shards do,
// and read the published revisions from the shared state words.
//
// Errors cross back as values (an Error loses its class through the pool):
// an etcd error as { error: { code, message } }.

import { RocksLevel } from '@nxtedition/rocksdb';
import bcrypt from 'bcryptjs';
import { EtcdError, Errors } from '../common/errors.js';
import { hashAll, hashKV, hashKVRevision } from '../storage/mvcc/hash.js';
import { writeSnapshot, type SnapshotInfo } from '../storage/snapshot/create.js';
import { exportEtcdDb, type EtcdDbInfo } from '../storage/bbolt/export.js';
import type { SchemaMember } from '../storage/bbolt/etcd-schema.js';
import { AlarmStore, AlarmType, type AlarmMember } from '../storage/mvcc/alarms.js';
import { Shared, loadShared, sharedState } from './protocol/shared-state.js';

/** Maintenance.Hash / HashKV's numbers (compactRevision and hashRevision as HashKV's). */
export interface HashResult { hash: number; compactRevision: number; hashRevision: number; currentRevision: number }

export type PoolTask =
  | { kind: 'snapshot'; handle: bigint; path: string }
  /** Maintenance.Snapshot's body: the store as an etcd 3.4 bbolt file at `path`, from one point-in-time view. */
  | { kind: 'etcdDb'; handle: bigint; path: string; members: SchemaMember[] }
  | { kind: 'hashKV'; handle: bigint; shared: SharedArrayBuffer; revision: number }
  | { kind: 'hash'; handle: bigint; shared: SharedArrayBuffer }
  /** The raised alarms with their members (Maintenance.Status errors), as the apply worker stored them. */
  | { kind: 'alarms'; handle: bigint }
  /** A password's bcrypt hash (UserAdd, UserChangePassword); cost already checked (auth/bcrypt-cost.ts). */
  | { kind: 'bcryptHash'; password: string; cost: number }
  /** Authenticate's password check against the stored hash. */
  | { kind: 'bcryptCompare'; password: string; hash: string };

export type PoolError = { error: { code: number; message: string } };
export type PoolResult<T extends PoolTask> =
  T extends { kind: 'snapshot' } ? SnapshotInfo
    : T extends { kind: 'etcdDb' } ? EtcdDbInfo
    : T extends { kind: 'alarms' } ? AlarmMember[]
    : T extends { kind: 'bcryptHash' } ? string
      : T extends { kind: 'bcryptCompare' } ? boolean
        : HashResult | PoolError;

async function openShared(handle: bigint): Promise<RocksLevel> {
  const db = new RocksLevel(handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  // Never db.close(): the handle is the apply worker's database, and closing it would close theirs.
  return db;
}

/** A compaction published while a hash runs may sweep records the hash counted: hash again. */
const HASH_ATTEMPTS = 5;

/**
 * Runs a hash against the published state. Like a shard's reads, it never
 * answers from storage a snapshot install is replacing (the storage epoch is
 * odd meanwhile, or changes under it): clients get "request timed out" and retry.
 */
function hashAgainst(shared: BigInt64Array, compute: (currentRevision: number, compactRevision: number) => HashResult): HashResult {
  for (let attempt = 1; ; attempt++) {
    const epoch = loadShared(shared, Shared.StorageEpoch);
    if (epoch % 2 === 1) throw Errors.timeout();
    const compactRevision = loadShared(shared, Shared.CompactRevision);
    const r = compute(loadShared(shared, Shared.Revision), compactRevision);
    if (loadShared(shared, Shared.StorageEpoch) !== epoch) throw Errors.timeout();
    if (loadShared(shared, Shared.CompactRevision) === compactRevision) return r;
    if (attempt === HASH_ATTEMPTS) throw Errors.timeout();
  }
}

export default async function run(task: PoolTask): Promise<SnapshotInfo | EtcdDbInfo | HashResult | PoolError | AlarmMember[] | string | boolean> {
  switch (task.kind) {
    // Synchronous on purpose: this thread has nothing else to do meanwhile.
    case 'bcryptHash': return bcrypt.hashSync(task.password, bcrypt.genSaltSync(task.cost));
    case 'bcryptCompare': return bcrypt.compareSync(task.password, task.hash);
    case 'snapshot': return writeSnapshot(await openShared(task.handle), task.path);
    case 'etcdDb': return exportEtcdDb(await openShared(task.handle), task.path, task.members);
    case 'alarms': return AlarmStore.load(await openShared(task.handle)).get(AlarmType.NONE);
    case 'hashKV':
    case 'hash': {
      const db = await openShared(task.handle);
      const shared = sharedState(task.shared);
      try {
        if (task.kind === 'hash') {
          return hashAgainst(shared, (currentRevision, compactRevision) =>
            ({ hash: hashAll(db), compactRevision, hashRevision: currentRevision, currentRevision }));
        }
        return hashAgainst(shared, (currentRevision, compactRevision) => {
          const hashRevision = hashKVRevision(task.revision, currentRevision, compactRevision);
          return { hash: hashKV(db, hashRevision, compactRevision), compactRevision, hashRevision, currentRevision };
        });
      } catch (err) {
        if (err instanceof EtcdError) return { error: { code: err.code, message: err.message } };
        throw err;
      }
    }
  }
}
