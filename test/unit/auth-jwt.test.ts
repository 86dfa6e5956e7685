// etcd 3.4's JWT tokens (auth/jwt.go, auth/options.go, golang-jwt v4): the
// --auth-token option parsing and its errors, signing and checking with every
// sign method etcd takes, expiry, other keys and methods refused, verify-only
// members, the verified-token cache and its bound, and the gate answering
// with the token's own revision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { parseAuthTokenFlag } from '../../src/common/auth-token-flag.js';
import { ConfigError, parseArgs } from '../../src/common/config.js';
import { EtcdError } from '../../src/common/errors.js';
import { loadJwtKeys, JwtOptionsError, unknownJwtOptions, type JwtAlg } from '../../src/auth/jwt-options.js';
import { CACHE_MAX, JwtTokens } from '../../src/auth/jwt-tokens.js';
import { AuthGate } from '../../src/auth/gate.js';
import { encodeAuthState } from '../../src/auth/state-record.js';
import { AuthStore } from '../../src/auth/store.js';

const dir = mkdtempSync(join(tmpdir(), 'etsd-jwt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface KeyFiles { priv: string; pub: string }
function write(name: string, pem: string): string {
  const p = join(dir, name);
  writeFileSync(p, pem);
  return p;
}
function pair(name: string, kind: 'rsa' | 'ec', curve?: string): KeyFiles {
  const k = kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: curve! });
  // PKCS#1 / SEC 1 private keys, as openssl's older defaults write them; PKIX public keys.
  return {
    priv: write(`${name}.key`, k.privateKey.export({ format: 'pem', type: kind === 'rsa' ? 'pkcs1' : 'sec1' }) as string),
    pub: write(`${name}.pub`, k.publicKey.export({ format: 'pem', type: 'spki' }) as string),
  };
}
const rsa = pair('rsa', 'rsa');
const rsa2 = pair('rsa2', 'rsa');
const ec: Record<string, KeyFiles> = { 256: pair('p256', 'ec', 'P-256'), 384: pair('p384', 'ec', 'P-384'), 512: pair('p521', 'ec', 'P-521') };
const hmacSecret = write('hmac.secret', 'a shared secret\n');

function keysFor(alg: JwtAlg): KeyFiles {
  if (alg.startsWith('ES')) return ec[alg.slice(2)]!;
  if (alg.startsWith('HS')) return { priv: hmacSecret, pub: '' };
  return rsa;
}
const opts = (o: Record<string, string>) => new Map(Object.entries(o));
const tokensFor = (alg: JwtAlg, now: () => number, extra: Record<string, string> = {}) => {
  const k = keysFor(alg);
  return new JwtTokens(loadJwtKeys(opts({ 'sign-method': alg, 'priv-key': k.priv, ...(k.pub ? { 'pub-key': k.pub } : {}), ...extra })), { now });
};
const decode = (seg: string): unknown => JSON.parse(Buffer.from(seg, 'base64url').toString());

const ALGS: JwtAlg[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'];

for (const alg of ALGS) {
  test(`${alg}: a signed token carries golang-jwt's header and etcd's claims and verifies`, () => {
    const t0 = 1_700_000_000_000;
    const tokens = tokensFor(alg, () => t0);
    const token = tokens.sign('alice', 7);
    const [h, c] = token.split('.');
    assert.equal(Buffer.from(h!, 'base64url').toString(), `{"alg":"${alg}","typ":"JWT"}`);
    assert.equal(Buffer.from(c!, 'base64url').toString(), `{"exp":${t0 / 1000 + 300},"revision":7,"username":"alice"}`);
    assert.deepEqual(tokens.verify(token), { username: 'alice', revision: 7 });
    // A second member with the same key files accepts it (from its own cache-less state).
    assert.deepEqual(tokensFor(alg, () => t0 + 1000).verify(token), { username: 'alice', revision: 7 });
    // One changed claim breaks the signature.
    const forged = [h, Buffer.from(JSON.stringify({ exp: t0 / 1000 + 300, revision: 7, username: 'root' })).toString('base64url'), token.split('.')[2]].join('.');
    assert.equal(tokens.verify(forged), undefined);
  });
}

test('a token is refused from its exp on, cached or not', () => {
  let now = 1_700_000_000_000;
  const tokens = tokensFor('ES256', () => now, { ttl: '2s' });
  const token = tokens.sign('bob', 3);
  assert.deepEqual(tokens.verify(token), { username: 'bob', revision: 3 });
  now += 1999;
  assert.deepEqual(tokens.verify(token), { username: 'bob', revision: 3 });
  now += 1;
  assert.equal(tokens.verify(token), undefined);
  assert.equal(tokens.cached, 0);
  // Never seen before and already expired: refused too.
  const fresh = tokensFor('ES256', () => now);
  assert.equal(fresh.verify(token), undefined);
});

test('another key, another method, and malformed tokens are refused', () => {
  const now = () => 1_700_000_000_000;
  const token = tokensFor('RS256', now).sign('alice', 2);
  const otherKey = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'RS256', 'priv-key': rsa2.priv })), { now });
  assert.equal(otherKey.verify(token), undefined);
  // Same key, but the member is configured for RS512: golang-jwt's "invalid signing method".
  assert.equal(tokensFor('RS512', now).verify(token), undefined);
  assert.equal(tokensFor('PS256', now).verify(token), undefined);
  const reasons: string[] = [];
  const t = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'RS256', 'priv-key': rsa.priv })), { now, onInvalid: (_tok, why) => reasons.push(why) });
  for (const bad of ['', 'a.b', 'a.b.c.d', `${token}x`, token.replace(/\.[^.]*$/, '.'), 'abcdefghijklmnop.12']) assert.equal(t.verify(bad), undefined, bad);
  assert.equal(reasons.length, 6);
  assert.equal(reasons[0], 'token contains an invalid number of segments');
});

