// Framing of the records that cross the rings. Every number that can pass
// 2^32 (indexes, terms, request ids) travels as a float64: exact below 2^53.

import type { Ring } from './ring/ring.js';

/** Kinds of raft entry payloads (the first byte of entry data). */
export const enum EntryKind {
  Noop = 0,
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compaction = 4,
  LeaseGrant = 5,
  LeaseRevoke = 6,
  /** The membership after a conf change (JSON, see src/server/membership.ts), kept with the applied index. */
  Members = 7,
  /**
   * A member's published name and client URLs (JSON {id, name, clientURLs}). The main
   * thread folds it into the membership and hands the apply worker a Members entry instead.
   */
  MemberAttrs = 8,
}

/** Ring records to the WAL worker are u8 type | f64 index | f64 term | payload; this type releases the log before index. */
export const WAL_RELEASE = 0xff;
/** Flag on a record type: append it, but it needs no fsync of its own (it is synced with the next batch). */
export const WAL_LAZY = 0x40;
/** Marks the end of one raft ready's writes: index = the ready's sequence number. Not written to disk. */
export const WAL_BARRIER = 0xfe;

/** Records the apply worker and the shards send back to the main thread. */
export const enum ResultType {
  Ok = 1,
  Error = 2,
  Applied = 3,
  /** A leading piece of a response too large for one ring record; the final piece comes as Ok. */
  OkPart = 4,
  /** A WatchResponse for a stream: f64 streamId | f64 watchId | bytes. */
  WatchData = 5,
  WatchPart = 6,
  /** Answer to a progress request: f64 streamId | f64 token | f64 revision. */
  Progress = 7,
  /** A lease was granted or revoked by the log: u8 op (1 grant, 2 revoke) | i64 id | f64 ttl. */
  Lease = 8,
  /** The apply worker's answer to ApplyControl.InstallSnapshot (see encodeSnapshotInstalled). */
  SnapshotInstalled = 9,
}

/** Requests from the main thread to a shard: u8 op | f64 reqId or streamId | ... */
export const enum ShardOp {
  Range = 1,
  WatchCreate = 2,
  WatchCancel = 3,
  StreamClose = 4,
  StreamPause = 5,
  StreamResume = 6,
  Progress = 7,
  /** The keys attached to a lease: f64 reqId | i64 id. */
  LeaseKeys = 8,
  /** Maintenance.HashKV: f64 reqId | f64 revision (0 = current); answers a HashResult. */
  HashKV = 9,
  /** Maintenance.Hash: f64 reqId; answers a HashResult (compactRevision and hashRevision as HashKV's). */
  Hash = 10,
}

/** A shard's answer to HashKV / Hash: u32 hash | f64 compactRevision | f64 hashRevision | f64 currentRevision. */
export interface HashResult { hash: number; compactRevision: number; hashRevision: number; currentRevision: number }

export function encodeHashResult(r: HashResult): Buffer {
  const b = Buffer.allocUnsafe(28);
  b.writeUInt32LE(r.hash >>> 0, 0);
  b.writeDoubleLE(r.compactRevision, 4);
  b.writeDoubleLE(r.hashRevision, 12);
  b.writeDoubleLE(r.currentRevision, 20);
  return b;
}

export function decodeHashResult(b: Buffer): HashResult {
  if (b.length !== 28) throw new Error(`hash result of ${b.length} bytes, want 28`);
  return { hash: b.readUInt32LE(0), compactRevision: b.readDoubleLE(4), hashRevision: b.readDoubleLE(12), currentRevision: b.readDoubleLE(20) };
}

/**
 * Request ids carry the low 10 bits of their member's id from bit 43 up, so a
 * member applying the log answers only its own requests (others' answers would
 * cross the ring to be dropped). Ids stay below 2^53.
 */
