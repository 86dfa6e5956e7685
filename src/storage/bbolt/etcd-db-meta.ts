// What an etcd 3.4 backend (member/snap/db) says besides the keys and leases:
// the consistent index (the last raft entry whose effects the db holds), the
// membership etcd keeps beside its v2 store (etcdserver/api/membership/store.go)
// and whether auth is on. Read when etsd takes over an etcd data dir.

import type { SchemaMember } from './etcd-schema.js';
import { B, META_CONSISTENT_INDEX } from './etcd-schema.js';
import { BboltReader, type BucketRef } from './reader.js';

export interface EtcdDbMeta {
  consistentIndex: number;
  members: SchemaMember[];
  removed: bigint[];
  authEnabled: boolean;
  /** Users and roles in the auth buckets (etsd does not import them). */
  authUsers: number;
  authRoles: number;
}

interface MemberJson { peerURLs?: unknown; name?: unknown; clientURLs?: unknown; isLearner?: unknown }

const strings = (v: unknown): string[] => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? v as string[] : []);

/** A members bucket value (json.Marshal(membership.Member)); the id is taken from the key (JSON numbers lose uint64 bits). */
export function decodeSchemaMember(key: Buffer, value: Buffer): SchemaMember {
  const j = JSON.parse(value.toString('utf8')) as MemberJson;
  return {
    id: BigInt('0x' + key.toString('latin1')),
    name: typeof j.name === 'string' ? j.name : '',
    peerUrls: strings(j.peerURLs),
    clientUrls: strings(j.clientURLs),
    isLearner: j.isLearner === true,
  };
}

export function readEtcdDbMeta(path: string): EtcdDbMeta {
  const r = BboltReader.open(path);
  try {
    const all = (name: Buffer): { key: Buffer; value: Buffer }[] => {
      const b: BucketRef | null = r.bucket(r.root, name);
      return b === null ? [] : [...r.entries(b)];
    };
    const ci = all(B.meta).find((e) => e.key.equals(META_CONSISTENT_INDEX));
    const consistentIndex = ci === undefined ? 0 : ci.value.readBigUInt64BE(0);
    if (consistentIndex > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`consistent index ${consistentIndex} is beyond what etsd indexes`);
    const enabled = all(B.auth).find((e) => e.key.toString() === 'authEnabled');
    return {
      consistentIndex: Number(consistentIndex),
      members: all(B.members).map((e) => decodeSchemaMember(e.key, e.value)),
      removed: all(B.membersRemoved).map((e) => BigInt('0x' + e.key.toString('latin1'))),
      authEnabled: enabled !== undefined && enabled.value.length === 1 && enabled.value[0] === 1,
      authUsers: all(B.authUsers).length,
      authRoles: all(B.authRoles).length,
    };
  } finally {
    r.close();
  }
}