test('a token without exp is accepted (golang-jwt does not require it); alg "none" never is', () => {
  const now = () => 1_700_000_000_000;
  const hs = tokensFor('HS256', now);
  const token = hs.sign('carol', 4);
  // Re-sign claims without exp with the same secret, as another issuer sharing the key could.
  const head = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
  const body = Buffer.from('{"revision":4,"username":"carol"}').toString('base64url');
  const sig = createHmac('sha256', 'a shared secret\n').update(`${head}.${body}`).digest('base64url');
  assert.deepEqual(hs.verify(`${head}.${body}.${sig}`), { username: 'carol', revision: 4 });
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${token.split('.')[1]}.`;
  assert.equal(hs.verify(none), undefined);
});

test('verify-only: a public key (or a certificate) alone checks tokens and refuses to sign', () => {
  const now = () => 1_700_000_000_000;
  const token = tokensFor('RS256', now).sign('alice', 9);
  const v = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'RS256', 'pub-key': rsa.pub })), { now });
  assert.equal(v.verifyOnly, true);
  assert.deepEqual(v.verify(token), { username: 'alice', revision: 9 });
  assert.throws(() => v.sign('alice', 9), (e: unknown) => e instanceof EtcdError && e.message === 'auth: token signing attempted with verify-only key');
  // etcd's e2e suite passes a certificate as pub-key.
  const certDir = join(dir, 'cert');
  execFileSync('mkdir', ['-p', certDir]);
  execFileSync('openssl', ['req', '-x509', '-key', rsa.priv, '-out', join(certDir, 'c.pem'), '-days', '1', '-subj', '/CN=jwt'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const fromCert = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'RS256', 'pub-key': join(certDir, 'c.pem') })), { now });
  assert.deepEqual(fromCert.verify(token), { username: 'alice', revision: 9 });
  const both = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'RS256', 'pub-key': join(certDir, 'c.pem'), 'priv-key': rsa.priv })), { now });
  assert.equal(both.verifyOnly, false);
  const ecv = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'ES384', 'pub-key': ec[384]!.pub })), { now });
  assert.equal(ecv.verifyOnly, true);
  assert.deepEqual(ecv.verify(tokensFor('ES384', now).sign('x', 1)), { username: 'x', revision: 1 });
});

test('option errors are etcd\'s', () => {
  const fails = (o: Record<string, string>, message: string, logged?: string) =>
    assert.throws(() => loadJwtKeys(opts(o)), (e: unknown) => {
      assert.ok(e instanceof JwtOptionsError && e instanceof ConfigError);
      assert.equal(e.message, message);
      assert.equal(e.logged, logged);
      return true;
    });
  fails({}, 'auth: invalid auth options', 'auth: invalid auth signature method');
  fails({ 'sign-method': 'RS999', 'priv-key': rsa.priv }, 'auth: invalid auth options', 'auth: invalid auth signature method');
  fails({ 'sign-method': 'RS256' }, 'auth: missing key data');
  fails({ 'sign-method': 'HS256', 'pub-key': rsa.pub }, 'auth: missing key data');
  fails({ 'sign-method': 'RS256', 'priv-key': join(dir, 'nope') }, 'auth: invalid auth options', `open ${join(dir, 'nope')}: no such file or directory`);
  fails({ 'sign-method': 'RS256', 'priv-key': rsa.priv, ttl: '5 minutes' }, 'auth: invalid auth options', 'time: invalid duration "5 minutes"');
  fails({ 'sign-method': 'EdDSA', 'priv-key': rsa.priv }, 'unsupported signing method: *jwt.SigningMethodEd25519');
  fails({ 'sign-method': 'none', 'priv-key': rsa.priv }, 'unsupported signing method: *jwt.signingMethodNone');
  fails({ 'sign-method': 'RS256', 'priv-key': ec[256]!.priv }, 'key is not a valid RSA private key');
  fails({ 'sign-method': 'ES256', 'priv-key': rsa.priv }, 'key is not a valid ECDSA private key');
  fails({ 'sign-method': 'ES256', 'pub-key': rsa.pub }, 'key is not a valid ECDSA public key');
  fails({ 'sign-method': 'RS256', 'priv-key': hmacSecret }, 'invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key');
  // etcd's mismatch check refuses only when exponent and modulus both differ: two 65537 keys pass.
  assert.equal(loadJwtKeys(opts({ 'sign-method': 'RS256', 'priv-key': rsa.priv, 'pub-key': rsa2.pub })).alg, 'RS256');
  fails({ 'sign-method': 'ES256', 'priv-key': ec[256]!.priv, 'pub-key': ec[384]!.pub }, "auth: public and private keys don't match");
  assert.equal(loadJwtKeys(opts({ 'sign-method': 'RS256', 'priv-key': rsa.priv, ttl: '1h30m' })).ttlMs, 5_400_000);
  assert.equal(loadJwtKeys(opts({ 'sign-method': 'RS256', 'priv-key': rsa.priv })).ttlMs, 300_000);
  assert.deepEqual(unknownJwtOptions(opts({ 'sign-method': 'RS256', 'priv-key': 'x', color: 'blue' })), ['color']);
});

test('ES256 with a P-384 key signs nothing (golang-jwt\'s "key is invalid")', () => {
  const t = new JwtTokens(loadJwtKeys(opts({ 'sign-method': 'ES256', 'priv-key': ec[384]!.priv })));
  assert.throws(() => t.sign('a', 1), /key is invalid/);
});

test('the verified-token cache stays within its bound', () => {
  const now = () => 1_700_000_000_000;
  const t = tokensFor('HS256', now);
  for (let i = 0; i < CACHE_MAX + 50; i++) assert.ok(t.verify(t.sign(`u${i}`, 1)));
  assert.equal(t.cached, CACHE_MAX);
});

test('--auth-token is split as etcd\'s decomposeOpts splits it', () => {
  assert.deepEqual(parseAuthTokenFlag('simple'), { type: 'simple', opts: new Map() });
  const spec = parseAuthTokenFlag('jwt,pub-key=a.pub,priv-key=a,sign-method=RS256,ttl=1s');
  assert.equal(spec.type, 'jwt');
  assert.deepEqual([...spec.opts], [['pub-key', 'a.pub'], ['priv-key', 'a'], ['sign-method', 'RS256'], ['ttl', '1s']]);
  assert.deepEqual(parseArgs(['--auth-token', 'jwt,sign-method=ES256']).config.authToken.opts.get('sign-method'), 'ES256');
  const invalid = (v: string) => assert.throws(() => parseArgs(['--auth-token', v]), (e: unknown) => e instanceof ConfigError && e.message.startsWith('auth: invalid auth options ('));
  invalid('jwt,sign-method');
  invalid('jwt,a=b=c');
  invalid('jwt,ttl=1s,ttl=2s');
  invalid('magic');
});

test('the gate answers a JWT with its own revision, and "invalid auth token" for a bad one', () => {
  const now = () => Date.now();
  const jwt = tokensFor('ES256', now);
  const gate = new AuthGate(encodeAuthState(new AuthStore().state()), 1, {}, jwt);
  assert.equal(gate.tokenPrefix(), '');
  assert.deepEqual(gate.infoFrom(jwt.sign('alice', 42)), { username: 'alice', revision: 42 });
  assert.throws(() => gate.infoFrom('abcdefghijklmnop.1'), (e: unknown) => e instanceof EtcdError && e.message === 'etcdserver: invalid auth token');
});
