// The client port over TLS, differentially: real etcd 3.4 and etsd started
// with the same certificates (made by openssl here) and the same flags
// (https://, --cert-file, --key-file, --trusted-ca-file, --client-cert-auth),
// then the same etcdctl commands against each: put, get, a watch replaying
// history, refusal without a client certificate and with one from another CA,
// and /health over HTTPS. Every observable result must be the same.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../common/ports.js';
import { etsdScript } from '../common/repo.js';
import { issue, makeCa, type Ca, type Leaf } from '../common/tls-certs.js';

const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const dir = mkdtempSync(join(tmpdir(), 'etsd-tls-compat-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Run { code: number; stdout: string }

function etcdctl(args: string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(ETCDCTL, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: timeoutMs }, (err, stdout) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout });
    });
  });
}

let started = 0;
async function start(kind: 'etcd' | 'etsd', ca: Ca, server: Leaf): Promise<string> {
  const [cp, pp] = await freePorts(2);
  const client = `https://127.0.0.1:${cp}`;
  const peer = `http://127.0.0.1:${pp}`;
  const args = ['--name', 'n1', '--data-dir', join(dir, `${kind}-${started++}`), '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `n1=${peer}`,
    '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.cert, '--client-cert-auth'];
  const child = kind === 'etcd'
    ? spawn(ETCD, args, { stdio: 'ignore' })
    : spawn(process.execPath, [etsdScript(), ...args], { stdio: 'ignore' });
  children.push(child);
  return `127.0.0.1:${cp}`;
}

async function waitReady(ep: string, tls: string[]): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = await etcdctl([`--endpoints=${ep}`, ...tls, '--dial-timeout=1s', '--command-timeout=2s', 'get', 'probe']);
    if (r.code === 0) return;
    assert.ok(Date.now() < until, `${ep} never answered over TLS`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

function health(ep: string, ca: Ca, leaf: Leaf): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(`https://${ep}/health`, { ca: readFileSync(ca.cert), cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), agent: false }, (res) => {
      let t = '';
      res.on('data', (d: Buffer) => { t += d.toString(); });
      // Only the verdict: etsd answers in etcd 3.5's shape (with "reason"), etcd 3.4 without it.
      res.on('end', () => resolve(`${res.statusCode} health=${(JSON.parse(t) as { health: string }).health}`));
    }).on('error', reject);
  });
}

/** etcdctl watch --rev=1 until `lines` lines are out, then stop it (by its PID). */
function watchLines(ep: string, tls: string[], key: string, lines: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const w = spawn(ETCDCTL, [`--endpoints=${ep}`, ...tls, 'watch', key, '--rev=1'], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    const timer = setTimeout(() => { w.kill('SIGKILL'); reject(new Error(`watch gave only:\n${out}`)); }, 20_000);
    w.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > lines) { clearTimeout(timer); w.kill('SIGTERM'); resolve(out); }
    });
  });
}

async function scenario(kind: 'etcd' | 'etsd', ca: Ca, server: Leaf, alice: Leaf, mallory: Leaf): Promise<Record<string, unknown>> {
  const ep = await start(kind, ca, server);
  const good = ['--cacert', ca.cert, '--cert', alice.cert, '--key', alice.key];
  await waitReady(ep, good);
  const e = [`--endpoints=${ep}`];
  const quick = ['--dial-timeout=1s', '--command-timeout=2s'];
  return {
    put1: await etcdctl([...e, ...good, 'put', 'foo', 'one']),
    put2: await etcdctl([...e, ...good, 'put', 'foo', 'two']),
    get: await etcdctl([...e, ...good, 'get', 'foo', '--print-value-only']),
    watch: await watchLines(ep, good, 'foo', 6),
    noClientCert: (await etcdctl([...e, ...quick, '--cacert', ca.cert, 'get', 'foo'])).code,
    otherCa: (await etcdctl([...e, ...quick, '--cacert', ca.cert, '--cert', mallory.cert, '--key', mallory.key, 'get', 'foo'])).code,
    health: await health(ep, ca, alice),
  };
}

