// etcd 3.4's backend schema: bucket names and the exact bytes of each record,
// as mvcc/kvstore.go, mvcc/revision.go, lease/lessor.go and
// etcdserver/api/membership/store.go write them.
//
//   key      rev(8 BE main) '_' (8 BE sub) [+ 't' for a tombstone] -> mvccpb.KeyValue
//            (a tombstone's KeyValue holds only the key)
//   meta     consistent_index -> u64 BE; scheduledCompactRev / finishedCompactRev -> rev bytes (sub 0)
//   lease    u64 BE lease id -> leasepb.Lease { ID = 1, TTL = 2 }
//   members  member id in hex -> JSON { id, peerURLs, isLearner?, name?, clientURLs? }
//   cluster  clusterVersion -> "3.4.0"
//   auth     authEnabled -> [1] / [0] (absent until auth was first enabled); authRevision -> u64 BE
//   authUsers  user name -> authpb.User;  authRoles  role name -> authpb.Role (src/auth/authpb.ts)
//   alarm, members_removed

import type { KeyValue } from '../../proto/kv-types.js';
import { decodeKeyValue, encodeKeyValue } from '../../proto/kv-codec.js';
import { ProtoReader, ProtoWriter, WIRE_VARINT } from '../../proto/wire.js';

export const B = {
  alarm: Buffer.from('alarm'),
  auth: Buffer.from('auth'),
  authRoles: Buffer.from('authRoles'),
  authUsers: Buffer.from('authUsers'),
  cluster: Buffer.from('cluster'),
  key: Buffer.from('key'),
  lease: Buffer.from('lease'),
  members: Buffer.from('members'),
  membersRemoved: Buffer.from('members_removed'),
  meta: Buffer.from('meta'),
} as const;

export const META_CONSISTENT_INDEX = Buffer.from('consistent_index');
export const META_SCHEDULED_COMPACT = Buffer.from('scheduledCompactRev');
export const META_FINISHED_COMPACT = Buffer.from('finishedCompactRev');
export const CLUSTER_VERSION_KEY = Buffer.from('clusterVersion');
export const CLUSTER_VERSION = '3.4.0';
/** auth bucket: the auth store's revision (u64 BE); etcd writes 1 when it first creates the bucket. */
export const AUTH_REVISION_KEY = Buffer.from('authRevision');
/** auth bucket: etcd's enableFlagKey, one byte 1 (enabled) or 0 (disabled). */
export const AUTH_ENABLED_KEY = Buffer.from('authEnabled');

export const REV_BYTES = 17;
const TOMBSTONE_MARK = 0x74; // 't'

export function revBytes(main: number, sub: number, tombstone = false): Buffer {
  const b = Buffer.alloc(tombstone ? REV_BYTES + 1 : REV_BYTES);
  b.writeBigUInt64BE(BigInt(main), 0);
  b[8] = 0x5f; // '_'
  b.writeBigUInt64BE(BigInt(sub), 9);
  if (tombstone) b[REV_BYTES] = TOMBSTONE_MARK;
  return b;
}

export interface Rev { main: number; sub: number; tombstone: boolean }

export function decodeRevBytes(b: Buffer): Rev {
  if ((b.length !== REV_BYTES && b.length !== REV_BYTES + 1) || b[8] !== 0x5f) throw new Error(`not an etcd revision key: ${b.toString('hex')}`);
  const main = b.readBigUInt64BE(0);
  const sub = b.readBigUInt64BE(9);
  if (main > BigInt(Number.MAX_SAFE_INTEGER) || sub > 0xffffffffn) throw new Error(`revision ${main}_${sub} out of range`);
  return { main: Number(main), sub: Number(sub), tombstone: b.length === REV_BYTES + 1 && b[REV_BYTES] === TOMBSTONE_MARK };
}

export function u64be(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(n)));
  return b;
}

export { encodeKeyValue, decodeKeyValue };
export type { KeyValue };

/** leasepb.Lease { ID int64 = 1, TTL int64 = 2 } (RemainingTTL = 3 is only set by checkpoints). */
export function encodeLease(id: bigint, ttl: number): Buffer {
  const w = new ProtoWriter(24);
  if (id !== 0n) { w.writeTag(1, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, id)); }
  if (ttl !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, BigInt(ttl))); }
  return w.finish();
}

export function decodeLease(b: Buffer): { id: bigint; ttl: number } {
  const r = new ProtoReader(b);
  let id = 0n;
  let ttl = 0;
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (1 << 3 | WIRE_VARINT)) id = BigInt.asIntN(64, r.readVarintBig());
    else if (t === (2 << 3 | WIRE_VARINT)) ttl = Number(BigInt.asIntN(64, r.readVarintBig()));
    else r.skipField(t & 7);
  }
  return { id, ttl };
}

export interface SchemaMember { id: bigint; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }

/** members bucket key: types.ID.String(), lower-case hex without padding. */
export function memberKey(id: bigint): Buffer { return Buffer.from(id.toString(16)); }

/** json.Marshal(membership.Member): id as a JSON number (uint64, written from the bigint), then the embedded attributes. */
export function encodeMember(m: SchemaMember): Buffer {
  let s = `{"id":${m.id.toString(10)},"peerURLs":${JSON.stringify(m.peerUrls)}`;
  if (m.isLearner) s += ',"isLearner":true';
  if (m.name !== '') s += `,"name":${JSON.stringify(m.name)}`;
  if (m.clientUrls.length > 0) s += `,"clientURLs":${JSON.stringify(m.clientUrls)}`;
  return Buffer.from(s + '}');
}
