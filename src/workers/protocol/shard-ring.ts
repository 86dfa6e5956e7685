// The shards' in-rings (main -> shard N). Every record starts
//   u8 ShardOp | f64 reqId or streamId | ...
// one-off requests (Range, LeaseKeys) as shardRequest(op, reqId)
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
}

export function shardRequestHeader(op: ShardOp, reqId: number): Buffer {
  const h = Buffer.allocUnsafe(SHARD_REQUEST_HEADER_BYTES);
  h[0] = op;
  h.writeDoubleLE(reqId, 1);
  return h;
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
