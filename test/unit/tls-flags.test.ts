// The TLS flags as etcd reads them (src/common/tls-flags.ts through parseArgs):
// Go cipher-suite names mapped to OpenSSL's (unknown names refused by name),
// TLS versions, the https:// URL checks with etcd's messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { ConfigError, parseArgs } from '../../src/common/config.js';
import { toOpenSslCiphers } from '../../src/common/cipher-suites.js';

const base = ['--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:2380'];
const parse = (...a: string[]) => parseArgs([...base, ...a]).config.tls;

test('no TLS flags: nothing set, TLS 1.2..1.3, node default ciphers', () => {
  const t = parse();
  assert.equal(t.client.certFile, '');
  assert.equal(t.peer.certFile, '');
  assert.equal(t.ciphers, null);
  assert.equal(t.minVersion, 'TLSv1.2');
  assert.equal(t.maxVersion, 'TLSv1.3');
});

test('client and peer flags land on their side', () => {
  const t = parse('--cert-file', 'c.pem', '--key-file', 'c.key', '--trusted-ca-file', 'ca.pem', '--client-cert-auth',
    '--client-crl-file', 'crl.pem', '--peer-cert-file', 'p.pem', '--peer-key-file', 'p.key', '--peer-trusted-ca-file', 'pca.pem',
    '--peer-client-cert-auth', '--peer-crl-file', 'pcrl.pem', '--peer-cert-allowed-cn', 'member', '--peer-auto-tls');
  assert.deepEqual([t.client.certFile, t.client.keyFile, t.client.trustedCaFile, t.client.clientCertAuth, t.client.crlFile],
    ['c.pem', 'c.key', 'ca.pem', true, 'crl.pem']);
  assert.deepEqual([t.peer.certFile, t.peer.keyFile, t.peer.trustedCaFile, t.peer.clientCertAuth, t.peer.crlFile, t.peer.allowedCn, t.peer.autoTls],
    ['p.pem', 'p.key', 'pca.pem', true, 'pcrl.pem', 'member', true]);
  assert.equal(t.client.autoTls, false);
});

test('every Go cipher-suite name maps to a suite OpenSSL knows here', () => {
  const names = ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
    'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305', 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
    'TLS_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'];
  const t = parse('--cipher-suites', names.join(','));
  assert.ok(t.ciphers !== null);
  const known = new Set(tls.getCiphers().map((c) => c.toUpperCase()));
  for (const c of t.ciphers.split(':')) if (!c.startsWith('TLS_')) assert.ok(known.has(c), `${c} is an OpenSSL cipher`);
  // OpenSSL accepts the whole list as a context's cipher string.
  assert.doesNotThrow(() => tls.createSecureContext({ ciphers: t.ciphers! }));
  assert.match(toOpenSslCiphers(['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256']), /ECDHE-RSA-AES128-GCM-SHA256/);
});

test('an unknown cipher suite is refused by name, with etcd\'s message', () => {
  assert.throws(() => parse('--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,FOO_BAR'),
    (e: unknown) => e instanceof ConfigError && e.message === 'unexpected TLS cipher suite "FOO_BAR"');
});

test('TLS versions: TLS1.2 / TLS1.3 only, min not above max, no suites for TLS 1.3 only', () => {
  assert.equal(parse('--tls-min-version', 'TLS1.3').minVersion, 'TLSv1.3');
  assert.equal(parse('--tls-max-version', 'TLS1.2').maxVersion, 'TLSv1.2');
  assert.throws(() => parse('--tls-min-version', 'TLS1.1'), /unexpected TLS version "TLS1.1" \(must be one of: TLS1.2, TLS1.3\)/);
  assert.throws(() => parse('--tls-min-version', 'TLS1.3', '--tls-max-version', 'TLS1.2'), /min version \(TLS1.3\) is greater than max version \(TLS1.2\)/);
  assert.throws(() => parse('--tls-min-version', 'TLS1.3', '--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'),
    /cipher suites cannot be configured when only TLS1.3 is enabled/);
});

test('https:// URLs need certificates (etcd 3.4\'s messages, checked with /usr/bin/etcd)', () => {
  assert.throws(() => parse('--listen-client-urls', 'https://127.0.0.1:2379'),
    (e: unknown) => e instanceof ConfigError && e.message === 'TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme');
  assert.throws(() => parse('--listen-client-urls', 'https://127.0.0.1:2379', '--cert-file', 'c.pem'), /must be provided for client url/);
  assert.throws(() => parse('--listen-peer-urls', 'https://127.0.0.1:2380'),
    (e: unknown) => e instanceof ConfigError && e.message === 'cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented');
  // auto-tls is enough; a lone cert file on an http:// side is ignored, as etcd does.
  assert.equal(parse('--listen-client-urls', 'https://127.0.0.1:2379', '--auto-tls').client.autoTls, true);
  assert.equal(parse('--cert-file', 'c.pem').client.certFile, 'c.pem');
  assert.throws(() => parse('--peer-cert-allowed-cn', 'a', '--peer-cert-allowed-hostname', 'b'), /AllowedCN and AllowedHostname are mutually exclusive/);
});
