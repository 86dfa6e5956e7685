// The raw HTTP/2 gRPC server (src/grpc/) with grpc-js and node:http2 clients
// (etcdctl, a grpc-go client, is in test/compat/grpc-server-etcdctl.test.ts), plus
// hand-built frames (CONTINUATION, padding, PRIORITY, Huffman, dynamic
// table, PING) and a fuzz of random bytes after a valid preface.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors, GrpcCode } from '../../src/common/errors.js';
import net from 'node:net';
import { createRawGrpcServer, type RawGrpcServer, type ServerCall, type StreamHandler, type UnaryHandler } from '../../src/grpc/server.js';
import { HeaderList, HpackDecoder, huffmanEncode } from '../../src/grpc/http2/hpack.js';
import { makeRng } from '../../src/raft/rng.js';
import { listenShared, type SharedListener } from '../../src/grpc/port-sharing.js';
import { adaptStreamHandlers } from '../../src/grpc/adapt.js';

const MAX_RECV = 1024 * 1024;
const BIG = 20 * 1024 * 1024;
const WEIRD = new EtcdError(GrpcCode.FAILED_PRECONDITION, 'etcdserver: 100% wrong\nüñí');

const bigBody = Buffer.allocUnsafe(BIG);
for (let i = 0; i < BIG; i += 4) bigBody.writeUInt32LE(i, i);

let serverWritesRefused = 0;
let cancelled = 0;
let seenTimeout: string | undefined;

const unary = new Map<string, UnaryHandler>([
  ['/test.Echo/Unary', (req) => req],
  ['/test.Echo/Async', async (req) => { await new Promise((r) => setTimeout(r, 5)); return Buffer.concat([req, req]); }],
  ['/test.Echo/Fail', () => { throw WEIRD; }],
  ['/test.Echo/FailAsync', () => Promise.reject(Errors.compacted())],
  ['/test.Echo/Crash', () => { throw new TypeError('boom'); }],
  ['/test.Echo/Big', () => bigBody],
  ['/test.Echo/Slow', () => new Promise((r) => setTimeout(() => r(Buffer.from('late')), 1500))],
]);

const echoBidi: StreamHandler = (call: ServerCall) => {
  call.onMessage((m) => {
    if (!call.write(m)) { serverWritesRefused++; call.pause(); }
  });
  call.onDrain(() => call.resume());
  call.onEnd(() => call.end());
  call.onCancel(() => { cancelled++; });
};

const serverStream: StreamHandler = (call) => {
  seenTimeout = call.metadata['grpc-timeout'] as string | undefined;
  call.onMessage((m) => {
    const n = m.readUInt32BE(0);
    const fail = m[4] === 1;
    for (let i = 0; i < n; i++) {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(i, 0);
      call.write(b);
    }
    call.end(fail ? Errors.compacted() : null);
  });
};

const streams = new Map<string, StreamHandler>([
  ['/test.Echo/Bidi', echoBidi],
  ['/test.Echo/ServerStream', serverStream],
  ['/test.Echo/Hang', (call) => { call.onCancel(() => { cancelled++; }); }],
  // The services' transport-neutral shapes (src/grpc/stream.ts), through the adapters.
  ...adaptStreamHandlers(
    new Map([['/test.Echo/AdaptBidi', (b) => { b.onMessage((m) => b.write(m)); b.onEnd(() => b.end()); }]]),
    new Map([['/test.Echo/AdaptServer', (req, out) => { out.write(req); out.write(req); out.end(); }]]),
  ),
]);

let srv: RawGrpcServer;
let h1: http.Server;
let listener: SharedListener;
let addr: string;
let client: grpc.Client;

const id = (b: Buffer) => b;

