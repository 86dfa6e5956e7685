import { encodeResponseHeader } from '../proto/kv-codec.js';
import { ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from '../proto/wire.js';
import { EtcdError, GrpcCode } from './errors.js';
import type { UnaryHandler } from './rpc.js';
import { ETCD_API_VERSION } from './http-endpoints.js';
import type { Member } from './member.js';

/** One member as etcdserverpb.Member. */
export interface MemberInfo { id: bigint; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }

function encodeMember(m: MemberInfo): Buffer {
  const w = new ProtoWriter(128);
  w.writeTag(1, WIRE_VARINT); w.writeVarintBig(m.id);
  if (m.name) { w.writeTag(2, WIRE_LDELIM); w.writeString(m.name); }
  for (const u of m.peerUrls) { w.writeTag(3, WIRE_LDELIM); w.writeString(u); }
  for (const u of m.clientUrls) { w.writeTag(4, WIRE_LDELIM); w.writeString(u); }
  if (m.isLearner) { w.writeTag(5, WIRE_VARINT); w.writeBool(true); }
  return w.finish();
}

/**
 * Cluster.MemberList and Maintenance.Status/Alarm.
 * Membership changes (MemberAdd/Remove/Update/Promote) come with clusters and
 * answer UNIMPLEMENTED until then.
 */
export function clusterHandlers(member: Member): Map<string, UnaryHandler> {
  const cfg = member.cfg;
  // Other members' client URLs travel through raft in etcd (member attributes); not yet here.
  const all = (): MemberInfo[] => member.members.map((m) => ({
    id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: m.id === member.memberId ? cfg.advertiseClientUrls : [], isLearner: false,
  }));
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

  h.set('/etcdserverpb.Maintenance/Status', () => {
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
    if (size) { w.writeTag(9, WIRE_VARINT); w.writeVarint(size); }
    return w.finish();
  });

  h.set('/etcdserverpb.Maintenance/MoveLeader', async (req) => {
    const r = new ProtoReader(req);
    let target = 0n;
    while (r.pos < r.end) {
      const t = r.readTag();
      if (t >>> 3 === 1 && (t & 7) === WIRE_VARINT) target = r.readVarintBig();
      else r.skipField(t & 7);
    }
    await member.moveLeader(target);
    const w = new ProtoWriter(64);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(fullHeader());
    return w.finish();
  });

  h.set('/etcdserverpb.Maintenance/Alarm', (req) => {
    const r = new ProtoReader(req);
    let action = 0;
    while (r.pos < r.end) {
      const t = r.readTag();
      if (t >>> 3 === 1 && (t & 7) === WIRE_VARINT) action = r.readVarint();
      else r.skipField(t & 7);
    }
    // No alarm can be raised yet (no space quota, no corruption check): GET and DEACTIVATE see none.
    if (action === 1) throw new EtcdError(GrpcCode.UNIMPLEMENTED, 'etsd: raising alarms is not implemented yet');
    const w = new ProtoWriter(64);
    w.writeTag(1, WIRE_LDELIM); w.writeBytes(fullHeader());
    return w.finish();
  });
  return h;
}
