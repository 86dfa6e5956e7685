// A lean gRPC server on node:http2 (h2c prior knowledge, as grpc-go and
// grpc-js clients use with insecure credentials). It replaces grpc-js on the
// hot path: grpc-js spends ~85-150 us of main-thread CPU per unary call, this
// spends what node:http2 itself costs plus a few microseconds.
//
// What it does per request: checks content-type, finds the route with one
// Map lookup, reads the 5-byte length-prefixed message(s) from DATA, calls
// the handler, and answers HEADERS + DATA + trailers (or a trailers-only
// response for an error). No per-call closures on the unary path except the
// two a returned Promise needs: per-call state lives in one object hung on
// the stream, and the stream listeners are shared functions that find it
// through `this`.
//
// Status words follow grpc-go (the server etcd runs), because etcd clients
// compare error text: "unknown service X", "unknown method Y for service X",
// "grpc: received message larger than max (N vs. M)".

import http2 from 'node:http2';
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { listServices } from '../../proto/registry.js';
import { ProtoDecodeError } from '../../proto/wire.js';
import { EtcdError, Errors, GrpcCode } from '../errors.js';
import {
  MessageReader, encodeGrpcMessage, frameMessage, messagePrefix, missingMessage,
  parseGrpcTimeout, truncatedMessage, type MessageSink,
} from './framing.js';

/** A unary handler gets the raw request bytes and returns raw response bytes. Throw EtcdError for a status. */
export type UnaryHandler = (request: Buffer, ctx?: { signal: AbortSignal }) => Promise<Buffer> | Buffer;

/**
 * One streaming call (server streaming or bidi), as its handler sees it.
 * Register callbacks synchronously inside the handler: messages that arrive
 * before onMessage is set are queued (bounded by the peer's flow-control
 * window, since nothing is read from the socket faster than HTTP/2 allows).
 */
