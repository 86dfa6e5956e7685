// Encoding of a ConfChange inside a ConfChange entry's data:
// type (1 byte) | node id (u64 BE) | context (the rest, the application's bytes).
import { ConfChangeType, type ConfChange } from './types.js';

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context ?? new Uint8Array(0);
  const b = new Uint8Array(9 + ctx.length);
  b[0] = cc.type;
  new DataView(b.buffer).setBigUint64(1, cc.nodeId, false);
  b.set(ctx, 9);
  return b;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 9) throw new Error(`bad conf change: ${data.length} bytes`);
  const t = data[0]!;
  if (t !== ConfChangeType.AddNode && t !== ConfChangeType.RemoveNode && t !== ConfChangeType.AddLearnerNode
    && t !== ConfChangeType.UpdateNode) {
    throw new Error(`bad conf change type ${t}`);
  }
  const cc: ConfChange = { type: t, nodeId: new DataView(data.buffer, data.byteOffset, 9).getBigUint64(1, false) };
  if (data.length > 9) cc.context = data.subarray(9);
  return cc;
}
