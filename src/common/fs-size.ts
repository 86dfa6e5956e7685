import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes of the regular files directly in dir (RocksDB's files: etcd_mvcc_db_total_size_in_bytes, Status dbSize). */
export function dirBytes(dir: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      const st = statSync(join(dir, f));
      if (st.isFile()) n += st.size;
    }
  } catch (err) {
    // The directory may be mid-compaction (a file vanished between readdir and stat): count what we saw.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return n;
}
