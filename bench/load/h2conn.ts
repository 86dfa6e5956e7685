// One HTTP/2 session speaking gRPC to one endpoint, on node:http2 directly
// (the grpc-js client costs 400-800 us CPU per call; this costs far less).
// Unary calls: POST, one framed request, one framed response, grpc-status in
// the trailers (or in the headers for a trailers-only error response).
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';

const {
  HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE,
} = http2.constants;

import type { UnaryCallback, BidiStream, Conn, TlsFiles } from './conn-types.js';

export class GrpcStatusError extends Error {
  constructor(readonly code: number, message: string) { super(`grpc-status ${code}: ${message}`); }
}

export class H2Conn implements Conn {
  private session: http2.ClientHttp2Session | null = null;
  private readonly headerCache = new Map<string, http2.OutgoingHttpHeaders>();
  closed = false;

  private token = '';

  constructor(readonly endpoint: string, private readonly tls: TlsFiles | null = null) {}

  setToken(token: string): void {
    this.token = token;
    this.headerCache.clear();
  }

  connect(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = this.tls;
      const s = t === null
        ? http2.connect(`http://${this.endpoint}`)
        : http2.connect(`https://${this.endpoint}`, { ca: readFileSync(t.ca), cert: readFileSync(t.cert), key: readFileSync(t.key) });
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect ${this.endpoint}: timeout`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(); });
      s.once('error', (err) => { clearTimeout(timer); reject(err); });
      s.on('error', () => { /* surfaced per stream */ });
      s.once('close', () => { this.closed = true; });
      s.unref();
      this.session = s;
    });
  }

  private headers(path: string): http2.OutgoingHttpHeaders {
    let h = this.headerCache.get(path);
    if (!h) {
      h = {
        [HTTP2_HEADER_METHOD]: 'POST',
        [HTTP2_HEADER_PATH]: path,
        [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        [HTTP2_HEADER_TE]: 'trailers',
        ...(this.token !== '' ? { token: this.token } : {}),
      };
      this.headerCache.set(path, h);
    }
    return h;
  }

  /** Sends one framed request; `cb` gets the unframed response message. */
  unary(path: string, framed: Buffer, cb: UnaryCallback): void {
    const s = this.session;
    if (!s || s.closed || s.destroyed) { cb(-1, 'session closed', null); return; }
    let req: http2.ClientHttp2Stream;
    try {
      req = s.request(this.headers(path));
    } catch (err) {
      cb(-1, (err as Error).message, null);
      return;
    }
    let status = -1;
    let message = '';
    let first: Buffer | null = null;
    let rest: Buffer[] | null = null;
    req.on('response', (h) => {
      const st = h['grpc-status'];
      if (st !== undefined) { status = Number(st); message = String(h['grpc-message'] ?? ''); }
    });
    req.on('trailers', (h) => {
      const st = h['grpc-status'];
      if (st !== undefined) { status = Number(st); message = String(h['grpc-message'] ?? ''); }
    });
    req.on('data', (chunk: Buffer) => {
      if (first === null) first = chunk;
      else (rest ??= [first]).push(chunk);
    });
    req.on('error', (err) => { if (status < 0) message = err.message; });
    req.on('close', () => {
      if (status !== 0) {
        cb(status, status < 0 ? message || `stream closed (rst ${req.rstCode})` : decodeURIComponent(message), null);
        return;
      }
      const body: Buffer | null = rest ? Buffer.concat(rest) : first;
      if (body === null || body.length < 5) { cb(0, '', Buffer.alloc(0)); return; }
      const len = body.readUInt32BE(1);
      cb(0, '', body.subarray(5, 5 + len));
    });
    req.end(framed);
  }

  unaryAsync(path: string, framed: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.unary(path, framed, (st, msg, payload) => {
        if (st === 0 && payload) resolve(payload);
        else reject(new GrpcStatusError(st, msg));
      });
    });
  }

  /** Opens a bidi stream; `onMessage` gets each unframed response message. */
  stream(path: string, onMessage: (msg: Buffer) => void, onEnd: (status: number, message: string) => void): BidiStream {
    if (!this.session) throw new Error('not connected');
    const req = this.session.request(this.headers(path));
    const reader = new FrameReader();
    let status = -1;
    let message = '';
    const takeStatus = (h: http2.IncomingHttpHeaders): void => {
      const st = h['grpc-status'];
      if (st !== undefined) { status = Number(st); message = String(h['grpc-message'] ?? ''); }
    };
    req.on('response', takeStatus);
    req.on('trailers', takeStatus);
    req.on('data', (chunk: Buffer) => reader.push(chunk, onMessage));
    req.on('error', (err) => { if (status < 0) message = err.message; });
    req.on('close', () => onEnd(status, message));
    return {
      write: (b: Buffer) => { req.write(b); },
      close: () => { req.close(http2.constants.NGHTTP2_CANCEL); },
      get closed() { return req.closed || req.destroyed; },
    };
  }

  close(): void {
    const s = this.session;
    this.session = null;
    if (s && !s.destroyed) s.close();
  }
}

/** Splits a byte stream into gRPC messages (5-byte prefix: flag, length). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onMessage: (msg: Buffer) => void): void {
    let b = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (b.length >= 5) {
      const len = b.readUInt32BE(1);
      if (b.length < 5 + len) break;
      onMessage(b.subarray(5, 5 + len));
      b = b.subarray(5 + len);
    }
    this.buf = b;
  }
}
