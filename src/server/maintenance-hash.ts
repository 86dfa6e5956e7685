// Maintenance.Hash and Maintenance.HashKV. The one-off pool scans RocksDB
// (src/member/maintenance-jobs.ts, src/storage/mvcc/hash.ts); this file decodes
// the request and encodes the response. Like etcd, both answer from this member's own state, with no
// round through raft, so members are compared by asking each one.
//
// HashKV's hash is etcd 3.4's (src/storage/mvcc/hash.ts): a real etcd that
// applied the same operations answers the same. Hash's is etsd's own.

import { encodeResponseHeader } from '../proto/kv-codec.js';
import { ProtoWriter, WIRE_LDELIM, WIRE_VARINT, readVarintField } from '../proto/wire.js';
import type { UnaryHandler } from '../grpc/rpc.js';
import type { Member } from '../member/member.js';
import { asMaintenanceAdmin } from './auth-check.js';
import type { HashResult } from '../member/maintenance-jobs.js';

/** HashKVRequest.revision (int64). */
function decodeHashKVRevision(req: Buffer): number {
  return Number(BigInt.asIntN(64, readVarintField(req, 1)));
}

export function hashHandlers(member: Member): Map<string, UnaryHandler> {
  const header = (r: HashResult) => encodeResponseHeader({
    clusterId: member.clusterId, memberId: member.memberId, revision: r.currentRevision, raftTerm: member.raftTerm,
  });
  const h = new Map<string, UnaryHandler>();

  // HashKVResponse { header = 1, hash = 2 (uint32), compact_revision = 3, hash_revision = 4 (etcd 3.6) }
  // Both are admin-only while auth is on (etcd's authMaintenanceServer).
  h.set('/etcdserverpb.Maintenance/HashKV', async (req, ctx) => {
    const r = await asMaintenanceAdmin(member, ctx, () => member.hashKV(decodeHashKVRevision(req)));
    const w = new ProtoWriter(96);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(header(r));
    if (r.hash !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarint(r.hash); }
    // etcd's compactMainRev is -1 until the first compaction, and HashKV reports it as is.
    w.writeTag(3, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, BigInt(r.compactRevision === 0 ? -1 : r.compactRevision)));
    if (r.hashRevision !== 0) { w.writeTag(4, WIRE_VARINT); w.writeVarint(r.hashRevision); }
    return w.finish();
  });

  // HashResponse { header = 1, hash = 2 (uint32) }
  h.set('/etcdserverpb.Maintenance/Hash', async (_req, ctx) => {
    const r = await asMaintenanceAdmin(member, ctx, () => member.hash());
    const w = new ProtoWriter(64);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(header(r));
    if (r.hash !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarint(r.hash); }
    return w.finish();
  });
  return h;
}
