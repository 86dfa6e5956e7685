// The main thread's polling policy (member/busy-poll.ts): when its ring loops
// poll instead of sleeping, and that a request starting to wait gets a loop
// asleep on a real ring up. Windows are either huge or zero, so no outcome
// depends on how fast this machine is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BusyPoll, NO_BUSY_POLL } from '../../src/member/busy-poll.js';
import { Ring } from '../../src/workers/ring/ring.js';

const LONG = { maxWaiting: 1, pollMs: 60_000, lingerMs: 60_000 };

test('polls while one request waits, not while several do', () => {
  let waiting = 0;
  const poll = new BusyPoll(() => waiting, LONG);
  assert.equal(poll.shouldPoll(), false, 'a member that never had a request does not poll');
  waiting = 1;
  poll.added();
  assert.equal(poll.shouldPoll(), true);
  waiting = 2;
  poll.added();
  assert.equal(poll.shouldPoll(), false, 'two waiting: past maxWaiting');
});

test('lingers after one client\'s answer, not after a busier period', () => {
  let waiting = 1;
  const poll = new BusyPoll(() => waiting, LONG);
  poll.added();
  waiting = 0;
  poll.answered();
  assert.equal(poll.shouldPoll(), true, 'a lone request answered: its client\'s next one is likely soon');
  for (const n of [1, 2, 3]) { waiting = n; poll.added(); }
  waiting = 0;
  poll.answered();
  assert.equal(poll.shouldPoll(), false, 'three waited at once: sleep');
  waiting = 1;
  poll.added();
  waiting = 0;
  poll.answered();
  assert.equal(poll.shouldPoll(), true, 'back to one at a time');
});

test('zero windows and --busy-poll=false never poll', () => {
  let waiting = 1;
  const short = new BusyPoll(() => waiting, { maxWaiting: 1, pollMs: 0, lingerMs: 0 });
  short.added();
  assert.equal(short.shouldPoll(), false, 'no answer within pollMs: sleep');
  const off = new BusyPoll(() => waiting, NO_BUSY_POLL);
  off.added();
  assert.equal(off.shouldPoll(), false);
  waiting = 0;
  assert.equal(off.shouldPoll(), false);
});

test('a request starting to wait ends a loop\'s sleep on its ring', async () => {
  const ring = new Ring(Ring.allocate(1024));
  let waiting = 0;
  const poll = new BusyPoll(() => waiting, LONG);
  poll.watch(ring);
  let woke = false;
  const sleeping = ring.waitReadableAsync(30_000).then(() => { woke = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false, 'nothing written: still asleep');
  waiting = 1;
  poll.added();
  await sleeping;
  assert.equal(woke, true);
  assert.equal(ring.hasData(), false, 'woken without a record');
  waiting = 2;
  const again = ring.waitReadableAsync(50);
  poll.added(); // past maxWaiting: leaves the loop asleep (until its 50 ms timeout)
  await again;
});
