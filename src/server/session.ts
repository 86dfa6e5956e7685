import { encodeLeaseGrantRequest } from '../proto/lease-codec.js';
import { EntryKind } from '../workers/protocol/entry.js';
import type { Member } from '../member/member.js';

/** clientv3's default session TTL, used when a lock or campaign names no lease. */
const SESSION_TTL = 60;

/** etcd's concurrency.NewSession without a lease grants one (and nobody keeps it alive: the server orphans it). */
export async function grantSessionLease(member: Member): Promise<bigint> {
  const id = member.leaseIds.next() & ((1n << 63n) - 1n);
  await member.propose(EntryKind.LeaseGrant, encodeLeaseGrantRequest({ id, ttl: BigInt(SESSION_TTL) }));
  return id;
}
