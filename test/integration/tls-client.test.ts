// The etsd process serving its client port over TLS: certificate rotation by
// replacing the files (the next handshake sees the new certificate, no
// restart, etcdctl keeps working), and --auto-tls (a generated certificate
// that etcdctl accepts with --insecure-skip-tls-verify, as with etcd).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { issue, makeCa, type Ca, type Leaf } from '../common/tls-certs.js';

const ETCDCTL = '/usr/bin/etcdctl';
const procs: EtsdProcess[] = [];
const dirs: string[] = [];
const tmp = (label: string) => { const d = makeTempDir(label); dirs.push(d); return d; };
after(async () => {
  for (const p of procs) await p.stop();
  for (const d of dirs) removeTempDir(d);
});

function etcdctl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile(ETCDCTL, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
    (err, out) => resolve({ code: err === null ? 0 : 1, out })));
}

async function untilOk(args: string[]): Promise<string> {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = await etcdctl([...args, '--dial-timeout=1s', '--command-timeout=2s']);
    if (r.code === 0) return r.out;
    assert.ok(Date.now() < until, `etcdctl ${args.join(' ')} never succeeded`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** The CN of the certificate the server shows on a new handshake. */
function serverCn(port: number, ca: Ca, leaf: Leaf): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(ca.cert), cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), servername: 'localhost' }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.destroy();
    });
    s.once('error', reject);
  });
}

async function startTls(label: string, tlsArgs: string[]): Promise<{ p: EtsdProcess; port: number }> {
  const [port] = await freePorts(1);
  const url = `https://127.0.0.1:${port}`;
  const p = await EtsdProcess.start({ dataDir: tmp(label), clientPort: port!, peerPort: (await freePorts(1))[0]!,
    extraArgs: ['--listen-client-urls', url, '--advertise-client-urls', url, ...tlsArgs] });
  procs.push(p);
  return { p, port: port! };
}

test('replacing the certificate files rotates the served certificate without a restart', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const certs = tmp('tls-client-certs');
  const ca = makeCa(certs, 'ca');
  const one = issue(ca, 'one', 'etsd-one');
  const alice = issue(ca, 'alice', 'alice');
  const certFile = join(certs, 'server.pem');
  const keyFile = join(certs, 'server.key');
  copyFileSync(one.cert, certFile);
  copyFileSync(one.key, keyFile);
  const { p, port } = await startTls('tls-rotate', ['--cert-file', certFile, '--key-file', keyFile, '--trusted-ca-file', ca.cert, '--client-cert-auth']);
  const ctl = [`--endpoints=127.0.0.1:${port}`, '--cacert', ca.cert, '--cert', alice.cert, '--key', alice.key];
  await untilOk([...ctl, 'put', 'k', 'before']);
  assert.equal(await serverCn(port, ca, alice), 'etsd-one');

  const two = issue(ca, 'two', 'etsd-two');
  copyFileSync(two.cert, certFile + '.new');
  copyFileSync(two.key, keyFile + '.new');
  renameSync(keyFile + '.new', keyFile);
  renameSync(certFile + '.new', certFile);
  assert.equal(await serverCn(port, ca, alice), 'etsd-two');
  assert.equal((await etcdctl([...ctl, 'put', 'k', 'after'])).code, 0);
  assert.equal((await etcdctl([...ctl, 'get', 'k', '--print-value-only'])).out, 'after\n');
  assert.ok(p.isRunning, 'same process');
  assert.match(p.logTail(200), /TLS certificate files changed; reloaded/);
});

test('--auto-tls: a generated certificate, used by etcdctl with --insecure-skip-tls-verify', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const { p, port } = await startTls('tls-auto', ['--auto-tls']);
  const ctl = [`--endpoints=127.0.0.1:${port}`, '--insecure-transport=false', '--insecure-skip-tls-verify'];
  await untilOk([...ctl, 'put', 'auto', 'tls']);
  assert.equal((await etcdctl([...ctl, 'get', 'auto', '--print-value-only'])).out, 'tls\n');
  // Without skipping verification the self-signed certificate is not trusted.
  assert.notEqual((await etcdctl([...ctl.slice(0, 2), '--dial-timeout=1s', '--command-timeout=2s', 'get', 'auto'])).code, 0);
  assert.ok(existsSync(join(p.opts.dataDir, 'fixtures', 'client', 'cert.pem')));
});
