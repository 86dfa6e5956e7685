// src/tls over real sockets and certificates made by openssl in the test:
// the client port (TLS in front of the shared gRPC / HTTP/1.1 listener) with
// client-certificate checks, the verified CN on the call context, CRLs,
// certificate rotation by replacing files, ALPN, --peer-cert-allowed-cn and
// auto-tls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { parseArgs } from '../../src/common/config.js';
import { createRawGrpcServer, type RawGrpcServer, type ServerCall } from '../../src/grpc/server.js';
import { listenShared, type SharedListener } from '../../src/grpc/port-sharing.js';
import { TlsSide } from '../../src/tls/side.js';
import { issue, makeCa, revoke, type Ca, type Leaf } from '../common/tls-certs.js';

const dir = mkdtempSync(join(tmpdir(), 'etsd-tls-side-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const logged: string[] = [];
const log = { debug: (_o: object, m: string) => { logged.push(m); }, info: (_o: object, m: string) => { logged.push(m); }, warn: (_o: object, m: string) => { logged.push(m); } };

let ca: Ca;
let other: Ca;
let server: Leaf;
let alice: Leaf;
let mallory: Leaf;
let revoked: Leaf;
let crl: string;
// The files the server is configured with (rotation replaces them).
let certFile: string;
let keyFile: string;

let side: TlsSide;
let grpcServer: RawGrpcServer;
let listener: SharedListener;
let port: number;
const id = (b: Buffer) => b;

before(async () => {
  ca = makeCa(dir, 'ca');
  other = makeCa(dir, 'other');
  server = issue(ca, 'server', 'server-one');
  alice = issue(ca, 'alice', 'alice');
  revoked = issue(ca, 'revoked', 'bob');
  mallory = issue(other, 'mallory', 'alice');
  crl = revoke(ca, [revoked]);
  certFile = join(dir, 'live.pem');
  keyFile = join(dir, 'live.key');
  copyFileSync(server.cert, certFile);
  copyFileSync(server.key, keyFile);

  const cfg = parseArgs(['--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', certFile, '--key-file', keyFile,
    '--trusted-ca-file', ca.cert, '--client-cert-auth', '--client-crl-file', crl]).config;
  const s = await TlsSide.prepare(cfg.tls, 'client', dir, cfg.listenClientUrls, log);
  assert.ok(s !== null);
  side = s;
  grpcServer = createRawGrpcServer({
    unary: new Map([['/test.Who/Am', (_req: Buffer, ctx) => Buffer.from(`cn=${ctx?.peerCommonName ?? 'none'}`)]]),
    streams: new Map([['/test.Who/Stream', (call: ServerCall) => {
      call.onMessage(() => undefined);
      call.onEnd(() => { call.write(Buffer.from(`cn=${call.peerCommonName ?? 'none'}`)); call.end(); });
    }]]),
    maxRecvBytes: 1 << 20,
  });
  const h1 = http.createServer((req, res) => res.end(`h1 ${req.url} over ${req.httpVersion}`));
  listener = await listenShared({ host: '127.0.0.1', port: 0 }, grpcServer.http2, h1,
    { createServer: (onSocket) => side.createServer('client-port', onSocket) });
  port = listener.address.port;
});

after(async () => {
  await grpcServer.close(100);
  await listener.close();
});

function grpcClient(leaf: Leaf | null): grpc.Client {
  const creds = grpc.credentials.createSsl(readFileSync(ca.cert), leaf ? readFileSync(leaf.key) : null, leaf ? readFileSync(leaf.cert) : null);
  return new grpc.Client(`localhost:${port}`, creds);
}

function who(c: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) => {
    c.makeUnaryRequest('/test.Who/Am', id, id, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 5000 },
      (err, res) => (err ? reject(err) : resolve(res!.toString())));
  });
}

/** A bare TLS handshake; resolves with the server's certificate or rejects with the handshake error. */
function handshake(leaf: Leaf | null, alpn?: string[]): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1', port, ca: readFileSync(ca.cert), servername: 'localhost',
      ...(leaf ? { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) } : {}),
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    s.once('secureConnect', () => {
      // TLS 1.3: the server's verdict on our certificate comes after the client's
      // handshake is done; only an answer to a request shows we were let in.
      s.write(s.alpnProtocol === 'h2' ? 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0' : 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
      s.once('data', () => resolve(s));
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed by the server')));
  });
}

test('a client with a certificate from the trusted CA gets gRPC over TLS, and its CN on the call context', async () => {
  const c = grpcClient(alice);
  try {
    assert.equal(await who(c), 'cn=alice');
    const streamed = await new Promise<string>((resolve, reject) => {
      const call = c.makeClientStreamRequest('/test.Who/Stream', id, id, new grpc.Metadata(), (err, res) => (err ? reject(err) : resolve(res!.toString())));
      call.end();
    });
    assert.equal(streamed, 'cn=alice');
  } finally {
    c.close();
  }
});

test('without a client certificate, or with one from another CA, or a revoked one: refused at the handshake', async () => {
  for (const [what, leaf] of [['no certificate', null], ['another CA', mallory], ['revoked (CRL)', revoked]] as const) {
    const c = grpcClient(leaf);
    try {
      await assert.rejects(who(c), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE, what);
    } finally {
      c.close();
    }
    await assert.rejects(handshake(leaf), what);
  }
  const ok = await handshake(alice);
  ok.destroy();
});

