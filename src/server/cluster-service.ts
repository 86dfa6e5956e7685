import { encodeResponseHeader } from '../proto/kv-codec.js';
import { alarmMemberText } from '../proto/alarm-codec.js';
import { ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT, readVarintField } from '../proto/wire.js';
import { Errors } from '../common/errors.js';
import type { UnaryHandler } from '../grpc/rpc.js';
import { ETCD_API_VERSION } from '../common/version.js';
import type { Member, MemberOp } from '../member/member.js';
import { asAdmin, type Caller } from './auth-check.js';
import type { MemberRecord } from '../member/membership.js';

/** The fields of a Member* request (ID, peerURLs, isLearner), by their numbers in each message. */
function readMemberRequest(req: Buffer, idField: number, urlsField: number, learnerField: number): { id: bigint; peerUrls: string[]; isLearner: boolean } {
  const r = new ProtoReader(req);
  const out = { id: 0n, peerUrls: [] as string[], isLearner: false };
  while (r.pos < r.end) {
    const t = r.readTag();
    const f = t >>> 3;
    if (f === idField && (t & 7) === WIRE_VARINT) out.id = r.readVarintBig();
    else if (f === urlsField && (t & 7) === WIRE_LDELIM) out.peerUrls.push(r.readString());
    else if (f === learnerField && (t & 7) === WIRE_VARINT) out.isLearner = r.readVarint() !== 0;
    else r.skipField(t & 7);
  }
  return out;
}

function encodeMember(m: MemberRecord): Buffer {
  const w = new ProtoWriter(128);
  w.writeTag(1, WIRE_VARINT); w.writeVarintBig(m.id);
  if (m.name) { w.writeTag(2, WIRE_LDELIM); w.writeString(m.name); }
  for (const u of m.peerUrls) { w.writeTag(3, WIRE_LDELIM); w.writeString(u); }
  for (const u of m.clientUrls) { w.writeTag(4, WIRE_LDELIM); w.writeString(u); }
  if (m.isLearner) { w.writeTag(5, WIRE_VARINT); w.writeBool(true); }
  return w.finish();
}

/** The Cluster service (membership) and Maintenance Status/MoveLeader/Alarm. */
export function clusterHandlers(member: Member): Map<string, UnaryHandler> {
  const all = (): MemberRecord[] => member.members;
  // etcd's cluster server header carries no revision; the maintenance one does.
  const clusterHeader = () => encodeResponseHeader({ clusterId: member.clusterId, memberId: member.memberId, revision: 0, raftTerm: member.raftTerm });
  const fullHeader = () => encodeResponseHeader({ clusterId: member.clusterId, memberId: member.memberId, revision: member.revision, raftTerm: member.raftTerm });
  const h = new Map<string, UnaryHandler>();

  h.set('/etcdserverpb.Cluster/MemberList', () => {
    const w = new ProtoWriter(256);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(clusterHeader());
    for (const m of all()) { w.writeTag(2, WIRE_LDELIM); w.writeBytes(encodeMember(m)); }
    return w.finish();
  });

  /** header | (member) | members, as MemberAdd/Remove/Update/PromoteResponse lay them out. */
  const membersResponse = (membersField: number, added?: MemberRecord): Buffer => {
    const w = new ProtoWriter(256);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(clusterHeader());
    if (added) { w.writeTag(2, WIRE_LDELIM); w.writeBytes(encodeMember(added)); }
    for (const m of all()) { w.writeTag(membersField, WIRE_LDELIM); w.writeBytes(encodeMember(m)); }
    return w.finish();
  };
  // etcd's checkMembershipOperationPermission: member changes are admin-only while auth is on.
  const change = (op: MemberOp, caller: Caller | undefined) => asAdmin(member, caller, () => member.memberOp(op));

  h.set('/etcdserverpb.Cluster/MemberAdd', async (req, ctx) => {
    const r = readMemberRequest(req, 0, 1, 2);
    const added = await change({ kind: 'add', peerUrls: r.peerUrls, isLearner: r.isLearner }, ctx);
    return membersResponse(3, added);
  });
  h.set('/etcdserverpb.Cluster/MemberRemove', async (req, ctx) => {
    await change({ kind: 'remove', id: readVarintField(req, 1) }, ctx);
    return membersResponse(2);
  });
  h.set('/etcdserverpb.Cluster/MemberUpdate', async (req, ctx) => {
    const r = readMemberRequest(req, 1, 2, 0);
    await change({ kind: 'update', id: r.id, peerUrls: r.peerUrls }, ctx);
    return membersResponse(2);
  });
  h.set('/etcdserverpb.Cluster/MemberPromote', async (req, ctx) => {
    await change({ kind: 'promote', id: readVarintField(req, 1) }, ctx);
    return membersResponse(2);
  });

  h.set('/etcdserverpb.Maintenance/Status', async () => {
    // etcd's errors: "no leader" without one, then every raised alarm as its AlarmMember text.
    const errors = [...(member.isLeaderKnown() ? [] : [Errors.noLeader().message]), ...(await member.alarmMembers()).map(alarmMemberText)];
    const size = member.dbSizeBytes();
    const w = new ProtoWriter(128);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(fullHeader());
    w.writeTag(2, WIRE_LDELIM); w.writeString(ETCD_API_VERSION);
    if (size) { w.writeTag(3, WIRE_VARINT); w.writeVarint(size); }
    if (member.isLeaderKnown()) { w.writeTag(4, WIRE_VARINT); w.writeVarintBig(member.leaderId); }
    w.writeTag(5, WIRE_VARINT); w.writeVarint(member.commitIndex);
    w.writeTag(6, WIRE_VARINT); w.writeVarint(member.raftTerm);
    w.writeTag(7, WIRE_VARINT); w.writeVarint(member.appliedIdx);
    // RocksDB has no free pages to report apart: in use = allocated.
    for (const e of errors) { w.writeTag(8, WIRE_LDELIM); w.writeString(e); }
    if (size) { w.writeTag(9, WIRE_VARINT); w.writeVarint(size); }
    if (member.isLearnerSelf) { w.writeTag(10, WIRE_VARINT); w.writeBool(true); }
    return w.finish();
  });

  h.set('/etcdserverpb.Maintenance/MoveLeader', async (req) => {
    await member.moveLeader(readVarintField(req, 1));
    const w = new ProtoWriter(64);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(fullHeader());
    return w.finish();
  });

  // Applied on every member from the log (storage/mvcc/alarms.ts); the answer lists the alarms it touched or read.
  h.set('/etcdserverpb.Maintenance/Alarm', (req) => member.alarm(req));
  return h;
}