before(async () => {
  srv = createRawGrpcServer({
    unary, streams, maxRecvBytes: MAX_RECV,
    knownMethods: [...unary.keys(), '/test.Echo/NotYet'],
    log: { error: () => undefined, warn: () => undefined },
  });
  h1 = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`h1 ${req.method} ${req.url}`);
  });
  listener = await listenShared({ host: '127.0.0.1', port: 0 }, srv.http2, h1);
  addr = `127.0.0.1:${listener.address.port}`;
  client = new grpc.Client(addr, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
});

after(async () => {
  client.close();
  await srv.close(200);
  h1.closeAllConnections();
  await listener.close();
});

function call(path: string, req: Buffer, deadlineMs?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: grpc.CallOptions = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
    client.makeUnaryRequest(path, id, id, req, new grpc.Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

async function callErr(path: string, req: Buffer, deadlineMs?: number): Promise<grpc.ServiceError> {
  try {
    await call(path, req, deadlineMs);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  assert.fail(`${path} succeeded`);
}

test('unary echo, sync and async handlers, empty message', async () => {
  assert.deepEqual(await call('/test.Echo/Unary', Buffer.from('hello')), Buffer.from('hello'));
  assert.deepEqual(await call('/test.Echo/Unary', Buffer.alloc(0)), Buffer.alloc(0));
  assert.deepEqual(await call('/test.Echo/Async', Buffer.from('ab')), Buffer.from('abab'));
});

test('EtcdError code and message arrive exactly (percent-encoded on the wire)', async () => {
  const e = await callErr('/test.Echo/Fail', Buffer.from('x'));
  assert.equal(e.code, GrpcCode.FAILED_PRECONDITION);
  assert.equal(e.details, WEIRD.message);
  const e2 = await callErr('/test.Echo/FailAsync', Buffer.from('x'));
  assert.equal(e2.code, GrpcCode.OUT_OF_RANGE);
  assert.equal(e2.details, 'etcdserver: mvcc: required revision has been compacted');
  const e3 = await callErr('/test.Echo/Crash', Buffer.from('x'));
  assert.equal(e3.code, GrpcCode.UNKNOWN);
  assert.equal(e3.details, 'boom');
});

test('unknown service, unknown method, known but unimplemented', async () => {
  const s = await callErr('/nope.Svc/Get', Buffer.from('x'));
  assert.equal(s.code, GrpcCode.UNIMPLEMENTED);
  assert.equal(s.details, 'unknown service nope.Svc');
  const m = await callErr('/test.Echo/Nope', Buffer.from('x'));
  assert.equal(m.code, GrpcCode.UNIMPLEMENTED);
  assert.equal(m.details, 'unknown method Nope for service test.Echo');
  const u = await callErr('/test.Echo/NotYet', Buffer.from('x'));
  assert.equal(u.code, GrpcCode.UNIMPLEMENTED);
  assert.equal(u.details, 'etsd: /test.Echo/NotYet is not implemented yet');
});

test('message over maxRecvBytes: RESOURCE_EXHAUSTED with grpc-go wording, and the connection lives on', async () => {
  const e = await callErr('/test.Echo/Unary', Buffer.alloc(MAX_RECV + 1));
  assert.equal(e.code, GrpcCode.RESOURCE_EXHAUSTED);
  assert.equal(e.details, `grpc: received message larger than max (${MAX_RECV + 1} vs. ${MAX_RECV})`);
  const ok = await call('/test.Echo/Unary', Buffer.alloc(MAX_RECV, 3));
  assert.equal(ok.length, MAX_RECV);
});

test('200 concurrent unary calls', async () => {
  const reqs = Array.from({ length: 200 }, (_, i) => Buffer.from(`req-${i}-`.repeat(1 + (i % 50))));
  const res = await Promise.all(reqs.map((r, i) => call(i % 2 ? '/test.Echo/Unary' : '/test.Echo/Async', r)));
  res.forEach((r, i) => assert.deepEqual(r, i % 2 ? reqs[i] : Buffer.concat([reqs[i]!, reqs[i]!])));
});

test('a 20 MB response', async () => {
  const res = await call('/test.Echo/Big', Buffer.alloc(0));
  assert.equal(res.length, BIG);
  assert.ok(res.equals(bigBody));
});

test('deadline: grpc-timeout ends a slow call with DEADLINE_EXCEEDED', async () => {
  const e = await callErr('/test.Echo/Slow', Buffer.from('x'), 100);
  assert.equal(e.code, GrpcCode.DEADLINE_EXCEEDED);
  // The server still answers afterwards.
  assert.deepEqual(await call('/test.Echo/Unary', Buffer.from('y')), Buffer.from('y'));
});

test('bidi echo with backpressure (16 MB through one stream)', async () => {
  const N = 1000;
  const SIZE = 16 * 1024;
  const got: Buffer[] = [];
  const bidi = client.makeBidiStreamRequest('/test.Echo/Bidi', id, id);
  const done = new Promise<void>((resolve, reject) => {
    bidi.on('data', (m: Buffer) => got.push(m));
    bidi.on('error', reject);
    bidi.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
  });
  for (let i = 0; i < N; i++) {
    const b = Buffer.alloc(SIZE, i & 0xff);
    b.writeUInt32BE(i, 0);
    if (!bidi.write(b)) await new Promise((r) => bidi.once('drain', r));
  }
  bidi.end();
  await done;
  assert.equal(got.length, N);
  got.forEach((m, i) => { assert.equal(m.length, SIZE); assert.equal(m.readUInt32BE(0), i); });
  assert.ok(serverWritesRefused > 0, 'the server saw write() return false at least once');
});

test('100 concurrent bidi streams on one connection', async () => {
  const one = (k: number) => new Promise<number>((resolve, reject) => {
    const s = client.makeBidiStreamRequest('/test.Echo/Bidi', id, id);
    let n = 0;
    s.on('data', (m: Buffer) => { assert.equal(m.readUInt32BE(0), k * 100 + n); n++; });
    s.on('error', reject);
    s.on('status', (st: grpc.StatusObject) => (st.code === 0 ? resolve(n) : reject(new Error(st.details))));
    for (let i = 0; i < 10; i++) {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(k * 100 + i, 0);
      s.write(b);
    }
    s.end();
  });
  const counts = await Promise.all(Array.from({ length: 100 }, (_, k) => one(k)));
  assert.deepEqual(counts, Array(100).fill(10));
});

test('server stream: N messages then OK, or N messages then an error status', async () => {
  const run = (n: number, fail: boolean) => new Promise<{ msgs: number[]; status: grpc.StatusObject }>((resolve) => {
    const req = Buffer.alloc(5);
    req.writeUInt32BE(n, 0);
    req[4] = fail ? 1 : 0;
    const msgs: number[] = [];
    const s = client.makeServerStreamRequest('/test.Echo/ServerStream', id, id, req, new grpc.Metadata(), { deadline: Date.now() + 5000 });
    s.on('data', (m: Buffer) => msgs.push(m.readUInt32BE(0)));
    s.on('error', () => undefined);
    s.on('status', (status: grpc.StatusObject) => resolve({ msgs, status }));
  });
  const a = await run(50, false);
  assert.equal(a.status.code, 0);
  assert.deepEqual(a.msgs, Array.from({ length: 50 }, (_, i) => i));
  assert.ok(seenTimeout !== undefined, 'metadata carries grpc-timeout');
  const b = await run(3, true);
  assert.equal(b.status.code, GrpcCode.OUT_OF_RANGE);
  assert.equal(b.status.details, 'etcdserver: mvcc: required revision has been compacted');
  assert.deepEqual(b.msgs, [0, 1, 2]);
  const c = await run(0, true);
  assert.equal(c.status.code, GrpcCode.OUT_OF_RANGE);
});

test('adapted BidiStream / ServerStreamHandler shapes', async () => {
  const got: string[] = [];
  const b = client.makeBidiStreamRequest('/test.Echo/AdaptBidi', id, id);
  const done = new Promise<number>((resolve) => b.on('status', (st: grpc.StatusObject) => resolve(st.code)));
  b.on('data', (m: Buffer) => got.push(m.toString()));
  b.on('error', () => undefined);
  b.write(Buffer.from('a'));
  b.write(Buffer.from('b'));
  b.end();
  assert.equal(await done, 0);
  assert.deepEqual(got, ['a', 'b']);
  const s = client.makeServerStreamRequest('/test.Echo/AdaptServer', id, id, Buffer.from('z'));
  const msgs: string[] = [];
  s.on('data', (m: Buffer) => msgs.push(m.toString()));
  s.on('error', () => undefined);
  assert.equal(await new Promise<number>((resolve) => s.on('status', (st: grpc.StatusObject) => resolve(st.code))), 0);
  assert.deepEqual(msgs, ['z', 'z']);
});

test('client cancel reaches onCancel', async () => {
  const before = cancelled;
  const s = client.makeBidiStreamRequest('/test.Echo/Hang', id, id);
  s.on('error', () => undefined);
  s.write(Buffer.from('x'));
  await new Promise((r) => setTimeout(r, 50));
  s.cancel();
  for (let i = 0; i < 50 && cancelled === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cancelled, before + 1);
});

test('HTTP/1.1 on the same port reaches the http.Server', async () => {
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: listener.address.port, path: '/health', method: 'GET' }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { s += c; });
      res.on('end', () => resolve(`${res.statusCode} ${s}`));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(body, '200 h1 GET /health');
});

interface RawResult { status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: Buffer }

function raw(path: string, body: Buffer, extra: http2.OutgoingHttpHeaders = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${addr}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('close', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, trailers, data: Buffer.concat(chunks) });
    });
    req.end(body);
  });
}

