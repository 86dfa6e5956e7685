// Keep-alives on a follower are the leader's to answer: forwarded with a
// request id, answered with the leader's TTL, retried when the member asked
// no longer leads, and failed with etcd's timeout when no leader answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseRenewals } from '../../src/member/lease-renewals.js';
import { Lessor } from '../../src/member/lessor.js';
import { routePeerMessage } from '../../src/member/peer-messages.js';
import type { Message } from '../../src/raft/types.js';
import { EtcdError } from '../../src/common/errors.js';

/** Two members wired back to back: messages are delivered by hand, so a test can drop or hold them. */
function pair(timeoutMs = 2000) {
  const raftA = { isLeader: () => false, lead: 2n };
  const raftB = { isLeader: () => true, lead: 2n };
  const toB: Message[] = [];
  const toA: Message[] = [];
  const clockA = { t: 0 };
  const clockB = { t: 0 };
  const lessorB = new Lessor(() => clockB.t);
  lessorB.promote();
  const lessorA = new Lessor(() => clockA.t);
  const a = new LeaseRenewals({ memberId: 1n, raft: raftA, lessor: lessorA, send: (m) => toB.push(...m), timeoutMs });
  const b = new LeaseRenewals({ memberId: 2n, raft: raftB, lessor: lessorB, send: (m) => toA.push(...m), timeoutMs });
  const deliver = (q: Message[], to: LeaseRenewals) => {
    for (const m of q.splice(0)) {
      routePeerMessage(m, {
        leaseRenew: (from, reqId, id) => to.onRequest(from, reqId, id),
        leaseRenewed: (reqId, ttl) => to.onReply(reqId, ttl),
        leaseTtl: (from, reqId, id) => to.onTtlRequest(from, reqId, id),
        leaseTtlAnswer: (reqId, ttl, granted) => to.onTtlReply(reqId, ttl, granted),
        memberOp: () => assert.fail('no member op here'),
        memberOpFailed: () => assert.fail('no member op here'),
        raft: () => assert.fail('no raft message here'),
      });
    }
  };
  return { a, b, raftA, raftB, clockA, clockB, lessorA, lessorB, toA, toB, flush: () => { deliver(toB, b); deliver(toA, a); } };
}

test('a follower answers with the leader\'s TTL, and 0 for a lease the leader does not hold', async () => {
  const p = pair();
  p.lessorB.granted(7n, 30);
  p.lessorA.granted(7n, 30);
  p.clockA.t += 20_000;
  const alive = p.a.renew(7n);
  const unknown = p.a.renew(8n);
  assert.equal(p.toB.length, 2);
  p.flush();
  assert.equal(await alive, 30);
  assert.equal(await unknown, 0);
  assert.equal(p.lessorA.remaining(7n)?.ttl, 30, 'the follower\'s clock follows the leader\'s answer');
  p.a.stop();
});

test('a member that no longer leads says so; the follower asks the new leader', async () => {
  const p = pair();
  p.lessorB.granted(7n, 30);
  p.raftB.isLeader = () => false;
  const r = p.a.renew(7n);
  p.flush();
  // B answered "not leader": A waits. B leads again and A is told of a leader change.
  p.raftB.isLeader = () => true;
  p.a.leaderChanged();
  p.flush();
  assert.equal(await r, 30);
  p.a.stop();
});

test('no leader answering within the timeout: etcd\'s "request timed out"', async () => {
  const p = pair(300);
  p.raftA.lead = 0n;
  // The retry timers are unref'd (they never hold a member's process open): hold this one open.
  const hold = setInterval(() => {}, 1000);
  try {
    await assert.rejects(p.a.renew(7n), (err: unknown) => err instanceof EtcdError && err.message === 'etcdserver: request timed out');
  } finally {
    clearInterval(hold);
  }
  assert.equal(p.toB.length, 0);
  p.a.stop();
});

test('the leader answers its own keep-alives from its lessor', async () => {
  const p = pair();
  p.lessorB.granted(7n, 30);
  assert.equal(await p.b.renew(7n), 30);
  assert.equal(await p.b.renew(9n), 0);
  assert.equal(p.toA.length, 0);
});

test('TimeToLive on a follower is the leader\'s clock, which sees keep-alives sent to other members', async () => {
  const p = pair();
  p.lessorB.granted(7n, 30);
  p.lessorA.granted(7n, 30);
  // 25 s pass; a client kept the lease alive on the leader at 20 s: the follower's own clock never saw it.
  p.clockB.t += 20_000;
  assert.equal(await p.b.renew(7n), 30);
  p.clockA.t += 25_000;
  p.clockB.t += 5_000;
  const left = p.a.timeToLive(7n);
  const unknown = p.a.timeToLive(8n);
  p.flush();
  assert.deepEqual(await left, { ttl: 25, granted: 30 });
  assert.equal(await unknown, null);
  p.a.stop();
});

test('a forwarded TimeToLive that reaches a member no longer leading waits for the next leader', async () => {
  const p = pair();
  p.lessorB.granted(7n, 30);
  p.raftB.isLeader = () => false;
  const r = p.a.timeToLive(7n);
  p.flush();
  p.raftB.isLeader = () => true;
  p.a.leaderChanged();
  p.flush();
  assert.deepEqual(await r, { ttl: 30, granted: 30 });
  p.a.stop();
});
