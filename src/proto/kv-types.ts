// Plain-object shapes of the etcdserverpb/mvccpb messages on the KV hot path.
// Field names follow the proto (snake_case -> camelCase). int64 revisions are
// JS numbers (etcd revisions stay far below 2^53); lease IDs are bigint since
// etcd hands out random 63-bit IDs. bytes fields are Buffers; an absent bytes
// field decodes as an empty Buffer (proto3 semantics).

export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  revision: number;
  raftTerm: number;
}

export interface KeyValue {
  key: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Buffer;
  lease: bigint;
}

export const enum SortOrder { NONE = 0, ASCEND = 1, DESCEND = 2 }
export const enum SortTarget { KEY = 0, VERSION = 1, CREATE = 2, MOD = 3, VALUE = 4 }

export interface RangeRequest {
  key: Buffer;
  rangeEnd: Buffer;
  limit: number;
  revision: number;
  sortOrder: number;
  sortTarget: number;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease: bigint;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv: KeyValue | null;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd: Buffer;
  prevKv: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type RequestOp =
  | { kind: 'range'; range: RangeRequest }
  | { kind: 'put'; put: PutRequest }
  | { kind: 'deleteRange'; deleteRange: DeleteRangeRequest }
  | { kind: 'txn'; txn: TxnRequest }
  // A RequestOp with no field set (etcd treats it as a no-op range-less op).
  | { kind: 'none' };

export type ResponseOp =
  | { kind: 'range'; range: RangeResponse }
  | { kind: 'put'; put: PutResponse }
  | { kind: 'deleteRange'; deleteRange: DeleteRangeResponse }
  | { kind: 'txn'; txn: TxnResponse };

export const enum CompareResult { EQUAL = 0, GREATER = 1, LESS = 2, NOT_EQUAL = 3 }
export const enum CompareTarget { VERSION = 0, CREATE = 1, MOD = 2, VALUE = 3, LEASE = 4 }

export interface Compare {
  result: number;
  target: number;
  key: Buffer;
  // Exactly one of these is meaningful, chosen by target; the oneof field that
  // was present on the wire is recorded in `targetUnion` (null if none).
  version: number;
  createRevision: number;
  modRevision: number;
  value: Buffer;
  lease: bigint;
  targetUnion: 'version' | 'createRevision' | 'modRevision' | 'value' | 'lease' | null;
  rangeEnd: Buffer;
}

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  physical: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader;
}
