import type { WalRecord } from './record.js';
import { RecordType, isEntryRecord } from './record.js';
import { EntryType } from '../../raft/types.js';

export interface LogEntry { index: number; term: number; data: Buffer; type?: EntryType }
export interface HardState { term: number; vote: number; commit: number }

export interface RecoveredLog {
  hardState: HardState;
  /** Entries in index order with no gaps; a later record for an index replaces the suffix from it. */
  entries: LogEntry[];
}

export function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.allocUnsafe(24);
  b.writeDoubleLE(hs.term, 0);
  b.writeDoubleLE(hs.vote, 8);
  b.writeDoubleLE(hs.commit, 16);
  return b;
}

export function decodeHardState(data: Uint8Array): HardState {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { term: b.readDoubleLE(0), vote: b.readDoubleLE(8), commit: b.readDoubleLE(16) };
}

/** Rebuilds the raft log from WAL records in file order (etcd's WAL ReadAll). */
export function recoverLog(records: WalRecord[]): RecoveredLog {
  let hardState: HardState = { term: 0, vote: 0, commit: 0 };
  const entries: LogEntry[] = [];
  for (const r of records) {
    if (r.type === RecordType.HardState) {
      hardState = decodeHardState(r.data);
    } else if (isEntryRecord(r.type)) {
      const first = entries.length > 0 ? entries[0]!.index : r.index;
      const pos = r.index - first;
      if (pos < 0) { entries.length = 0; } // an overwrite below everything kept
      else if (pos < entries.length) entries.length = pos; // raft truncated a conflicting suffix
      else if (pos > entries.length) {
        // A gap means earlier segments were released: keep only the newer run.
        entries.length = 0;
      }
      const e: LogEntry = { index: r.index, term: r.term, data: Buffer.from(r.data) };
      if (r.type === RecordType.ConfChangeEntry) e.type = EntryType.ConfChange;
      entries.push(e);
    }
  }
  return { hardState, entries };
}
