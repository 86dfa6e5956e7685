import * as codec from '../proto/kv-codec.js';
import type { Compare, KeyValue, RangeRequest, RangeResponse, RequestOp, TxnResponse } from '../proto/kv-types.js';
import { decodeWatchResponse, encodeWatchCreateRequest, type DecodedWatchResponse } from '../proto/watch-codec.js';
import { EntryKind } from '../workers/protocol/entry.js';
import type { Member } from '../member/member.js';
import type { BidiStream } from '../grpc/stream.js';
import { WatchStream } from './watch-service.js';
import { readAs, withAuth, type Caller } from './auth-check.js';
import { EtcdError, GrpcCode } from '../common/errors.js';
import { REPLIED, type UnaryHandler } from '../grpc/rpc.js';

const EMPTY = Buffer.alloc(0);

/** The first key after every key with this prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: "to the end"
}

export function rangeRequest(key: Buffer, o: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key, rangeEnd: EMPTY, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false,
    countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...o,
  };
}

export function compareCreate(key: Buffer, rev: number): Compare {
  return {
    result: 0, target: 1, key, version: 0, createRevision: rev, modRevision: 0, value: EMPTY, lease: 0n,
    targetUnion: 'createRevision', rangeEnd: EMPTY,
  };
}

export const opPut = (key: Buffer, value: Buffer, lease: bigint): RequestOp =>
  ({ kind: 'put', put: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false } });
export const opGet = (r: RangeRequest): RequestOp => ({ kind: 'range', range: r });
export const opDelete = (key: Buffer): RequestOp => ({ kind: 'deleteRange', deleteRange: { key, rangeEnd: EMPTY, prevKv: false } });

/**
 * The server's own KV client (etcd's lock and election servers use a clientv3
 * against themselves): requests go through the same raft and shard paths as
 * any client's.
 */
export class InternalClient {
  /** `caller`: whose token (or certificate) the requests carry, so auth checks them as that user's. */
  constructor(private readonly member: Member, private readonly caller?: Caller) {}

  async txn(compare: Compare[], success: RequestOp[], failure: RequestOp[]): Promise<TxnResponse> {
    return codec.decodeTxnResponse(await this.propose(EntryKind.Txn, codec.encodeTxnRequest({ compare, success, failure })));
  }

  async range(r: RangeRequest): Promise<RangeResponse> {
    const m = this.member;
    return codec.decodeRangeResponse(await withAuth(m, this.caller, (ai) => readAs(m, ai, r.key, r.rangeEnd, () => m.range(codec.encodeRangeRequest(r), false))));
  }

  async del(key: Buffer) {
    return codec.decodeDeleteRangeResponse(await this.propose(EntryKind.DeleteRange, codec.encodeDeleteRangeRequest({ key, rangeEnd: EMPTY, prevKv: false })));
  }

  private propose(kind: EntryKind, req: Buffer): Promise<Buffer> {
    return Promise.resolve(withAuth(this.member, this.caller, (ai) => this.member.propose(kind, req, undefined, ai)));
  }

  /** Watches [key, rangeEnd) from startRev; returns a function that cancels it. */
  watch(key: Buffer, rangeEnd: Buffer, startRev: number, onResponse: (r: DecodedWatchResponse) => void): () => void {
    let onMsg: ((m: Buffer) => void) | null = null;
    let onCancel: (() => void) | null = null;
    let ended = false;
    const stream: BidiStream = {
      token: this.caller?.token,
      peerCommonName: this.caller?.peerCommonName ?? null,
      onMessage: (cb) => { onMsg = cb; },
      onEnd: () => {}, // this in-process client never half-closes
      onCancel: (cb) => { onCancel = cb; },
      write: (msg) => { if (!ended) onResponse(decodeWatchResponse(msg)); return true; },
      onDrain: () => {},
      end: () => { ended = true; },
    };
    new WatchStream(this.member, stream);
    onMsg!(encodeWatchCreateRequest({ key, rangeEnd, startRevision: startRev }));
    return () => { if (!ended) { ended = true; onCancel!(); } };
  }

  /** Resolves once key is deleted at or after rev (etcd's waitDelete). */
  waitDelete(key: Buffer, rev: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let cancel: () => void = () => {};
      const abort = () => { cancel(); reject(new Error('context canceled')); };
      if (signal.aborted) return abort();
      signal.addEventListener('abort', abort, { once: true });
      cancel = this.watch(key, EMPTY, rev, (r) => {
        if (r.canceled && r.compactRevision > 0) {
          // History we needed is gone; the caller re-reads the current owners.
          cancel(); signal.removeEventListener('abort', abort); resolve();
          return;
        }
        if (r.events.some((e) => e.type === 1)) {
          cancel(); signal.removeEventListener('abort', abort); resolve();
        }
      });
    });
  }

  /** etcd's waitDeletes: until no key under pfx has create revision <= maxCreateRev. */
  async waitDeletes(pfx: Buffer, maxCreateRev: number, signal: AbortSignal): Promise<RangeResponse['header']> {
    for (;;) {
      const resp = await this.range(rangeRequest(pfx, {
        rangeEnd: prefixEnd(pfx), sortTarget: 2, sortOrder: 2, limit: 1, maxCreateRevision: maxCreateRev,
      }));
      if (resp.kvs.length === 0) return resp.header;
      await this.waitDelete(resp.kvs[0]!.key, resp.header.revision, signal);
    }
  }

  /** The oldest-created key under pfx (etcd's WithFirstCreate). */
  firstCreate(pfx: Buffer): Promise<RangeResponse> {
    return this.range(rangeRequest(pfx, { rangeEnd: prefixEnd(pfx), sortTarget: 2, sortOrder: 1, limit: 1 }));
  }
}

export type { KeyValue };

/**
 * The handlers of a service that etcd runs as clientv3 against itself (v3lock,
 * v3election): clientv3 turns a status into a plain error, which the service
 * returns as is, so the client sees gRPC Unknown with the same words.
 */
export function asClientv3Errors(handlers: Map<string, UnaryHandler>): Map<string, UnaryHandler> {
  const out = new Map<string, UnaryHandler>();
  for (const [path, h] of handlers) {
    out.set(path, async (req, ctx) => {
      try {
        const out = await h(req, ctx);
        // These services answer by returning (async handlers): none hands its call to ctx.reply.
        if (out === REPLIED) throw new Error(`${path} answered through ctx.reply, past the clientv3 error wrapper`);
        return out;
      } catch (err) {
        if (err instanceof EtcdError && err.code !== GrpcCode.UNKNOWN) throw new EtcdError(GrpcCode.UNKNOWN, err.message);
        throw err;
      }
    });
  }
  return out;
}
