// The options of `--auth-token jwt,...` read as etcd 3.4 reads them
// (auth/options.go and newTokenProviderJWT in auth/jwt.go, with golang-jwt
// v4's PEM parsers): sign-method (required), priv-key and pub-key files, ttl
// (a Go duration, 5m by default). Only a public key means verify-only: the
// member checks tokens but cannot mint them.
//
// Sign methods: every name golang-jwt registers is accepted by name, and
// etcd's Key() then takes the RSA (RS*, PS*), ECDSA (ES*) and HMAC (HS*, the
// priv-key file's bytes as the secret) ones; EdDSA and "none" fail there with
// golang-jwt's "unsupported signing method" text, as in etcd 3.4.

import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { INVALID_AUTH_OPTS } from '../common/auth-token-flag.js';
import { ConfigError, parseDuration } from '../common/config.js';

export type JwtFamily = 'RS' | 'PS' | 'ES' | 'HS';
export type JwtAlg = `${JwtFamily}${256 | 384 | 512}`;

export interface JwtKeys {
  alg: JwtAlg;
  /** Token lifetime (the exp claim is now + ttl, in whole seconds). */
  ttlMs: number;
  /** Signs new tokens; null when verify-only (a public key alone). */
  signKey: KeyObject | Buffer | null;
  /** Checks tokens: the private key's public half when there is one (as etcd), else the public key. */
  verifyKey: KeyObject | Buffer;
}

/** What etcd's start-up logs and fails with; `logged` is its "problem loading JWT options" reason, if any. */
export class JwtOptionsError extends ConfigError {
  constructor(message: string, readonly logged?: string) {
    super(message);
  }
}

const KNOWN = new Set(['sign-method', 'pub-key', 'priv-key', 'ttl']);
const DEFAULT_TTL_MS = 5 * 60_000;
const ALGS = new Set<string>(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512']);
/** golang-jwt's Go types for the methods etcd's Key() has no case for. */
const UNSUPPORTED: Record<string, string> = { EdDSA: '*jwt.SigningMethodEd25519', none: '*jwt.signingMethodNone' };

// golang-jwt's errors, word for word.
const ERR_MISSING_KEY = 'auth: missing key data';
const ERR_KEY_MISMATCH = "auth: public and private keys don't match";
const ERR_INVALID_METHOD = 'auth: invalid auth signature method';
const ERR_NOT_PEM = 'invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key';
const ERR_NOT_RSA_PRIVATE = 'key is not a valid RSA private key';
const ERR_NOT_RSA_PUBLIC = 'key is not a valid RSA public key';
const ERR_NOT_EC_PRIVATE = 'key is not a valid ECDSA private key';
const ERR_NOT_EC_PUBLIC = 'key is not a valid ECDSA public key';

/** The option keys etcd does not know (it warns "unknown JWT options" and goes on). */
export function unknownJwtOptions(opts: ReadonlyMap<string, string>): string[] {
  return [...opts.keys()].filter((k) => !KNOWN.has(k));
}

/** Reads the options and key files; throws a JwtOptionsError with etcd's message. */
export function loadJwtKeys(opts: ReadonlyMap<string, string>): JwtKeys {
  // jwtOptions.ParseWithDefaults: any failure here is "invalid auth options", the cause only logged.
  const loading = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new JwtOptionsError(INVALID_AUTH_OPTS, err instanceof Error ? err.message : String(err));
    }
  };
  const ttl = opts.get('ttl') ?? '';
  const ttlMs = ttl === '' ? DEFAULT_TTL_MS : loading(() => goDuration(ttl));
  const pubFile = opts.get('pub-key') ?? '';
  const privFile = opts.get('priv-key') ?? '';
  const pub = pubFile === '' ? null : loading(() => readKeyFile(pubFile));
  const priv = privFile === '' ? null : loading(() => readKeyFile(privFile));
  const method = opts.get('sign-method') ?? '';
  if (method in UNSUPPORTED) throw new JwtOptionsError(`unsupported signing method: ${UNSUPPORTED[method]}`);
  if (!ALGS.has(method)) throw new JwtOptionsError(INVALID_AUTH_OPTS, ERR_INVALID_METHOD);
  const alg = method as JwtAlg;
  const family = alg.slice(0, 2) as JwtFamily;

  if (family === 'HS') {
    if (priv === null || priv.length === 0) throw new JwtOptionsError(ERR_MISSING_KEY);
    return { alg, ttlMs, signKey: priv, verifyKey: priv };
  }
  const kind = family === 'ES' ? 'ec' : 'rsa';
  const privKey = priv !== null && priv.length > 0 ? parsePrivate(priv, kind) : null;
  const pubKey = pub !== null && pub.length > 0 ? parsePublic(pub, kind) : null;
  if (privKey === null) {
    if (pubKey === null) throw new JwtOptionsError(ERR_MISSING_KEY);
    return { alg, ttlMs, signKey: null, verifyKey: pubKey };
  }
  if (pubKey !== null && keysDiffer(privKey, pubKey)) throw new JwtOptionsError(ERR_KEY_MISMATCH);
  return { alg, ttlMs, signKey: privKey, verifyKey: createPublicKey(privKey) };
}

function readKeyFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    // Go's os error text.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`open ${path}: no such file or directory`);
    if (code === 'EACCES') throw new Error(`open ${path}: permission denied`);
    throw err;
  }
}

/**
 * etcd's mismatch check as written: it refuses only when every compared part
 * differs (RSA: exponent and modulus; EC: curve and both coordinates).
 */
function keysDiffer(priv: KeyObject, pub: KeyObject): boolean {
  const a = createPublicKey(priv).export({ format: 'jwk' });
  const b = pub.export({ format: 'jwk' });
  if (a.kty === 'RSA') return a.e !== b.e && a.n !== b.n;
  return a.crv !== b.crv && a.x !== b.x && a.y !== b.y;
}

/** Go's pem.Decode: the first PEM block's bytes, whatever its label. */
function firstPemBlock(pem: Buffer): Buffer | null {
  const text = pem.toString('latin1');
  const begin = /-----BEGIN [^\r\n]*-----\r?\n/.exec(text);
  if (begin === null) return null;
  const from = begin.index + begin[0].length;
  const end = text.indexOf('-----END ', from);
  if (end < 0) return null;
  let body = text.slice(from, end);
  // Headers (Proc-Type etc.) end at a blank line; the body follows.
  if (/^[^\r\n]*:/.test(body)) body = body.split(/\r?\n\r?\n/).slice(1).join('');
  return Buffer.from(body.replace(/\s+/g, ''), 'base64');
}

function parsePrivate(pem: Buffer, kind: 'rsa' | 'ec'): KeyObject {
  const der = firstPemBlock(pem);
  if (der === null) throw new JwtOptionsError(ERR_NOT_PEM);
  // golang-jwt tries PKCS#1 (RSA) or SEC 1 (EC) first, then PKCS#8.
  for (const type of [kind === 'rsa' ? 'pkcs1' : 'sec1', 'pkcs8'] as const) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: der, format: 'der', type });
    } catch {
      continue; // not this encoding: the next one is tried, as golang-jwt does
    }
    if (key.asymmetricKeyType !== kind) break;
    return key;
  }
  throw new JwtOptionsError(kind === 'rsa' ? ERR_NOT_RSA_PRIVATE : ERR_NOT_EC_PRIVATE);
}

function parsePublic(pem: Buffer, kind: 'rsa' | 'ec'): KeyObject {
  const der = firstPemBlock(pem);
  if (der === null) throw new JwtOptionsError(ERR_NOT_PEM);
  let key: KeyObject | null = null;
  // golang-jwt: a PKIX public key, else a certificate's key.
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    try {
      key = new X509Certificate(der).publicKey;
    } catch {
      key = null; // neither: golang-jwt's "not a valid ... public key" below
    }
  }
  if (key === null || key.asymmetricKeyType !== kind) throw new JwtOptionsError(kind === 'rsa' ? ERR_NOT_RSA_PUBLIC : ERR_NOT_EC_PUBLIC);
  return key;
}

/** Go's time.ParseDuration, in ms: "0", an optional sign, then number-unit pairs. */
function goDuration(s: string): number {
  const sign = s.startsWith('-') ? -1 : 1;
  const rest = s.startsWith('-') || s.startsWith('+') ? s.slice(1) : s;
  if (rest === '0') return 0;
  try {
    return sign * parseDuration(rest, 'ttl');
  } catch {
    throw new Error(`time: invalid duration "${s}"`);
  }
}
