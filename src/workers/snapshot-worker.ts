// A short-lived worker that dumps the apply worker's RocksDB (opened from its
// handle, as the shards do) to a snapshot file, then ends. It only reads.

import { parentPort, workerData } from 'node:worker_threads';
import { RocksLevel } from '@nxtedition/rocksdb';
import { writeSnapshot, type SnapshotWorkerData, type SnapshotWorkerMessage } from '../storage/snapshot/create.js';

async function main(): Promise<void> {
  const d = workerData as SnapshotWorkerData;
  const db = new RocksLevel(d.handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  // Never db.close(): the handle is the apply worker's database, shared, and closing it would close theirs.
  let msg: SnapshotWorkerMessage;
  try {
    msg = { type: 'done', ...(await writeSnapshot(db, d.path)) };
  } catch (err) {
    msg = { type: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(msg);
}

main().catch((err: unknown) => {
  parentPort!.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies SnapshotWorkerMessage);
});
