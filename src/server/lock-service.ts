import { decodeLockRequest, decodeUnlockRequest, encodeHeaderResponse, encodeLockResponse } from '../proto/concurrency-codec.js';
import type { ResponseHeader } from '../proto/kv-types.js';
import type { CallContext, UnaryHandler } from '../grpc/rpc.js';
import { InternalClient, asClientv3Errors, compareCreate, opGet, opPut, prefixEnd, rangeRequest } from './internal-client.js';
import { grantSessionLease } from './session.js';
import type { Member } from '../member/member.js';
import { Errors } from '../common/errors.js';

/**
 * v3lockpb.Lock as etcd serves it: the clientv3 concurrency Mutex, run by the
 * server against itself. The lock key is <name>/<lease id in hex>; the oldest
 * key under the name holds the lock, later ones wait for every older key to go.
 */
export function lockHandlers(member: Member): Map<string, UnaryHandler> {
  const h = new Map<string, UnaryHandler>();
  const full = (hdr: ResponseHeader): ResponseHeader => ({ ...hdr, clusterId: member.clusterId, memberId: member.memberId, raftTerm: member.raftTerm });

  h.set('/v3lockpb.Lock/Lock', async (req: Buffer, ctx?: CallContext) => {
    const r = decodeLockRequest(req);
    // As its caller (etcd's lock server uses a client with the caller's context).
    const c = new InternalClient(member, ctx);
    const lease = r.lease !== 0n ? r.lease : await grantSessionLease(member, ctx);
    const pfx = Buffer.concat([r.name, Buffer.from('/')]);
    const myKey = Buffer.concat([pfx, Buffer.from(lease.toString(16))]);
    const owner = opGet(rangeRequest(pfx, { rangeEnd: prefixEnd(pfx), sortTarget: 2, sortOrder: 1, limit: 1 }));
    const resp = await c.txn([compareCreate(myKey, 0)], [opPut(myKey, Buffer.alloc(0), lease), owner], [opGet(rangeRequest(myKey)), owner]);
    let myRev = resp.header.revision;
    const first = resp.responses[0];
    if (!resp.succeeded && first?.kind === 'range') myRev = first.range.kvs[0]!.createRevision;
    const ownerResp = resp.responses[1];
    const ownerKvs = ownerResp?.kind === 'range' ? ownerResp.range.kvs : [];
    if (ownerKvs.length === 0 || ownerKvs[0]!.createRevision === myRev) return encodeLockResponse(full(resp.header), myKey);
    try {
      const hdr = await c.waitDeletes(pfx, myRev - 1, ctx?.signal ?? new AbortController().signal);
      return encodeLockResponse(full(hdr), myKey);
    } catch (err) {
      // Waiting failed (the caller went away): give the place in line back.
      await c.del(myKey).catch((delErr: unknown) => {
        // The key stays until its lease expires; the waiter behind it waits that long.
        member.log.warn({ err: delErr, key: myKey.toString() }, 'could not give a lock place back');
      });
      throw err;
    }
  });

  h.set('/v3lockpb.Lock/Unlock', async (req: Buffer, ctx?: CallContext) => {
    const { key } = decodeUnlockRequest(req);
    if (key.length === 0) throw Errors.emptyKey(); // the server's answer to clientv3's Delete("")
    const resp = await new InternalClient(member, ctx).del(key);
    return encodeHeaderResponse(full(resp.header));
  });
  return asClientv3Errors(h);
}
