// Replacing the whole database with a snapshot file, and opening the store's
// in-memory state (the same way at boot and after an install).
//
// The install is not one atomic write (a snapshot may be far larger than a
// WriteBatch should be), so a marker record brackets it: written, synced,
// before the first delete; removed in the last, synced batch. A member that
// crashes in between finds the marker at boot and installs the same file again.

import { FAILPOINTS_ARMED, failpoint } from '../../common/failpoints.js';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Applier } from '../mvcc/applier.js';
import { compactRange } from '../mvcc/compactor.js';
import { metaKey } from '../mvcc/keys.js';
import { LeaseTable } from '../mvcc/leases.js';
import { MvccWriter } from '../mvcc/writer.js';
import { ReusableBatch } from '../write-batch.js';
import { readSnapshotChunks, verifySnapshotFile, type SnapshotSummary } from './format.js';

/** Present only while an install is under way; its value is the snapshot file's path. */
export const INSTALL_MARKER = metaKey('snapshot_install');

/** Bytes (keys + values) per WriteBatch while deleting and writing. */
const BATCH_BYTES = 4 * 1024 * 1024;
const ROWS_PER_READ = 1000;

/** The apply worker's in-memory view of the store: rebuilt from RocksDB at boot and after an install. */
export interface StoreState {
  writer: MvccWriter;
  leases: LeaseTable;
  applier: Applier;
}

/** Builds the in-memory state from what RocksDB holds, finishing a compaction a crash cut short. */
export async function loadStore(db: RocksLevel): Promise<StoreState> {
  const writer = new MvccWriter(db);
  const leases = LeaseTable.load(db);
  if (writer.state.compactDoneRev < writer.state.compactRev) {
    await compactRange(db, writer.state.compactDoneRev, writer.state.compactRev);
    await writer.markCompactionDone(writer.state.compactRev);
  }
  return { writer, leases, applier: new Applier(writer, (id) => leases.has(id)) };
}

/** loadStore, after finishing an install a crash interrupted. */
export async function openStore(db: RocksLevel): Promise<StoreState> {
  const [marker] = db._getManySync([INSTALL_MARKER], { valueEncoding: 'buffer' });
  if (!marker) return loadStore(db);
  const file = marker.toString('utf8');
  try {
    return (await installSnapshot(db, file)).store;
  } catch (err) {
    throw new Error(`the database is half-way through installing snapshot ${file} and it cannot be installed again: ${String(err)}`);
  }
}

export interface InstallHooks {
  /**
   * Called after the whole file verified and before the database is touched;
   * throwing here leaves the database unchanged.
   */
  beforeWrite?(summary: SnapshotSummary): void | Promise<void>;
}

/**
 * Replaces every record of db with the pairs of the snapshot file and returns
 * the new in-memory state. The file is verified completely first: a damaged
 * file throws SnapshotFormatError with the database unchanged. An error after
 * writing began leaves the marker behind (openStore resumes).
 */
export async function installSnapshot(
  db: RocksLevel, file: string, hooks: InstallHooks = {},
): Promise<{ store: StoreState; summary: SnapshotSummary }> {
  const summary = verifySnapshotFile(file);
  await hooks.beforeWrite?.(summary);

  await db.batch().put(INSTALL_MARKER, Buffer.from(file, 'utf8')).write({ sync: true });
  if (FAILPOINTS_ARMED && failpoint('snapshotInstallAfterMarker')) throw new Error('failpoint snapshotInstallAfterMarker: injected error');
  await deleteAllBut(db, INSTALL_MARKER);

  // The file was verified, but it is read again: checked again rather than trusting the disk twice.
  const chunks = readSnapshotChunks(file);
  const b = new ReusableBatch(db);
  let r = chunks.next();
  try {
    for (; !r.done; r = chunks.next()) {
      const { keys, values } = r.value;
      // put() copies into the WriteBatch: the reader's views may be reused after this loop.
      for (let i = 0; i < keys.length; i++) {
        if (keys[i]!.equals(INSTALL_MARKER)) continue;
        b.put(keys[i]!, values[i]!);
      }
      if (b.byteLength >= BATCH_BYTES) b.write(false);
    }
  } finally {
    if (!r.done) chunks.return(summary); // closes the file
  }
  if (r.value.pairs !== summary.pairs || r.value.header.appliedIndex !== summary.header.appliedIndex) {
    throw new Error(`snapshot ${file} changed while it was installed`);
  }
  b.del(INSTALL_MARKER);
  // Synced: RocksDB's WAL sync covers every unsynced write before it.
  b.write(true);

  const store = await loadStore(db);
  const st = store.writer.state;
  if (st.appliedIndex !== summary.header.appliedIndex || st.rev !== summary.header.revision) {
    throw new Error(`installed state (index ${st.appliedIndex}, rev ${st.rev}) differs from the snapshot header (index ${summary.header.appliedIndex}, rev ${summary.header.revision})`);
  }
  return { store, summary };
}

/** Deletes every record (every key family) except `keep`, in bounded batches. */
async function deleteAllBut(db: RocksLevel, keep: Buffer): Promise<void> {
  const it = db.iterator({ keyEncoding: 'buffer', values: false });
  const b = new ReusableBatch(db);
  try {
    for (;;) {
      const { rows, finished } = it._nextvSync(ROWS_PER_READ);
      for (let i = 0; i < rows.length; i += 2) if (!rows[i]!.equals(keep)) b.del(rows[i]!);
      if (b.length > 0) b.write(false);
      if (finished) break;
    }
  } finally {
    await it.close();
  }
}
