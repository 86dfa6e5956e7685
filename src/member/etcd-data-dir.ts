// Starting on an etcd 3.4 data dir, as `etcdctl snapshot restore` writes it
// (member/snap/db, member/wal, member/snap/*.snap) and etcd then starts on it
// (etcd's e2e TestIssue6361 restores with etcdctl and restarts the member on
// the result). etsd takes the keys with their history, the leases, the
// revision and the compaction from member/snap/db, as `etsdutl snapshot
// restore` does; the member and cluster identity come from this start's
// flags, which are the ones the restore was given. etcd's WAL and v2
// snapshot are moved aside, not read: etsd's own WAL starts empty in their
// place, and nothing of etcd's is deleted. Without this, etsd would take
// etcd's WAL file for its own.

import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import type { Logger } from '../common/log.js';
import { importEtcdDb } from '../storage/bbolt/import.js';

/** Where etcd's own files go once imported. */
export const ETCD_FILES_ASIDE = 'etcd-3.4';

/** Imports memberDir/snap/db when memberDir holds etcd's files and no etsd state yet; true if it did. */
export async function adoptEtcdDataDir(memberDir: string, log: Logger): Promise<boolean> {
  const etcdDb = join(memberDir, 'snap', 'db');
  if (!existsSync(etcdDb) || existsSync(join(memberDir, 'db')) || existsSync(join(memberDir, 'ids.json'))) return false;
  // Built beside the final name and renamed into place: a failed import leaves etcd's files as they were.
  const tmp = join(memberDir, 'db.importing');
  rmSync(tmp, { recursive: true, force: true });
  const db = new RocksLevel(tmp, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true });
  let info;
  try {
    info = await importEtcdDb(etcdDb, db);
  } finally {
    await db.close();
  }
  const aside = join(memberDir, ETCD_FILES_ASIDE);
  mkdirSync(aside, { recursive: true });
  for (const d of ['wal', 'snap']) if (existsSync(join(memberDir, d))) renameSync(join(memberDir, d), join(aside, d));
  renameSync(tmp, join(memberDir, 'db'));
  log.warn({ revision: info.revision, compactRevision: info.compactRevision, leases: info.leases, movedTo: aside },
    'imported an etcd 3.4 data dir (keys, leases, revision and compaction of member/snap/db); etcd\'s WAL and snapshots are kept aside, not replayed');
  return true;
}
