// Maintenance calls the integration tests need, over the raw KvClient channel.
import { ProtoReader, WIRE_VARINT } from '../../src/proto/wire.js';
import type { KvClient } from './kv-client.js';

export interface HashKV { hash: number; compactRevision: number; headerRevision: number }

/** Maintenance.HashKV at `revision` (0: the current one). */
export async function hashKV(client: KvClient, revision: number): Promise<HashKV> {
  const req = revision > 0 ? Buffer.concat([Buffer.from([0x08]), varint(revision)]) : Buffer.alloc(0);
  const body = await client.call('/etcdserverpb.Maintenance/HashKV' as never, req, 10_000);
  const r = new ProtoReader(body);
  const out: HashKV = { hash: 0, compactRevision: 0, headerRevision: 0 };
  while (r.pos < r.end) {
    const t = r.readTag();
    const f = t >>> 3;
    if (f === 1) {
      const h = new ProtoReader(r.readBytes());
      while (h.pos < h.end) {
        const ht = h.readTag();
        if (ht >>> 3 === 3 && (ht & 7) === WIRE_VARINT) out.headerRevision = h.readInt64();
        else h.skipField(ht & 7);
      }
    } else if (f === 2 && (t & 7) === WIRE_VARINT) out.hash = r.readVarint();
    else if (f === 3 && (t & 7) === WIRE_VARINT) out.compactRevision = r.readInt64();
    else r.skipField(t & 7);
  }
  return out;
}

export function varint(v: number): Buffer {
  const out: number[] = [];
  while (v > 0x7f) { out.push((v % 128) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return Buffer.from(out);
}