const REQ_ID_TAG_UNIT = 2 ** 43;
export function reqIdBase(memberId: bigint): number { return Number(memberId & 0x3ffn) * REQ_ID_TAG_UNIT; }
export function isOwnReqId(reqId: number, memberId: bigint): boolean {
  return Math.floor(reqId / REQ_ID_TAG_UNIT) === Number(memberId & 0x3ffn);
}

/** Entry data = kind | reqId | request bytes (the client's protobuf, untouched). */
export function encodeEntryData(kind: EntryKind, reqId: number, request: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(9 + request.length);
  out[0] = kind;
  out.writeDoubleLE(reqId, 1);
  out.set(request, 9);
  return out;
}

export interface EntryData { kind: EntryKind; reqId: number; request: Buffer }

export function decodeEntryData(data: Uint8Array): EntryData {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length === 0) return { kind: EntryKind.Noop, reqId: 0, request: b };
  return { kind: b[0] as EntryKind, reqId: b.readDoubleLE(1), request: b.subarray(9) };
}

/** Apply-ring records with this index are control records, not raft entries: data = u8 ApplyControl | ... */
export const APPLY_CONTROL_INDEX = -1;

export const enum ApplyControl {
  /** data = u8 1 | utf8 path of a snapshot file: replace the whole state with it. */
  InstallSnapshot = 1,
}

export type ApplyControlRecord = { op: ApplyControl.InstallSnapshot; path: string };

/**
 * The parts of an install-snapshot record for the apply ring (Outbox.send):
 * f64 -1 | f64 0 | u8 ApplyControl.InstallSnapshot | utf8 path. The worker
 * applies and publishes the entries before it, then answers SnapshotInstalled.
 */
export function encodeInstallSnapshot(path: string): Uint8Array[] {
  const h = Buffer.allocUnsafe(16);
  h.writeDoubleLE(APPLY_CONTROL_INDEX, 0);
  h.writeDoubleLE(0, 8);
  const p = Buffer.from(path, 'utf8');
  const d = Buffer.allocUnsafe(1 + p.length);
  d[0] = ApplyControl.InstallSnapshot;
  p.copy(d, 1);
  return [h, d];
}

/** Decodes the data of a record whose index is APPLY_CONTROL_INDEX. */
export function decodeApplyControl(data: Uint8Array): ApplyControlRecord {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b[0] === ApplyControl.InstallSnapshot) return { op: ApplyControl.InstallSnapshot, path: b.toString('utf8', 1) };
  throw new Error(`unknown apply control record ${b[0]}`);
}

/** A raft entry on a ring: index | term | data. */
export function writeEntry(ring: Ring, index: number, term: number, data: Uint8Array): boolean {
  const view = ring.reserve(16 + data.length);
  if (!view) return false;
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  b.writeDoubleLE(index, 0);
  b.writeDoubleLE(term, 8);
  b.set(data, 16);
  ring.commit();
  return true;
}

export interface RingEntry { index: number; term: number; data: Buffer }

/** Reads an entry record; data is a view valid only inside the ring's drain callback. */
export function readEntry(view: Uint8Array): RingEntry {
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  return { index: b.readDoubleLE(0), term: b.readDoubleLE(8), data: b.subarray(16) };
}

export function encodeResultOk(reqId: number, body: Uint8Array): Uint8Array[] {
  const h = Buffer.allocUnsafe(9);
  h[0] = ResultType.Ok;
  h.writeDoubleLE(reqId, 1);
  return [h, body];
}

export function encodeResultError(reqId: number, code: number, message: string): Uint8Array[] {
  const h = Buffer.allocUnsafe(10);
  h[0] = ResultType.Error;
  h.writeDoubleLE(reqId, 1);
  h[9] = code;
  return [h, Buffer.from(message, 'utf8')];
}

/** `synced`: RocksDB holds everything up to index durably, so the raft log before it may go. */
export function encodeApplied(index: number, rev: number, synced: boolean): Uint8Array {
  const h = Buffer.allocUnsafe(18);
  h[0] = ResultType.Applied;
  h.writeDoubleLE(index, 1);
  h.writeDoubleLE(rev, 9);
  h[17] = synced ? 1 : 0;
  return h;
}