test('ALPN: http/1.1 when offered (curl, probes) reaches HTTP/1.1, h2 alone reaches gRPC', async () => {
  const body = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/health', ca: readFileSync(ca.cert), servername: 'localhost', cert: readFileSync(alice.cert), key: readFileSync(alice.key), agent: false }, (res) => {
      let t = '';
      res.on('data', (d: Buffer) => { t += d.toString(); });
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
  assert.equal(body, 'h1 /health over 1.1');
  const both = await handshake(alice, ['h2', 'http/1.1']);
  assert.equal(both.alpnProtocol, 'http/1.1');
  both.destroy();
  const h2 = await handshake(alice, ['h2']);
  assert.equal(h2.alpnProtocol, 'h2');
  h2.destroy();
  await assert.rejects(handshake(alice, ['spdy/3']));
});

test('replacing the certificate files rotates it for new handshakes, without a restart', async () => {
  const before = await handshake(alice);
  assert.equal(before.getPeerCertificate().subject.CN, 'server-one');
  const kept = grpcClient(alice);
  assert.equal(await who(kept), 'cn=alice');

  // A half-written file (rotation in progress) keeps the old certificate serving.
  writeFileSync(certFile, readFileSync(server.cert).subarray(0, 100));
  const during = await handshake(alice);
  assert.equal(during.getPeerCertificate().subject.CN, 'server-one');
  during.destroy();
  assert.ok(logged.includes('failed to reload TLS certificate files; keeping the previous ones'));

  const two = issue(ca, 'server2', 'server-two');
  // As rotation tools do: the new files are renamed into place.
  copyFileSync(two.key, keyFile + '.new');
  copyFileSync(two.cert, certFile + '.new');
  renameSync(keyFile + '.new', keyFile);
  renameSync(certFile + '.new', certFile);
  const after = await handshake(alice);
  assert.equal(after.getPeerCertificate().subject.CN, 'server-two');
  after.destroy();
  // The connection made before goes on.
  assert.equal(await who(kept), 'cn=alice');
  kept.close();
  before.destroy();
});

test('--peer-cert-allowed-cn: a peer certificate from the trusted CA with another CN is refused', async () => {
  const member = issue(ca, 'member', 'member');
  const cfg = parseArgs(['--listen-peer-urls', 'https://127.0.0.1:0', '--initial-advertise-peer-urls', 'https://127.0.0.1:0',
    '--initial-cluster', 'default=https://127.0.0.1:0', '--peer-cert-file', member.cert, '--peer-key-file', member.key,
    '--peer-trusted-ca-file', ca.cert, '--peer-client-cert-auth', '--peer-cert-allowed-cn', 'member']).config;
  const peer = await TlsSide.prepare(cfg.tls, 'peer', dir, cfg.listenPeerUrls, log);
  assert.ok(peer !== null);
  const accepted: string[] = [];
  const srv = peer.createServer('peer-port', (s) => { accepted.push(String(s.getPeerCertificate().subject.CN)); s.end('hi'); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const p = (srv.address() as { port: number }).port;
  const tryDial = (leaf: Leaf) => new Promise<string>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: p, ca: readFileSync(ca.cert), cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) });
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString(); });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
  assert.equal(await tryDial(member), 'hi');
  assert.equal(await tryDial(alice), '');
  assert.deepEqual(accepted, ['member']);
  // Our own dialler checks the server the same way.
  const dialled = await new Promise<boolean>((resolve) => {
    const s = peer.dial('127.0.0.1', p, () => { resolve(true); s.destroy(); });
    s.on('error', () => resolve(false));
  });
  assert.equal(dialled, true);
  await new Promise<void>((r) => srv.close(() => r()));
});

test('--auto-tls makes a self-signed certificate for the listen hosts under <data-dir>/fixtures/client, and reuses it', async () => {
  const dataDir = join(dir, 'auto');
  const cfg = parseArgs(['--listen-client-urls', 'https://127.0.0.1:0', '--auto-tls']).config;
  const a = await TlsSide.prepare(cfg.tls, 'client', dataDir, cfg.listenClientUrls, log);
  assert.ok(a !== null);
  assert.equal(a.selfCert, true);
  const pem = readFileSync(join(dataDir, 'fixtures', 'client', 'cert.pem'));
  const x = new (await import('node:crypto')).X509Certificate(pem);
  assert.match(x.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.match(x.subject, /O=etcd/);
  const again = await TlsSide.prepare(cfg.tls, 'client', dataDir, cfg.listenClientUrls, log);
  assert.ok(again !== null);
  assert.deepEqual(readFileSync(join(dataDir, 'fixtures', 'client', 'cert.pem')), pem);
});

test('--peer-cert-allowed-hostname: the other end\'s certificate must be valid for that name', async () => {
  const member = issue(ca, 'member-h', 'm', ['DNS:member.example', 'IP:127.0.0.1']);
  const stranger = issue(ca, 'stranger-h', 'm', ['DNS:stranger.example', 'IP:127.0.0.1']);
  const cfg = parseArgs(['--listen-peer-urls', 'https://127.0.0.1:0', '--initial-advertise-peer-urls', 'https://127.0.0.1:0',
    '--initial-cluster', 'default=https://127.0.0.1:0', '--peer-cert-file', member.cert, '--peer-key-file', member.key,
    '--peer-trusted-ca-file', ca.cert, '--peer-client-cert-auth', '--peer-cert-allowed-hostname', 'member.example']).config;
  const peer = await TlsSide.prepare(cfg.tls, 'peer', dir, cfg.listenPeerUrls, log);
  assert.ok(peer !== null);
  const srv = peer.createServer('peer-port', (s) => s.end('hi'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const p = (srv.address() as { port: number }).port;
  const tryDial = (leaf: Leaf) => new Promise<string>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: p, ca: readFileSync(ca.cert), cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) });
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString(); });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
  assert.equal(await tryDial(member), 'hi');
  assert.equal(await tryDial(stranger), '');
  await new Promise<void>((r) => srv.close(() => r()));
});
