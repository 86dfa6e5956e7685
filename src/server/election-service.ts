import {
  decodeCampaignRequest, decodeLeaderRequest, decodeProclaimRequest, decodeResignRequest,
  encodeCampaignResponse, encodeHeaderResponse, encodeLeaderResponse, type LeaderKey,
} from '../proto/concurrency-codec.js';
import type { KeyValue, ResponseHeader } from '../proto/kv-types.js';
import { EtcdError, Errors } from '../common/errors.js';
import type { CallContext, ServerStreamHandler, UnaryHandler } from '../grpc/rpc.js';
import { InternalClient, asClientv3Errors, compareCreate, opDelete, opGet, opPut, prefixEnd, rangeRequest } from './internal-client.js';
import type { Member } from '../member/member.js';
import { grantSessionLease } from './session.js';

// etcd's concurrency package errors reach clients as plain errors (gRPC Unknown).
const notLeader = Errors.electionNotLeader;
const noLeader = Errors.electionNoLeader;
const missingLeader = Errors.electionMissingLeader;

/** v3electionpb.Election as etcd serves it: clientv3's concurrency Election run against the server itself. */
export function electionHandlers(member: Member): { unary: Map<string, UnaryHandler>; serverStreams: Map<string, ServerStreamHandler> } {
  const full = (hdr: ResponseHeader): ResponseHeader => ({ ...hdr, clusterId: member.clusterId, memberId: member.memberId, raftTerm: member.raftTerm });
  const unary = new Map<string, UnaryHandler>();

  // Each call runs as its caller (etcd's election server uses a client with the caller's context).
  const proclaim = async (c: InternalClient, l: LeaderKey, value: Buffer) => {
    const resp = await c.txn([compareCreate(l.key, l.rev)], [opPut(l.key, value, l.lease)], []);
    if (!resp.succeeded) throw notLeader();
    return resp.header;
  };
  const resign = async (c: InternalClient, l: LeaderKey) => c.txn([compareCreate(l.key, l.rev)], [opDelete(l.key)], []);

  unary.set('/v3electionpb.Election/Campaign', async (req: Buffer, ctx?: CallContext) => {
    const r = decodeCampaignRequest(req);
    const c = new InternalClient(member, ctx);
    const lease = r.lease !== 0n ? r.lease : await grantSessionLease(member, ctx);
    const pfx = Buffer.concat([r.name, Buffer.from('/')]);
    const key = Buffer.concat([pfx, Buffer.from(lease.toString(16))]);
    const resp = await c.txn([compareCreate(key, 0)], [opPut(key, r.value, lease)], [opGet(rangeRequest(key))]);
    const leader: LeaderKey = { name: r.name, key, rev: resp.header.revision, lease };
    const first = resp.responses[0];
    if (!resp.succeeded && first?.kind === 'range') {
      const kv = first.range.kvs[0]!;
      leader.rev = kv.createRevision;
      if (!kv.value.equals(r.value)) {
        try { await proclaim(c, leader, r.value); } catch (err) { await resign(c, leader); throw err; }
      }
    }
    try {
      await c.waitDeletes(pfx, leader.rev - 1, ctx?.signal ?? new AbortController().signal);
    } catch (err) {
      await resign(c, leader).catch((resignErr: unknown) => {
        // The candidacy stays until its lease expires.
        member.log.warn({ err: resignErr }, 'could not withdraw an abandoned candidacy');
      });
      throw err;
    }
    return encodeCampaignResponse(full(resp.header), leader);
  });

  unary.set('/v3electionpb.Election/Proclaim', async (req: Buffer, ctx?: CallContext) => {
    const r = decodeProclaimRequest(req);
    if (!r.leader) throw missingLeader();
    return encodeHeaderResponse(full(await proclaim(new InternalClient(member, ctx), r.leader, r.value)));
  });

  unary.set('/v3electionpb.Election/Leader', async (req: Buffer, ctx?: CallContext) => {
    const { name } = decodeLeaderRequest(req);
    const resp = await new InternalClient(member, ctx).firstCreate(Buffer.concat([name, Buffer.from('/')]));
    if (resp.kvs.length === 0) throw noLeader();
    return encodeLeaderResponse(full(resp.header), resp.kvs[0]!);
  });

  unary.set('/v3electionpb.Election/Resign', async (req: Buffer, ctx?: CallContext) => {
    const r = decodeResignRequest(req);
    if (!r.leader) throw missingLeader();
    const resp = await resign(new InternalClient(member, ctx), r.leader);
    return encodeHeaderResponse(full(resp.header));
  });

  const serverStreams = new Map<string, ServerStreamHandler>();
  serverStreams.set('/v3electionpb.Election/Observe', (req, out) => {
    const { name } = decodeLeaderRequest(req);
    const c = new InternalClient(member, out);
    const pfx = Buffer.concat([name, Buffer.from('/')]);
    let cancelWatch: () => void = () => {};
    let wake: () => void = () => {};
    let done = false;
    out.onEnd(() => { done = true; cancelWatch(); wake(); });
    // etcd's Election.observe: announce the current leader, follow its key's
    // updates, and start over when it is deleted.
    const observe = async (): Promise<void> => {
      while (!done) {
        const resp = await c.firstCreate(pfx);
        let hdr = resp.header;
        let kv: KeyValue | undefined = resp.kvs[0];
        if (!kv) {
          const put = await new Promise<{ rev: number; kv: KeyValue } | null>((resolve) => {
            cancelWatch = c.watch(pfx, prefixEnd(pfx), resp.header.revision, (w) => {
              if (w.canceled) { cancelWatch(); resolve(null); return; }
              const ev = w.events.find((e) => e.type === 0);
              if (ev) { cancelWatch(); resolve({ rev: ev.kv.modRevision, kv: ev.kv }); }
            });
            wake = () => resolve(null);
          });
          if (!put) return;
          hdr = { ...hdr, revision: put.rev };
          kv = put.kv;
        }
        if (done) return;
        out.write(encodeLeaderResponse(full(hdr), kv));
        const deleted = await new Promise<boolean>((resolve) => {
          cancelWatch = c.watch(kv!.key, Buffer.alloc(0), hdr.revision + 1, (w) => {
            if (w.canceled) { cancelWatch(); resolve(false); return; }
            for (const e of w.events) {
              if (e.type === 1) { cancelWatch(); resolve(true); return; }
              out.write(encodeLeaderResponse(full(w.header), e.kv));
            }
          });
          wake = () => resolve(false);
        });
        if (!deleted) return;
      }
    };
    observe().then(() => out.end(), (err: unknown) => out.end(err instanceof EtcdError ? err : undefined));
  });
  return { unary: asClientv3Errors(unary), serverStreams };
}
