// One streaming RPC (watch, lease keep-alive, observe, snapshot) served over
// an HTTP/1.1 request, presented to the service as the same ServerCall the
// gRPC server gives it. Request messages come from the JSON values on the
// request body (bidi) or the one request (server streaming); responses go
// out as a chunked stream of {"result": ...} lines, as grpc-gateway v1 writes
// them. Headers wait for the first response: a call that fails before
// answering anything gets the plain JSON error body and its HTTP status.
// Bounds: a request message is capped by maxRecvBytes; response backpressure
// is the socket's (write() false until 'drain').

import { peerCommonName } from '../tls/peer-identity.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http2';
import type { ServerCall } from '../grpc/rpc.js';
import { EtcdError, GrpcCode } from '../common/errors.js';
import { replyError, streamErrorChunk, streamResultChunk, writeStreamHead } from './http-reply.js';

export interface HttpCallOptions {
  path: string;
  /** Response bytes -> JSON text. */
  toJson: (msg: Uint8Array) => string;
}

export class HttpCall implements ServerCall {
  readonly path: string;
  readonly metadata: IncomingHttpHeaders;
  /** CN of the client's verified TLS certificate, as on a gRPC call. */
  get peerCommonName(): string | null { return peerCommonName(this.req.socket); }
  finished = false;
  private headSent = false;
  private queue: Buffer[] = [];
  private halfClosed = false;
  private onMessageCb: ((msg: Buffer) => void) | null = null;
  private readonly endCbs: Array<() => void> = [];
  private readonly cancelCbs: Array<() => void> = [];
  private readonly drainCbs: Array<() => void> = [];

  constructor(private readonly req: IncomingMessage, private readonly res: ServerResponse, private readonly opts: HttpCallOptions) {
    this.path = opts.path;
    this.metadata = req.headers as IncomingHttpHeaders;
    res.on('drain', () => { for (const cb of this.drainCbs) cb(); });
    // The client went away before we ended: the call is cancelled.
    res.on('close', () => {
      if (this.finished) return;
      this.finished = true;
      for (const cb of this.cancelCbs) cb();
    });
  }

  /** A request message from the body. */
  deliver(msg: Buffer): void {
    if (this.finished || this.halfClosed) return;
    if (this.onMessageCb === null) this.queue.push(msg);
    else this.onMessageCb(msg);
  }

  /** The request body ended (or could not be read further). */
  halfClose(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    if (this.onMessageCb !== null || this.queue.length === 0) this.fireEnd();
  }

  private fireEnd(): void {
    if (this.finished) return;
    for (const cb of this.endCbs) cb();
  }

  onMessage(cb: (msg: Buffer) => void): void {
    this.onMessageCb = cb;
    const q = this.queue;
    this.queue = [];
    for (const m of q) cb(m);
    if (this.halfClosed) this.fireEnd();
  }

  onEnd(cb: () => void): void { this.endCbs.push(cb); }
  onCancel(cb: () => void): void { this.cancelCbs.push(cb); }
  onDrain(cb: () => void): void { this.drainCbs.push(cb); }

  write(msg: Uint8Array): boolean {
    if (this.finished) return false;
    if (!this.headSent) { this.headSent = true; writeStreamHead(this.res); }
    return this.res.write(streamResultChunk(this.opts.toJson(msg)));
  }

  end(err?: EtcdError | null): void {
    if (this.finished) return;
    this.finished = true;
    if (err != null && err.code !== GrpcCode.OK) {
      if (!this.headSent) { replyError(this.res, err, false); return; }
      this.res.end(streamErrorChunk(err));
      return;
    }
    if (!this.headSent) writeStreamHead(this.res);
    this.res.end();
  }

  pause(): void { this.req.pause(); }
  resume(): void { this.req.resume(); }
}