const statusOf = (r: RawResult) => Number(r.trailers['grpc-status'] ?? r.headers['grpc-status']);

test('malformed framing: truncated prefix / body get INTERNAL and the server keeps serving', async () => {
  const a = await raw('/test.Echo/Unary', Buffer.from([0, 0, 0]));
  assert.equal(a.status, 200);
  assert.equal(statusOf(a), GrpcCode.INTERNAL);
  const b = await raw('/test.Echo/Unary', Buffer.from([0, 0, 0, 0, 10, 1, 2, 3]));
  assert.equal(statusOf(b), GrpcCode.INTERNAL);
  const c = await raw('/test.Echo/Bidi', Buffer.from([0, 0, 0, 0, 10, 1, 2, 3]));
  assert.equal(statusOf(c), GrpcCode.INTERNAL);
  const d = await raw('/test.Echo/Unary', Buffer.alloc(0));
  assert.equal(statusOf(d), GrpcCode.INTERNAL);
  assert.deepEqual(await call('/test.Echo/Unary', Buffer.from('still here')), Buffer.from('still here'));
});

test('raw: OK response layout, compressed message, wrong content-type, bad grpc-timeout', async () => {
  const ok = await raw('/test.Echo/Unary', Buffer.from([0, 0, 0, 0, 2, 0x68, 0x69]));
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'application/grpc');
  assert.equal(ok.headers['date'], undefined);
  assert.equal(ok.trailers['grpc-status'], '0');
  assert.deepEqual(ok.data, Buffer.from([0, 0, 0, 0, 2, 0x68, 0x69]));
  const z = await raw('/test.Echo/Unary', Buffer.from([1, 0, 0, 0, 1, 0x41]), { 'grpc-encoding': 'gzip' });
  assert.equal(statusOf(z), GrpcCode.UNIMPLEMENTED);
  assert.equal(z.headers['grpc-message'], 'grpc: Decompressor is not installed for grpc-encoding "gzip"');
  const ct = await raw('/test.Echo/Unary', Buffer.from('{}'), { 'content-type': 'application/json' });
  assert.equal(ct.status, 415);
  const to = await raw('/test.Echo/Unary', Buffer.from([0, 0, 0, 0, 0]), { 'grpc-timeout': 'soon' });
  assert.equal(statusOf(to), GrpcCode.INTERNAL);
  // The handler would answer 'late' with status 0 after 1.5 s: a deadline status means the server's own timer answered.
  const late = await raw('/test.Echo/Slow', Buffer.from([0, 0, 0, 0, 0]), { 'grpc-timeout': '50m' });
  assert.equal(statusOf(late), GrpcCode.DEADLINE_EXCEEDED);
  assert.equal(late.headers['grpc-message'], 'context deadline exceeded');
});

