// A minimal HTTP/2 client for gRPC on a plain TCP socket. node:http2's client
// costs about 100 us of CPU per request here (stream objects, listeners,
// AsyncResource binding), too much for a load generator sharing 2 cores with
// the server. This one writes pre-built frames and parses frames itself:
// streams are plain objects, the request header block is built once per path.
// Scope: h2c or TLS (ALPN h2), client side only, enough for unary and bidi gRPC.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { HeaderList, HpackDecoder, encodeHeaders } from '../../src/grpc/http2/hpack.js';
import type { UnaryCallback, BidiStream, Conn, TlsFiles } from './conn-types.js';
import { FrameReader } from './h2conn.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
const MAX_WINDOW = 0x7fffffff;
const REPLENISH_AT = 1 << 30;
const MAX_HEADER_BLOCK = 1 << 20;

function frameHeader(buf: Buffer, off: number, len: number, type: number, flags: number, id: number): void {
  buf[off] = (len >>> 16) & 0xff; buf[off + 1] = (len >>> 8) & 0xff; buf[off + 2] = len & 0xff;
  buf[off + 3] = type; buf[off + 4] = flags; buf.writeUInt32BE(id, off + 5);
}

function frame(type: number, flags: number, id: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(9 + payload.length);
  frameHeader(b, 0, payload.length, type, flags, id);
  payload.copy(b, 9);
  return b;
}

/** One request/stream. Unary streams collect data; bidi streams parse messages. */
class Stream {
  status = -1;
  message = '';
  first: Buffer | null = null;
  rest: Buffer[] | null = null;
  sendWindow: number;
  pending: Buffer | null = null;     // DATA not yet sent for lack of window
  pendingEnd = false;
  recvd = 0;
  done = false;
  reader: FrameReader | null = null;
  constructor(readonly id: number, window: number, readonly cb: UnaryCallback | null,
    readonly onMessage: ((m: Buffer) => void) | null, readonly onEnd: ((s: number, m: string) => void) | null) {
    this.sendWindow = window;
  }
}

export class RawH2Conn implements Conn {
  private socket: net.Socket | null = null;
  private readonly streams = new Map<number, Stream>();
  private nextId = 1;
  private readonly hpack = new HpackDecoder();
  private readonly fields = new HeaderList();
  private readonly headerBlocks = new Map<string, Buffer>();
  private inbuf: Buffer = Buffer.alloc(0);
  private headerAcc: Buffer[] | null = null;
  private headerAccStream = 0;
  private headerAccEnd = false;
  private connSendWindow = 65535;
  private initialStreamWindow = 65535;
  private maxFrameSize = 16384;
  private maxConcurrent = Infinity;
  private connRecvd = 0;
  private readonly blocked: Stream[] = [];
  private readonly waiting: (() => void)[] = [];   // calls over MAX_CONCURRENT_STREAMS
  private corked = false;
  private goawayId = -1;
  closed = false;

  private token = '';

  constructor(readonly endpoint: string, private readonly tls: TlsFiles | null = null) {}

  setToken(token: string): void {
    this.token = token;
    this.headerBlocks.clear();
  }

