// etsd's gRPC server, on our own HTTP/2 framing (./connection.ts) instead of
// node:http2 or grpc-js, for the main thread's cost per call (measured: grpc-js
// 85-150 us, node:http2 ~30 us, this 2-3 us). node:http2 spends most of its
// time on per-stream objects, header conversion and listeners; here a unary
// call is one object (GrpcStream, which is also the HTTP/2 stream), its
// headers are picked out of a reused HeaderList, and the answer is three
// frames copied into the connection's output slab.
//
// Sockets come in through acceptSocket(socket), or through `http2`, an
// emitter whose 'connection' event does the same, so listenShared
// (src/grpc/port-sharing.ts) can hand connections over unchanged.
//
// Cleartext (h2c prior knowledge, as etcd clients use without TLS) or a TLS
// socket negotiated to ALPN h2 (src/tls terminates it), given as it is.

import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { listServices } from '../proto/registry.js';
import { ProtoDecodeError } from '../proto/wire.js';
import { EtcdError, Errors, GrpcCode } from '../common/errors.js';
import {
  MessageReader, encodeGrpcMessage, parseGrpcTimeout, type MessageSink,
} from './framing.js';
import { REPLIED, type CallContext, type GrpcServerOptions, type RpcLog, type ServerCall, type StreamHandler, type UnaryHandler, type UnaryReply } from './rpc.js';
import { peerCommonName } from '../tls/peer-identity.js';
import type { MethodCounters } from './call-counters.js';
import { H2Code, H2Connection, H2Stream, type ConnOptions, type StreamHost } from './http2/connection.js';
import { GRPC_OK_TRAILERS, GRPC_RESPONSE_HEADERS, grpcTrailers, grpcTrailersOnly, type HeaderList } from './http2/hpack.js';

export type { ServerCall, StreamHandler, UnaryHandler } from './rpc.js';

/**
 * createH2GrpcServer's options, less the two that are node:http2 objects:
 * `fallback` (non-gRPC requests always get grpc-go's 415) and `createServer`
 * (TLS: terminate it yourself and pass the socket to acceptSocket).
 * From `settings` we honour maxConcurrentStreams, initialWindowSize,
 * maxFrameSize and maxHeaderListSize.
 */
export type RawGrpcServerOptions = GrpcServerOptions;

export interface RawGrpcServer {
  /** Serve HTTP/2 on this socket (the preface may already be unshifted back into it). */
  acceptSocket(socket: Socket): void;
  /**
   * For listenShared(addr, server.http2, h1): only emit('connection', socket)
   * is meaningful (it calls acceptSocket). Typed as node's server so callers
   * of createH2GrpcServer compile unchanged.
   */
  readonly http2: http2.Http2Server;
  /** Open HTTP/2 connections. */
  readonly sessionCount: number;
  /** GOAWAY to every connection, wait up to graceMs for in-flight calls, then destroy what is left. */
  close(graceMs?: number): Promise<void>;
}

const MAX_STREAMS = 0xffffffff;

const enum Kind { Unary, Stream, Unimplemented }

interface Route {
  kind: Kind;
  unary: UnaryHandler | null;
  stream: StreamHandler | null;
  counters: MethodCounters | null;
}

/**
 * One call: the HTTP/2 stream plus the unary call state (streaming calls hang a
 * StreamCall on it). A unary handler gets the stream itself as its CallContext:
 * no context object per call.
 */
class GrpcStream extends H2Stream implements MessageSink, CallContext, UnaryReply {
  handler: UnaryHandler | null = null;
  call: StreamCall | null = null;
  reader: MessageReader | null = null;
  encoding: string | undefined = undefined;
  /** The `token` (or `authorization`) metadata, for auth. */
  token: string | undefined = undefined;
  /** Unary: the handler has been called (or the call failed before that). */
  dispatched = false;
  /** Unary: the response (or error) has been written, or the call was abandoned. */
  finished = false;
  timer: NodeJS.Timeout | null = null;
  ac: AbortController | null = null;
  core: Core | null = null;
  /** Unary: the method's counters, from the route. */
  counters: MethodCounters | null = null;
  /** Unary: counted as started (the handler was called), not yet as handled. */
  counting: MethodCounters | null = null;