/**
 * The outcome of an install. On success the state is the snapshot's; on
 * failure (bad file, stale snapshot) nothing changed and the fields hold the
 * current state. `leases` and `members` are the state's (as ApplyReady's).
 */
export interface SnapshotInstalled {
  ok: boolean;
  appliedIndex: number;
  appliedTerm: number;
  rev: number;
  leases: { id: bigint; ttl: number }[];
  members: string | null;
  error: string | null;
}

interface SnapshotInstalledJson { leases: [string, number][]; members: string | null; error?: string }

/** u8 type | u8 ok | f64 appliedIndex | f64 appliedTerm | f64 rev | utf8 JSON {leases: [[id decimal, ttl]...], members, error?} */
export function encodeSnapshotInstalled(r: SnapshotInstalled): Uint8Array {
  const json: SnapshotInstalledJson = { leases: r.leases.map((l) => [l.id.toString(), l.ttl]), members: r.members };
  if (r.error !== null) json.error = r.error;
  const body = Buffer.from(JSON.stringify(json), 'utf8');
  const b = Buffer.allocUnsafe(26 + body.length);
  b[0] = ResultType.SnapshotInstalled;
  b[1] = r.ok ? 1 : 0;
  b.writeDoubleLE(r.appliedIndex, 2);
  b.writeDoubleLE(r.appliedTerm, 10);
  b.writeDoubleLE(r.rev, 18);
  body.copy(b, 26);
  return b;
}

function decodeSnapshotInstalled(b: Buffer): SnapshotInstalled {
  const json = JSON.parse(b.toString('utf8', 26)) as SnapshotInstalledJson;
  return {
    ok: b[1] === 1, appliedIndex: b.readDoubleLE(2), appliedTerm: b.readDoubleLE(10), rev: b.readDoubleLE(18),
    leases: json.leases.map(([id, ttl]) => ({ id: BigInt(id), ttl })), members: json.members, error: json.error ?? null,
  };
}

export type Result =
  | { type: ResultType.Ok; reqId: number; body: Buffer }
  | { type: ResultType.OkPart; reqId: number; body: Buffer }
  | { type: ResultType.Error; reqId: number; code: number; message: string }
  | { type: ResultType.Applied; index: number; rev: number; synced: boolean }
  | { type: ResultType.WatchData; streamId: number; watchId: number; body: Buffer }
  | { type: ResultType.WatchPart; streamId: number; watchId: number; body: Buffer }
  | { type: ResultType.Progress; streamId: number; token: number; rev: number }
  | { type: ResultType.Lease; granted: boolean; id: bigint; ttl: number }
  | ({ type: ResultType.SnapshotInstalled } & SnapshotInstalled);

/** Decodes a result record; `body` is copied out so it outlives the ring slot. */
export function decodeResult(view: Uint8Array): Result {
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  switch (b[0]) {
    case ResultType.Ok: return { type: ResultType.Ok, reqId: b.readDoubleLE(1), body: Buffer.from(b.subarray(9)) };
    case ResultType.OkPart: return { type: ResultType.OkPart, reqId: b.readDoubleLE(1), body: Buffer.from(b.subarray(9)) };
    case ResultType.Error: return { type: ResultType.Error, reqId: b.readDoubleLE(1), code: b[9]!, message: b.toString('utf8', 10) };
    case ResultType.WatchData:
      return { type: ResultType.WatchData, streamId: b.readDoubleLE(1), watchId: b.readDoubleLE(9), body: Buffer.from(b.subarray(17)) };
    case ResultType.WatchPart:
      return { type: ResultType.WatchPart, streamId: b.readDoubleLE(1), watchId: b.readDoubleLE(9), body: Buffer.from(b.subarray(17)) };
    case ResultType.Progress: return { type: ResultType.Progress, streamId: b.readDoubleLE(1), token: b.readDoubleLE(9), rev: b.readDoubleLE(17) };
    case ResultType.Lease: return { type: ResultType.Lease, granted: b[1] === 1, id: b.readBigInt64LE(2), ttl: b.readDoubleLE(10) };
    case ResultType.Applied: return { type: ResultType.Applied, index: b.readDoubleLE(1), rev: b.readDoubleLE(9), synced: b[17] === 1 };
    case ResultType.SnapshotInstalled: return { type: ResultType.SnapshotInstalled, ...decodeSnapshotInstalled(b) };
    default: throw new Error(`unknown result record type ${b[0]}`);
  }
}

