// etcd's space quota arithmetic (etcdserver/quota.go): what a write costs,
// and whether the store has room for it. Used before proposing (main thread)
// and again when applying (the apply worker), as etcd checks in both places.

import type { PutRequest, TxnRequest } from '../../proto/kv-types.js';

/** etcd's DefaultQuotaBytes (2 GiB) and the size above which it warns (8 GiB). */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
export const MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;
/** etcd's estimates of a key's metadata and of a lease. */
export const KV_OVERHEAD = 256;
export const LEASE_OVERHEAD = 64;

/** --quota-backend-bytes as etcd reads it: 0 means the default, a negative number turns the quota off (Infinity). */
export function quotaBytes(flag: number): number {
  if (flag < 0) return Infinity;
  return flag === 0 ? DEFAULT_QUOTA_BYTES : flag;
}

export function costPut(p: PutRequest): number { return KV_OVERHEAD + p.key.length + p.value.length; }

/** The larger branch's puts (nested txns cost nothing, as in etcd 3.4). */
export function costTxn(t: TxnRequest): number {
  const branch = (ops: TxnRequest['success']) => ops.reduce((n, op) => n + (op.kind === 'put' ? costPut(op.put) : 0), 0);
  return Math.max(branch(t.success), branch(t.failure));
}

/** etcd's backendQuota.Available: a write that costs nothing always fits. */
export function available(dbSize: number, cost: number, quota: number): boolean {
  return cost === 0 || dbSize + cost < quota;
}

/**
 * An upper bound of a request's cost from its encoded size alone, so the main
 * thread decodes a request only when the store is near the quota: every put
 * in a txn takes at least 4 bytes of framing, so n <= length / 4.
 */
export function costUpperBound(requestBytes: number): number {
  return requestBytes + KV_OVERHEAD * (1 + Math.ceil(requestBytes / 4));
}