test('etcdctl over TLS with client certificates: etsd answers as etcd does', { skip: !existsSync(ETCD) && 'no /usr/bin/etcd' }, async () => {
  const ca = makeCa(dir, 'ca');
  const other = makeCa(dir, 'other');
  const server = issue(ca, 'server', 'server');
  const alice = issue(ca, 'alice', 'alice');
  const mallory = issue(other, 'mallory', 'alice');
  const etcd = await scenario('etcd', ca, server, alice, mallory);
  const etsd = await scenario('etsd', ca, server, alice, mallory);
  assert.deepEqual(etsd, etcd);
  // And what they agree on is what it should be.
  assert.equal((etsd['get'] as Run).stdout, 'two\n');
  assert.equal(etsd['watch'], 'PUT\nfoo\none\nPUT\nfoo\ntwo\n');
  assert.notEqual(etsd['noClientCert'], 0);
  assert.notEqual(etsd['otherCa'], 0);
  assert.equal(etsd['health'], '200 health=true');
});

/** With auth on and no --user, the verified client certificate's CN is the user (etcd's AuthInfoFromTLS). */
async function cnScenario(kind: 'etcd' | 'etsd', ca: Ca, server: Leaf, root: Leaf, alice: Leaf): Promise<Record<string, unknown>> {
  const ep = await start(kind, ca, server);
  const asRoot = [`--endpoints=${ep}`, '--cacert', ca.cert, '--cert', root.cert, '--key', root.key];
  const asAlice = [`--endpoints=${ep}`, '--cacert', ca.cert, '--cert', alice.cert, '--key', alice.key];
  await waitReady(ep, asRoot.slice(1));
  const steps: [string, string[]][] = [
    ['add root', [...asRoot, 'user', 'add', 'root:rootpw']],
    ['grant root', [...asRoot, 'user', 'grant-role', 'root', 'root']],
    ['add alice', [...asRoot, 'user', 'add', 'alice:alicepw']],
    ['add role', [...asRoot, 'role', 'add', 'foo-rw']],
    ['grant perm', [...asRoot, 'role', 'grant-permission', 'foo-rw', 'readwrite', 'foo']],
    ['grant alice', [...asRoot, 'user', 'grant-role', 'alice', 'foo-rw']],
    ['enable', [...asRoot, 'auth', 'enable']],
    ['alice put foo', [...asAlice, 'put', 'foo', 'by-alice']],
    ['alice put bar', [...asAlice, 'put', 'bar', 'by-alice']],
    ['alice get foo', [...asAlice, 'get', 'foo', '--print-value-only']],
    ['root put bar', [...asRoot, 'put', 'bar', 'by-root']],
    ['root get bar', [...asRoot, 'get', 'bar', '--print-value-only']],
    ['alice list users', [...asAlice, 'user', 'list']],
  ];
  const out: Record<string, unknown> = {};
  for (const [name, args] of steps) out[name] = await etcdctl(args);
  return out;
}

test('auth with TLS: the client certificate CN is the user when no --user is given, as in etcd', { skip: !existsSync(ETCD) && 'no /usr/bin/etcd' }, async () => {
  const ca = makeCa(dir, 'cn-ca');
  const server = issue(ca, 'cn-server', 'server');
  const root = issue(ca, 'cn-root', 'root');
  const alice = issue(ca, 'cn-alice', 'alice');
  const etcd = await cnScenario('etcd', ca, server, root, alice);
  const etsd = await cnScenario('etsd', ca, server, root, alice);
  assert.deepEqual(etsd, etcd);
  assert.equal((etsd['alice put foo'] as Run).code, 0);
  assert.notEqual((etsd['alice put bar'] as Run).code, 0, 'alice has no permission on bar');
  assert.equal((etsd['root get bar'] as Run).stdout, 'by-root\n');
});
