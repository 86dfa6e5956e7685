import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log.js';
import { listServices } from '../proto/registry.js';
import { ProtoDecodeError } from '../proto/wire.js';
import { EtcdError, Errors, GrpcCode } from './errors.js';
import type { BidiStream, StreamHandler } from './stream.js';

/** What a long-running unary handler (lock, campaign) may watch: the client going away. */
export interface CallContext { signal: AbortSignal }

/** A unary handler gets the raw request bytes and returns raw response bytes. */
export type UnaryHandler = (request: Buffer, ctx?: CallContext) => Promise<Buffer> | Buffer;

/** A server-streaming handler: one request, many responses. */
export interface ServerStream {
  write(msg: Buffer): boolean;
  onEnd(cb: () => void): void;
  end(err?: EtcdError): void;
}
export type ServerStreamHandler = (request: Buffer, out: ServerStream) => void;

const identity = (b: Buffer) => b;

/** grpc-go's extra room above --max-request-bytes for the gRPC envelope (etcd: grpcOverheadBytes). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

export interface GrpcServerOptions { maxRequestBytes: number; log: Logger }

/**
 * Registers every service of our protos on a grpc-js server with raw-bytes
 * (de)serializers: the hot path never goes through a generic protobuf codec.
 * A method with no handler answers UNIMPLEMENTED naming the method.
 */
export function createGrpcServer(
  handlers: Map<string, UnaryHandler>, streams: Map<string, StreamHandler>, opts: GrpcServerOptions,
  serverStreams: Map<string, ServerStreamHandler> = new Map(),
): grpc.Server {
  const maxRecv = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const server = new grpc.Server({
    // grpc-js enforces a ceiling far above ours; the etcd-worded check is ours.
    'grpc.max_receive_message_length': Math.max(4 * maxRecv, 16 * 1024 * 1024),
    'grpc.max_send_message_length': -1,
  });
  for (const svc of listServices()) {
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const m of svc.methods) {
      definition[m.name] = {
        path: m.path,
        requestStream: m.requestStream,
        responseStream: m.responseStream,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: m.name,
      };
      const handler = handlers.get(m.path);
      const streamHandler = streams.get(m.path);
      const serverStream = serverStreams.get(m.path);
      if (serverStream && !m.requestStream && m.responseStream) {
        impl[m.name] = (call: grpc.ServerWritableStream<Buffer, Buffer>) => serverStream(call.request, adaptWritable(call));
      } else if (streamHandler && m.requestStream && m.responseStream) {
        impl[m.name] = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => streamHandler(adaptDuplex(call));
      } else if (handler && !m.requestStream && !m.responseStream) {
        impl[m.name] = unary(handler, maxRecv, opts.log);
      } else if (!m.requestStream && !m.responseStream) {
        impl[m.name] = (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          cb(toStatus(Errors.unimplemented(m.path)));
      } else {
        impl[m.name] = (call: grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>) =>
          call.emit('error', toStatus(Errors.unimplemented(m.path)));
      }
    }
    server.addService(definition, impl);
  }
  return server;
}

function unary(handler: UnaryHandler, maxRecv: number, log: Logger) {
  // Only handlers that take a context pay for cancellation tracking.
  const wantsContext = handler.length >= 2;
  return (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    const req = call.request;
    if (req.length > maxRecv) {
      cb(toStatus(Errors.messageTooLarge(req.length, maxRecv)));
      return;
    }
    let ctx: CallContext | undefined;
    if (wantsContext) {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      ctx = { signal: ac.signal };
    }
    let result: Promise<Buffer> | Buffer;
    try {
      result = handler(req, ctx);
    } catch (err) {
      cb(toStatus(classify(err, log)));
      return;
    }
    if (Buffer.isBuffer(result)) cb(null, result);
    else result.then((body) => cb(null, body), (err: unknown) => cb(toStatus(classify(err, log))));
  };
}

function adaptWritable(call: grpc.ServerWritableStream<Buffer, Buffer>): ServerStream {
  return {
    write: (msg) => call.write(msg),
    onEnd: (cb) => {
      let done = false;
      const once = () => { if (!done) { done = true; cb(); } };
      call.on('cancelled', once);
      call.on('error', once);
      call.on('close', once);
    },
    end: (err) => {
      if (err) call.emit('error', toStatus(err));
      else call.end();
    },
  };
}

function adaptDuplex(call: grpc.ServerDuplexStream<Buffer, Buffer>): BidiStream {
  return {
    onMessage: (cb) => { call.on('data', cb); },
    onEnd: (cb) => {
      let done = false;
      const once = () => { if (!done) { done = true; cb(); } };
      call.on('end', once);
      call.on('cancelled', once);
      call.on('error', once);
      call.on('close', once);
    },
    write: (msg) => call.write(msg),
    onDrain: (cb) => { call.on('drain', cb); },
    end: (err) => {
      if (err) call.emit('error', toStatus(err));
      else call.end();
    },
  };
}

function classify(err: unknown, log: Logger): EtcdError {
  if (err instanceof EtcdError) return err;
  if (err instanceof ProtoDecodeError) return Errors.malformed(err.message);
  log.error({ err }, 'unexpected error serving a request');
  return new EtcdError(GrpcCode.UNKNOWN, err instanceof Error ? err.message : String(err));
}

function toStatus(err: EtcdError): Partial<grpc.StatusObject> {
  return { code: err.code as number as grpc.status, details: err.message };
}

/** Starts listening on every client URL (http://host:port). */
export async function listen(server: grpc.Server, urls: string[]): Promise<void> {
  for (const u of urls) {
    const url = new URL(u);
    if (url.protocol !== 'http:') throw new Error(`unsupported client URL scheme in ${u} (TLS is not built yet)`);
    const addr = `${url.hostname}:${url.port || '2379'}`;
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
  }
}
