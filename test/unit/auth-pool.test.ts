// Password hashing runs in the one-off pool (piscina), never on the main
// thread: a hash made there has the cost asked for, compares true for its
// password and false for another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OneOffPool } from '../../src/workers/pool.js';
import { bcryptCost } from '../../src/auth/bcrypt-cost.js';

test('bcryptHash and bcryptCompare in the pool', async (t) => {
  const pool = new OneOffPool();
  t.after(() => pool.close());
  const hash = await pool.run({ kind: 'bcryptHash', password: 'secret', cost: 4 });
  assert.match(hash, /^\$2[aby]\$04\$[./A-Za-z0-9]{53}$/);
  assert.equal(await pool.run({ kind: 'bcryptCompare', password: 'secret', hash }), true);
  assert.equal(await pool.run({ kind: 'bcryptCompare', password: 'Secret', hash }), false);
  assert.equal(await pool.run({ kind: 'bcryptCompare', password: '', hash }), false);
  // The same password hashes differently each time (a fresh salt).
  assert.notEqual(await pool.run({ kind: 'bcryptHash', password: 'secret', cost: 4 }), hash);
});

test('--bcrypt-cost outside [4, 31] falls back to 10, as etcd', () => {
  assert.deepEqual(bcryptCost(10), { cost: 10, defaulted: false });
  assert.deepEqual(bcryptCost(4), { cost: 4, defaulted: false });
  assert.deepEqual(bcryptCost(31), { cost: 31, defaulted: false });
  assert.deepEqual(bcryptCost(3), { cost: 10, defaulted: true });
  assert.deepEqual(bcryptCost(32), { cost: 10, defaulted: true });
  assert.deepEqual(bcryptCost(0), { cost: 10, defaulted: true });
});
