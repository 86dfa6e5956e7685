// The serving side of auth on the main thread: a copy of the auth store the
// apply worker keeps (replaced by every AuthNotice, in log order), the tokens
// (simple, or JWT with --auth-token jwt), and etcd's AuthInfoFromCtx: a
// request's token becomes its user and auth revision (a simple token's is the
// revision it is read at; a JWT's is the one it was minted at). Reads (Range, Watch create) and the
// admin-only requests are checked here against the copy; writes carry the
// AuthInfo into the log and are checked when applied, as etcd does.

import { Errors } from '../common/errors.js';
import type { JwtTokens } from './jwt-tokens.js';
import { SimpleTokens, tokenIndex, type SimpleTokenOptions } from './simple-tokens.js';
import { decodeAuthState } from './state-record.js';
import { AuthStore, type TokenEffect } from './store.js';
import { ROOT_USER, type AuthInfo } from './types.js';

/** etcd's empty AuthInfo: what a request without a token is checked as. */
export const NO_USER: AuthInfo = { username: '', revision: 0 };

/** etcd sweeps expired simple tokens this often. */
const SWEEP_MS = 1000;

/** How long a request waits for its token's entry to apply before "invalid auth token" (etcd: the request's context). */
export const TOKEN_WAIT_MS = 7000;

interface IndexWaiter { index: number; done: (ok: boolean) => void }

export class AuthGate {
  private current: AuthStore;
  readonly tokens: SimpleTokens;
  private applied: number;
  private waiters: IndexWaiter[] = [];
  private sweeper: NodeJS.Timeout | null = null;

  /** With --auth-token jwt; the simple tokens then stay empty. */
  readonly jwt: JwtTokens | null;

  constructor(state: Uint8Array, appliedIndex: number, tokenOpts: SimpleTokenOptions = {}, jwt: JwtTokens | null = null) {
    this.jwt = jwt;
    this.current = AuthStore.fromState(decodeAuthState(state));
    this.tokens = new SimpleTokens(tokenOpts);
    // etcd starts the token keeper at boot when the stored flag says auth is on.
    this.tokens.setEnabled(this.current.isEnabled);
    this.applied = appliedIndex;
  }

  get store(): AuthStore { return this.current; }
  get isEnabled(): boolean { return this.current.isEnabled; }
  get revision(): number { return this.current.revision; }

  start(): void {
    this.sweeper = setInterval(() => { this.tokens.sweep(); this.jwt?.sweep(); }, SWEEP_MS);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    for (const w of this.waiters) w.done(false);
    this.waiters = [];
  }

  /** The apply worker's new state; `effect` is the entry's token change, 'reset' after a snapshot install. */
  onNotice(state: Uint8Array, effect: TokenEffect | 'reset' | null): void {
    this.current = AuthStore.fromState(decodeAuthState(state));
    // JWTs need no table: an Authenticate entry's simple token is not kept.
    if (this.jwt !== null) return;
    if (effect === 'reset') this.tokens.setEnabled(this.current.isEnabled);
    else if (effect !== null) this.tokens.apply(effect);
  }

  /** What an Authenticate entry carries: a fresh simple-token prefix, or nothing for JWT (etcd's genTokenPrefix). */
  tokenPrefix(): string {
    return this.jwt === null ? this.tokens.genPrefix() : '';
  }

  /** The applied index moved: requests whose token names an entry up to it may look it up. */
  advanceApplied(index: number): void {
    if (index <= this.applied) return;
    this.applied = index;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.index <= index) this.waiters[n++]!.done(true);
    if (n > 0) this.waiters.splice(0, n);
  }

  /**
   * etcd's AuthInfoFromCtx: undefined without a token; the token's user and
   * the current auth revision with one; "invalid auth token" for an unknown
   * or expired one. A token minted at an index not yet applied here waits for
   * it (etcd's indexWaiter), so the result is a promise only then.
   */
  infoFrom(token: string | undefined): AuthInfo | undefined | Promise<AuthInfo> {
    if (token === undefined) return undefined;
    if (this.jwt !== null) {
      // etcd checks a JWT whether auth is on or not.
      const info = this.jwt.verify(token);
      if (info === undefined) throw Errors.invalidAuthToken();
      return info;
    }
    const index = tokenIndex(token);
    if (index === undefined) throw Errors.invalidAuthToken();
    if (index <= this.applied) return this.lookup(token);
    return new Promise<AuthInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(Errors.invalidAuthToken());
      }, TOKEN_WAIT_MS);
      timer.unref();
      const waiter: IndexWaiter = {
        index,
        done: (ok) => {
          clearTimeout(timer);
          if (!ok) { reject(Errors.invalidAuthToken()); return; }
          try { resolve(this.lookup(token)); } catch (err) { reject(err); }
        },
      };
      this.waiters.push(waiter);
      this.waiters.sort((a, b) => a.index - b.index);
    });
  }

  /** etcd's WithRoot: what the server's own requests (lease expiry) run as; none while auth is off. */
  rootInfo(): AuthInfo | undefined {
    return this.current.isEnabled ? { username: ROOT_USER, revision: this.current.revision } : undefined;
  }

  /** etcd's doSerialize check for a read: the range, as the token's user or as nobody. */
  checkRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer): void {
    this.current.checkRange(ai ?? NO_USER, key, rangeEnd);
  }

  /** IsAdminPermitted (Hash, HashKV, Snapshot, Defragment, member changes). */
  checkAdmin(ai: AuthInfo | undefined): void {
    this.current.checkAdmin(ai ?? NO_USER);
  }

  /** After a read was served: the auth store moved on meanwhile (etcd's stale-token check). */
  checkNotStale(ai: AuthInfo | undefined): void {
    if (ai !== undefined && ai.revision !== 0 && ai.revision !== this.current.revision) throw Errors.authOldRevision();
  }

  private lookup(token: string): AuthInfo {
    const username = this.tokens.lookup(token);
    if (username === undefined) throw Errors.invalidAuthToken();
    return { username, revision: this.current.revision };
  }
}
