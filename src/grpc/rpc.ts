// The shapes every gRPC service handler and server in etsd share: services are
// written against these, whatever frames the bytes (src/grpc/server.ts).

import type { IncomingHttpHeaders } from 'node:http2';
import type { CallCounters } from './call-counters.js';
import type { EtcdError } from '../common/errors.js';

/** What a unary handler may look at beyond the request bytes. */
export interface CallContext {
  /** The client going away (long-running handlers: lock, campaign). */
  signal: AbortSignal;
  /** The `token` metadata (or the gateway's `authorization`), as etcd's AuthInfoFromCtx reads it. */
  readonly token?: string;
  /**
   * CN of the client's verified TLS certificate (src/tls/peer-identity.ts),
   * looked up on first read; null on plaintext or without a client certificate.
   * etcd takes it as the user when auth is on and the call has no token (AuthInfoFromTLS).
   */
  readonly peerCommonName: string | null;
  /**
   * Where the handler may send its answer instead of returning a promise (then it
   * returns REPLIED): the gRPC server's stream itself, so a write costs no promise
   * and no continuation per call. Absent elsewhere (the JSON gateway).
   */
  readonly reply?: UnaryReply;
}

/** A unary call's answer given directly: the encoded response, or an error as a handler would throw it. */
export interface UnaryReply {
  resolve(body: Buffer): void;
  reject(err: unknown): void;
}

/** What a unary handler returns once it has passed its call to ctx.reply (only when the context has one). */
export const REPLIED: unique symbol = Symbol('etsd.replied');

/** A unary handler gets the raw request bytes and returns raw response bytes; throw EtcdError for a status. */
export type UnaryHandler = (request: Buffer, ctx?: CallContext) => Promise<Buffer> | Buffer | typeof REPLIED;

/** A server-streaming handler's view of its call: one request, many responses. */
export interface ServerStream {
  write(msg: Buffer): boolean;
  onEnd(cb: () => void): void;
  end(err?: EtcdError): void;
  /** The call's `token` (or `authorization`) metadata, for auth. */
  readonly token?: string;
  /** CN of the client's verified TLS certificate, as CallContext.peerCommonName. */
  readonly peerCommonName?: string | null;
}
export type ServerStreamHandler = (request: Buffer, out: ServerStream) => void;

/** grpc-go's extra room above --max-request-bytes for the gRPC envelope (etcd: grpcOverheadBytes). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/**
 * One streaming call (server streaming or bidi), as its handler sees it.
 * Register callbacks synchronously inside the handler: messages that arrive
 * before onMessage is set are queued (bounded by the peer's flow-control
 * window, since nothing is read from the socket faster than HTTP/2 allows).
 */
export interface ServerCall {
  readonly path: string;
  /** The request headers (metadata), decoded from HPACK. */
  readonly metadata: IncomingHttpHeaders;
  /** CN of the client's verified TLS certificate, as CallContext.peerCommonName. */
  readonly peerCommonName: string | null;
  /** True once end() ran or the call was cancelled. */
  readonly finished: boolean;
  /** Each request message, in order. */
  onMessage(cb: (msg: Buffer) => void): void;
  /** The client half-closed (no more messages). Called after the last onMessage. */
  onEnd(cb: () => void): void;
  /** The client reset the stream, the connection dropped, or the deadline passed. Not called after end(). */
  onCancel(cb: () => void): void;
  /** The write buffer has room again after write() returned false. */
  onDrain(cb: () => void): void;
  /**
   * Sends one message (the length prefix is added here). Returns false when
   * the stream's write buffer is over its high-water mark: wait for onDrain.
   * Returns false and drops the message when the call is finished.
   */
  write(msg: Uint8Array): boolean;
  /** Ends the call with OK, or with the error's gRPC status. Idempotent. */
  end(err?: EtcdError | null): void;
  /** Stop / restart reading request messages (inbound backpressure). */
  pause(): void;
  resume(): void;
}

export type StreamHandler = (call: ServerCall) => void;

/** What we log through; a pino Logger fits. */
export interface RpcLog {
  error(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

export interface GrpcServerOptions {
  /** Unary handlers by gRPC path, e.g. '/etcdserverpb.KV/Put'. */
  unary: Map<string, UnaryHandler>;
  /** Streaming handlers (server streaming and bidi) by gRPC path. */
  streams?: Map<string, StreamHandler>;
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED (grpc-go's check). */
  maxRecvBytes: number;
  log?: RpcLog;
  /**
   * Methods that exist but have no handler: answered UNIMPLEMENTED "etsd: X is
   * not implemented yet". Their services also
   * count as known for the "unknown method Y for service X" wording.
   * Default: every method of src/proto (registry listServices()).
   */
  knownMethods?: Iterable<string>;
  /** HTTP/2 SETTINGS we advertise, over our defaults. */
  settings?: { maxConcurrentStreams?: number; initialWindowSize?: number; maxFrameSize?: number; maxHeaderListSize?: number };
  /** Per-connection cap on queued response bytes (MB): past it the connection is dropped. Default 256. */
  maxSessionMemoryMB?: number;
  /** Connection-level receive window we advertise (bytes). Default 16 MiB. */
  connectionWindowBytes?: number;
  /** grpc_server_started_total / grpc_server_handled_total, counted per method (none if absent). */
  calls?: CallCounters;
}

