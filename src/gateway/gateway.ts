// etcd's HTTP/JSON gateway on the client port (HTTP/1.1 side of the shared
// listener). A JSON request becomes the protobuf request bytes and goes to
// the very handler map the gRPC server serves, so the gRPC path pays nothing
// for it; the response bytes become JSON again. Unlike etcd, no loopback gRPC
// connection sits in between.
// Bounds: a unary body or one streamed request value is read up to
// maxRecvBytes * 2 (base64 and JSON grow the bytes by a third; the rest is
// slack); the encoded request is then held to maxRecvBytes, as gRPC holds it.

import { peerCommonName } from '../tls/peer-identity.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPLIED, type CallContext, type StreamHandler, type UnaryHandler } from '../grpc/rpc.js';
import { EtcdError, Errors, GrpcCode } from '../common/errors.js';
import { jsonToProto, lookupMessage, protoToJson } from './json-pb.js';
import { JsonIncomplete, JsonStreamReader, JsonSyntaxError, parseFirstValue, type JsonValue } from './json-text.js';
import { JsonRequestError } from './request-error.js';
import { gatewayPath, gatewayRoutes, type GatewayRoute } from './routes.js';
import { HttpCall } from './http-call.js';
import { StreamSlots } from './stream-slots.js';
import { replyError, replyJson, replyPlain } from './http-reply.js';

export interface GatewayOptions {
  /** The gRPC server's unary handlers, by gRPC path. */
  unary: Map<string, UnaryHandler>;
  /** The gRPC server's streaming handlers, by gRPC path. */
  streams: Map<string, StreamHandler>;
  /** The largest request message, as the gRPC server accepts it. */
  maxRecvBytes: number;
  log?: { error(obj: unknown, msg?: string): void };
  /** --max-concurrent-streams: gateway calls open at once (etcd's loopback connection limit); default unlimited. */
  maxConcurrentStreams?: number;
}

export interface Gateway {
  /** True when the path is the gateway's (/v3/, /v3beta/, /v3alpha/). */
  handles(urlPath: string): boolean;
  serve(req: IncomingMessage, res: ServerResponse): void;
}

const badRequest = (msg: string) => new EtcdError(GrpcCode.INVALID_ARGUMENT, msg);

/** A decode failure as grpc-gateway reports it (InvalidArgument, the decoder's words). */
function requestError(err: unknown): EtcdError | null {
  if (err instanceof JsonSyntaxError || err instanceof JsonRequestError) return badRequest(err.message);
  if (err instanceof JsonIncomplete) return badRequest('unexpected EOF');
  return null;
}

