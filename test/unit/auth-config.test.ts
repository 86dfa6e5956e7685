// The auth flags as etcd spells them: --auth-token (simple or jwt,...; anything
// else as etcd's "invalid auth options"), --auth-token-ttl
// in seconds, --bcrypt-cost as given (auth/bcrypt-cost.ts applies etcd's fallback).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseArgs } from '../../src/common/config.js';
import { bcryptCost } from '../../src/auth/bcrypt-cost.js';

test('defaults: simple tokens for 300 s, bcrypt cost 10', () => {
  const { config } = parseArgs([]);
  assert.equal(config.authToken.type, 'simple');
  assert.equal(config.authTokenTtlMs, 300_000);
  assert.equal(config.bcryptCost, 10);
});

test('given values', () => {
  const { config } = parseArgs(['--auth-token', 'simple', '--auth-token-ttl=7', '--bcrypt-cost', '4']);
  assert.equal(config.authTokenTtlMs, 7000);
  assert.deepEqual(bcryptCost(config.bcryptCost), { cost: 4, defaulted: false });
  assert.deepEqual(bcryptCost(parseArgs(['--bcrypt-cost', '40']).config.bcryptCost), { cost: 10, defaulted: true });
});

test('jwt is taken with its options (read at start); unknown token types are refused', () => {
  assert.equal(parseArgs(['--auth-token', 'jwt,pub-key=a.pub,priv-key=a,sign-method=RS256']).config.authToken.type, 'jwt');
  assert.throws(() => parseArgs(['--auth-token', 'magic']), (e: unknown) =>
    e instanceof ConfigError && e.message === 'auth: invalid auth options (unknown token type: magic)');
  assert.throws(() => parseArgs(['--auth-token-ttl', '-1']), ConfigError);
});
