import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors, GrpcCode } from '../../src/server/errors.js';
import { createH2GrpcServer, type H2GrpcServer, type ServerCall, type StreamHandler, type UnaryHandler } from '../../src/server/h2/grpc-h2-server.js';
import { listenShared, type SharedListener } from '../../src/server/h2/port-sharing.js';
import { adaptStreamHandlers } from '../../src/server/h2/adapt.js';

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
  // etcd-shaped paths for etcdctl: empty responses are valid PutResponse / RangeResponse.
  ['/etcdserverpb.KV/Put', () => Buffer.alloc(0)],
  ['/etcdserverpb.KV/Range', () => Buffer.alloc(0)],
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
  // The services' transport-neutral shapes (src/server/stream.ts), through the adapters.
  ...adaptStreamHandlers(
    new Map([['/test.Echo/AdaptBidi', (b) => { b.onMessage((m) => b.write(m)); b.onEnd(() => b.end()); }]]),
    new Map([['/test.Echo/AdaptServer', (req, out) => { out.write(req); out.write(req); out.end(); }]]),
  ),
]);

let srv: H2GrpcServer;
let h1: http.Server;
let listener: SharedListener;
let addr: string;
let client: grpc.Client;

const id = (b: Buffer) => b;

before(async () => {
  srv = createH2GrpcServer({
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
  const t0 = Date.now();
  const late = await raw('/test.Echo/Slow', Buffer.from([0, 0, 0, 0, 0]), { 'grpc-timeout': '50m' });
  assert.equal(statusOf(late), GrpcCode.DEADLINE_EXCEEDED);
  assert.equal(late.headers['grpc-message'], 'context deadline exceeded');
  assert.ok(Date.now() - t0 < 1000, 'answered by the server-side deadline, not the handler');
});

const ETCDCTL = '/usr/bin/etcdctl';
test('etcdctl (grpc-go client) talks to it', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const run = (...args: string[]) => new Promise<string>((resolve, reject) => {
    execFile(ETCDCTL, [`--endpoints=${addr}`, '--command-timeout=5s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
  });
  assert.equal((await run('put', 'foo', 'bar')).trim(), 'OK');
  assert.equal((await run('get', 'foo')).trim(), '');
  await assert.rejects(run('del', 'foo'), /not implemented yet|Unimplemented/);
});
