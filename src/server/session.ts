import { encodeLeaseGrantRequest } from '../proto/lease-codec.js';
import { EntryKind } from '../workers/protocol/entry.js';
import type { Member } from '../member/member.js';
import { withAuth, type Caller } from './auth-check.js';

/** clientv3's default session TTL, used when a lock or campaign names no lease. */
const SESSION_TTL = 60;

/** etcd's concurrency.NewSession without a lease grants one (and nobody keeps it alive: the server orphans it). */
export async function grantSessionLease(member: Member, caller?: Caller): Promise<bigint> {
  const id = member.leaseIds.next() & ((1n << 63n) - 1n);
  const req = encodeLeaseGrantRequest({ id, ttl: BigInt(SESSION_TTL) });
  await withAuth(member, caller, (ai) => member.propose(EntryKind.LeaseGrant, req, undefined, ai));
  return id;
}