export interface ServerCall {
  readonly path: string;
  /** The request headers (metadata), as node:http2 parsed them. */
  readonly metadata: IncomingHttpHeaders;
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
export interface H2Log {
  error(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

export interface H2GrpcServerOptions {
  /** Unary handlers by gRPC path, e.g. '/etcdserverpb.KV/Put'. */
  unary: Map<string, UnaryHandler>;
  /** Streaming handlers (server streaming and bidi) by gRPC path. */
  streams?: Map<string, StreamHandler>;
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED (grpc-go's check). */
  maxRecvBytes: number;
  log?: H2Log;
  /**
   * Methods that exist but have no handler: answered UNIMPLEMENTED "etsd: X is
   * not implemented yet" (as the grpc-js server does). Their services also
   * count as known for the "unknown method Y for service X" wording.
   * Default: every method of src/proto (registry listServices()).
   */
  knownMethods?: Iterable<string>;
  /** Extra HTTP/2 SETTINGS, merged over ours. */
  settings?: http2.Settings;
  /** Per-session memory cap of node:http2 (MB), including queued response bytes. Default 256. */
  maxSessionMemoryMB?: number;
  /** Connection-level receive window we advertise (bytes). Default 16 MiB. */
  connectionWindowBytes?: number;
  /** HTTP/2 requests that are not gRPC (content-type not application/grpc*). Default: 415 as grpc-go. */
  fallback?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
  /** The TLS seam: build the node:http2 server (default http2.createServer, h2c). */
  createServer?: (options: http2.ServerOptions) => http2.Http2Server | http2.Http2SecureServer;
}

export interface H2GrpcServer {
  /** The node:http2 server. Give it connections with listenShared() or listen on it directly. */
  readonly http2: http2.Http2Server | http2.Http2SecureServer;
  /** Open HTTP/2 sessions (connections). */
  readonly sessionCount: number;
  /** GOAWAY to every session, wait up to graceMs for in-flight calls, then destroy what is left. */
  close(graceMs?: number): Promise<void>;
}

const MAX_STREAMS = 0xffffffff;
/** Bodies up to this size are copied behind their prefix (one write); larger ones go as two corked writes. */
const COPY_LIMIT = 64 * 1024;

const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc' };
const WITH_TRAILERS = { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions;
const END_STREAM = { endStream: true, sendDate: false } as http2.ServerStreamResponseOptions;
const OK_TRAILERS: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };

const enum Kind { Unary, Stream, Unimplemented }

interface Route {
  kind: Kind;
  unary: UnaryHandler | null;
  stream: StreamHandler | null;
}

const kCall = Symbol('etsd.grpcCall');
type CallStream = ServerHttp2Stream & { [kCall]?: UnaryCall | StreamCall };

/** The shared, per-server state every call points at. */
class Core {
  readonly routes = new Map<string, Route>();
  readonly services = new Set<string>();
  constructor(readonly maxRecvBytes: number, readonly log: H2Log | undefined) {}

  /** Turns anything a handler threw into the status to answer. */
  classify(err: unknown): EtcdError {
    if (err instanceof EtcdError) return err;
    if (err instanceof ProtoDecodeError) return Errors.malformed(err.message);
    this.log?.error({ err }, 'unexpected error serving a gRPC request');
    return new EtcdError(GrpcCode.UNKNOWN, err instanceof Error ? err.message : String(err));
  }

  /** grpc-go's answer for a path with no registered method. */
  unknownPath(path: string): EtcdError {
    const sm = path.startsWith('/') ? path.slice(1) : path;
    const pos = sm.lastIndexOf('/');
    if (pos < 0) return new EtcdError(GrpcCode.UNIMPLEMENTED, `malformed method name: ${JSON.stringify(path)}`);
    const service = sm.slice(0, pos);
    const method = sm.slice(pos + 1);
    if (this.services.has(service)) {
      return new EtcdError(GrpcCode.UNIMPLEMENTED, `unknown method ${method} for service ${service}`);
    }
    return new EtcdError(GrpcCode.UNIMPLEMENTED, `unknown service ${service}`);
  }
}

function serviceOf(path: string): string {
  return path.slice(1, path.lastIndexOf('/'));
}

export function createH2GrpcServer(opts: H2GrpcServerOptions): H2GrpcServer {
  if (!(opts.maxRecvBytes > 0)) throw new Error('createH2GrpcServer: maxRecvBytes must be > 0');
  const core = new Core(opts.maxRecvBytes, opts.log);
  const known = opts.knownMethods ?? listServices().flatMap((s) => s.methods.map((m) => m.path));
  for (const p of known) {
    core.routes.set(p, { kind: Kind.Unimplemented, unary: null, stream: null });
    core.services.add(serviceOf(p));
  }
  for (const [p, h] of opts.unary) {
    core.routes.set(p, { kind: Kind.Unary, unary: h, stream: null });
    core.services.add(serviceOf(p));
  }
  for (const [p, h] of opts.streams ?? []) {
    core.routes.set(p, { kind: Kind.Stream, unary: null, stream: h });
    core.services.add(serviceOf(p));
  }

  const connWindow = opts.connectionWindowBytes ?? 16 * 1024 * 1024;
  const serverOptions: http2.ServerOptions = {
    maxSessionMemory: opts.maxSessionMemoryMB ?? 256,
    // Requests carry at most maxRecvBytes of message; headers are small.
    maxSendHeaderBlockLength: 64 * 1024,
    settings: {
      maxConcurrentStreams: MAX_STREAMS,
      initialWindowSize: 1024 * 1024,
      maxHeaderListSize: 64 * 1024,
      enablePush: false,
      ...opts.settings,
    },
  };
  const server = (opts.createServer ?? http2.createServer)(serverOptions);
  const sessions = new Set<ServerHttp2Session>();
  const fallback = opts.fallback ?? answer415;
  const onSessionError = (err: NodeJS.ErrnoException) => {
    // A peer that vanishes mid-connection is routine, not worth a warning.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
    opts.log?.warn({ err }, 'http2 session error');
  };

  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', onSessionError);
    try {
      session.setLocalWindowSize(connWindow);
    } catch {
      // The session died before its settings went out; nothing to tune.
    }
  });
  server.on('sessionError', onSessionError);

  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', ignore);
    const ct = headers['content-type'];
    if (!isGrpcContentType(ct)) {
      fallback(stream, headers);
      return;
    }
    const path = headers[':path'] ?? '';
    const route = core.routes.get(path);
    if (route === undefined || route.kind === Kind.Unimplemented) {
      const err = route === undefined ? core.unknownPath(path) : Errors.unimplemented(path);
      rejectEarly(stream, err);
      return;
    }
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
    if (Number.isNaN(timeoutMs)) {
      rejectEarly(stream, new EtcdError(GrpcCode.INTERNAL, `transport: malformed grpc-timeout: ${String(headers['grpc-timeout'])}`));
      return;
    }
    if (route.kind === Kind.Unary) {
      const call = new UnaryCall(core, stream, headers, route.unary!);
      (stream as CallStream)[kCall] = call;
      stream.on('data', unaryOnData);
      stream.on('end', unaryOnEnd);
      if (timeoutMs >= 0) call.timer = setTimeout(unaryOnDeadline, timeoutMs, call);
    } else {
      const call = new StreamCall(core, stream, headers, path);
      (stream as CallStream)[kCall] = call;
      stream.on('data', streamOnData);
      stream.on('end', streamOnEnd);
      stream.on('close', streamOnClose);
      stream.on('drain', streamOnDrain);
      stream.on('wantTrailers', streamOnWantTrailers);
      if (timeoutMs >= 0) call.timer = setTimeout(streamOnDeadline, timeoutMs, call);
      try {
        route.stream!(call);
      } catch (err) {
        call.end(core.classify(err));
      }
    }
  });