  connect(timeoutMs = 5000): Promise<void> {
    const [host, portStr] = splitHostPort(this.endpoint);
    return new Promise((resolve, reject) => {
      const t = this.tls;
      const s: net.Socket = t === null
        ? net.connect({ host, port: Number(portStr) })
        : tls.connect({ host, port: Number(portStr), ALPNProtocols: ['h2'], ca: readFileSync(t.ca), cert: readFileSync(t.cert), key: readFileSync(t.key) });
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect ${this.endpoint}: timeout`)); }, timeoutMs);
      s.setNoDelay(true);
      s.once(t === null ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        // SETTINGS: HEADER_TABLE_SIZE 0 (no dynamic table), ENABLE_PUSH 0, INITIAL_WINDOW_SIZE max.
        const settings = Buffer.alloc(18);
        settings.writeUInt16BE(1, 0); settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(2, 6); settings.writeUInt32BE(0, 8);
        settings.writeUInt16BE(4, 12); settings.writeUInt32BE(MAX_WINDOW, 14);
        const wu = Buffer.alloc(4); wu.writeUInt32BE(MAX_WINDOW - 65535, 0);
        s.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings), frame(WINDOW_UPDATE, 0, 0, wu)]));
        resolve();
      });
      s.once('error', (err) => { clearTimeout(timer); reject(err); });
      s.on('error', () => undefined);
      s.on('data', (chunk: Buffer) => this.onData(chunk));
      s.on('close', () => this.onClose('connection closed'));
      this.socket = s;
    });
  }

  private write(b: Buffer): void {
    const s = this.socket!;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(() => { this.corked = false; s.uncork(); });
    }
    s.write(b);
  }

  private headerBlock(path: string): Buffer {
    let h = this.headerBlocks.get(path);
    if (!h) { h = grpcRequestHeaders(path, this.endpoint, this.tls !== null, this.token); this.headerBlocks.set(path, h); }
    return h;
  }

  private open(path: string, cb: UnaryCallback | null, onMessage: ((m: Buffer) => void) | null, onEnd: ((s: number, m: string) => void) | null): Stream | null {
    if (this.closed || !this.socket || this.goawayId >= 0 || this.nextId > MAX_WINDOW) return null;
    const id = this.nextId;
    this.nextId += 2;
    const st = new Stream(id, this.initialStreamWindow, cb, onMessage, onEnd);
    this.streams.set(id, st);
    const hb = this.headerBlock(path);
    const f = Buffer.allocUnsafe(9 + hb.length);
    frameHeader(f, 0, hb.length, HEADERS, END_HEADERS, id);
    hb.copy(f, 9);
    this.write(f);
    return st;
  }

  /** Sends DATA within the flow-control windows; the rest waits for WINDOW_UPDATE. */
  private sendData(st: Stream, data: Buffer, end: boolean): void {
    if (st.pending) { st.pending = Buffer.concat([st.pending, data]); st.pendingEnd = end; return; }
    let off = 0;
    while (off < data.length || (end && off === data.length && data.length === 0)) {
      const n = Math.min(data.length - off, this.maxFrameSize, this.connSendWindow, st.sendWindow);
      if (n <= 0 && data.length > 0) {
        st.pending = data.subarray(off); st.pendingEnd = end;
        this.blocked.push(st);
        return;
      }
      const last = off + n === data.length;
      const f = Buffer.allocUnsafe(9 + n);
      frameHeader(f, 0, n, DATA, last && end ? END_STREAM : 0, st.id);
      data.copy(f, 9, off, off + n);
      this.write(f);
      this.connSendWindow -= n; st.sendWindow -= n;
      off += n;
      if (data.length === 0) break;
    }
  }

  private flushBlocked(): void {
    const list = this.blocked.splice(0);
    for (const st of list) {
      if (st.done || !st.pending) continue;
      const d = st.pending; const e = st.pendingEnd;
      st.pending = null;
      this.sendData(st, d, e);
    }
  }

  unary(path: string, framed: Buffer, cb: UnaryCallback): void {
    if (this.streams.size >= this.maxConcurrent) { this.waiting.push(() => this.unary(path, framed, cb)); return; }
    const st = this.open(path, cb, null, null);
    if (!st) { cb(-1, this.closed ? 'connection closed' : 'connection going away', null); return; }
    this.sendData(st, framed, true);
  }

  unaryAsync(path: string, framed: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.unary(path, framed, (st, msg, payload) => {
        if (st === 0 && payload) resolve(payload);
        else reject(new Error(`grpc-status ${st}: ${msg}`));
      });
    });
  }

  stream(path: string, onMessage: (msg: Buffer) => void, onEnd: (status: number, message: string) => void): BidiStream {
    const st = this.open(path, null, onMessage, onEnd);
    if (!st) throw new Error('connection closed');
    st.reader = new FrameReader();
    return {
      write: (b: Buffer) => { if (!st.done) this.sendData(st, b, false); },
      close: () => {
        if (st.done) return;
        const rst = Buffer.alloc(4); rst.writeUInt32BE(8, 0); // CANCEL
        this.write(frame(RST_STREAM, 0, st.id, rst));
        this.finish(st, 1, 'cancelled by client');
      },
      get closed() { return st.done; },
    };
  }

  close(): void {
    if (this.socket && !this.closed) {
      const ga = Buffer.alloc(8);
      this.socket.end(frame(GOAWAY, 0, 0, ga));
    }
    this.closed = true;
  }

  private onClose(reason: string): void {
    this.closed = true;
    for (const st of [...this.streams.values()]) this.finish(st, -1, reason);
    for (const w of this.waiting.splice(0)) w();
  }

  private finish(st: Stream, status: number, message: string): void {
    if (st.done) return;
    st.done = true;
    this.streams.delete(st.id);
    if (st.cb) {
      if (status !== 0) st.cb(status, message, null);
      else {
        const body = st.rest ? Buffer.concat(st.rest) : st.first;
        if (!body || body.length < 5) st.cb(0, '', Buffer.alloc(0));
        else st.cb(0, '', body.subarray(5, 5 + body.readUInt32BE(1)));
      }
    } else if (st.onEnd) {
      st.onEnd(status, message);
    }
    if (this.waiting.length > 0 && this.streams.size < this.maxConcurrent) this.waiting.shift()!();
  }

  private onData(chunk: Buffer): void {
    let b = this.inbuf.length === 0 ? chunk : Buffer.concat([this.inbuf, chunk]);
    while (b.length >= 9) {
      const len = (b[0]! << 16) | (b[1]! << 8) | b[2]!;
      if (b.length < 9 + len) break;
      const type = b[3]!, flags = b[4]!, id = b.readUInt32BE(5) & 0x7fffffff;
      const payload = b.subarray(9, 9 + len);
      b = b.subarray(9 + len);
      try {
        this.onFrame(type, flags, id, payload);
      } catch (err) {
        this.socket?.destroy();
        this.onClose(`protocol error: ${(err as Error).message}`);
        return;
      }
    }
    this.inbuf = b.length === 0 ? Buffer.alloc(0) : Buffer.from(b);
  }

  private onFrame(type: number, flags: number, id: number, p: Buffer): void {
    if (this.headerAcc && type !== CONTINUATION) throw new Error('expected CONTINUATION');
    switch (type) {
      case DATA: {
        this.connRecvd += p.length;
        if (this.connRecvd >= REPLENISH_AT) { this.windowUpdate(0, this.connRecvd); this.connRecvd = 0; }
        const st = this.streams.get(id);
        if (!st) return;
        let data = p;
        if (flags & PADDED) data = p.subarray(1, p.length - p[0]!);
        st.recvd += p.length;
        if (st.recvd >= REPLENISH_AT && !(flags & END_STREAM)) { this.windowUpdate(id, st.recvd); st.recvd = 0; }
        if (data.length > 0) {
          if (st.reader) st.reader.push(data, st.onMessage!);
          else if (st.first === null) st.first = data;
          else (st.rest ??= [st.first]).push(data);
        }
        if (flags & END_STREAM) this.finish(st, st.status < 0 ? -1 : st.status, st.message || 'stream ended without grpc-status');
        return;
      }
      case HEADERS: {
        let block = p;
        if (flags & PADDED) block = block.subarray(1, block.length - p[0]!);
        if (flags & PRIORITY) block = block.subarray(5);
        if (flags & END_HEADERS) { this.onHeaders(id, block, (flags & END_STREAM) !== 0); return; }
        this.headerAcc = [Buffer.from(block)]; this.headerAccStream = id; this.headerAccEnd = (flags & END_STREAM) !== 0;
        return;
      }
      case CONTINUATION: {
        if (!this.headerAcc || id !== this.headerAccStream) throw new Error('unexpected CONTINUATION');
        this.headerAcc.push(Buffer.from(p));
        if (this.headerAcc.reduce((a, x) => a + x.length, 0) > MAX_HEADER_BLOCK) throw new Error('header block too large');
        if (flags & END_HEADERS) {
          const block = Buffer.concat(this.headerAcc);
          this.headerAcc = null;
          this.onHeaders(id, block, this.headerAccEnd);
        }
        return;
      }
      case RST_STREAM: {
        const st = this.streams.get(id);
        if (st) this.finish(st, -1, `stream reset by server (code ${p.readUInt32BE(0)})`);
        return;
      }
      case SETTINGS: {
        if (flags & ACK) return;
        for (let o = 0; o + 6 <= p.length; o += 6) {
          const k = p.readUInt16BE(o), v = p.readUInt32BE(o + 2);
          if (k === 3) this.maxConcurrent = v;
          else if (k === 4) {
            const delta = v - this.initialStreamWindow;
            this.initialStreamWindow = v;
            for (const st of this.streams.values()) st.sendWindow += delta;
          } else if (k === 5) this.maxFrameSize = v;
        }
        this.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        this.flushBlocked();
        return;
      }
      case PING:
        if (!(flags & ACK)) this.write(frame(PING, ACK, 0, p));
        return;
      case GOAWAY: {
        this.goawayId = p.readUInt32BE(0) & 0x7fffffff;
        for (const st of [...this.streams.values()]) if (st.id > this.goawayId) this.finish(st, -1, 'GOAWAY');
        return;
      }
      case WINDOW_UPDATE: {
        const inc = p.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) this.connSendWindow += inc;
        else { const st = this.streams.get(id); if (st) st.sendWindow += inc; }
        this.flushBlocked();
        return;
      }
      default:
        return;   // PRIORITY, PUSH_PROMISE (disabled), unknown: ignore
    }
  }

  private onHeaders(id: number, block: Buffer, end: boolean): void {
    const st = this.streams.get(id);
    // Decode even for unknown streams: the HPACK state must stay in step.
    this.fields.reset();
    this.hpack.decode(block, 0, block.length, this.fields);
    if (st) {
      const status = this.fields.get('grpc-status');
      if (status !== undefined) st.status = Number(status);
      const message = this.fields.get('grpc-message');
      if (message !== undefined) st.message = safeDecode(message);
    }
    if (st && end) this.finish(st, st.status < 0 ? -1 : st.status, st.status < 0 ? 'no grpc-status in trailers' : st.message);
  }

  private windowUpdate(id: number, inc: number): void {
    const b = Buffer.alloc(4); b.writeUInt32BE(inc, 0);
    this.write(frame(WINDOW_UPDATE, 0, id, b));
  }
}

function safeDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

export function splitHostPort(ep: string): [string, string] {
  const i = ep.lastIndexOf(':');
  if (i < 0) return [ep, '2379'];
  return [ep.slice(0, i).replace(/^\[|\]$/g, ''), ep.slice(i + 1)];
}

/** The request header block for a gRPC call: literals without indexing (no dynamic table), built once per path. */
function grpcRequestHeaders(path: string, authority: string, secure: boolean, token: string): Buffer {
  return encodeHeaders([
    [':method', 'POST'], [':scheme', secure ? 'https' : 'http'], [':path', path], [':authority', authority],
    ['content-type', 'application/grpc'], ['te', 'trailers'], ...(token !== '' ? [['token', token] as [string, string]] : []),
  ]);
}
