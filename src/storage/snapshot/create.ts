// Making a snapshot file from the live database. writeSnapshot runs in the
// one-off pool (src/workers/pool.ts), never on the main thread or the apply worker.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { PREFIX_META } from '../mvcc/keys.js';
import { writerStateFromMeta } from '../mvcc/writer.js';
import { SnapshotFileWriter } from './format.js';
import { INSTALL_MARKER } from './install.js';
import { fsyncDir } from '../../common/fsync-dir.js';

export interface SnapshotInfo {
  index: number;
  term: number;
  rev: number;
  compactRev: number;
  /** Size of the file. */
  bytes: number;
  pairs: number;
}

/** Entries fetched from the iterator per call. */
const ROWS_PER_READ = 1000;

/**
 * Dumps every pair of db to `file` (through file + '.tmp', synced, renamed).
 * One iterator is one point-in-time view, and the header's applied index and
 * revisions are read through that same iterator, so they describe exactly the
 * pairs written even while the apply worker keeps writing.
 */
export async function writeSnapshot(db: RocksLevel, file: string): Promise<SnapshotInfo> {
  const it = db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const tmp = file + '.tmp';
  try {
    const meta = new Map<string, Buffer>();
    it._seekSync(Buffer.from([PREFIX_META]));
    for (let done = false; !done;) {
      const { rows, finished } = it._nextvSync(ROWS_PER_READ);
      for (let i = 0; i < rows.length && !done; i += 2) {
        if (rows[i]![0] !== PREFIX_META) done = true;
        else meta.set(rows[i]!.toString('latin1'), rows[i + 1]!);
      }
      done ||= finished;
    }
    if (meta.has(INSTALL_MARKER.toString('latin1'))) throw new Error('the database is half-way through installing a snapshot');
    const st = writerStateFromMeta((k) => meta.get(k.toString('latin1')));

    it._seekSync(Buffer.from([0]));
    const w = new SnapshotFileWriter(tmp, {
      appliedIndex: st.appliedIndex, appliedTerm: st.appliedTerm, revision: st.rev, compactRevision: st.compactRev,
    });
    let sum: { pairs: number; bytes: number };
    try {
      for (;;) {
        const { rows, finished } = it._nextvSync(ROWS_PER_READ);
        for (let i = 0; i < rows.length; i += 2) w.add(rows[i]!, rows[i + 1]!);
        if (finished) break;
      }
      sum = w.finish();
    } catch (err) {
      w.abort();
      throw err;
    }
    fs.renameSync(tmp, file);
    fsyncDir(path.dirname(file));
    return { index: st.appliedIndex, term: st.appliedTerm, rev: st.rev, compactRev: st.compactRev, bytes: sum.bytes, pairs: sum.pairs };
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  } finally {
    await it.close();
  }
}