  return {
    http2: server,
    get sessionCount() { return sessions.size; },
    close(graceMs = 1000): Promise<void> {
      return new Promise<void>((resolve) => {
        if (server.listening) server.close();
        if (sessions.size === 0) { resolve(); return; }
        let left = sessions.size;
        const timer = setTimeout(() => { for (const s of sessions) s.destroy(); }, graceMs);
        timer.unref();
        const done = () => { if (--left === 0) { clearTimeout(timer); resolve(); } };
        for (const s of [...sessions]) {
          if (s.closed || s.destroyed) { done(); continue; }
          s.once('close', done);
          s.close();
        }
      });
    },
  };
}

function ignore(): void {}

/** application/grpc, application/grpc+proto, application/grpc;charset=... (grpc-go's test). */
function isGrpcContentType(ct: string | undefined): boolean {
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  if (ct.length === 16) return true;
  const c = ct.charCodeAt(16);
  return c === 0x2b /* + */ || c === 0x3b /* ; */;
}

function answer415(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({
    ':status': 415,
    'content-type': 'application/grpc',
    'grpc-status': String(GrpcCode.INTERNAL),
    'grpc-message': encodeGrpcMessage(`invalid gRPC request content-type ${JSON.stringify(headers['content-type'] ?? '')}`),
  }, END_STREAM);
  if (clientStillSending(stream)) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/** The client has not half-closed (END_STREAM not received). Error paths only: state asks nghttp2. */
function clientStillSending(stream: ServerHttp2Stream): boolean {
  if (stream.readableEnded || stream.destroyed) return false;
  return stream.state.remoteClose !== 1;
}

/** Trailers-only error response; resets our side of a stream the client is still sending on. */
function sendTrailersOnly(stream: ServerHttp2Stream, err: EtcdError): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(err.code),
    'grpc-message': encodeGrpcMessage(err.message),
  }, END_STREAM);
  // grpc-go sends RST_STREAM(NO_ERROR) after its status when the client has
  // not half-closed, so a client still uploading stops. node sends it once
  // the HEADERS above are flushed.
  if (clientStillSending(stream)) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

function rejectEarly(stream: ServerHttp2Stream, err: EtcdError): void {
  sendTrailersOnly(stream, err);
  stream.resume();   // drain anything the client still sends before the reset lands
}

function errorTrailers(err: EtcdError): http2.OutgoingHttpHeaders {
  return { 'grpc-status': String(err.code), 'grpc-message': encodeGrpcMessage(err.message) };
}

/** Writes one framed message; large bodies avoid the copy with two corked writes (one writev). */
function writeMessage(stream: ServerHttp2Stream, body: Uint8Array, end: boolean): boolean {
  if (body.length <= COPY_LIMIT) {
    const framed = frameMessage(body);
    if (end) { stream.end(framed); return true; }
    return stream.write(framed);
  }
  stream.cork();
  stream.write(messagePrefix(body.length));
  if (end) { stream.end(body); return true; }
  const ok = stream.write(body);
  stream.uncork();
  return ok;
}

// ---------------------------------------------------------------- unary

class UnaryCall implements MessageSink {
  reader: MessageReader | null = null;
  /** The handler has been called (or the call failed before that). */
  dispatched = false;
  /** The response (or error) has been written or the call was abandoned. */
  finished = false;
  timer: NodeJS.Timeout | null = null;

  constructor(readonly core: Core, readonly stream: ServerHttp2Stream, readonly headers: IncomingHttpHeaders,
    readonly handler: UnaryHandler) {}

  onGrpcMessage(msg: Buffer): void {
    if (this.dispatched) return;   // grpc-go reads one message for a unary call and ignores the rest
    this.dispatched = true;
    let result: Promise<Buffer> | Buffer;
    // Only handlers that take a context (lock, campaign) pay for cancellation tracking.
    let ctx: { signal: AbortSignal } | undefined;
    if (this.handler.length >= 2) {
      const ac = new AbortController();
      this.stream.once('close', () => { if (!this.finished) ac.abort(); });
      ctx = { signal: ac.signal };
    }
    try {
      result = this.handler(msg, ctx);
    } catch (err) {
      this.fail(this.core.classify(err));
      return;
    }
    if (result instanceof Uint8Array) this.succeed(result);
    else result.then((body) => this.succeed(body), (err: unknown) => this.fail(this.core.classify(err)));
  }

