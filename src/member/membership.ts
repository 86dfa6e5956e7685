// The cluster membership as the application sees it: ids, names, URLs and
// learner flags (raft itself only knows voter and learner ids). It changes
// only when a ConfChange entry (or a member-attributes entry) is applied, and
// is stored with the applied index (EntryKind.Members), so a restart or a
// snapshot brings back exactly the membership of its state.
import { ConfChangeType, type ConfChange } from '../raft/types.js';
import { formatId } from '../common/ids.js';
import { field, isArray, isBoolean, isNumber, isString, isStrings, packRecord, toBigInt, unpackRecord } from '../common/records.js';

export interface MemberRecord {
  id: bigint;
  /** Empty until the member has started and published its attributes (etcd's "unstarted"). */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** What a ConfChange entry's context carries: the proposer's request id and the member's new record. */
export interface ConfChangeContext {
  reqId: number;
  member: MemberRecord;
}

/** etcd's JSON form of a member (GET /members on the peer port; also etsd's records before version 1). */
interface MemberJson { id: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner?: boolean }
interface MembershipJson { members: MemberJson[]; removed: string[] }

/** A member as a record (common/records.ts). */
function memberToRecord(m: MemberRecord): Record<string, unknown> {
  return { id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner };
}

function memberFromRecord(o: unknown): MemberRecord {
  return {
    id: toBigInt(field(o, 'id', (v): v is unknown => v !== undefined), 'id'), name: field(o, 'name', isString),
    peerUrls: field(o, 'peerUrls', isStrings), clientUrls: field(o, 'clientUrls', isStrings), isLearner: field(o, 'isLearner', isBoolean),
  };
}

export function memberToJson(m: MemberRecord): MemberJson {
  const j: MemberJson = { id: formatId(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls };
  if (m.isLearner) j.isLearner = true;
  return j;
}

export function memberFromJson(j: MemberJson): MemberRecord {
  return { id: BigInt('0x' + j.id), name: j.name ?? '', peerUrls: j.peerURLs ?? [], clientUrls: j.clientURLs ?? [], isLearner: j.isLearner === true };
}

/** In the raft log (a ConfChange's context): a versioned record. */
export function encodeConfChangeContext(c: ConfChangeContext): Uint8Array {
  return packRecord({ reqId: c.reqId, member: memberToRecord(c.member) });
}

export function decodeConfChangeContext(data: Uint8Array): ConfChangeContext {
  const r = unpackRecord(data);
  if (r.version === 0) {
    const j = r.value as { reqId: number; member: MemberJson };
    return { reqId: j.reqId, member: memberFromJson(j.member) };
  }
  return { reqId: field(r.value, 'reqId', isNumber), member: memberFromRecord(field(r.value, 'member', (v): v is unknown => typeof v === 'object')) };
}

/** A member's published name and client URLs (EntryKind.MemberAttrs, in the raft log). */
export interface MemberAttributes { id: bigint; name: string; clientUrls: string[] }

export function encodeMemberAttributes(a: MemberAttributes): Buffer {
  return packRecord({ id: a.id, name: a.name, clientUrls: a.clientUrls });
}

export function decodeMemberAttributes(data: Uint8Array): MemberAttributes {
  const r = unpackRecord(data);
  if (r.version === 0) {
    const j = r.value as { id: string; name: string; clientURLs: string[] };
    return { id: BigInt('0x' + j.id), name: j.name, clientUrls: j.clientURLs };
  }
  return { id: toBigInt(field(r.value, 'id', (v): v is unknown => v !== undefined), 'id'), name: field(r.value, 'name', isString), clientUrls: field(r.value, 'clientUrls', isStrings) };
}

export class Membership {
  private readonly byId = new Map<bigint, MemberRecord>();
  /** Removed ids never come back (etcd refuses them for good). */
  private readonly removedIdSet = new Set<bigint>();

  constructor(members: MemberRecord[], removed: bigint[] = []) {
    for (const m of members) this.byId.set(m.id, { ...m });
    for (const r of removed) this.removedIdSet.add(r);
  }

  /** The stored form (EntryKind.Members, kept in RocksDB with the applied index; snapshots carry it). */
  static fromBytes(data: Uint8Array): Membership {
    const r = unpackRecord(data);
    if (r.version === 0) {
      const j = r.value as MembershipJson;
      return new Membership(j.members.map(memberFromJson), j.removed.map((id) => BigInt('0x' + id)));
    }
    return new Membership(field(r.value, 'members', isArray).map(memberFromRecord), field(r.value, 'removed', isArray).map((v) => toBigInt(v, 'removed')));
  }

  toBytes(): Buffer {
    return packRecord({ members: this.list().map(memberToRecord), removed: [...this.removedIdSet] });
  }

  /** Members sorted by id, as etcd lists them. */
  list(): MemberRecord[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): MemberRecord | undefined { return this.byId.get(id); }
  has(id: bigint): boolean { return this.byId.has(id); }
  isRemoved(id: bigint): boolean { return this.removedIdSet.has(id); }
  removedIds(): bigint[] { return [...this.removedIdSet]; }
  get size(): number { return this.byId.size; }
  voters(): bigint[] { return this.list().filter((m) => !m.isLearner).map((m) => m.id); }
  learners(): bigint[] { return this.list().filter((m) => m.isLearner).map((m) => m.id); }

  /** The member (other than `except`) already using one of these peer URLs. */
  peerUrlOwner(urls: string[], except = 0n): MemberRecord | undefined {
    for (const m of this.byId.values()) {
      if (m.id !== except && m.peerUrls.some((u) => urls.includes(u))) return m;
    }
    return undefined;
  }

  /**
   * Applies a committed conf change. Idempotent: entries replayed after a
   * restart or after a snapshot install change nothing the second time.
   */
  applyConfChange(cc: ConfChange, ctx: ConfChangeContext | null): void {
    const id = cc.nodeId;
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode: {
        if (this.removedIdSet.has(id)) return;
        const old = this.byId.get(id);
        if (old) {
          // Promotion: an AddNode for an existing learner.
          if (cc.type === ConfChangeType.AddNode) old.isLearner = false;
          return;
        }
        if (!ctx) return;
        this.byId.set(id, { ...ctx.member, isLearner: cc.type === ConfChangeType.AddLearnerNode });
        return;
      }
      case ConfChangeType.RemoveNode:
        this.byId.delete(id);
        this.removedIdSet.add(id);
        return;
      case ConfChangeType.UpdateNode: {
        const old = this.byId.get(id);
        if (old && ctx) old.peerUrls = [...ctx.member.peerUrls];
        return;
      }
    }
  }

  /** A member published its name and client URLs (etcd's attributes). */
  setAttributes(id: bigint, name: string, clientUrls: string[]): void {
    const m = this.byId.get(id);
    if (!m) return;
    m.name = name;
    m.clientUrls = [...clientUrls];
  }
}
