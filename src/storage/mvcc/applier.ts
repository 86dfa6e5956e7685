import type {
  Compare, DeleteRangeRequest, DeleteRangeResponse, KeyValue, PutRequest, PutResponse, RequestOp,
  ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
} from '../../proto/kv-types.js';
import { Errors } from '../../common/errors.js';
import { executeRange } from './range.js';
import { toKeyValue } from './reader.js';
import type { MvccWriter } from './writer.js';

/** Looks up whether a lease exists; until leases are built nothing exists. */
export type LeaseLookup = (id: bigint) => boolean;

const header = (revision: number): ResponseHeader => ({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0 });

/**
 * etcd's applierV3backend for the KV service, over the MVCC writer. Responses
 * carry only the revision in their headers; the caller fills cluster, member
 * and term in the outermost header, as etcd does.
 */
export class Applier {
  constructor(private readonly w: MvccWriter, private readonly leaseExists: LeaseLookup) {}

  put(p: PutRequest): PutResponse {
    if (p.lease !== 0n && !this.leaseExists(p.lease)) throw Errors.leaseNotFound();
    this.w.begin();
    try {
      return this.putIn(p);
    } finally {
      this.w.end();
    }
  }

  deleteRange(d: DeleteRangeRequest): DeleteRangeResponse {
    this.w.begin();
    try {
      return this.deleteIn(d);
    } finally {
      this.w.end();
    }
  }

  txn(t: TxnRequest): TxnResponse {
    this.w.begin();
    try {
      const path = this.comparePath(t);
      if (!isReadOnly(t)) this.checkPuts(t, path);
      this.checkRanges(t, path);
      const resp = this.applyTxn(t, path);
      resp.header = header(this.w.viewRev);
      return resp;
    } finally {
      this.w.end();
    }
  }

  private putIn(p: PutRequest): PutResponse {
    let value = p.value;
    let lease = p.lease;
    let prev: KeyValue | null = null;
    if (p.ignoreValue || p.ignoreLease || p.prevKv) {
      const v = this.w.getLatest(p.key);
      if (v && !v.tombstone) prev = toKeyValue(p.key, v);
    }
    if (p.ignoreValue || p.ignoreLease) {
      if (!prev) throw Errors.keyNotFound();
      if (p.ignoreValue) value = prev.value;
      if (p.ignoreLease) lease = prev.lease;
    }
    const v = this.w.put(p.key, value, lease);
    return { header: header(v.modRevision), prevKv: p.prevKv ? prev : null };
  }

  private deleteIn(d: DeleteRangeRequest): DeleteRangeResponse {
    const { kvs } = executeRange(this.w, this.w.reader, rangeOf(d.key, d.rangeEnd), this.w.viewRev, 0);
    for (const kv of kvs) this.w.del(kv.key);
    return { header: header(this.w.changed ? this.w.viewRev : this.w.viewRev), deleted: kvs.length, prevKvs: d.prevKv ? kvs : [] };
  }

  /** Which branch each txn (depth-first) takes: etcd's compareToPath. */
  private comparePath(t: TxnRequest): boolean[] {
    const path: boolean[] = [];
    const walk = (tx: TxnRequest) => {
      const ok = tx.compare.every((c) => this.applyCompare(c));
      path.push(ok);
      for (const op of ok ? tx.success : tx.failure) if (op.kind === 'txn') walk(op.txn);
    };
    walk(t);
    return path;
  }

  private applyCompare(c: Compare): boolean {
    const { kvs } = executeRange(this.w, this.w.reader, rangeOf(c.key, c.rangeEnd), this.w.viewRev, 0);
    if (kvs.length === 0) {
      if (c.target === 3) return false; // a value compare on a missing key always fails
      return compareKV(c, null);
    }
    return kvs.every((kv) => compareKV(c, kv));
  }

