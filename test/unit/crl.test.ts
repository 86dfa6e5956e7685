// src/tls/crl.ts and the CRL check of src/tls/side.ts as etcd 3.4 makes it:
// the revoked serials of a CRL in PEM or DER, and a TLS listener with
// --client-crl-file that refuses the revoked certificate and lets another in
// even though the CRL has expired (etcd's own e2e fixture expired in 2021).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { CrlParseError, normalizeSerial, revokedSerials } from '../../src/tls/crl.js';
import { parseArgs } from '../../src/common/config.js';
import { TlsSide } from '../../src/tls/side.js';
import { issue, makeCa, revoke, type Ca, type Leaf } from '../common/tls-certs.js';

const dir = mkdtempSync(join(tmpdir(), 'etsd-crl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let ca: Ca;
let good: Leaf;
let bad: Leaf;
let server: Leaf;
let expiredCrl: string;

const serialOf = (leaf: Leaf) => normalizeSerial(execFileSync('openssl', ['x509', '-in', leaf.cert, '-noout', '-serial']).toString().trim().split('=')[1]!);

before(() => {
  ca = makeCa(dir, 'ca');
  server = issue(ca, 'server', 'server');
  good = issue(ca, 'good', 'good');
  bad = issue(ca, 'bad', 'bad');
  revoke(ca, [bad]);
  // A CRL whose nextUpdate is long past: OpenSSL's own CRL check would refuse every client.
  expiredCrl = join(dir, 'expired.crl');
  execFileSync('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-crl_lastupdate', '20210101000000Z',
    '-crl_nextupdate', '20210102000000Z', '-out', expiredCrl], { cwd: ca.dir, stdio: ['ignore', 'ignore', 'pipe'] });
});

test('the revoked serials of a CRL, PEM or DER', () => {
  const pem = readFileSync(expiredCrl);
  const der = execFileSync('openssl', ['crl', '-in', expiredCrl, '-outform', 'DER']);
  assert.deepEqual([...revokedSerials(pem)], [serialOf(bad)]);
  assert.deepEqual([...revokedSerials(der)], [serialOf(bad)]);
  assert.notEqual(serialOf(good), serialOf(bad));
});

test('a CRL without revoked certificates is empty; garbage is an error', () => {
  const empty = makeCa(dir, 'empty');
  assert.equal(revokedSerials(readFileSync(revoke(empty, []))).size, 0);
  assert.throws(() => revokedSerials(Buffer.from('not a crl')), CrlParseError);
  assert.throws(() => revokedSerials(readFileSync(good.cert).subarray(0, 40)), CrlParseError);
});

/** Resolves true when the server let the connection through (it answers "in"), false when it closed it. */
function admitted(port: number, leaf: Leaf): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(ca.cert), servername: 'localhost', cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) });
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString(); });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got === 'in'));
  });
}

test('--client-crl-file with an expired CRL: the revoked certificate is refused, another is let in', async () => {
  const cfg = parseArgs(['--listen-client-urls', 'https://127.0.0.1:0', '--cert-file', server.cert, '--key-file', server.key,
    '--trusted-ca-file', ca.cert, '--client-cert-auth', '--client-crl-file', expiredCrl]).config;
  const warned: string[] = [];
  const log = { info: () => undefined, warn: (o: object, m: string) => { warned.push(`${m} ${JSON.stringify(o)}`); } };
  const side = await TlsSide.prepare(cfg.tls, 'client', dir, cfg.listenClientUrls, log);
  assert.ok(side !== null);
  const srv = side.createServer('peer-port', (s) => s.end('in'));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const port = (srv.address() as { port: number }).port;
    assert.equal(await admitted(port, good), true);
    assert.equal(await admitted(port, bad), false);
    assert.ok(warned.some((w) => w.includes(`certificate with serial ${serialOf(bad)} revoked`)), warned.join('\n'));
  } finally {
    srv.close();
  }
});