  /** The call ended with this status: counted once, if its handler was called. */
  counted(code: number): void {
    const c = this.counting;
    if (c === null) return;
    this.counting = null;
    c.ended(code);
  }

  onGrpcMessage(msg: Buffer): void {
    this.core!.dispatch(this, msg);
  }

  // Cancellation tracking costs an AbortController: made only when a handler
  // (lock, campaign) looks at the signal; already aborted if the call ended first.
  get signal(): AbortSignal {
    if (this.ac === null) {
      this.ac = new AbortController();
      if (this.finished) this.ac.abort();
    }
    return this.ac.signal;
  }

  get peerCommonName(): string | null { return peerCommonName(this.conn.socket); }

  /** A unary handler answers straight to the stream (CallContext.reply). */
  get reply(): UnaryReply { return this; }
  resolve(body: Buffer): void { this.core!.succeed(this, body); }
  reject(err: unknown): void { this.core!.fail(this, this.core!.classify(err)); }
}

class Core implements StreamHost {
  readonly routes = new Map<string, Route>();
  readonly services = new Set<string>();
  readonly conns = new Set<H2Connection>();
  private flushList: H2Connection[] = [];
  private spare: H2Connection[] = [];
  private flushScheduled = false;
  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const list = this.flushList;
    this.flushList = this.spare;
    this.spare = list;
    for (let i = 0; i < list.length; i++) list[i]!.flush();
    list.length = 0;
  };

  constructor(readonly maxRecvBytes: number, readonly log: RpcLog | undefined) {}

  // ---------------------------------------------------------- StreamHost

  newStream(conn: H2Connection, id: number): H2Stream {
    const st = new GrpcStream(conn, id);
    st.core = this;
    return st;
  }

  needFlush(conn: H2Connection): void {
    conn.dirty = true;
    this.flushList.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  onClose(conn: H2Connection): void {
    this.conns.delete(conn);
  }

  onProtocolError(_conn: H2Connection, code: H2Code, message: string): void {
    if (code === H2Code.NO_ERROR) return;
    this.log?.warn({ code, message }, 'http2 connection error');
  }

  onRequest(h2s: H2Stream, fields: HeaderList): void {
    const st = h2s as GrpcStream;
    let path = '';
    let ct: string | undefined;
    let timeout: string | undefined;
    const names = fields.names;
    const values = fields.values;
    for (let i = 0; i < fields.count; i++) {
      const n = names[i]!;
      if (n === ':path') path = values[i]!;
      else if (n === 'content-type') ct = values[i]!;
      else if (n === 'grpc-timeout') timeout = values[i]!;
      else if (n === 'grpc-encoding') st.encoding = values[i]!;
      else if (n === 'token') st.token = values[i]!;
      else if (n === 'authorization' && st.token === undefined) st.token = values[i]!;
    }
    const conn = st.conn;
    if (!isGrpcContentType(ct)) {
      const msg = encodeGrpcMessage(`invalid gRPC request content-type ${JSON.stringify(ct ?? '')}`);
      conn.writeHeaders(st, grpcTrailersOnly(415, GrpcCode.INTERNAL, msg), true);
      st.dispatched = st.finished = true;
      return;
    }
    const route = this.routes.get(path);
    if (route === undefined || route.kind === Kind.Unimplemented) {
      this.trailersOnly(st, route === undefined ? this.unknownPath(path) : Errors.unimplemented(path));
      return;
    }
    const timeoutMs = parseGrpcTimeout(timeout);
    if (Number.isNaN(timeoutMs)) {
      this.trailersOnly(st, Errors.malformedTimeout(String(timeout)));
      return;
    }
    if (route.kind === Kind.Unary) {
      st.handler = route.unary;
      st.counters = route.counters;
      if (timeoutMs >= 0) st.timer = setTimeout(unaryOnDeadline, timeoutMs, st);
      return;
    }
    const call = new StreamCall(this, st, fields.toObject() as IncomingHttpHeaders, path, route.counters);
    st.call = call;
    st.dispatched = true;
    if (timeoutMs >= 0) call.timer = setTimeout(streamOnDeadline, timeoutMs, call);
    try {
      route.stream!(call);
    } catch (err) {
      call.end(this.classify(err));
    }
  }

  onData(h2s: H2Stream, chunk: Buffer): void {
    const st = h2s as GrpcStream;
    const call = st.call;
    if (call !== null) {
      if (call.finished) return;
      const err = call.reader.push(chunk, call);
      if (err !== null) call.end(err);
      return;
    }
    if (st.dispatched) return;   // grpc-go reads one message for a unary call and ignores the rest
    let reader = st.reader;
    if (reader === null) {
      // Fast path: the whole request in one DATA frame, uncompressed.
      const n = chunk.length;
      if (n >= 5 && chunk[0] === 0) {
        const len = chunk.readUInt32BE(1);
        if (len === n - 5 && len <= this.maxRecvBytes) {
          this.dispatch(st, chunk.subarray(5));
          return;
        }
      }
      reader = st.reader = new MessageReader(this.maxRecvBytes);
      reader.encoding = st.encoding;
    }
    const err = reader.push(chunk, st);
    if (err !== null) this.fail(st, err);
  }

  onRemoteEnd(h2s: H2Stream): void {
    const st = h2s as GrpcStream;
    const call = st.call;
    if (call !== null) {
      if (call.finished) return;
      if (call.reader.partial) { call.end(Errors.truncatedMessage()); return; }
      call.clientEnd();
      return;
    }
    if (st.dispatched) return;
    this.fail(st, st.reader !== null && st.reader.partial ? Errors.truncatedMessage() : Errors.missingMessage());
  }

  onAbort(h2s: H2Stream): void {
    const st = h2s as GrpcStream;
    if (st.call !== null) { st.call.cancel(); return; }
    if (st.finished) return;
    st.finished = st.dispatched = true;
    if (st.timer !== null) { clearTimeout(st.timer); st.timer = null; }
    st.counted(GrpcCode.CANCELLED);
    st.ac?.abort();
  }

  onWritable(h2s: H2Stream): void {
    const call = (h2s as GrpcStream).call;
    if (call === null || call.finished) return;
    const cb = call.drainCb;
    if (cb !== null) {
      try { cb(); } catch (err) { call.end(this.classify(err)); }
    }
  }

  // ---------------------------------------------------------- unary

  dispatch(st: GrpcStream, msg: Buffer): void {
    if (st.dispatched) return;
    st.dispatched = true;
    const handler = st.handler!;
    if (st.counters !== null) {
      st.counters.started++;
      st.counting = st.counters;
    }
    let result: Promise<Buffer> | Buffer | typeof REPLIED;
    try {
      result = handler(msg, st);
    } catch (err) {
      this.fail(st, this.classify(err));
      return;
    }
    if (result === REPLIED) return;
    if (result instanceof Uint8Array) this.succeed(st, result);
    else result.then((body) => this.succeed(st, body), (err: unknown) => this.fail(st, this.classify(err)));
  }

  succeed(st: GrpcStream, body: Uint8Array): void {
    if (st.finished) return;
    st.finished = true;
    if (st.timer !== null) { clearTimeout(st.timer); st.timer = null; }
    st.counted(GrpcCode.OK);
    st.conn.writeUnary(st, GRPC_RESPONSE_HEADERS, body, GRPC_OK_TRAILERS);
  }

  fail(st: GrpcStream, err: EtcdError): void {
    if (st.finished) return;
    st.finished = st.dispatched = true;
    if (st.timer !== null) { clearTimeout(st.timer); st.timer = null; }
    st.counted(err.code);
    this.trailersOnly(st, err);
  }

  trailersOnly(st: GrpcStream, err: EtcdError): void {
    st.dispatched = st.finished = true;
    st.conn.writeHeaders(st, grpcTrailersOnly(200, err.code, encodeGrpcMessage(err.message)), true);
  }

  // ---------------------------------------------------------- errors

  /** Turns anything a handler threw into the status to answer. */
  classify(err: unknown): EtcdError {
    if (err instanceof EtcdError) return err;
    if (err instanceof ProtoDecodeError) return Errors.malformed(err.message);
    this.log?.error({ err }, 'unexpected error serving a gRPC request');
    return Errors.unknown(err instanceof Error ? err.message : String(err));
  }

  /** grpc-go's answer for a path with no registered method. */
  unknownPath(path: string): EtcdError {
    const sm = path.startsWith('/') ? path.slice(1) : path;
    const pos = sm.lastIndexOf('/');
    if (pos < 0) return Errors.malformedMethod(path);
    const service = sm.slice(0, pos);
    const method = sm.slice(pos + 1);
    if (this.services.has(service)) {
      return Errors.unknownMethod(method, service);
    }
    return Errors.unknownService(service);
  }
}

