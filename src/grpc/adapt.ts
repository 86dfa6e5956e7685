// Adapters from the transport-neutral stream shapes the services use
// (src/grpc/stream.ts BidiStream, src/grpc/rpc.ts ServerStreamHandler) to
// this server's ServerCall, so the services' handler maps serve unchanged.
import type { BidiStream, StreamHandler as BidiHandler } from './stream.js';
import type { ServerCall, ServerStream, ServerStreamHandler, StreamHandler } from './rpc.js';
import { Errors } from '../common/errors.js';

/** onEnd as BidiStream means it: half-close, cancel or connection loss, reported once. */
function onEndOnce(call: ServerCall, cb: () => void, halfClose: boolean): void {
  let fired = false;
  const once = () => { if (!fired) { fired = true; cb(); } };
  if (halfClose) call.onEnd(once);
  call.onCancel(once);
}

/** etcd's AuthInfoFromCtx reads `token`, then the gateway's `authorization`. */
export function tokenOf(call: ServerCall): string | undefined {
  const t = call.metadata['token'] ?? call.metadata['authorization'];
  return Array.isArray(t) ? t[0] : t;
}

export function bidiFromCall(call: ServerCall): BidiStream {
  return {
    token: tokenOf(call),
    get peerCommonName() { return call.peerCommonName; },
    onMessage: (cb) => call.onMessage(cb),
    onEnd: (cb) => onEndOnce(call, cb, true),
    onCancel: (cb) => call.onCancel(cb),
    write: (msg) => call.write(msg),
    onDrain: (cb) => call.onDrain(cb),
    end: (err) => call.end(err),
  };
}

/** A server-streaming handler is called with the one request message. */
export function serverStreamFromCall(call: ServerCall, handler: ServerStreamHandler): void {
  let started = false;
  call.onMessage((msg) => {
    if (started) return;
    started = true;
    const out: ServerStream = {
      token: tokenOf(call),
      get peerCommonName() { return call.peerCommonName; },
      write: (m) => call.write(m),
      onEnd: (cb) => onEndOnce(call, cb, false),
      end: (err) => call.end(err),
    };
    handler(msg, out);
  });
  call.onEnd(() => { if (!started) call.end(Errors.missingMessage()); });
}

/** The streams map for createH2GrpcServer from the grpc-js server's two maps. */
export function adaptStreamHandlers(bidi: Map<string, BidiHandler>,
  serverStreams: Map<string, ServerStreamHandler> = new Map()): Map<string, StreamHandler> {
  const out = new Map<string, StreamHandler>();
  for (const [path, h] of bidi) out.set(path, (call) => h(bidiFromCall(call)));
  for (const [path, h] of serverStreams) out.set(path, (call) => serverStreamFromCall(call, h));
  return out;
}
