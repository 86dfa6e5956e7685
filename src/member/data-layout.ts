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

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
  const etcdWal = cfg.walDir || join(ownDir, 'wal');
  if (existsSync(join(swappedDir, 'ids.json'))) {
    checkEtcdUntouched(swappedDir, etcdWal, join(ownDir, 'snap'));
    return swapped(null);
  }
  const own: DataLayout = { memberDir: ownDir, walDir: cfg.walDir || join(ownDir, 'wal'), etcd: null };
  if (existsSync(join(ownDir, 'ids.json'))) return own;
  const dbPath = join(ownDir, 'snap', 'db');
  if (hasEtcdWal(etcdWal) && existsSync(dbPath)) return swapped({ walDir: etcdWal, dbPath });
  return own;
}

/** Where the takeover records etcd's files as it found them. */
export const ETCD_FILES_RECORD = 'etcd-files.json';

/** Names, sizes and modification times of etcd's WAL and snap files: etsd never changes them, etcd does whenever it runs. */
export function etcdFilesFingerprint(etcdWalDir: string, etcdSnapDir: string): string[] {
  const out: string[] = [];
  for (const [label, dir] of [['wal', etcdWalDir], ['snap', etcdSnapDir]] as const) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const st = statSync(join(dir, name));
      if (st.isFile()) out.push(`${label}/${name} ${st.size} ${st.mtimeMs}`);
    }
  }
  return out;
}

/**
 * An etcd started again on the data dir after the takeover (the way back) wrote to
 * its own files; etsd's copy is then stale, and serving it would silently drop what
 * etcd took since. Refused: the operator removes member/etsd to take over anew.
 */
function checkEtcdUntouched(swappedDir: string, etcdWalDir: string, etcdSnapDir: string): void {
  const record = join(swappedDir, ETCD_FILES_RECORD);
  if (!existsSync(record)) return;
  const then = JSON.parse(readFileSync(record, 'utf8')) as string[];
  const now = etcdFilesFingerprint(etcdWalDir, etcdSnapDir);
  if (then.join('\n') !== now.join('\n')) {
    throw new Error(`etcd's files in this data dir changed after etsd took it over (etcd ran on it again?): etsd's copy in ${swappedDir} is stale. `
      + `Remove ${swappedDir} to take the data dir over again from etcd's files (writes made through etsd since are then lost)`);
  }
}
