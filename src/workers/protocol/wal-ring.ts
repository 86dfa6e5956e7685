// The WAL worker's rings.
//
// In (main -> WAL), one record per opHeader (header.ts):
//   u8 type | f64 index | f64 term | payload
//   type = a WAL RecordType (src/storage/wal/record.ts), optionally | WAL_LAZY,
//          or WAL_BARRIER (index = a ready's sequence number; not written),
//          or WAL_RELEASE (index: the log before it may be released).
//          An entry record may carry WAL_DIRECT: once synced, the WAL worker hands it
//          straight to the apply worker (direct ring, apply-ring.ts layout).
// Out (WAL -> main), after each fsync, a durable notice:
//   f64 last entry index written (-1 if none) | f64 last ready barrier (-1 if none)

import { opHeader } from './header.js';

export const WAL_RELEASE = 0xff;
/** Flag on a record type: append it, but it needs no fsync of its own (it is synced with the next batch). */
export const WAL_LAZY = 0x40;
/**
 * Flag on an entry record: its durability commits it (a sole voter's leader, see
 * member/direct-apply.ts), so after the fsync the WAL worker hands it to the apply
 * worker itself instead of waiting for the main thread to learn it is committed.
 */
export const WAL_DIRECT = 0x20;
/** Marks the end of one raft ready's writes: index = the ready's sequence number. Not written to disk. */
export const WAL_BARRIER = 0xfe;

export const walRecordHeader: (type: number, index: number, term: number) => Buffer = opHeader;

export const DURABLE_NOTICE_BYTES = 16;

export function writeDurableNotice(into: Buffer, lastIndex: number, barrier: number): Buffer {
  into.writeDoubleLE(lastIndex, 0);
  into.writeDoubleLE(barrier, 8);
  return into;
}

export function readDurableNotice(view: Uint8Array): { lastIndex: number; barrier: number } {
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  return { lastIndex: b.readDoubleLE(0), barrier: b.readDoubleLE(8) };
}
