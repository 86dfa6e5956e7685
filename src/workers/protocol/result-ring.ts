// The rings back to the main thread (apply -> main, shard N -> main).
// Every record starts with a u8 ResultType; the layouts follow each type.

import type { Ring } from '../ring/ring.js';
import { writeBlocking } from '../ring/write-blocking.js';
import { opHeader } from './header.js';
import type { TokenEffect } from '../../auth/store.js';
import { RecordError, field, isArray, isBoolean, isNumber, packRecord, toBigInt, unpackRecord } from '../../common/records.js';

/** Records the apply worker and the shards send back to the main thread. */
export const enum ResultType {
  /** A request's answer: f64 reqId | body (writeResultOk). */
  Ok = 1,
  /** f64 reqId | u8 gRPC code | utf8 message. */
  Error = 2,
  /** f64 applied index | f64 revision | u8 synced (encodeApplied). */
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
  /** The apply worker's answer to ApplyControl.InstallSnapshot: the last piece (see writeSnapshotInstalled). */
  SnapshotInstalled = 9,
  /** A leading piece of that answer, when it is larger than a ring record may be (many leases). */
  SnapshotInstalledPart = 10,
  /**
   * The auth state after an applied Auth entry or a snapshot install, and what
   * the token table must do: u8 type | record { state, effect } (see encodeAuthNotice).
   */
  Auth = 11,
}

/**
 * An empty leading piece: the request is applied and its answer follows later
 * (a physical compaction, answered when its sweep is done). The main thread
 * does not time out a request whose answer has begun.
 */
export function encodeResultPending(reqId: number): Uint8Array[] {
  const h = Buffer.allocUnsafe(9);
  h[0] = ResultType.OkPart;
  h.writeDoubleLE(reqId, 1);
  return [h, Buffer.alloc(0)];
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
  members: Uint8Array | null;
  error: string | null;
}

/**
 * The answer as a record (common/records.ts), sent as u8 type | piece: zero or
 * more SnapshotInstalledPart pieces, then one SnapshotInstalled with the rest,
 * so no number of leases can outgrow a ring record.
 */
export function writeSnapshotInstalled(ring: Ring, r: SnapshotInstalled): void {
  const body = packRecord({
    ok: r.ok, appliedIndex: r.appliedIndex, appliedTerm: r.appliedTerm, rev: r.rev,
    leases: r.leases.map((l) => [l.id, l.ttl]), members: r.members, error: r.error,
  });
  const piece = Math.min(ring.maxPayload - 16, 4 * 1024 * 1024);
  for (let at = 0; ; at += piece) {
    const last = body.length - at <= piece;
    writeBlocking(ring, [Buffer.of(last ? ResultType.SnapshotInstalled : ResultType.SnapshotInstalledPart), body.subarray(at, last ? body.length : at + piece)]);
    if (last) return;
  }
}

/** The answer from its pieces, in order. */
export function decodeSnapshotInstalled(pieces: Buffer[]): SnapshotInstalled {
  const v = unpackRecord(Buffer.concat(pieces)).value;
  const isNullableBytes = (x: unknown): x is Uint8Array | null => x === null || x instanceof Uint8Array;
  const isNullableString = (x: unknown): x is string | null => x === null || typeof x === 'string';
  return {
    ok: field(v, 'ok', isBoolean), appliedIndex: field(v, 'appliedIndex', isNumber), appliedTerm: field(v, 'appliedTerm', isNumber),
    rev: field(v, 'rev', isNumber),
    leases: field(v, 'leases', isArray).map((l) => {
      const pair = l as unknown[];
      return { id: toBigInt(pair[0], 'lease id'), ttl: Number(pair[1]) };
    }),
    members: field(v, 'members', isNullableBytes), error: field(v, 'error', isNullableString),
  };
}

/**
 * `state` is the auth state record (auth/state-record.ts); `effect` the token
 * table's part of the entry, or 'reset' after a snapshot install (tokens follow
 * the installed enabled flag, as etcd's authStore.Recover).
 */
export interface AuthNotice { state: Uint8Array; effect: TokenEffect | 'reset' | null }

export function encodeAuthNotice(n: AuthNotice): Uint8Array[] {
  const e = n.effect;
  const effect = e === null || e === 'reset' ? e
    : e.kind === 'assign' ? [e.kind, e.token, e.username]
      : e.kind === 'invalidateUser' ? [e.kind, e.name] : [e.kind];
  return [Buffer.of(ResultType.Auth), packRecord({ state: n.state, effect })];
}

