import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import {
  decodeLeaseGrantRequest, decodeLeaseId, decodeLeaseTimeToLiveRequest, encodeLeaseGrantRequest, encodeLeaseIdRequest,
  encodeLeaseKeepAliveResponse, encodeLeaseLeasesResponse, encodeLeaseTimeToLiveResponse,
} from '../proto/lease-codec.js';
import { ProtoDecodeError } from '../proto/wire.js';
import { EntryKind } from '../workers/protocol/entry.js';
import { EtcdError, Errors } from '../common/errors.js';
import type { UnaryHandler } from '../grpc/rpc.js';
import { MAX_LEASE_TTL } from '../member/lessor.js';
import { withAuth } from './auth-check.js';
import type { Member } from '../member/member.js';
import type { BidiStream, StreamHandler } from '../grpc/stream.js';

/** How often expired leases are looked for, and how many revokes one pass may propose (etcd: 1000/s). */
const EXPIRY_CHECK_MS = 500;
const REVOKES_PER_CHECK = 500;
/** Keep-alives of one stream waiting for their turn (the leader is slow or unreachable); beyond, "too many requests". */
const KEEPALIVES_QUEUED_PER_STREAM = 1000;

export interface LeaseService { unary: Map<string, UnaryHandler>; streams: Map<string, StreamHandler>; stop(): void }

export function leaseService(member: Member): LeaseService {
  const lessor = member.lessor;
  const header = () => ({ clusterId: member.clusterId, memberId: member.memberId, revision: member.revision, raftTerm: member.raftTerm });
  const unary = new Map<string, UnaryHandler>();

  unary.set('/etcdserverpb.Lease/LeaseGrant', (req, ctx) => {
    const g = decodeLeaseGrantRequest(req);
    if (g.ttl > BigInt(MAX_LEASE_TTL)) throw Errors.leaseTtlTooLarge();
    let id = g.id;
    while (id === 0n) id = member.leaseIds.next() & ((1n << 63n) - 1n);
    // etcd raises a TTL below the minimum (ceil(1.5 election timeouts) = 2 s with defaults).
    const ttl = g.ttl < BigInt(member.minLeaseTtl) ? BigInt(member.minLeaseTtl) : g.ttl;
    return withAuth(member, ctx, (ai) => member.propose(EntryKind.LeaseGrant, encodeLeaseGrantRequest({ id, ttl }), undefined, ai));
  });

  // The apply worker checks write permission on every key attached to the lease (etcd's checkLeasePuts).
  unary.set('/etcdserverpb.Lease/LeaseRevoke', (req, ctx) => {
    decodeLeaseId(req);
    return withAuth(member, ctx, (ai) => member.propose(EntryKind.LeaseRevoke, req, undefined, ai));
  });

  unary.set('/etcdserverpb.Lease/LeaseTimeToLive', async (req) => {
    const { id, keys } = decodeLeaseTimeToLiveRequest(req);
    const left = await member.leaseTimeToLive(id);
    if (!left) return encodeLeaseTimeToLiveResponse(header(), id, -1n, 0n, []);
    const attached = keys ? await member.leaseKeys(id) : [];
    return encodeLeaseTimeToLiveResponse(header(), id, BigInt(left.ttl), BigInt(left.granted), attached);
  });

  unary.set('/etcdserverpb.Lease/LeaseLeases', () => encodeLeaseLeasesResponse(header(), lessor.list()));

  const streams = new Map<string, StreamHandler>();
  streams.set('/etcdserverpb.Lease/LeaseKeepAlive', (stream: BidiStream) => {
    // One keep-alive at a time, answers in request order, as etcd's recv loop does; the
    // half-close ends the stream after the ones before it are answered.
    let chain = Promise.resolve();
    let queued = 0;
    let ended = false;
    const finish = (err?: EtcdError) => {
      if (ended) return;
      ended = true;
      stream.end(err);
    };
    stream.onMessage((msg) => {
      let id: bigint;
      try {
        id = decodeLeaseId(msg);
      } catch (err) {
        if (!(err instanceof ProtoDecodeError)) throw err;
        finish(Errors.malformed(err.message));
        return;
      }
      if (++queued > KEEPALIVES_QUEUED_PER_STREAM) {
        finish(Errors.tooManyRequests());
        return;
      }
      chain = chain.then(async () => {
        queued--;
        if (ended) return;
        try {
          // The leader's answer (a follower forwards it there); 0 for an unknown or expired lease, as etcd.
          const ttl = await member.leaseRenew(id);
          if (!ended) stream.write(encodeLeaseKeepAliveResponse(header(), id, BigInt(ttl)));
        } catch (err) {
          if (!(err instanceof EtcdError)) throw err;
          finish(err);
        }
      });
    });
    // Half-close, cancel or a lost connection (a write after a cancel goes nowhere).
    stream.onEnd(() => { chain = chain.then(() => finish()); });
  });

  // Expiry is decided here, on the leader, and applied through the log as a revoke.
  const timer = setInterval(() => {
    if (!member.isLeader()) return;
    for (const id of lessor.takeExpired(REVOKES_PER_CHECK)) {
      // "error": this revoke is not proposed; the next leader's lessor expires the lease again.
      if (FAILPOINTS_ARMED && failpoint('leaseBeforeRevoke')) continue;
      // As root (etcd's WithRoot), so keys no user could write still go with their lease.
      member.propose(EntryKind.LeaseRevoke, encodeLeaseIdRequest(id), undefined, member.auth.rootInfo()).catch((err: unknown) => {
        // Already revoked by a client: nothing to do. Otherwise (lost the lead, timeout)
        // the next leader's lessor expires it again.
        if (err instanceof EtcdError && err.message === Errors.leaseNotFound().message) return;
        member.log.warn({ err, lease: id.toString(16) }, 'revoking an expired lease failed');
      });
    }
  }, EXPIRY_CHECK_MS);
  timer.unref();
  return { unary, streams, stop: () => clearInterval(timer) };
}
