import * as codec from '../proto/kv-codec.js';
import type { RequestOp, TxnRequest } from '../proto/kv-types.js';
import type { PutRequestFacts } from '../proto/kv-codec.js';
import { EntryKind } from '../workers/protocol/entry.js';
import { checkSortOptions } from '../storage/mvcc/range.js';
import { Errors } from '../common/errors.js';
import { REPLIED, type CallContext, type UnaryHandler } from '../grpc/rpc.js';
import type { Member } from '../member/member.js';
import { authInfo, readAs, withAuth } from './auth-check.js';

/** Extra bytes etcd's InternalRaftRequest wrapper adds around a request (header with a 64-bit id, field tag, length). */
function raftRequestSize(requestBytes: number): number {
  const lenVarint = requestBytes < 128 ? 1 : requestBytes < 16384 ? 2 : requestBytes < 2097152 ? 3 : 4;
  return 12 + 1 + lenVarint + requestBytes;
}

/**
 * etcd's KV service: the checks of etcd's v3rpc/key.go on the main thread,
 * then writes go through raft and the apply worker, ranges to a shard.
 */
export function kvHandlers(member: Member): Map<string, UnaryHandler> {
  const { maxRequestBytes, maxTxnOps } = member.cfg;
  const checkSize = (req: Buffer) => {
    if (raftRequestSize(req.length) > maxRequestBytes) throw Errors.requestTooLarge();
  };
  const h = new Map<string, UnaryHandler>();

  h.set('/etcdserverpb.KV/Range', (req, ctx) => {
    const r = codec.decodeRangeRequest(req);
    if (r.key.length === 0) throw Errors.emptyKey();
    checkSortOptions(r);
    // etcd's doSerialize: the range check as the caller (or as nobody), the read, then the stale-token check.
    return withAuth(member, ctx, (ai) => readAs(member, ai, r.key, r.rangeEnd, () => member.range(req, r.serializable)));
  });

  // Writes carry the caller into the log; the apply worker checks them (etcd's authApplierV3).
  // Over gRPC the answer goes straight to the call's stream (ctx.reply): no promise per write.
  const propose = (kind: EntryKind, req: Buffer, caller: CallContext | undefined): ReturnType<UnaryHandler> => {
    const ai = authInfo(member, caller);
    if (ai instanceof Promise) return ai.then((a) => member.propose(kind, req, undefined, a));
    const reply = caller?.reply;
    if (reply === undefined) return member.propose(kind, req, undefined, ai);
    member.proposeTo(kind, req, ai, reply);
    return REPLIED;
  };

  h.set('/etcdserverpb.KV/Put', (req, ctx) => {
    checkPutFacts(codec.scanPutRequest(req));
    checkSize(req);
    return propose(EntryKind.Put, req, ctx);
  });

  h.set('/etcdserverpb.KV/DeleteRange', (req, ctx) => {
    const d = codec.decodeDeleteRangeRequest(req);
    if (d.key.length === 0) throw Errors.emptyKey();
    checkSize(req);
    return propose(EntryKind.DeleteRange, req, ctx);
  });

  h.set('/etcdserverpb.KV/Txn', (req, ctx) => {
    const t = codec.decodeTxnRequest(req);
    checkTxn(t, maxTxnOps);
    checkIntervals(t.success);
    checkIntervals(t.failure);
    checkSize(req);
    return propose(EntryKind.Txn, req, ctx);
  });

  h.set('/etcdserverpb.KV/Compact', (req, ctx) => {
    codec.decodeCompactionRequest(req);
    checkSize(req);
    return propose(EntryKind.Compaction, req, ctx);
  });
  return h;
}

/** etcd's checkPutRequest, on what scanPutRequest reads (a Put) or a txn's decoded put. */
function checkPutFacts(p: Readonly<PutRequestFacts>): void {
  if (p.keyLength === 0) throw Errors.emptyKey();
  if (p.ignoreValue && p.valueLength !== 0) throw Errors.valueProvided();
  if (p.ignoreLease && p.leased) throw Errors.leaseProvided();
}

function checkPut(p: { key: Buffer; value: Buffer; lease: bigint; ignoreValue: boolean; ignoreLease: boolean }): void {
  checkPutFacts({ keyLength: p.key.length, valueLength: p.value.length, leased: p.lease !== 0n, ignoreValue: p.ignoreValue, ignoreLease: p.ignoreLease });
}

/** etcd's checkTxnRequest / checkRequestOp. */
function checkTxn(t: TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(t.compare.length, t.success.length, t.failure.length);
  if (opc > maxTxnOps) throw Errors.tooManyOps();
  for (const c of t.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const op of [...t.success, ...t.failure]) checkOp(op, maxTxnOps - opc);
}

function checkOp(op: RequestOp, maxTxnOps: number): void {
  switch (op.kind) {
    case 'range':
      if (op.range.key.length === 0) throw Errors.emptyKey();
      checkSortOptions(op.range);
      return;
    case 'put': return checkPut(op.put);
    case 'deleteRange':
      if (op.deleteRange.key.length === 0) throw Errors.emptyKey();
      return;
    case 'txn': return checkTxn(op.txn, maxTxnOps);
    case 'none': throw Errors.keyNotFound();
  }
}

/** A half-open interval of keys; an empty `end` means "to infinity" (etcd's affine comparison). */
interface Interval { start: Buffer; end: Buffer }

function cmpAffine(a: Buffer, b: Buffer): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return Buffer.compare(a, b);
}

function containsPoint(dels: Interval[], k: Buffer): boolean {
  return dels.some((iv) => cmpAffine(iv.start, k) <= 0 && cmpAffine(k, iv.end) < 0);
}

/** etcd's checkIntervals: no key put twice, nor put and deleted, on one path through a txn. */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.kind !== 'deleteRange') continue;
    const d = op.deleteRange;
    dels.push(d.rangeEnd.length !== 0
      ? { start: d.key, end: d.rangeEnd }
      : { start: d.key, end: Buffer.concat([d.key, Buffer.from([0])]) });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.kind !== 'txn') continue;
    const then = checkIntervals(op.txn.success);
    const els = checkIntervals(op.txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || containsPoint(dels, Buffer.from(k, 'latin1'))) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of els.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw Errors.duplicateKey();
      if (containsPoint(dels, Buffer.from(k, 'latin1'))) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...els.dels);
  }
  for (const op of ops) {
    if (op.kind !== 'put') continue;
    const k = op.put.key.toString('latin1');
    if (puts.has(k) || containsPoint(dels, op.put.key)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}
