// The apply worker's in-ring (main -> apply): committed raft entries in log
// order, and control records.
//
//   f64 index | f64 term | entry data (entry.ts)
//   f64 APPLY_CONTROL_INDEX | f64 0 | u8 ApplyControl | ...   (control records)

import type { Ring } from '../ring/ring.js';

export const APPLY_RECORD_HEADER_BYTES = 16;

/** Apply-ring records with this index are control records, not raft entries. */
export const APPLY_CONTROL_INDEX = -1;

export const enum ApplyControl {
  /** data = u8 1 | utf8 path of a snapshot file: replace the whole state with it. */
  InstallSnapshot = 1,
}

export type ApplyControlRecord = { op: ApplyControl.InstallSnapshot; path: string };

/** The parts of one committed entry's record (Outbox.send). */
export function entryRecord(index: number, term: number, data: Uint8Array): Uint8Array[] {
  const h = Buffer.allocUnsafe(APPLY_RECORD_HEADER_BYTES);
  h.writeDoubleLE(index, 0);
  h.writeDoubleLE(term, 8);
  return [h, data];
}

/** A raft entry on a ring, written in place (worker side). */
export function writeEntry(ring: Ring, index: number, term: number, data: Uint8Array): boolean {
  const view = ring.reserve(APPLY_RECORD_HEADER_BYTES + data.length);
  if (!view) return false;
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  b.writeDoubleLE(index, 0);
  b.writeDoubleLE(term, 8);
  b.set(data, APPLY_RECORD_HEADER_BYTES);
  ring.commit();
  return true;
}

export interface RingEntry { index: number; term: number; data: Buffer }

/** Reads an entry record; data is a view valid only inside the ring's drain callback. */
/**
 * A raft entry's record read with Ring.drainInPlace: the record at `at` (`len`
 * bytes) of the ring's data area, its entry data copied out (kept past the drain).
 */
export function copyEntryAt(area: Buffer, at: number, len: number): RingEntry {
  if (len < APPLY_RECORD_HEADER_BYTES) throw new Error(`apply ring record of ${len} bytes is shorter than its header`);
  const data = Buffer.allocUnsafe(len - APPLY_RECORD_HEADER_BYTES);
  area.copy(data, 0, at + APPLY_RECORD_HEADER_BYTES, at + len);
  return { index: area.readDoubleLE(at), term: area.readDoubleLE(at + 8), data };
}

/**
 * The parts of an install-snapshot record. The worker applies and publishes
 * the entries before it, then answers SnapshotInstalled (result-ring.ts).
 */
export function encodeInstallSnapshot(path: string): Uint8Array[] {
  const p = Buffer.from(path, 'utf8');
  const d = Buffer.allocUnsafe(1 + p.length);
  d[0] = ApplyControl.InstallSnapshot;
  p.copy(d, 1);
  return entryRecord(APPLY_CONTROL_INDEX, 0, d);
}

/** Decodes the data of a record whose index is APPLY_CONTROL_INDEX. */
export function decodeApplyControl(data: Uint8Array): ApplyControlRecord {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b[0] === ApplyControl.InstallSnapshot) return { op: ApplyControl.InstallSnapshot, path: b.toString('utf8', 1) };
  throw new Error(`unknown apply control record ${b[0]}`);
}
