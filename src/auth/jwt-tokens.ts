// etcd 3.4's JWT tokens (auth/jwt.go with golang-jwt v4): a token carries
// the claims {exp, revision, username}, signed with the configured method.
// Any member holding the key accepts it until exp; the revision is the auth
// store's when it was minted, so a later auth change makes it stale
// ("revision of auth store is old") rather than invalid.
//
// Checking is what every request pays, so verified tokens are kept by their
// string until their exp (at most CACHE_MAX of them, the oldest dropped
// first): a repeat costs a Map lookup and a clock read, not a signature check.
// Only tokens that passed are cached; nothing about the key changes while
// the process runs.

import { constants, createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { Errors } from '../common/errors.js';
import type { JwtAlg, JwtKeys } from './jwt-options.js';

/** Verified tokens kept; past this the oldest is dropped. */
export const CACHE_MAX = 4096;

export interface JwtInfo { username: string; revision: number }

export interface JwtTokenOptions {
  now?: () => number;
  /** etcd warns "failed to parse a JWT token" for each token it refuses. */
  onInvalid?: (token: string, reason: string) => void;
}

interface Verified extends JwtInfo {
  /** The time claims, in seconds (golang-jwt's MapClaims.Valid); null when absent. */
  exp: number | null;
  nbf: number | null;
  iat: number | null;
}

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' } as const;
/** ES256/384/512: the curve (Node's name for P-256, P-384, P-521), and the byte length of r and of s in the signature. */
const EC = { 256: { curve: 'prime256v1', size: 32 }, 384: { curve: 'secp384r1', size: 48 }, 512: { curve: 'secp521r1', size: 66 } } as const;

export class JwtTokens {
  private readonly now: () => number;
  private readonly onInvalid: (token: string, reason: string) => void;
  private readonly cache = new Map<string, Verified>();
  private readonly hash: 'sha256' | 'sha384' | 'sha512';
  private readonly headerPart: string;

  constructor(private readonly keys: JwtKeys, opts: JwtTokenOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.onInvalid = opts.onInvalid ?? (() => {});
    this.hash = HASH[bits(keys.alg)];
    // golang-jwt's header, its keys in Go's map order.
    this.headerPart = b64(JSON.stringify({ alg: keys.alg, typ: 'JWT' }));
  }

  get alg(): JwtAlg { return this.keys.alg; }
  get verifyOnly(): boolean { return this.keys.signKey === null; }
  get cached(): number { return this.cache.size; }

  /** etcd's assign: a token for the user at this auth revision, good for the TTL. */
  sign(username: string, revision: number): string {
    const key = this.keys.signKey;
    if (key === null) throw Errors.jwtVerifyOnly();
    const exp = Math.floor((this.now() + this.keys.ttlMs) / 1000);
    // Go's json.Marshal of a map: keys sorted, <, > and & escaped.
    const claims = goJson(`{"exp":${exp},"revision":${revision},"username":${JSON.stringify(username)}}`);
    const signing = `${this.headerPart}.${b64(claims)}`;
    return `${signing}.${this.signature(signing, key).toString('base64url')}`;
  }

  /** etcd's info: the token's user and revision, or undefined when it is malformed, forged, of another method or expired. */
  verify(token: string): JwtInfo | undefined {
    const hit = this.cache.get(token);
    if (hit !== undefined) {
      const why = timeClaimsFail(hit, Math.floor(this.now() / 1000));
      if (why === null) return { username: hit.username, revision: hit.revision };
      this.cache.delete(token);
      this.onInvalid(token, why);
      return undefined;
    }
    const parsed = this.parse(token);
    if (typeof parsed === 'string') {
      this.onInvalid(token, parsed);
      return undefined;
    }
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, parsed);
    return { username: parsed.username, revision: parsed.revision };
  }

  /** Drops the cached tokens past their exp; returns how many. */
  sweep(): number {
    const nowSec = Math.floor(this.now() / 1000);
    let n = 0;
    for (const [t, v] of this.cache) {
      if (v.exp !== null && nowSec >= v.exp) { this.cache.delete(t); n++; }
    }
    return n;
  }

  /** golang-jwt's Parse with etcd's key function: the checked claims, or why not. */
  private parse(token: string): Verified | string {
    const parts = token.split('.');
    if (parts.length !== 3) return 'token contains an invalid number of segments';
    const header = decodeSegment(parts[0]!);
    const claims = decodeSegment(parts[1]!);
    if (!isObject(header) || !isObject(claims)) return 'illegal base64 data or malformed JSON';
    if (typeof header.alg !== 'string') return 'signing method (alg) is unspecified.';
    if (header.alg !== this.keys.alg) return 'invalid signing method';
    const sig = /^[A-Za-z0-9_-]*$/.test(parts[2]!) ? Buffer.from(parts[2]!, 'base64url') : null;
    if (sig === null || !this.signatureOk(`${parts[0]}.${parts[1]}`, sig)) return 'signature is invalid';
    const v: Verified = {
      username: '', revision: 0,
      exp: timeClaim(claims.exp), nbf: timeClaim(claims.nbf), iat: timeClaim(claims.iat),
    };
    if (Number.isNaN(v.exp) || Number.isNaN(v.nbf) || Number.isNaN(v.iat)) return 'malformed time claim';
    const why = timeClaimsFail(v, Math.floor(this.now() / 1000));
    if (why !== null) return why;
    // etcd asserts these types (a token without them would panic it); refused here.
    if (typeof claims.username !== 'string' || typeof claims.revision !== 'number' || claims.revision < 0) return 'missing username or revision claim';
    v.username = claims.username;
    v.revision = Math.trunc(claims.revision);
    return v;
  }

  private signature(signing: string, key: KeyObject | Buffer): Buffer {
    const data = Buffer.from(signing);
    const family = this.keys.alg.slice(0, 2);
    if (family === 'HS') return createHmac(this.hash, key as Buffer).update(data).digest();
    const k = key as KeyObject;
    if (family === 'PS') return sign(this.hash, data, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
    if (family === 'ES') {
      // golang-jwt refuses a key whose curve is not the method's ("key is invalid").
      if (k.asymmetricKeyDetails?.namedCurve !== EC[bits(this.keys.alg)].curve) throw new Error('key is invalid');
      return sign(this.hash, data, { key: k, dsaEncoding: 'ieee-p1363' });
    }
    return sign(this.hash, data, k);
  }

  private signatureOk(signing: string, sig: Buffer): boolean {
    const data = Buffer.from(signing);
    const key = this.keys.verifyKey;
    switch (this.keys.alg.slice(0, 2)) {
      case 'HS': {
        const want = createHmac(this.hash, key as Buffer).update(data).digest();
        return want.length === sig.length && timingSafeEqual(want, sig);
      }
      case 'PS':
        // golang-jwt v4 verifies PS* with any salt length (PSSSaltLengthAuto).
        return verify(this.hash, data, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig);
      case 'ES':
        if (sig.length !== 2 * EC[bits(this.keys.alg)].size) return false;
        return verify(this.hash, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }, sig);
      default:
        return verify(this.hash, data, key as KeyObject, sig);
    }
  }
}

function bits(alg: JwtAlg): 256 | 384 | 512 {
  return Number(alg.slice(2)) as 256 | 384 | 512;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64url');

/** encoding/json's HTML-safe escapes, which Go applies to every string it marshals. */
function goJson(s: string): string {
  return s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** base64.RawURLEncoding then JSON; undefined when either fails. */
function decodeSegment(seg: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(seg) || seg.length % 4 === 1) return undefined;
  try {
    return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined; // malformed JSON: the token is refused by the caller
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A time claim in seconds: null when absent or 0 (golang-jwt skips those), NaN when not a number (it fails). */
function timeClaim(v: unknown): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number') return NaN;
  return v === 0 ? null : v;
}

/** MapClaims.Valid against the second `nowSec`: exp in the future, iat and nbf not. */
function timeClaimsFail(v: Verified, nowSec: number): string | null {
  if (v.exp !== null && !(nowSec < v.exp)) return 'Token is expired';
  if (v.iat !== null && nowSec < v.iat) return 'Token used before issued';
  if (v.nbf !== null && nowSec < v.nbf) return 'Token is not valid yet';
  return null;
}