// ---------------------------------------------------------------- hand-built frames

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, sid: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

interface Frame { type: number; flags: number; id: number; payload: Buffer }

/** A raw connection: sends bytes, collects the frames the server sends until it closes. */
class RawConn {
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly socket: net.Socket;
  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({ type: this.buf[3]!, flags: this.buf[4]!, id: this.buf.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.buf.subarray(9, 9 + len)) });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => { this.closed = true; this.wake(); });
  }
  private wake(): void { for (const w of this.waiters.splice(0)) w(); }
  send(...bufs: Buffer[]): void { this.socket.write(Buffer.concat(bufs)); }
  async until(pred: () => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timeout waiting on raw connection: ${JSON.stringify(this.frames.map((f) => [f.type, f.flags, f.id, f.payload.length, f.type === 7 ? f.payload.toString('latin1', 8) : '']))}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  /** Decodes every HEADERS/CONTINUATION block of a stream, in order. */
  headerBlocks(sid: number, dec = new HpackDecoder()): Record<string, string>[] {
    const out: Record<string, string>[] = [];
    let acc: Buffer[] = [];
    for (const f of this.frames) {
      if (f.id !== sid || (f.type !== 1 && f.type !== 9)) continue;
      acc.push(f.payload);
      if (f.flags & 4) {
        const b = Buffer.concat(acc);
        acc = [];
        const l = new HeaderList();
        dec.decode(b, 0, b.length, l);
        out.push(l.toObject());
      }
    }
    return out;
  }
  data(sid: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.id === sid && f.type === 0).map((f) => f.payload));
  }
  ended(sid: number): boolean {
    return this.frames.some((f) => f.id === sid && ((f.type === 1 && (f.flags & 1)) || f.type === 3));
  }
  close(): void { this.socket.destroy(); }
}