export function createGateway(opts: GatewayOptions): Gateway {
  const routes = gatewayRoutes();
  const slots = new StreamSlots(opts.maxConcurrentStreams ?? Infinity);
  const bodyCap = opts.maxRecvBytes * 2;
  const types = new Map<string, { req: ReturnType<typeof lookupMessage>; res: ReturnType<typeof lookupMessage> }>();
  const typesOf = (r: GatewayRoute) => {
    let t = types.get(r.grpcPath);
    if (t === undefined) {
      t = { req: lookupMessage(r.requestType), res: lookupMessage(r.responseType) };
      types.set(r.grpcPath, t);
    }
    return t;
  };
  const classify = (err: unknown): EtcdError => {
    if (err instanceof EtcdError) return err;
    opts.log?.error({ err }, 'unexpected error serving a gateway request');
    return new EtcdError(GrpcCode.UNKNOWN, err instanceof Error ? err.message : String(err));
  };
  const encode = (r: GatewayRoute, v: JsonValue | undefined): Buffer => {
    const bytes = jsonToProto(typesOf(r).req, v);
    if (bytes.length > opts.maxRecvBytes) throw Errors.messageTooLarge(bytes.length, opts.maxRecvBytes);
    return bytes;
  };

  /** Reads the whole body (bounded); null when it was too large (answered already). */
  const readBody = (req: IncomingMessage, res: ServerResponse, done: (text: string) => void): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > bodyCap) {
        over = true;
        replyError(res, Errors.messageTooLarge(size, opts.maxRecvBytes), true);
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { if (!over) done(Buffer.concat(chunks).toString('utf8')); });
  };

  /** The request body as protobuf, or null once a bad body has been answered with grpc-gateway's error. */
  const encodeOrAnswer = (r: GatewayRoute, text: string, res: ServerResponse): Buffer | null => {
    try {
      return encode(r, parseFirstValue(text));
    } catch (err) {
      const e = requestError(err);
      if (e === null) throw err;
      replyError(res, e, true);
      return null;
    }
  };

  const serveUnary = (r: GatewayRoute, req: IncomingMessage, res: ServerResponse): void => {
    readBody(req, res, (text) => {
      const bytes = encodeOrAnswer(r, text, res);
      if (bytes === null) return;
      const handler = opts.unary.get(r.grpcPath);
      if (handler === undefined) { replyError(res, Errors.unimplemented(r.grpcPath), false); return; }
      const ac = new AbortController();
      const onClose = () => { if (!res.writableFinished) ac.abort(); };
      res.on('close', onClose);
      // etcd 3.4's gateway passes the Authorization header on as the token; a TLS client's CN as its identity.
      const auth = req.headers['authorization'];
      const ctx: CallContext = {
        signal: ac.signal,
        ...(typeof auth === 'string' ? { token: auth } : {}),
        get peerCommonName(): string | null { return peerCommonName(req.socket); },
      };
      let pending: Promise<Buffer> | Buffer;
      try {
        const out = handler(bytes, ctx);
        // The gateway gives no ctx.reply, so no handler answers through it.
        if (out === REPLIED) throw new Error(`${r.grpcPath} answered through ctx.reply, which the gateway does not give`);
        pending = out;
      } catch (err) {
        replyError(res, classify(err), false);
        return;
      }
      Promise.resolve(pending).then((out) => {
        if (res.destroyed) return;
        replyJson(res, protoToJson(typesOf(r).res, out));
      }, (err: unknown) => {
        if (res.destroyed) return;
        replyError(res, classify(err), false);
      });
    });
  };

  const serveStream = (r: GatewayRoute, req: IncomingMessage, res: ServerResponse): void => {
    const handler = opts.streams.get(r.grpcPath);
    const resType = typesOf(r).res;
    const call = new HttpCall(req, res, {
      path: r.grpcPath,
      toJson: (msg) => protoToJson(resType, msg),
    });
    if (!r.requestStream) {
      // Server streaming: one request, read whole, decode errors answered before the call.
      readBody(req, res, (text) => {
        const bytes = encodeOrAnswer(r, text, res);
        if (bytes === null) return;
        if (handler === undefined) { call.end(Errors.unimplemented(r.grpcPath)); return; }
        handler(call);
        call.deliver(bytes);
        call.halfClose();
      });
      return;
    }
    if (handler === undefined) { call.end(Errors.unimplemented(r.grpcPath)); req.resume(); return; }
    // Bidi: each JSON value on the body is one request; a bad one ends the sending side,
    // as grpc-gateway's send loop stops at its first decode error. The call starts with
    // the first value (or the end of an empty body), as grpc-gateway's first handleSend:
    // a first value that does not decode is the plain decoder error, not a status, so
    // gRPC Unknown (HTTP 500) with the decoder's words.
    const reader = new JsonStreamReader(bodyCap);
    let started = false;
    let stopped = false;
    const start = () => { if (!started) { started = true; handler(call); } };
    const take = (values: () => JsonValue[]) => {
      if (stopped) return;
      try {
        for (const v of values()) {
          const bytes = encode(r, v);
          start();
          call.deliver(bytes);
        }
      } catch (err) {
        const e = err instanceof EtcdError ? err : requestError(err);
        if (e === null) throw err;
        stopped = true;
        if (started) { call.halfClose(); return; }
        started = true;
        replyError(res, e.code === GrpcCode.INVALID_ARGUMENT && !(err instanceof EtcdError) ? new EtcdError(GrpcCode.UNKNOWN, e.message) : e, true);
        req.resume();
      }
    };
    req.setEncoding('utf8');
    req.on('data', (text: string) => take(() => reader.push(text)));
    req.on('end', () => {
      take(() => reader.end());
      if (stopped) return;
      stopped = true;
      start();
      call.halfClose();
    });
  };

  return {
    handles: (urlPath) => gatewayPath(urlPath) !== null,
    serve: (req, res) => {
      const path = gatewayPath((req.url ?? '/').split('?')[0]!);
      const r = path === null ? undefined : routes.get(path);
      if (r === undefined) { replyPlain(res, 404); req.resume(); return; }
      if (req.method !== 'POST') { replyPlain(res, 405); req.resume(); return; }
      slots.acquire(res, () => {
        if (r.requestStream || r.responseStream) serveStream(r, req, res);
        else serveUnary(r, req, res);
      });
    },
  };
}
