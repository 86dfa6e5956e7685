import type { WalRecord } from './record.js';
import { RecordType, isEntryRecord } from './record.js';
import { EntryType } from '../../raft/types.js';

export interface LogEntry { index: number; term: number; data: Buffer; type?: EntryType }

/** Raft's hard state as the WAL keeps it; vote is a 64-bit member id. */
export interface HardState { term: number; vote: bigint; commit: number }

export interface RecoveredLog {
  hardState: HardState;
  /** Entries in index order with no gaps; a later record for an index replaces the suffix from it. */
  entries: LogEntry[];
}

/**
 * HardState record layout, version 2 (25 bytes): u8 version = 2, f64 term,
 * u64 vote, f64 commit (little-endian). Version 1 (24 bytes, written before
 * 2026-12) kept the vote as a double, which rounds 64-bit member ids; it is
 * still read so older WALs recover, its vote as rounded as it was written.
 */
const HARD_STATE_V2 = 2;
const HARD_STATE_V2_BYTES = 25;
const HARD_STATE_V1_BYTES = 24;

export function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.allocUnsafe(HARD_STATE_V2_BYTES);
  b.writeUInt8(HARD_STATE_V2, 0);
  b.writeDoubleLE(hs.term, 1);
  b.writeBigUInt64LE(hs.vote, 9);
  b.writeDoubleLE(hs.commit, 17);
  return b;
}

export function decodeHardState(data: Uint8Array): HardState {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length === HARD_STATE_V1_BYTES) {
    return { term: b.readDoubleLE(0), vote: BigInt(b.readDoubleLE(8)), commit: b.readDoubleLE(16) };
  }
  if (b.length !== HARD_STATE_V2_BYTES || b[0] !== HARD_STATE_V2) {
    throw new RangeError(`WAL hard state record of ${b.length} bytes (version ${b[0]}) has no known layout`);
  }
  return { term: b.readDoubleLE(1), vote: b.readBigUInt64LE(9), commit: b.readDoubleLE(17) };
}

/** Rebuilds the raft log from WAL records in file order (etcd's WAL ReadAll). */
export function recoverLog(records: WalRecord[]): RecoveredLog {
  let hardState: HardState = { term: 0, vote: 0n, commit: 0 };
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