function lit(name: string, value: string, huff = false, index = false): Buffer {
  const str = (s: string) => {
    const raw = huff ? huffmanEncode(s) : Buffer.from(s, 'latin1');
    if (raw.length >= 127) throw new Error('test strings stay short');
    return Buffer.concat([Buffer.from([(huff ? 0x80 : 0) | raw.length]), raw]);
  };
  return Buffer.concat([Buffer.from([index ? 0x40 : 0x00]), str(name), str(value)]);
}

function framed(b: Buffer): Buffer {
  const p = Buffer.alloc(5);
  p.writeUInt32BE(b.length, 1);
  return Buffer.concat([p, b]);
}

test('raw frames: CONTINUATION, padding, PRIORITY, Huffman, dynamic table, PING, table size update', async () => {
  const c = new RawConn(listener.address.port);
  c.send(PREFACE, frame(4, 0, 0, Buffer.alloc(0)));
  // Stream 1: HEADERS(PADDED|PRIORITY, no END_HEADERS) + CONTINUATION, fields Huffman-coded and
  // added to the dynamic table; DATA padded, END_STREAM in a separate empty DATA frame.
  const block1 = Buffer.concat([
    Buffer.from([0x3f, 0xe1, 0x1f]),              // dynamic table size update to 4096 (5-bit prefix: 31 + 4065)
    Buffer.from([0x83, 0x86]),                    // :method POST, :scheme http
    lit(':path', '/test.Echo/Unary', true, true),
    lit(':authority', 'x', true, true),
    lit('content-type', 'application/grpc', true, true),
    lit('te', 'trailers', false, true),
  ]);
  const pad = 7;
  const h1 = Buffer.concat([Buffer.from([pad]), Buffer.from([0, 0, 0, 0, 15]), block1.subarray(0, 10), Buffer.alloc(pad)]);
  c.send(
    frame(2, 0, 1, Buffer.from([0, 0, 0, 0, 3])),                 // PRIORITY (on an idle stream): ignored
    frame(1, 0x08 | 0x20, 1, h1),
    frame(9, 0x4, 1, block1.subarray(10)),
    frame(6, 0, 0, Buffer.from('pingpong')),
  );
  const body = framed(Buffer.from('padded hello'));
  c.send(frame(0, 0x08, 1, Buffer.concat([Buffer.from([3]), body, Buffer.alloc(3)])), frame(0, 0x1, 1, Buffer.alloc(0)));
  // Stream 3: the same request entirely from the dynamic table (indexes 62..65, newest first).
  c.send(frame(1, 0x4 | 0x1, 3, Buffer.from([0x83, 0x86, 0xc1, 0xc0, 0xbf, 0xbe])));
  await c.until(() => c.ended(1) && c.ended(3) && c.frames.some((f) => f.type === 6 && f.flags === 1));
  const ping = c.frames.find((f) => f.type === 6)!;
  assert.equal(ping.payload.toString(), 'pingpong');
  const dec = new HpackDecoder();
  const hb1 = c.headerBlocks(1, dec);
  assert.equal(hb1[0]![':status'], '200');
  assert.equal(hb1[0]!['content-type'], 'application/grpc');
  assert.equal(hb1[1]!['grpc-status'], '0');
  assert.deepEqual(c.data(1), body);
  // Stream 3 has no body: a unary call without a message is INTERNAL, trailers-only.
  const hb3 = c.headerBlocks(3, dec);
  assert.equal(hb3[0]!['grpc-status'], String(GrpcCode.INTERNAL));
  assert.equal(hb3[0]![':status'], '200');
  // The settings we advertise.
  const settings = c.frames.find((f) => f.type === 4 && f.flags === 0)!;
  const s = new Map<number, number>();
  for (let o = 0; o < settings.payload.length; o += 6) s.set(settings.payload.readUInt16BE(o), settings.payload.readUInt32BE(o + 2));
  assert.ok(s.get(4)! >= 1024 * 1024, 'initial window >= 1 MiB');
  assert.ok(s.get(3)! >= 1000, 'large max concurrent streams');
  assert.ok(c.frames.some((f) => f.type === 8 && f.id === 0), 'connection WINDOW_UPDATE');
  assert.ok(c.frames.some((f) => f.type === 4 && f.flags === 1), 'our SETTINGS acked theirs');
  c.close();
});