function unaryOnDeadline(st: GrpcStream): void {
  st.timer = null;
  if (st.finished) return;
  st.core!.fail(st, Errors.deadlineExceeded());
  st.ac?.abort();
}

function streamOnDeadline(call: StreamCall): void {
  call.deadline();
}

/** application/grpc, application/grpc+proto, application/grpc;charset=... (grpc-go's test). */
function isGrpcContentType(ct: string | undefined): boolean {
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  if (ct.length === 16) return true;
  const c = ct.charCodeAt(16);
  return c === 0x2b /* + */ || c === 0x3b /* ; */;
}

function serviceOf(path: string): string {
  return path.slice(1, path.lastIndexOf('/'));
}

// ---------------------------------------------------------------- streaming

class StreamCall implements ServerCall, MessageSink {
  readonly reader: MessageReader;
  finished = false;
  timer: NodeJS.Timeout | null = null;
  drainCb: (() => void) | null = null;
  private headersSent = false;
  private clientEnded = false;
  private queue: Buffer[] | null = null;
  private messageCb: ((msg: Buffer) => void) | null = null;
  private endCb: (() => void) | null = null;
  private cancelCb: (() => void) | null = null;

  constructor(readonly core: Core, readonly st: GrpcStream, readonly metadata: IncomingHttpHeaders,
    readonly path: string, private readonly counters: MethodCounters | null) {
    this.reader = new MessageReader(core.maxRecvBytes);
    this.reader.encoding = st.encoding;
    if (counters !== null) counters.started++;
  }