  succeed(body: Uint8Array): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    s.respond(RESPONSE_HEADERS, WITH_TRAILERS);
    s.on('wantTrailers', unaryOnWantTrailers);
    writeMessage(s, body, true);
  }

  fail(err: EtcdError): void {
    if (this.finished) return;
    this.finished = true;
    this.dispatched = true;
    if (this.timer !== null) clearTimeout(this.timer);
    sendTrailersOnly(this.stream, err);
  }
}

function unaryOnData(this: CallStream, chunk: Buffer): void {
  const call = this[kCall] as UnaryCall;
  if (call.dispatched) return;
  let reader = call.reader;
  if (reader === null) {
    // Fast path: the whole request in one DATA chunk, uncompressed.
    const n = chunk.length;
    if (n >= 5 && chunk[0] === 0) {
      const len = chunk.readUInt32BE(1);
      if (len === n - 5 && len <= call.core.maxRecvBytes) {
        call.onGrpcMessage(chunk.subarray(5));
        return;
      }
    }
    reader = call.reader = new MessageReader(call.core.maxRecvBytes);
    const enc = call.headers['grpc-encoding'];
    reader.encoding = typeof enc === 'string' ? enc : undefined;
  }
  const err = reader.push(chunk, call);
  if (err !== null) call.fail(err);
}

function unaryOnEnd(this: CallStream): void {
  const call = this[kCall] as UnaryCall;
  if (call.dispatched) return;
  call.fail(call.reader !== null && call.reader.partial ? truncatedMessage() : missingMessage());
}

function unaryOnWantTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

function unaryOnDeadline(call: UnaryCall): void {
  call.timer = null;
  call.fail(new EtcdError(GrpcCode.DEADLINE_EXCEEDED, 'context deadline exceeded'));
}

// ---------------------------------------------------------------- streaming

class StreamCall implements ServerCall, MessageSink {
  readonly reader: MessageReader;
  finished = false;
  timer: NodeJS.Timeout | null = null;
  private headersSent = false;
  private clientEnded = false;
  private trailers: http2.OutgoingHttpHeaders = OK_TRAILERS;
  private queue: Buffer[] | null = null;
  private messageCb: ((msg: Buffer) => void) | null = null;
  private endCb: (() => void) | null = null;
  private cancelCb: (() => void) | null = null;
  drainCb: (() => void) | null = null;

  constructor(readonly core: Core, readonly stream: ServerHttp2Stream, readonly metadata: IncomingHttpHeaders,
    readonly path: string) {
    this.reader = new MessageReader(core.maxRecvBytes);
    const enc = metadata['grpc-encoding'];
    this.reader.encoding = typeof enc === 'string' ? enc : undefined;
  }

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
  pause(): void { this.stream.pause(); }
  resume(): void { this.stream.resume(); }

  write(msg: Uint8Array): boolean {
    const s = this.stream;
    if (this.finished || s.destroyed || s.closed) return false;
    if (!this.headersSent) {
      this.headersSent = true;
      s.respond(RESPONSE_HEADERS, WITH_TRAILERS);
    }
    return writeMessage(s, msg, false);
  }

  end(err?: EtcdError | null): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    if (!this.headersSent) {
      this.headersSent = true;
      if (err) sendTrailersOnly(s, err);
      else {
        s.respond(RESPONSE_HEADERS, WITH_TRAILERS);
        s.end();
      }
      return;
    }
    if (err) this.trailers = errorTrailers(err);
    s.end();
  }

  sendTrailers(): void {
    this.stream.sendTrailers(this.trailers);
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
    this.end(new EtcdError(GrpcCode.DEADLINE_EXCEEDED, 'context deadline exceeded'));
    if (cb !== null) {
      try { cb(); } catch (err) { this.core.log?.error({ err }, 'gRPC stream cancel callback threw'); }
    }
  }
}

function streamOnData(this: CallStream, chunk: Buffer): void {
  const call = this[kCall] as StreamCall;
  if (call.finished) return;
  const err = call.reader.push(chunk, call);
  if (err !== null) call.end(err);
}

function streamOnEnd(this: CallStream): void {
  const call = this[kCall] as StreamCall;
  if (call.finished) return;
  if (call.reader.partial) { call.end(truncatedMessage()); return; }
  call.clientEnd();
}

function streamOnClose(this: CallStream): void {
  (this[kCall] as StreamCall).cancel();
}

function streamOnDrain(this: CallStream): void {
  const call = this[kCall] as StreamCall;
  const cb = call.drainCb;
  if (cb !== null && !call.finished) cb();
}

function streamOnWantTrailers(this: CallStream): void {
  (this[kCall] as StreamCall).sendTrailers();
}

function streamOnDeadline(call: StreamCall): void {
  call.deadline();
}

