// The tasks the one-off pool (pool.ts) runs, in a piscina worker thread.
// Each is bounded, CPU- or I/O-heavy, and off every hot path. Tasks that
// read the database open it from the apply worker's handle, as the shards do.

import { RocksLevel } from '@nxtedition/rocksdb';
import { writeSnapshot, type SnapshotInfo } from '../storage/snapshot/create.js';

export type PoolTask = { kind: 'snapshot'; handle: bigint; path: string };
export type PoolResult<T extends PoolTask> = T extends { kind: 'snapshot' } ? SnapshotInfo : never;

async function openShared(handle: bigint): Promise<RocksLevel> {
  const db = new RocksLevel(handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  // Never db.close(): the handle is the apply worker's database, and closing it would close theirs.
  return db;
}

export default async function run(task: PoolTask): Promise<SnapshotInfo> {
  switch (task.kind) {
    case 'snapshot': return writeSnapshot(await openShared(task.handle), task.path);
  }
}