  get peerCommonName(): string | null { return peerCommonName(this.st.conn.socket); }

  onMessage(cb: (msg: Buffer) => void): void {
    this.messageCb = cb;
    const q = this.queue;
    if (q !== null) {
      this.queue = null;
      for (const m of q) this.deliver(m);
    }
    if (this.clientEnded) this.deliverEnd();
  }

  onEnd(cb: () => void): void {
    this.endCb = cb;
    if (this.clientEnded && this.queue === null && this.messageCb !== null) this.deliverEnd();
  }

  onCancel(cb: () => void): void { this.cancelCb = cb; }
  onDrain(cb: () => void): void { this.drainCb = cb; }
  pause(): void { this.st.conn.pauseStream(this.st); }
  resume(): void { this.st.conn.resumeStream(this.st); }

  write(msg: Uint8Array): boolean {
    const st = this.st;
    if (this.finished || st.closed) return false;
    const conn = st.conn;
    if (!this.headersSent) {
      this.headersSent = true;
      conn.writeHeaders(st, GRPC_RESPONSE_HEADERS, false);
    }
    conn.writeMessage(st, msg);
    if (!conn.backedUp(st)) return true;
    conn.waitDrain(st);
    return false;
  }

  end(err?: EtcdError | null): void {
    if (this.finished) return;
    this.finished = true;
    this.counters?.ended(err ? err.code : GrpcCode.OK);
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const st = this.st;
    if (st.closed) return;
    const conn = st.conn;
    if (!this.headersSent) {
      this.headersSent = true;
      if (err) {
        conn.writeHeaders(st, grpcTrailersOnly(200, err.code, encodeGrpcMessage(err.message)), true);
        return;
      }
      conn.writeHeaders(st, GRPC_RESPONSE_HEADERS, false);
    }
    conn.writeHeaders(st, err ? grpcTrailers(err.code, encodeGrpcMessage(err.message)) : GRPC_OK_TRAILERS, true);
  }

  onGrpcMessage(msg: Buffer): void {
    if (this.messageCb === null) (this.queue ??= []).push(msg);
    else this.deliver(msg);
  }

  private deliver(msg: Buffer): void {
    if (this.finished) return;
    try {
      this.messageCb!(msg);
    } catch (err) {
      this.end(this.core.classify(err));
    }
  }

  clientEnd(): void {
    this.clientEnded = true;
    if (this.queue === null && this.messageCb !== null) this.deliverEnd();
  }

