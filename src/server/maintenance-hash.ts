// Maintenance.Hash and Maintenance.HashKV. The one-off pool scans RocksDB
// (src/member/maintenance-jobs.ts, src/storage/mvcc/hash.ts); this file decodes
// the request and encodes the response. Like etcd, both answer from this member's own state, with no
// round through raft, so members are compared by asking each one.
//
// The hash values are etsd's own (CRC-32C over etsd's record layout) and never
// equal a real etcd's for the same history; they agree between the members of
// one etsd cluster that applied the same history.

import { encodeResponseHeader } from '../proto/kv-codec.js';
import { ProtoWriter, WIRE_LDELIM, WIRE_VARINT, readVarintField } from '../proto/wire.js';
import type { UnaryHandler } from '../grpc/rpc.js';
import type { Member } from '../member/member.js';
import { asAdmin } from './auth-check.js';
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
    const r = await asAdmin(member, ctx, () => member.hashKV(decodeHashKVRevision(req)));
    const w = new ProtoWriter(96);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(header(r));
    if (r.hash !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarint(r.hash); }
    if (r.compactRevision !== 0) { w.writeTag(3, WIRE_VARINT); w.writeVarint(r.compactRevision); }
    if (r.hashRevision !== 0) { w.writeTag(4, WIRE_VARINT); w.writeVarint(r.hashRevision); }
    return w.finish();
  });

  // HashResponse { header = 1, hash = 2 (uint32) }
  h.set('/etcdserverpb.Maintenance/Hash', async (_req, ctx) => {
    const r = await asAdmin(member, ctx, () => member.hash());
    const w = new ProtoWriter(64);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(header(r));
    if (r.hash !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarint(r.hash); }
    return w.finish();
  });
  return h;
}