function decodeAuthNotice(body: Buffer): AuthNotice {
  const v = unpackRecord(body).value;
  const state = field(v, 'state', (x): x is Uint8Array => x instanceof Uint8Array);
  const e = (v as Record<string, unknown>)['effect'];
  if (e === null || e === 'reset') return { state, effect: e };
  if (!Array.isArray(e) || typeof e[0] !== 'string') throw new RecordError('auth notice effect is malformed');
  const str = (x: unknown): string => { if (typeof x !== 'string') throw new RecordError('auth notice effect is malformed'); return x; };
  switch (e[0]) {
    case 'enable': return { state, effect: { kind: 'enable' } };
    case 'disable': return { state, effect: { kind: 'disable' } };
    case 'invalidateUser': return { state, effect: { kind: 'invalidateUser', name: str(e[1]) } };
    case 'assign': return { state, effect: { kind: 'assign', token: str(e[1]), username: str(e[2]) } };
    default: throw new RecordError(`auth notice effect ${String(e[0])} is unknown`);
  }
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
  | { type: ResultType.SnapshotInstalled; piece: Buffer }
  | { type: ResultType.SnapshotInstalledPart; piece: Buffer }
  | { type: ResultType.Auth; notice: AuthNotice };

/** Decodes a result record; `body` is copied out so it outlives the ring slot. */
// Offsets of the records read in place (readers below, and decodeResult).
const REQ_ID_AT = 1;
const OK_BODY_AT = 9;
const WATCH_ID_AT = 9;
const WATCH_BODY_AT = 17;
const APPLIED_INDEX_AT = 1;
const APPLIED_SYNCED_AT = 17;

/**
 * The hot records read where they lie in a ring's data area (Ring.drainInPlace):
 * Ok answers, Applied notices and watch data, without a view or a result object
 * each. Returns false for any other type (decode those with decodeResult).
 */
export function readResultAt(area: Buffer, at: number, len: number, to: InPlaceResults): boolean {
  // A record too short for its type goes to decodeResult, which refuses it.
  switch (area[at]) {
    case ResultType.Ok:
      if (len < OK_BODY_AT) return false;
      to.answer(area.readDoubleLE(at + REQ_ID_AT), copyOut(area, at + OK_BODY_AT, at + len));
      return true;
    case ResultType.Applied:
      if (len <= APPLIED_SYNCED_AT) return false;
      to.applied(area.readDoubleLE(at + APPLIED_INDEX_AT), area[at + APPLIED_SYNCED_AT] === 1);
      return true;
    case ResultType.WatchData:
      if (len < WATCH_BODY_AT) return false;
      to.watchData(area.readDoubleLE(at + REQ_ID_AT), area.readDoubleLE(at + WATCH_ID_AT), copyOut(area, at + WATCH_BODY_AT, at + len));
      return true;
    default: return false;
  }
}

/** Where readResultAt hands what it read. */
export interface InPlaceResults {
  answer(reqId: number, body: Buffer): void;
  applied(index: number, synced: boolean): void;
  watchData(streamId: number, watchId: number, body: Buffer): void;
}

/** Bytes [start, end) of the area in a buffer of their own (the ring's space is reused once released). */
function copyOut(area: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  area.copy(out, 0, start, end);
  return out;
}

export function decodeResult(view: Uint8Array): Result {
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  switch (b[0]) {
    case ResultType.Ok: return { type: ResultType.Ok, reqId: b.readDoubleLE(REQ_ID_AT), body: Buffer.from(b.subarray(OK_BODY_AT)) };
    case ResultType.OkPart: return { type: ResultType.OkPart, reqId: b.readDoubleLE(1), body: Buffer.from(b.subarray(9)) };
    case ResultType.Error: return { type: ResultType.Error, reqId: b.readDoubleLE(1), code: b[9]!, message: b.toString('utf8', 10) };
    case ResultType.WatchData:
      return { type: ResultType.WatchData, streamId: b.readDoubleLE(REQ_ID_AT), watchId: b.readDoubleLE(WATCH_ID_AT), body: Buffer.from(b.subarray(WATCH_BODY_AT)) };
    case ResultType.WatchPart:
      return { type: ResultType.WatchPart, streamId: b.readDoubleLE(1), watchId: b.readDoubleLE(9), body: Buffer.from(b.subarray(17)) };
    case ResultType.Progress: return { type: ResultType.Progress, streamId: b.readDoubleLE(1), token: b.readDoubleLE(9), rev: b.readDoubleLE(17) };
    case ResultType.Lease: return { type: ResultType.Lease, granted: b[1] === 1, id: b.readBigInt64LE(2), ttl: b.readDoubleLE(10) };
    case ResultType.Applied: return { type: ResultType.Applied, index: b.readDoubleLE(APPLIED_INDEX_AT), rev: b.readDoubleLE(9), synced: b[APPLIED_SYNCED_AT] === 1 };
    case ResultType.SnapshotInstalled: return { type: ResultType.SnapshotInstalled, piece: Buffer.from(b.subarray(1)) };
    case ResultType.SnapshotInstalledPart: return { type: ResultType.SnapshotInstalledPart, piece: Buffer.from(b.subarray(1)) };
    case ResultType.Auth: return { type: ResultType.Auth, notice: decodeAuthNotice(Buffer.from(b.subarray(1))) };
    default: throw new Error(`unknown result record type ${b[0]}`);
  }
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
  // The last (usually only) piece: the header and the parts list are reused, as
  // writeBlocking copies them into the ring before it returns.
  OK_HEADER.writeDoubleLE(reqId, 1);
  OK_PARTS[1] = at === 0 ? body : body.subarray(at);
  try {
    writeBlocking(ring, OK_PARTS);
  } finally {
    OK_PARTS[1] = EMPTY;
  }
}

const EMPTY = new Uint8Array(0);
const OK_HEADER = Buffer.alloc(9, ResultType.Ok);
const OK_PARTS: Uint8Array[] = [OK_HEADER, EMPTY];

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

