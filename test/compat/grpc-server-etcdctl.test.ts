// The raw gRPC server (src/grpc/) with a real grpc-go client: etcdctl, against
// etcd-shaped handlers that answer empty responses (valid PutResponse and
// RangeResponse) and leave DeleteRange unregistered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRawGrpcServer, type UnaryHandler } from '../../src/grpc/server.js';

const ETCDCTL = '/usr/bin/etcdctl';

test('etcdctl (grpc-go client) talks to the raw gRPC server', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async (t) => {
  const unary = new Map<string, UnaryHandler>([
    ['/etcdserverpb.KV/Put', () => Buffer.alloc(0)],
    ['/etcdserverpb.KV/Range', () => Buffer.alloc(0)],
  ]);
  const server = createRawGrpcServer({ unary, maxRecvBytes: 1024 * 1024 });
  const ns = net.createServer((sock) => server.acceptSocket(sock));
  await new Promise<void>((r) => ns.listen(0, '127.0.0.1', r));
  t.after(async () => { await server.close(1000); ns.close(); });
  const addr = `127.0.0.1:${(ns.address() as net.AddressInfo).port}`;
  const run = (...args: string[]) => new Promise<string>((resolve, reject) => {
    execFile(ETCDCTL, [`--endpoints=${addr}`, '--command-timeout=5s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
  });
  assert.equal((await run('put', 'foo', 'bar')).trim(), 'OK');
  assert.equal((await run('get', 'foo')).trim(), '');
  await assert.rejects(run('del', 'foo'), /not implemented yet|Unimplemented|unknown service|unknown method/);
});
