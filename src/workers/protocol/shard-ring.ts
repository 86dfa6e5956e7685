// The shards' in-rings (main -> shard N). Every record starts
//   u8 ShardOp | f64 reqId or streamId | ...
// one-off requests (Range, LeaseKeys, Hash, HashKV) as shardRequest(op, reqId)
// then their payload; watch ops as opHeader(op, streamId, watchId) (header.ts).

export const SHARD_REQUEST_HEADER_BYTES = 9;

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

export function shardRequestHeader(op: ShardOp, reqId: number): Buffer {
  const h = Buffer.allocUnsafe(SHARD_REQUEST_HEADER_BYTES);
  h[0] = op;
  h.writeDoubleLE(reqId, 1);
  return h;
}

/** A shard's answer to HashKV / Hash: u32 hash | f64 compactRevision | f64 hashRevision | f64 currentRevision. */
export interface HashResult { hash: number; compactRevision: number; hashRevision: number; currentRevision: number }

const HASH_RESULT_BYTES = 28;

export function encodeHashResult(r: HashResult): Buffer {
  const b = Buffer.allocUnsafe(HASH_RESULT_BYTES);
  b.writeUInt32LE(r.hash >>> 0, 0);
  b.writeDoubleLE(r.compactRevision, 4);
  b.writeDoubleLE(r.hashRevision, 12);
  b.writeDoubleLE(r.currentRevision, 20);
  return b;
}

export function decodeHashResult(b: Buffer): HashResult {
  if (b.length !== HASH_RESULT_BYTES) throw new Error(`hash result of ${b.length} bytes, want ${HASH_RESULT_BYTES}`);
  return { hash: b.readUInt32LE(0), compactRevision: b.readDoubleLE(4), hashRevision: b.readDoubleLE(12), currentRevision: b.readDoubleLE(20) };
}

/** The answer to LeaseKeys: (u32 length | key bytes)*. */
export function encodeLeaseKeys(keys: Uint8Array[]): Buffer {
  let n = 0;
  for (const k of keys) n += 4 + k.length;
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  for (const k of keys) {
    out.writeUInt32LE(k.length, at);
    out.set(k, at + 4);
    at += 4 + k.length;
  }
  return out;
}

export function decodeLeaseKeys(body: Buffer): Buffer[] {
  const keys: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const n = body.readUInt32LE(at);
    keys.push(body.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return keys;
}