  private deliverEnd(): void {
    const cb = this.endCb;
    if (cb === null || this.finished) return;
    this.endCb = null;
    try {
      cb();
    } catch (err) {
      this.end(this.core.classify(err));
    }
  }

  /** The stream went away without our end(): the client cancelled or the connection dropped. */
  cancel(): void {
    if (this.finished) return;
    this.finished = true;
    this.counters?.ended(GrpcCode.CANCELLED);
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const cb = this.cancelCb;
    if (cb === null) return;
    try {
      cb();
    } catch (err) {
      this.core.log?.error({ err }, 'gRPC stream cancel callback threw');
    }
  }

  deadline(): void {
    this.timer = null;
    if (this.finished) return;
    const cb = this.cancelCb;
    this.end(Errors.deadlineExceeded());
    if (cb !== null) {
      try { cb(); } catch (err) { this.core.log?.error({ err }, 'gRPC stream cancel callback threw'); }
    }
  }
}

// ---------------------------------------------------------------- server

/** The emitter listenShared hands sockets to: 'connection' calls accept. */
class ConnectionTarget extends EventEmitter {
  constructor(accept: (socket: Socket) => void) {
    super();
    this.on('connection', accept);
  }
}

export function createRawGrpcServer(opts: RawGrpcServerOptions): RawGrpcServer {
  if (!(opts.maxRecvBytes > 0)) throw new Error('createRawGrpcServer: maxRecvBytes must be > 0');
  const core = new Core(opts.maxRecvBytes, opts.log);
  const known = opts.knownMethods ?? listServices().flatMap((s) => s.methods.map((m) => m.path));
  const counters = (p: string): MethodCounters | null => opts.calls?.of(p) ?? null;
  for (const p of known) {
    core.routes.set(p, { kind: Kind.Unimplemented, unary: null, stream: null, counters: null });
    core.services.add(serviceOf(p));
  }
  for (const [p, h] of opts.unary) {
    core.routes.set(p, { kind: Kind.Unary, unary: h, stream: null, counters: counters(p) });
    core.services.add(serviceOf(p));
  }
  for (const [p, h] of opts.streams ?? []) {
    core.routes.set(p, { kind: Kind.Stream, unary: null, stream: h, counters: counters(p) });
    core.services.add(serviceOf(p));
  }
  const s = opts.settings ?? {};
  const connOpts: ConnOptions = {
    maxConcurrentStreams: s.maxConcurrentStreams ?? MAX_STREAMS,
    initialWindow: s.initialWindowSize ?? 1024 * 1024,
    connWindow: opts.connectionWindowBytes ?? 16 * 1024 * 1024,
    maxFrameSize: s.maxFrameSize ?? 16384,
    maxHeaderListSize: s.maxHeaderListSize ?? 64 * 1024,
    maxBufferedBytes: (opts.maxSessionMemoryMB ?? 256) * 1024 * 1024,
  };
  let closing = false;
  const onSocketError = (err: NodeJS.ErrnoException) => {
    // A peer that vanishes mid-connection is routine, not worth a warning.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
    opts.log?.warn({ err }, 'http2 socket error');
  };

  const acceptSocket = (socket: Socket): void => {
    if (closing) { socket.destroy(); return; }
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    const conn = new H2Connection(socket, core, connOpts);
    core.conns.add(conn);
    socket.on('data', (chunk: Buffer) => conn.onBytes(chunk));
    socket.on('drain', () => conn.onSocketDrain());
    socket.on('error', onSocketError);
    socket.on('close', () => conn.onSocketClose());
    // listenShared paused the socket to unshift the preface; reading starts here.
    socket.resume();
  };

  return {
    acceptSocket,
    http2: new ConnectionTarget(acceptSocket) as unknown as http2.Http2Server,
    get sessionCount() { return core.conns.size; },
    close(graceMs = 1000): Promise<void> {
      closing = true;
      return new Promise<void>((resolve) => {
        if (core.conns.size === 0) { resolve(); return; }
        const timer = setTimeout(() => { for (const c of core.conns) c.socket.destroy(); }, graceMs);
        timer.unref();
        let left = core.conns.size;
        const done = () => { if (--left === 0) { clearTimeout(timer); resolve(); } };
        for (const c of [...core.conns]) {
          c.socket.once('close', done);
          c.shutdown();
        }
      });
    },
  };
}
