// The data of a raft log entry, as it is written to the WAL and replicated to
// every member. THIS IS AN ON-DISK FORMAT: a member must read every layout an
// older etsd wrote. Layout version 1:
//
//   u8 EntryKind | f64 reqId | request bytes (the client's protobuf, untouched)
//
// An empty data is a Noop (raft's empty entry at the start of a term). A new
// layout takes a new version number here and a reader for the old one.
//
// A request made with an auth token carries who made it (etcd's RequestHeader
// username and auth revision), checked when the entry is applied:
//
//   u8 Authed | f64 reqId | u8 EntryKind | f64 authRevision | u16 nameLen | name (UTF-8) | request bytes

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
  /** An Auth service request (src/auth/request-record.ts), passwords already hashed. */
  Auth = 9,
  /** Not a kind of its own: the header of an entry that carries its user (see above). */
  Authed = 10,
  /** Maintenance.Alarm: the AlarmRequest as the client sent it (all three actions go through the log, as in etcd). */
  Alarm = 11,
}

/** Who proposed an entry: the token's user and the auth revision it was read at (etcd's AuthInfo). */
export interface EntryAuth { username: string; revision: number }

const AUTHED_HEADER_BYTES = ENTRY_HEADER_BYTES + 1 + 8 + 2;

export function encodeEntryData(kind: EntryKind, reqId: number, request: Uint8Array, auth?: EntryAuth): Buffer {
  if (auth !== undefined) return encodeAuthed(kind, reqId, request, auth);
  const out = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + request.length);
  out[0] = kind;
  out.writeDoubleLE(reqId, 1);
  out.set(request, ENTRY_HEADER_BYTES);
  return out;
}

function encodeAuthed(kind: EntryKind, reqId: number, request: Uint8Array, auth: EntryAuth): Buffer {
  const name = Buffer.from(auth.username, 'utf8');
  // etcd's user names are bounded only by the request size; ours by the u16 length.
  if (name.length > 0xffff) throw new Error(`user name of ${name.length} bytes is too long for an entry`);
  const out = Buffer.allocUnsafe(AUTHED_HEADER_BYTES + name.length + request.length);
  out[0] = EntryKind.Authed;
  out.writeDoubleLE(reqId, 1);
  out[ENTRY_HEADER_BYTES] = kind;
  out.writeDoubleLE(auth.revision, ENTRY_HEADER_BYTES + 1);
  out.writeUInt16LE(name.length, ENTRY_HEADER_BYTES + 9);
  name.copy(out, AUTHED_HEADER_BYTES);
  out.set(request, AUTHED_HEADER_BYTES + name.length);
  return out;
}

/** `auth` is absent for a request made without a token (etcd's nil AuthInfo). */
export interface EntryData { kind: EntryKind; reqId: number; request: Buffer; auth?: EntryAuth }

export function decodeEntryData(data: Uint8Array): EntryData {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length === 0) return { kind: EntryKind.Noop, reqId: 0, request: b };
  if (b.length < ENTRY_HEADER_BYTES) throw new Error(`entry data of ${b.length} bytes is shorter than its header`);
  if (b[0] !== EntryKind.Authed) return { kind: b[0] as EntryKind, reqId: b.readDoubleLE(1), request: b.subarray(ENTRY_HEADER_BYTES) };
  if (b.length < AUTHED_HEADER_BYTES) throw new Error(`entry data of ${b.length} bytes is shorter than its auth header`);
  const nameLen = b.readUInt16LE(ENTRY_HEADER_BYTES + 9);
  if (b.length < AUTHED_HEADER_BYTES + nameLen) throw new Error(`entry data of ${b.length} bytes is shorter than its user name`);
  return {
    kind: b[ENTRY_HEADER_BYTES] as EntryKind,
    reqId: b.readDoubleLE(1),
    request: b.subarray(AUTHED_HEADER_BYTES + nameLen),
    auth: {
      username: b.toString('utf8', AUTHED_HEADER_BYTES, AUTHED_HEADER_BYTES + nameLen),
      revision: b.readDoubleLE(ENTRY_HEADER_BYTES + 1),
    },
  };
}
