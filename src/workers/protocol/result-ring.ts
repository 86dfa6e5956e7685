// The rings back to the main thread (apply -> main, shard N -> main).
// Every record starts with a u8 ResultType; the layouts follow each type.

import type { Ring } from '../ring/ring.js';
import { writeBlocking } from '../ring/write-blocking.js';
import { opHeader } from './header.js';

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

