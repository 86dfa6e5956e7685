// A small etcd KV client for tests: grpc-js with raw-Buffer (de)serializers,
// requests encoded and responses decoded with the server's own codec
// (src/proto/kv-codec.ts). Errors surface as GrpcError (code, details).

import * as grpc from '@grpc/grpc-js';
import * as codec from '../../src/proto/kv-codec.js';
import type {
  CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
  RangeRequest, RangeResponse, TxnRequest, TxnResponse, Compare, RequestOp,
} from '../../src/proto/kv-types.js';

export const KV_PATHS = {
  range: '/etcdserverpb.KV/Range',
  put: '/etcdserverpb.KV/Put',
  deleteRange: '/etcdserverpb.KV/DeleteRange',
  txn: '/etcdserverpb.KV/Txn',
  compact: '/etcdserverpb.KV/Compact',
} as const;

export type KvPath = (typeof KV_PATHS)[keyof typeof KV_PATHS];

const DEFAULT_DEADLINE_MS = 10_000;

/** A failed call: the gRPC status code and details the server answered. */
export class GrpcError extends Error {
  constructor(readonly code: number, readonly details: string, readonly path: string) {
    super(`${path}: ${grpc.status[code] ?? code} (${code}): ${details}`);
    this.name = 'GrpcError';
  }
}

export function isGrpcError(e: unknown): e is GrpcError {
  return e instanceof GrpcError;
}

const identity = (b: Buffer): Buffer => b;

// ---- request builders with proto3 defaults ----

export const b = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
const EMPTY = Buffer.alloc(0);

export function rangeReq(m: Partial<RangeRequest> & { key: Buffer }): RangeRequest {
  return {
    rangeEnd: EMPTY, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0,
    maxCreateRevision: 0, ...m,
  };
}

export function putReq(m: Partial<PutRequest> & { key: Buffer }): PutRequest {
  return { value: EMPTY, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...m };
}

export function deleteReq(m: Partial<DeleteRangeRequest> & { key: Buffer }): DeleteRangeRequest {
  return { rangeEnd: EMPTY, prevKv: false, ...m };
}

export function compare(m: Partial<Compare> & { key: Buffer }): Compare {
  return {
    result: 0, target: 0, version: 0, createRevision: 0, modRevision: 0, value: EMPTY, lease: 0n,
    targetUnion: null, rangeEnd: EMPTY, ...m,
  };
}

export const op = {
  range: (m: Partial<RangeRequest> & { key: Buffer }): RequestOp => ({ kind: 'range', range: rangeReq(m) }),
  put: (m: Partial<PutRequest> & { key: Buffer }): RequestOp => ({ kind: 'put', put: putReq(m) }),
  del: (m: Partial<DeleteRangeRequest> & { key: Buffer }): RequestOp => ({ kind: 'deleteRange', deleteRange: deleteReq(m) }),
  txn: (t: Partial<TxnRequest>): RequestOp => ({ kind: 'txn', txn: { compare: [], success: [], failure: [], ...t } }),
};

/** The end of the key range holding every key that starts with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // no upper bound
}

export class KvClient {
  private readonly client: grpc.Client;

  constructor(readonly endpoint: string) {
    this.client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      // Reconnect quickly after a server restart.
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 200,
    });
  }

  close(): void {
    this.client.close();
  }

  /** One unary call with raw bytes both ways. */
  call(path: KvPath, request: Buffer, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(
        path, identity, identity, request, new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => {
          if (err) reject(new GrpcError(err.code, err.details, path));
          else resolve(res ?? EMPTY);
        },
      );
    });
  }

  async range(m: Partial<RangeRequest> & { key: Buffer }, deadlineMs?: number): Promise<RangeResponse> {
    return codec.decodeRangeResponse(await this.call(KV_PATHS.range, codec.encodeRangeRequest(rangeReq(m)), deadlineMs));
  }

  async put(m: Partial<PutRequest> & { key: Buffer }, deadlineMs?: number): Promise<PutResponse> {
    return codec.decodePutResponse(await this.call(KV_PATHS.put, codec.encodePutRequest(putReq(m)), deadlineMs));
  }

  async deleteRange(m: Partial<DeleteRangeRequest> & { key: Buffer }, deadlineMs?: number): Promise<DeleteRangeResponse> {
    return codec.decodeDeleteRangeResponse(await this.call(KV_PATHS.deleteRange, codec.encodeDeleteRangeRequest(deleteReq(m)), deadlineMs));
  }

  async txn(t: Partial<TxnRequest>, deadlineMs?: number): Promise<TxnResponse> {
    const req: TxnRequest = { compare: [], success: [], failure: [], ...t };
    return codec.decodeTxnResponse(await this.call(KV_PATHS.txn, codec.encodeTxnRequest(req), deadlineMs));
  }

  async compact(revision: number, physical = false, deadlineMs?: number): Promise<CompactionResponse> {
    const body = await this.call(KV_PATHS.compact, codec.encodeCompactionRequest({ revision, physical }), deadlineMs);
    return codec.decodeCompactionResponse(body);
  }

  /**
   * Every key in [key, rangeEnd) at one revision, fetched in pages of `page`
   * keys (pinned to the first page's revision, so the pages are consistent).
   */
  async rangeAll(key: Buffer, rangeEnd: Buffer, page = 10_000, deadlineMs = 60_000): Promise<RangeResponse> {
    const first = await this.range({ key, rangeEnd, limit: page }, deadlineMs);
    const kvs = [...first.kvs];
    let more = first.more;
    while (more) {
      const last = kvs[kvs.length - 1]!.key;
      const next = await this.range(
        { key: Buffer.concat([last, Buffer.from([0])]), rangeEnd, limit: page, revision: first.header.revision },
        deadlineMs,
      );
      kvs.push(...next.kvs);
      more = next.more;
    }
    return { header: first.header, kvs, more: false, count: kvs.length };
  }
}
