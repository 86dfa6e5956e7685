// etcd's "simple" tokens (auth/simple_token.go): 16 random letters, a dot,
// and the raft index of the Authenticate entry that minted it. Every member
// applies that entry and so learns the token; none persists them, so a
// restart forgets them all and clients authenticate again (as with etcd).
//
// A token lives for the TTL (--auth-token-ttl, 300 s by default) after its
// last use: each successful lookup pushes its end out again. etcd sweeps
// expired tokens once a second; here a lookup also refuses an expired one at
// once, and sweep() drops them (the owner calls it on a timer). The clock and
// the random letters are injected, so tests can step time.
//
// Bounds: one entry per Authenticate applied within a TTL; tokens are freed
// by expiry, by their user's deletion or password change, and all at once
// when auth is disabled.

import { randomInt } from 'node:crypto';
import type { TokenEffect } from './store.js';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const PREFIX_LENGTH = 16;
export const DEFAULT_TOKEN_TTL_MS = 300_000;

export interface SimpleTokenOptions {
  /** --auth-token-ttl in ms; 0 or less means etcd's default, 300 s. */
  ttlMs?: number;
  now?: () => number;
  /** A uniform integer in [0, n). */
  random?: (n: number) => number;
}

interface Entry { username: string; expiresAt: number }

/**
 * The raft index a token names, as etcd's isValidSimpleToken parses it
 * (exactly one dot; Go's strconv.Atoi: optional sign, decimal digits), or
 * undefined for a token of another shape.
 */
export function tokenIndex(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 2) return undefined;
  const m = /^[+-]?[0-9]+$/.exec(parts[1]!);
  if (m === null) return undefined;
  const n = Number(parts[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

export class SimpleTokens {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly random: (n: number) => number;
  private enabled = false;
  private readonly tokens = new Map<string, Entry>();

  constructor(opts: SimpleTokenOptions = {}) {
    this.ttlMs = opts.ttlMs !== undefined && opts.ttlMs > 0 ? opts.ttlMs : DEFAULT_TOKEN_TTL_MS;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? ((n) => randomInt(n));
  }

  get size(): number { return this.tokens.size; }
  get isEnabled(): boolean { return this.enabled; }

  /** genTokenPrefix: chosen by the member that proposes the Authenticate entry. */
  genPrefix(): string {
    let s = '';
    for (let i = 0; i < PREFIX_LENGTH; i++) s += LETTERS[this.random(LETTERS.length)];
    return s;
  }

  /** Carries out what an applied auth request asks of the token table. */
  apply(effect: TokenEffect): void {
    switch (effect.kind) {
      case 'enable': this.enabled = true; return;
      case 'disable': this.enabled = false; this.tokens.clear(); return;
      case 'invalidateUser': this.invalidateUser(effect.name); return;
      case 'assign': this.assign(effect.token, effect.username); return;
    }
  }

  /** etcd starts the token keeper on recovery when the stored flag says auth is on. */
  setEnabled(on: boolean): void {
    if (on) this.enabled = true;
    else this.apply({ kind: 'disable' });
  }

  /**
   * The token's user, refreshing its TTL; undefined when it is unknown,
   * expired, or of the wrong shape (the caller answers "invalid auth token").
   * The caller first waits until its applied index reaches tokenIndex(token),
   * as etcd's indexWaiter does, so a token minted a moment ago is found.
   */
  lookup(token: string): string | undefined {
    if (tokenIndex(token) === undefined) return undefined;
    const e = this.tokens.get(token);
    if (e === undefined) return undefined;
    const now = this.now();
    if (now > e.expiresAt) {
      this.tokens.delete(token);
      return undefined;
    }
    e.expiresAt = now + this.ttlMs;
    return e.username;
  }

  /** Drops expired tokens; returns how many. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const [t, e] of this.tokens) {
      if (now > e.expiresAt) {
        this.tokens.delete(t);
        n++;
      }
    }
    return n;
  }

  private assign(token: string, username: string): void {
    // etcd assigns nothing while auth is off (no token keeper).
    if (!this.enabled) return;
    // etcd panics here: two entries at one raft index cannot both mint a token.
    if (this.tokens.has(token)) throw new Error(`simple token ${token} is already assigned`);
    this.tokens.set(token, { username, expiresAt: this.now() + this.ttlMs });
  }

  private invalidateUser(name: string): void {
    for (const [t, e] of this.tokens) if (e.username === name) this.tokens.delete(t);
  }
}