/** Writes parts as one record, blocking (worker side) while the ring is full. */
export function writeBlocking(ring: Ring, parts: Uint8Array[]): void {
  while (!ring.tryWriteParts(parts)) ring.waitWritable(100);
}

/** Writes a successful result, split into OkPart pieces when it is larger than a ring record may be. */
export function writeResultOk(ring: Ring, reqId: number, body: Uint8Array): void {
  const piece = Math.min(ring.maxPayload - 16, 4 * 1024 * 1024);
  let at = 0;
  while (body.length - at > piece) {
    const h = Buffer.allocUnsafe(9);
    h[0] = ResultType.OkPart;
    h.writeDoubleLE(reqId, 1);
    writeBlocking(ring, [h, body.subarray(at, at + piece)]);
    at += piece;
  }
  writeBlocking(ring, encodeResultOk(reqId, at === 0 ? body : body.subarray(at)));
}

/** The common ring record head: u8 type | f64 a | f64 b (WAL records, shard ops, watch data). */
export function opHeader(type: number, a: number, b: number): Buffer {
  const h = Buffer.allocUnsafe(17);
  h[0] = type;
  h.writeDoubleLE(a, 1);
  h.writeDoubleLE(b, 9);
  return h;
}

/** Writes a WatchResponse for a stream, in pieces when it is larger than a ring record may be. */
export function writeWatchData(ring: Ring, streamId: number, watchId: number, body: Uint8Array): void {
  const piece = Math.min(ring.maxPayload - 32, 4 * 1024 * 1024);
  let at = 0;
  for (;;) {
    const last = body.length - at <= piece;
    const h = opHeader(last ? ResultType.WatchData : ResultType.WatchPart, streamId, watchId);
    writeBlocking(ring, [h, last ? body.subarray(at) : body.subarray(at, at + piece)]);
    if (last) return;
    at += piece;
  }
}

export function encodeLeaseNotice(granted: boolean, id: bigint, ttl: number): Uint8Array {
  const h = Buffer.allocUnsafe(18);
  h[0] = ResultType.Lease;
  h[1] = granted ? 1 : 2;
  h.writeBigInt64LE(id, 2);
  h.writeDoubleLE(ttl, 10);
  return h;
}

export function encodeProgress(streamId: number, token: number, rev: number): Uint8Array {
  const h = Buffer.allocUnsafe(25);
  h[0] = ResultType.Progress;
  h.writeDoubleLE(streamId, 1);
  h.writeDoubleLE(token, 9);
  h.writeDoubleLE(rev, 17);
  return h;
}

/** Slots of the shared state words (BigInt64Array over a SharedArrayBuffer). */
export const enum Shared {
  AppliedIndex = 0,
  Revision = 1,
  CompactRevision = 2,
  RaftTerm = 3,
  /**
   * Odd while the apply worker replaces the database with a snapshot, bumped
   * again when done: readers that saw it odd, or saw it change during a read,
   * discard what they read (a seqlock).
   */
  StorageEpoch = 4,
  Size = 8,
}

export function sharedState(sab: SharedArrayBuffer): BigInt64Array {
  return new BigInt64Array(sab);
}

export function loadShared(s: BigInt64Array, slot: Shared): number {
  return Number(Atomics.load(s, slot));
}

export function storeShared(s: BigInt64Array, slot: Shared, v: number): void {
  Atomics.store(s, slot, BigInt(v));
}
