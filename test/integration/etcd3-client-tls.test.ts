// The etcd3 npm client (1.1.2, unchanged, on @grpc/grpc-js) against etsd
// serving its client port over TLS with client certificates required: put
// and get, a watch, a lease with its key and revocation, and auth (users,
// a role on a prefix, auth enable, the client's own Authenticate and token,
// a refusal as etcd's typed error). The package ships no test certificates,
// so the CA and leaves are made with openssl here (test/common/tls-certs.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Etcd3, EtcdPermissionDeniedError, type IOptions } from 'etcd3';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { issue, makeCa } from '../common/tls-certs.js';

const procs: EtsdProcess[] = [];
const clients: Etcd3[] = [];
const dir = makeTempDir('etcd3-tls');
after(async () => {
  for (const c of clients) c.close();
  for (const p of procs) await p.stop();
  removeTempDir(dir);
});

const client = (o: IOptions): Etcd3 => {
  const c = new Etcd3(o);
  clients.push(c);
  return c;
};

/** Retries `fn` until it succeeds (the server is starting), at most 60 s. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

test('etcd3 1.1.2 over TLS with client certificates: KV, watch, lease and auth against etsd', { timeout: 180_000 }, async () => {
  const ca = makeCa(dir, 'ca');
  const server = issue(ca, 'server', 'etsd-server');
  // Not a user name: with auth on, only the token names the user.
  const leaf = issue(ca, 'client', 'etcd3-client');
  const [port, peer] = await freePorts(2);
  const url = `https://127.0.0.1:${port}`;
  const p = await EtsdProcess.start({
    dataDir: makeTempDir('etcd3-tls-data'), clientPort: port!, peerPort: peer!,
    extraArgs: ['--listen-client-urls', url, '--advertise-client-urls', url,
      '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.cert, '--client-cert-auth'],
  });
  procs.push(p);
  const credentials = { rootCertificate: readFileSync(ca.cert), certChain: readFileSync(leaf.cert), privateKey: readFileSync(leaf.key) };
  const etcd = client({ hosts: url, credentials });

  // KV.
  await eventually(() => etcd.put('foo').value('bar').exec());
  assert.equal(await etcd.get('foo').string(), 'bar');
  await etcd.put('dir/a').value('1');
  await etcd.put('dir/b').value('2');
  assert.deepEqual(await etcd.getAll().prefix('dir/').strings(), { 'dir/a': '1', 'dir/b': '2' });
  assert.equal(await etcd.delete().key('dir/a').then((r) => r.deleted), '1');

  // Watch: a put after the watch is created arrives as a put event.
  const watcher = await etcd.watch().key('w').create();
  const seen = new Promise<string>((resolve) => watcher.on('put', (kv) => resolve(kv.value.toString())));
  await etcd.put('w').value('event');
  assert.equal(await seen, 'event');
  await watcher.cancel();

  // Lease: a key attached to it, gone once the lease is revoked.
  const lease = etcd.lease(30);
  await lease.put('leased').value('v');
  assert.ok(BigInt(await lease.grant()) > 0n);
  assert.equal(await etcd.get('leased').string(), 'v');
  await lease.revoke();
  assert.equal(await etcd.get('leased').string(), null);

  // Auth: root, a role readwrite on app/, alice holding it, then auth on.
  await etcd.user('root').create('rootpw');
  await etcd.user('root').addRole('root');
  const role = await etcd.role('app-rw').create();
  await role.grant({ permission: 'Readwrite', range: etcd.range({ prefix: 'app/' }) });
  await etcd.user('alice').create('alicepw');
  await etcd.user('alice').addRole('app-rw');
  await etcd.auth.authEnable();

  const alice = client({ hosts: url, credentials, auth: { username: 'alice', password: 'alicepw' } });
  await alice.put('app/x').value('by-alice');
  assert.equal(await alice.get('app/x').string(), 'by-alice');
  await assert.rejects(alice.put('foo').value('no').exec(), EtcdPermissionDeniedError);
  const root = client({ hosts: url, credentials, auth: { username: 'root', password: 'rootpw' } });
  assert.equal(await root.get('foo').string(), 'bar');
  // (root's role was granted, never added: etcd lists stored roles only.)
  assert.deepEqual((await root.getRoles()).map((r) => r.name), ['app-rw']);
  // No token and a certificate CN that is no user: etcd's refusal.
  await assert.rejects(etcd.get('foo').string(), /user name (is empty|not found)|permission denied/);
  await root.auth.authDisable();
  assert.equal(await etcd.get('app/x').string(), 'by-alice');
});
