// etcd's simple tokens (auth/simple_token.go) with an injected clock: the
// format, TTL from last use, refresh on use, expiry and sweep, a user's
// tokens invalidated, all dropped on disable, nothing minted while off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TOKEN_TTL_MS, SimpleTokens, tokenIndex } from '../../src/auth/simple-tokens.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

test('the prefix is 16 letters; the token is prefix.index; tokenIndex parses as Go\'s Atoi', () => {
  const tokens = new SimpleTokens();
  for (let i = 0; i < 20; i++) assert.match(tokens.genPrefix(), /^[a-zA-Z]{16}$/);
  const fixed = new SimpleTokens({ random: () => 0 });
  assert.equal(fixed.genPrefix(), 'aaaaaaaaaaaaaaaa');
  const last = new SimpleTokens({ random: (n) => n - 1 });
  assert.equal(last.genPrefix(), 'ZZZZZZZZZZZZZZZZ');
  assert.equal(tokenIndex('abc.12'), 12);
  assert.equal(tokenIndex('abc.+7'), 7);
  assert.equal(tokenIndex('abc.-1'), -1);
  assert.equal(tokenIndex('abc'), undefined);
  assert.equal(tokenIndex('a.b.1'), undefined);
  assert.equal(tokenIndex('abc.1x'), undefined);
  assert.equal(tokenIndex('abc.'), undefined);
});

test('a token lives for the TTL after its last use, and each use refreshes it', () => {
  const c = clock();
  const tokens = new SimpleTokens({ ttlMs: 10_000, now: c.now });
  tokens.apply({ kind: 'enable' });
  tokens.apply({ kind: 'assign', token: 'p.5', username: 'alice' });
  c.advance(9_000);
  assert.equal(tokens.lookup('p.5'), 'alice');
  c.advance(9_000); // 18 s after minting, 9 s after the last use
  assert.equal(tokens.lookup('p.5'), 'alice');
  c.advance(10_000); // exactly the TTL: etcd expires only once now is after the end
  assert.equal(tokens.lookup('p.5'), 'alice');
  c.advance(10_001);
  assert.equal(tokens.lookup('p.5'), undefined);
  assert.equal(tokens.size, 0, 'an expired token found by a lookup is dropped');
});

test('sweep drops only expired tokens; a TTL of 0 means 300 s', () => {
  const c = clock();
  const tokens = new SimpleTokens({ ttlMs: 0, now: c.now });
  tokens.apply({ kind: 'enable' });
  tokens.apply({ kind: 'assign', token: 'a.1', username: 'u' });
  c.advance(DEFAULT_TOKEN_TTL_MS - 1);
  tokens.apply({ kind: 'assign', token: 'b.2', username: 'u' });
  c.advance(2);
  assert.equal(tokens.sweep(), 1);
  assert.equal(tokens.lookup('a.1'), undefined);
  assert.equal(tokens.lookup('b.2'), 'u');
});

test('invalidateUser drops that user\'s tokens only; disable drops all; nothing is minted while off', () => {
  const tokens = new SimpleTokens();
  tokens.apply({ kind: 'assign', token: 'x.1', username: 'u' });
  assert.equal(tokens.lookup('x.1'), undefined, 'auth off: no token keeper, nothing assigned');
  tokens.apply({ kind: 'enable' });
  tokens.apply({ kind: 'assign', token: 'x.2', username: 'u' });
  tokens.apply({ kind: 'assign', token: 'y.3', username: 'u' });
  tokens.apply({ kind: 'assign', token: 'z.4', username: 'v' });
  assert.throws(() => tokens.apply({ kind: 'assign', token: 'z.4', username: 'v' }), /already assigned/);
  tokens.apply({ kind: 'invalidateUser', name: 'u' });
  assert.equal(tokens.lookup('x.2'), undefined);
  assert.equal(tokens.lookup('y.3'), undefined);
  assert.equal(tokens.lookup('z.4'), 'v');
  tokens.apply({ kind: 'disable' });
  assert.equal(tokens.lookup('z.4'), undefined);
  assert.equal(tokens.isEnabled, false);
  tokens.setEnabled(true);
  assert.equal(tokens.isEnabled, true);
});

test('a token of the wrong shape is never found, even if assigned so', () => {
  const tokens = new SimpleTokens();
  tokens.apply({ kind: 'enable' });
  tokens.apply({ kind: 'assign', token: 'nodot', username: 'u' });
  assert.equal(tokens.lookup('nodot'), undefined);
});
