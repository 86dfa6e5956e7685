// The permission checks etcd's authApplierV3 makes on KV requests at apply
// time (etcdserver/apply_auth.go), and the read check a serving member makes
// on Range and Watch. The request shapes are the fields the checks read, so
// the proto layer's types fit them without this layer importing it.
//
// One deliberate difference: etcd 3.4 does not look inside a txn nested in a
// txn (checkTxnReqsPermission has no case for it), so a nested op escapes the
// check. Here nested txns are checked like the outer one: the answer for a
// request etcd would let through unchecked is "permission denied".

import type { AuthStore } from './store.js';
import type { AuthInfo } from './types.js';

export interface KeyRange { key: Buffer; rangeEnd: Buffer }
export interface PutCheck { key: Buffer; prevKv: boolean }
export interface DeleteCheck { key: Buffer; rangeEnd: Buffer; prevKv: boolean }
export type OpCheck =
  | { kind: 'range'; range: KeyRange }
  | { kind: 'put'; put: PutCheck }
  | { kind: 'deleteRange'; deleteRange: DeleteCheck }
  | { kind: 'txn'; txn: TxnCheck }
  | { kind: 'none' };
export interface TxnCheck { compare: KeyRange[]; success: OpCheck[]; failure: OpCheck[] }

const EMPTY = Buffer.alloc(0);

/** Range, and a Watch's create request (etcd's IsRangePermitted on key and range end). */
export function checkRange(as: AuthStore, ai: AuthInfo, r: KeyRange): void {
  as.checkRange(ai, r.key, r.rangeEnd);
}

/** Put: write on the key, write on every key of the lease it attaches, read on the key for prev_kv. */
export function checkPut(as: AuthStore, ai: AuthInfo, r: PutCheck, leaseKeys: Iterable<Buffer>): void {
  as.checkPut(ai, r.key);
  checkLeaseKeys(as, ai, leaseKeys);
  if (r.prevKv) as.checkRange(ai, r.key, EMPTY);
}

export function checkDeleteRange(as: AuthStore, ai: AuthInfo, r: DeleteCheck): void {
  as.checkDeleteRange(ai, r.key, r.rangeEnd);
  if (r.prevKv) as.checkRange(ai, r.key, r.rangeEnd);
}

/** LeaseRevoke (and a put's lease): write on every key attached to the lease. */
export function checkLeaseKeys(as: AuthStore, ai: AuthInfo, keys: Iterable<Buffer>): void {
  for (const k of keys) as.checkPut(ai, k);
}

/** checkTxnAuth: every compare (read), then success, then failure ops. */
export function checkTxn(as: AuthStore, ai: AuthInfo, t: TxnCheck): void {
  for (const c of t.compare) as.checkRange(ai, c.key, c.rangeEnd);
  checkOps(as, ai, t.success);
  checkOps(as, ai, t.failure);
}

function checkOps(as: AuthStore, ai: AuthInfo, ops: readonly OpCheck[]): void {
  for (const op of ops) {
    switch (op.kind) {
      case 'range': as.checkRange(ai, op.range.key, op.range.rangeEnd); break;
      // etcd checks a txn's put on its key only (no lease, no prev_kv check inside a txn).
      case 'put': as.checkPut(ai, op.put.key); break;
      case 'deleteRange':
        if (op.deleteRange.prevKv) as.checkRange(ai, op.deleteRange.key, op.deleteRange.rangeEnd);
        as.checkDeleteRange(ai, op.deleteRange.key, op.deleteRange.rangeEnd);
        break;
      case 'txn': checkTxn(as, ai, op.txn); break;
      case 'none': break;
    }
  }
}