  /** etcd checks the chosen branches' puts (lease exists; ignore_* needs the key) before applying. */
  private checkPuts(t: TxnRequest, path: boolean[]): void {
    this.walkPath(t, path, (op) => {
      if (op.kind !== 'put') return;
      const p = op.put;
      if (p.ignoreValue || p.ignoreLease) {
        const v = this.w.getLatest(p.key);
        if (!v || v.tombstone) throw Errors.keyNotFound();
      }
      if (p.lease !== 0n && !this.leaseExists(p.lease)) throw Errors.leaseNotFound();
    });
  }

  private checkRanges(t: TxnRequest, path: boolean[]): void {
    this.walkPath(t, path, (op) => {
      if (op.kind !== 'range' || op.range.revision === 0) return;
      if (op.range.revision > this.w.viewRev) throw Errors.futureRev();
      if (op.range.revision < this.w.state.compactRev) throw Errors.compacted();
    });
  }

  private walkPath(t: TxnRequest, path: boolean[], fn: (op: RequestOp) => void): void {
    let i = 0;
    const walk = (tx: TxnRequest) => {
      const ok = path[i++];
      for (const op of ok ? tx.success : tx.failure) {
        fn(op);
        if (op.kind === 'txn') walk(op.txn);
      }
    };
    walk(t);
  }

  private applyTxn(t: TxnRequest, path: boolean[]): TxnResponse {
    let i = 0;
    const run = (tx: TxnRequest): TxnResponse => {
      const ok = path[i++]!;
      const responses: ResponseOp[] = [];
      for (const op of ok ? tx.success : tx.failure) {
        switch (op.kind) {
          case 'range': {
            const r = executeRange(this.w, this.w.reader, op.range, this.w.viewRev, this.w.state.compactRev);
            responses.push({ kind: 'range', range: { header: header(r.revision), kvs: r.kvs, more: r.more, count: r.count } });
            break;
          }
          case 'put':
            responses.push({ kind: 'put', put: this.putIn(op.put) });
            break;
          case 'deleteRange':
            responses.push({ kind: 'deleteRange', deleteRange: this.deleteIn(op.deleteRange) });
            break;
          case 'txn': {
            const nested = run(op.txn);
            nested.header = header(0);
            responses.push({ kind: 'txn', txn: nested });
            break;
          }
          case 'none':
            break;
        }
      }
      return { header: header(0), succeeded: ok, responses };
    };
    return run(t);
  }
}

function rangeOf(key: Buffer, rangeEnd: Buffer) {
  return {
    key, rangeEnd, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false,
    countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
  };
}

export function isReadOnly(t: TxnRequest): boolean {
  const ro = (ops: RequestOp[]): boolean => ops.every((op) => op.kind === 'range' || op.kind === 'none' || (op.kind === 'txn' && isReadOnly(op.txn)));
  return ro(t.success) && ro(t.failure);
}

function compareKV(c: Compare, kv: KeyValue | null): boolean {
  let result: number;
  switch (c.target) {
    case 3: { // VALUE
      const want = c.targetUnion === 'value' ? c.value : EMPTY;
      result = Buffer.compare(kv ? kv.value : EMPTY, want);
      break;
    }
    case 1: result = cmpNum(kv?.createRevision ?? 0, c.targetUnion === 'createRevision' ? c.createRevision : 0); break;
    case 2: result = cmpNum(kv?.modRevision ?? 0, c.targetUnion === 'modRevision' ? c.modRevision : 0); break;
    case 0: result = cmpNum(kv?.version ?? 0, c.targetUnion === 'version' ? c.version : 0); break;
    case 4: {
      const have = kv?.lease ?? 0n;
      const want = c.targetUnion === 'lease' ? c.lease : 0n;
      result = have < want ? -1 : have > want ? 1 : 0;
      break;
    }
    default: result = 0;
  }
  switch (c.result) {
    case 0: return result === 0;
    case 3: return result !== 0;
    case 1: return result > 0;
    case 2: return result < 0;
    default: return true;
  }
}

const EMPTY = Buffer.alloc(0);
const cmpNum = (a: number, b: number) => (a < b ? -1 : a > b ? 1 : 0);
