// The data of etcd 3.4's raft entries (etcdserver/etcdserverpb/raft_internal.proto,
// etcdserver.proto, raft/raftpb): what etcd proposed, read when etsd imports
// an etcd WAL. The v3 requests inside are kept as their bytes: they are the
// client's protobuf, which etsd's own entries carry unchanged.
//
//   InternalRaftRequest { RequestHeader header = 100 (ID = 1, username = 2,
//     auth_revision = 3); uint64 ID = 1; Request v2 = 2; range = 3; put = 4;
//     delete_range = 5; txn = 6; compaction = 7; lease_grant = 8;
//     lease_revoke = 9; alarm = 10; lease_checkpoint = 11; auth_* = 1000.. }
//   Request (v2) { ID = 1; Method = 2; Path = 3; Val = 4; ... }
//   ConfChange { ID = 1; Type = 2; NodeID = 3; Context = 4 }
//
// etcd proposes some v2 Requests bare (not inside an InternalRaftRequest):
// the member-attributes publish and the cluster version. Both forms put a
// string or message at field 2; a bare Request's is its method name.

import { ProtoReader, WIRE_LDELIM, WIRE_VARINT } from './wire.js';

export type EtcdV3Kind = 'range' | 'put' | 'deleteRange' | 'txn' | 'compaction' | 'leaseGrant' | 'leaseRevoke' | 'alarm' | 'leaseCheckpoint';

const V3_FIELDS: Record<number, EtcdV3Kind> = {
  3: 'range', 4: 'put', 5: 'deleteRange', 6: 'txn', 7: 'compaction', 8: 'leaseGrant', 9: 'leaseRevoke', 10: 'alarm', 11: 'leaseCheckpoint',
};

export interface EtcdV2Request { method: string; path: string; val: string }

export type EtcdRaftRequest =
  | { kind: 'v3'; op: EtcdV3Kind; request: Buffer; username: string; authRevision: number }
  /** An auth_* request (field number >= 1000). */
  | { kind: 'auth'; field: number }
  | { kind: 'v2'; request: EtcdV2Request }
  | { kind: 'empty' };

const V2_METHODS = new Set(['PUT', 'POST', 'DELETE', 'QGET', 'GET', 'HEAD', 'SYNC']);

function decodeV2(b: Buffer): EtcdV2Request {
  const r = new ProtoReader(b);
  const out: EtcdV2Request = { method: '', path: '', val: '' };
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (2 << 3 | WIRE_LDELIM)) out.method = r.readString();
    else if (t === (3 << 3 | WIRE_LDELIM)) out.path = r.readString();
    else if (t === (4 << 3 | WIRE_LDELIM)) out.val = r.readString();
    else r.skipField(t & 7);
  }
  return out;
}

function decodeHeader(b: Buffer): { username: string; authRevision: number } {
  const r = new ProtoReader(b);
  let username = '';
  let authRevision = 0;
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (2 << 3 | WIRE_LDELIM)) username = r.readString();
    else if (t === (3 << 3 | WIRE_VARINT)) authRevision = Number(r.readVarintBig());
    else r.skipField(t & 7);
  }
  return { username, authRevision };
}

/** A normal entry's data, as etcd's applyEntryNormal reads it. */
export function decodeEtcdRaftRequest(data: Buffer): EtcdRaftRequest {
  if (data.length === 0) return { kind: 'empty' };
  const r = new ProtoReader(data);
  let v3: { op: EtcdV3Kind; request: Buffer } | null = null;
  let header = { username: '', authRevision: 0 };
  let field2: Buffer | null = null;
  let auth = 0;
  while (r.pos < r.end) {
    const t = r.readTag();
    const field = t >>> 3;
    if ((t & 7) !== WIRE_LDELIM) { r.skipField(t & 7); continue; }
    const body = r.readBytes();
    if (field === 2) field2 = body;
    else if (field === 100) header = decodeHeader(body);
    else if (V3_FIELDS[field] !== undefined) v3 = { op: V3_FIELDS[field]!, request: body };
    else if (field >= 1000) auth = field;
  }
  if (field2 !== null) {
    // A bare v2 Request has its method at field 2; an InternalRaftRequest its v2 Request.
    const method = field2.toString('utf8');
    return { kind: 'v2', request: V2_METHODS.has(method) ? decodeV2(data) : decodeV2(field2) };
  }
  if (auth !== 0) return { kind: 'auth', field: auth };
  if (v3 === null) throw new Error(`etcd raft request of ${data.length} bytes holds no request etsd knows`);
  return { kind: 'v3', ...v3, ...header };
}

/** raftpb.ConfChangeType. */
export const EtcdConfChangeType = { AddNode: 0, RemoveNode: 1, UpdateNode: 2, AddLearnerNode: 3 } as const;

export interface EtcdConfChange { type: number; nodeId: bigint; context: Buffer }

export function decodeEtcdConfChange(data: Buffer): EtcdConfChange {
  const r = new ProtoReader(data);
  const cc: EtcdConfChange = { type: 0, nodeId: 0n, context: Buffer.alloc(0) };
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (2 << 3 | WIRE_VARINT)) cc.type = Number(r.readVarintBig());
    else if (t === (3 << 3 | WIRE_VARINT)) cc.nodeId = r.readVarintBig();
    else if (t === (4 << 3 | WIRE_LDELIM)) cc.context = r.readBytes();
    else r.skipField(t & 7);
  }
  return cc;
}
