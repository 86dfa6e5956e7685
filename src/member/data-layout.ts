// Where a member's files are. etsd's own data dir keeps them in
// <data-dir>/member (ids.json, db/, wal/, snap/). A data dir etsd took over
// from etcd keeps etcd's files untouched (member/wal, member/snap) and etsd's
// beside them in <data-dir>/member/etsd, so the operator can go back to etcd
// with the data as etcd left it (etcd ignores the extra directory).
//
//   member/etsd/ids.json      -> an etcd data dir etsd already took over
//   member/ids.json           -> etsd's own data dir
//   etcd WAL + member/snap/db -> an etcd data dir to take over now
//   otherwise                 -> a new etsd data dir

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../common/config.js';
import { hasEtcdWal } from '../storage/wal/etcd-wal.js';

export interface DataLayout {
  memberDir: string;
  walDir: string;
  /** etcd's files to import before the first start, when the data dir is etcd's. */
  etcd: { walDir: string; dbPath: string } | null;
}

export function resolveLayout(cfg: Config): DataLayout {
  const ownDir = join(cfg.dataDir, 'member');
  const swappedDir = join(ownDir, 'etsd');
  // A separate --wal-dir holds etcd's WAL files itself; etsd's go one level down.
  const swapped = (etcd: DataLayout['etcd']): DataLayout => ({
    memberDir: swappedDir, walDir: cfg.walDir ? join(cfg.walDir, 'etsd') : join(swappedDir, 'wal'), etcd,
  });
  if (existsSync(join(swappedDir, 'ids.json'))) return swapped(null);
  const own: DataLayout = { memberDir: ownDir, walDir: cfg.walDir || join(ownDir, 'wal'), etcd: null };
  if (existsSync(join(ownDir, 'ids.json'))) return own;
  const etcdWal = cfg.walDir || join(ownDir, 'wal');
  const dbPath = join(ownDir, 'snap', 'db');
  if (hasEtcdWal(etcdWal) && existsSync(dbPath)) return swapped({ walDir: etcdWal, dbPath });
  return own;
}