test('raw frames: RST_STREAM cancels a streaming call; stream id rules are enforced', async () => {
  const before = cancelled;
  const c = new RawConn(listener.address.port);
  const req = (path: string) => Buffer.concat([Buffer.from([0x83, 0x86]), lit(':path', path), lit('content-type', 'application/grpc')]);
  c.send(PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x4, 1, req('/test.Echo/Hang')));
  await new Promise((r) => setTimeout(r, 50));
  c.send(frame(3, 0, 1, Buffer.from([0, 0, 0, 8])));
  for (let i = 0; i < 50 && cancelled === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cancelled, before + 1);
  // A HEADERS on an even stream id is a connection error: GOAWAY(PROTOCOL_ERROR), then close.
  c.send(frame(1, 0x5, 2, req('/test.Echo/Unary')));
  await c.until(() => c.closed);
  const ga = c.frames.find((f) => f.type === 7)!;
  assert.equal(ga.payload.readUInt32BE(4), 1);
});

test('raw frames: a response larger than the client window waits for WINDOW_UPDATE', async () => {
  const c = new RawConn(listener.address.port);
  // The client keeps the default 65535-byte windows; the 20 MB body must come in window-sized pieces.
  c.send(PREFACE, frame(4, 0, 0, Buffer.alloc(0)),
    frame(1, 0x4, 1, Buffer.concat([Buffer.from([0x83, 0x86]), lit(':path', '/test.Echo/Big'), lit('content-type', 'application/grpc')])),
    frame(0, 0x1, 1, framed(Buffer.alloc(0))));
  await c.until(() => c.data(1).length === 65535);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.data(1).length, 65535, 'no more than the window before a WINDOW_UPDATE');
  const inc = Buffer.alloc(4);
  inc.writeUInt32BE(0x7fffffff - 65535);
  c.send(frame(8, 0, 0, inc), frame(8, 0, 1, inc));
  await c.until(() => c.ended(1), 10_000);
  const d = c.data(1);
  assert.equal(d.length, BIG + 5);
  assert.ok(d.subarray(5).equals(bigBody));
  assert.ok(c.frames.filter((f) => f.type === 0).every((f) => f.payload.length <= 16384), 'frames within MAX_FRAME_SIZE');
  c.close();
});

