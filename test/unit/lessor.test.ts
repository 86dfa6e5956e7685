// The lease clock: only the leader's clock expires leases (etcd's primary
// lessor); a follower renews any lease the log still holds, whatever its own
// clock says, because keep-alives sent to other members never reach it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lessor } from '../../src/member/lessor.js';

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

test('the leader: a lease past its TTL is not renewed and is handed out for revoke', () => {
  const c = clock();
  const l = new Lessor(c.now);
  l.promote();
  l.granted(7n, 2);
  c.advance(1500);
  assert.equal(l.renew(7n), 2);
  c.advance(2500);
  assert.equal(l.renew(7n), null);
  assert.deepEqual(l.takeExpired(10), [7n]);
});

test('a follower renews a lease its own clock saw expire (renewed elsewhere); unknown and revoked leases are not renewed', () => {
  const c = clock();
  const l = new Lessor(c.now);
  l.granted(7n, 2);
  c.advance(10_000);
  assert.equal(l.renew(7n), 2);
  assert.equal(l.remaining(7n)?.ttl, 2);
  assert.equal(l.renew(8n), null);
  l.revoked(7n);
  assert.equal(l.renew(7n), null);
});

test('a leader that steps down stops expiring by its clock; promoted again, every clock restarts', () => {
  const c = clock();
  const l = new Lessor(c.now);
  l.promote();
  l.granted(7n, 2);
  l.demote();
  c.advance(5000);
  assert.equal(l.renew(7n), 2);
  c.advance(5000);
  l.promote();
  assert.equal(l.remaining(7n)?.ttl, 2);
  assert.equal(l.renew(7n), 2);
});
