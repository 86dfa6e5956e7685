// The data of a raft log entry, as it is written to the WAL and replicated to
// every member. THIS IS AN ON-DISK FORMAT: a member must read every layout an
// older etsd wrote. Layout version 1:
//
//   u8 EntryKind | f64 reqId | request bytes (the client's protobuf, untouched)
//
// An empty data is a Noop (raft's empty entry at the start of a term). A new
// layout takes a new version number here and a reader for the old one.

export const ENTRY_DATA_VERSION = 1;
export const ENTRY_HEADER_BYTES = 9;

/** Kinds of raft entry payloads (the first byte of entry data). Values are on disk: never reuse one. */
export const enum EntryKind {
  Noop = 0,
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compaction = 4,
  LeaseGrant = 5,
  LeaseRevoke = 6,
  /** The membership after a conf change (see src/member/membership.ts), kept with the applied index. */
  Members = 7,
  /**
   * A member's published name and client URLs (see src/member/membership.ts). The main
   * thread folds it into the membership and hands the apply worker a Members entry instead.
   */
  MemberAttrs = 8,
  /** Maintenance.Alarm: the AlarmRequest as the client sent it (all three actions go through the log, as in etcd). */
  Alarm = 9,
}

export function encodeEntryData(kind: EntryKind, reqId: number, request: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + request.length);
  out[0] = kind;
  out.writeDoubleLE(reqId, 1);
  out.set(request, ENTRY_HEADER_BYTES);
  return out;
}

export interface EntryData { kind: EntryKind; reqId: number; request: Buffer }

export function decodeEntryData(data: Uint8Array): EntryData {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length === 0) return { kind: EntryKind.Noop, reqId: 0, request: b };
  if (b.length < ENTRY_HEADER_BYTES) throw new Error(`entry data of ${b.length} bytes is shorter than its header`);
  return { kind: b[0] as EntryKind, reqId: b.readDoubleLE(1), request: b.subarray(ENTRY_HEADER_BYTES) };
}