test('fuzz: random bytes after a valid preface close that connection only', async () => {
  const rng = makeRng(0x5eed);
  const keep = client;   // the grpc-js connection must survive all of it
  for (let round = 0; round < 60; round++) {
    const c = new RawConn(listener.address.port);
    const n = 1 + Math.floor(rng() * 400);
    const junk = Buffer.alloc(n);
    for (let i = 0; i < n; i++) junk[i] = Math.floor(rng() * 256);
    // Half the rounds start with a valid SETTINGS, so the junk hits the frame parser.
    c.send(PREFACE, round % 2 === 0 ? frame(4, 0, 0, Buffer.alloc(0)) : Buffer.alloc(0), junk);
    // Junk that happens to parse as harmless frames leaves the connection open: end it from our side.
    const t = setTimeout(() => c.socket.end(), 300);
    await c.until(() => c.closed, 5000);
    clearTimeout(t);
    c.close();
  }
  assert.deepEqual(await new Promise<Buffer>((resolve, reject) => keep.makeUnaryRequest('/test.Echo/Unary', id, id,
    Buffer.from('alive'), (err, res) => (err ? reject(err) : resolve(res!)))), Buffer.from('alive'));
  assert.ok(srv.sessionCount >= 1);
});

test('the load generator client (bench/load/h2raw.ts style, literal headers, huge windows) works', async () => {
  const { RawH2Conn } = await import('../../bench/load/h2raw.js');
  const c = new RawH2Conn(addr);
  await c.connect();
  const res = await Promise.all(Array.from({ length: 500 }, (_, i) => c.unaryAsync('/test.Echo/Unary', framed(Buffer.from(`m${i}`)))));
  res.forEach((r, i) => assert.equal(r.toString(), `m${i}`));
  c.close();
});

// A server that waited for the grace limit (10 minutes here) would run into the test's timeout.
test('close(): GOAWAY lets an in-flight call finish, then the connection ends', { timeout: 60_000 }, async () => {
  const s2 = createRawGrpcServer({ unary, maxRecvBytes: MAX_RECV, knownMethods: [] });
  const ns = net.createServer((sock) => s2.acceptSocket(sock));
  await new Promise<void>((r) => ns.listen(0, '127.0.0.1', r));
  const c2 = new grpc.Client(`127.0.0.1:${(ns.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure());
  const slow = new Promise<Buffer>((resolve, reject) => c2.makeUnaryRequest('/test.Echo/Slow', id, id, Buffer.alloc(0),
    (err, res) => (err ? reject(err) : resolve(res!))));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(s2.sessionCount, 1);
  await s2.close(600_000);
  assert.deepEqual(await slow, Buffer.from('late'));
  assert.equal(s2.sessionCount, 0);
  c2.close();
  ns.close();
});
