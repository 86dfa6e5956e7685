// Message-level behaviour of the raft core: vote rules, the log up-to-date check,
// append rejection hints, conflict truncation, the commit rule, ReadIndex, the
// persisted() acknowledgement rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode, persistPoint, type NodeOptions } from '../../src/raft/node.js';
import { MessageType, Role, type Entry, type Message, type Ready } from '../../src/raft/types.js';
import { makeRng } from '../../src/raft/rng.js';

const ents = (spec: [number, number][]): Entry[] => spec.map(([index, term]) => ({ index, term, data: new Uint8Array([index & 255]) }));

function node(o: Partial<NodeOptions> = {}): RaftNode {
  return new RaftNode({
    id: 1n, voters: [1n, 2n, 3n], hardState: { term: 0, vote: 0n, commit: 0 }, entries: [], applied: { index: 0, term: 0 },
    rng: makeRng(1), ...o,
  });
}

function msg(m: Partial<Message> & { type: MessageType }): Message {
  return { from: 2n, to: 1n, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m };
}

/** ready(), then acknowledge its writes as storage would. */
function drain(n: RaftNode): Ready {
  const rd = n.ready();
  const p = persistPoint(rd);
  if (p) n.persisted(p.index, p.term);
  return rd;
}

const sent = (rd: Ready, type: MessageType) => rd.messages.filter((m) => m.type === type);

/** Makes node 1 leader of a 3-voter cluster at term+1 (PreVote, then the vote) with node 2's votes. */
function elect(n: RaftNode): void {
  n.campaign();
  const t = n.term;
  n.step(msg({ type: MessageType.MsgPreVoteResp, term: t + 1 }));
  assert.equal(n.role, Role.Candidate);
  n.step(msg({ type: MessageType.MsgVoteResp, term: n.term }));
  assert.equal(n.role, Role.Leader);
}

test('vote: granted to an up-to-date candidate, persisted in the same ready as the answer', () => {
  const n = node({ hardState: { term: 1, vote: 0n, commit: 0 }, entries: ents([[1, 1]]) });
  n.step(msg({ type: MessageType.MsgVote, from: 2n, term: 2, index: 1, logTerm: 1 }));
  const rd = n.ready();
  assert.deepEqual(rd.hardState, { term: 2, vote: 2n, commit: 0 });
  const r = sent(rd, MessageType.MsgVoteResp);
  assert.equal(r.length, 1);
  assert.equal(r[0]!.reject, false);
  // One vote per term: another candidate of term 2 is refused.
  n.step(msg({ type: MessageType.MsgVote, from: 3n, term: 2, index: 5, logTerm: 1 }));
  assert.equal(sent(n.ready(), MessageType.MsgVoteResp)[0]!.reject, true);
  // The same candidate asking again gets the same answer.
  n.step(msg({ type: MessageType.MsgVote, from: 2n, term: 2, index: 1, logTerm: 1 }));
  assert.equal(sent(n.ready(), MessageType.MsgVoteResp)[0]!.reject, false);
});

test('vote: the log up-to-date check (last term first, then length)', () => {
  const cases: [number, number, boolean][] = [
    [2, 1, false], // lower last term
    [3, 2, false], // same last term, shorter log
    [4, 2, true], // same last term, same length
    [9, 2, true], // longer
    [1, 3, true], // higher last term wins even if shorter
  ];
  for (const [index, logTerm, granted] of cases) {
    const n = node({ hardState: { term: 2, vote: 0n, commit: 0 }, entries: ents([[1, 1], [2, 1], [3, 2], [4, 2]]) });
    n.step(msg({ type: MessageType.MsgVote, term: 3, index, logTerm }));
    assert.equal(sent(n.ready(), MessageType.MsgVoteResp)[0]!.reject, !granted, `candidate last ${index}/${logTerm}`);
  }
});

test('pre-vote: answered without changing term or vote; a stale-term pre-vote is rejected', () => {
  const n = node({ hardState: { term: 3, vote: 3n, commit: 0 } });
  n.step(msg({ type: MessageType.MsgPreVote, term: 4, index: 0, logTerm: 0 }));
  const rd = n.ready();
  assert.equal(rd.hardState, null);
  assert.equal(sent(rd, MessageType.MsgPreVoteResp)[0]!.reject, false);
  assert.equal(n.term, 3);
  n.step(msg({ type: MessageType.MsgPreVote, term: 2 }));
  const r = sent(n.ready(), MessageType.MsgPreVoteResp)[0]!;
  assert.equal(r.reject, true);
  assert.equal(r.term, 3);
});

test('leader lease (CheckQuorum): a follower hearing from its leader ignores higher-term votes, except transfers', () => {
  const n = node({ hardState: { term: 1, vote: 0n, commit: 0 } });
  n.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
  n.ready();
  n.step(msg({ type: MessageType.MsgVote, from: 3n, term: 5 }));
  assert.equal(n.term, 1);
  assert.deepEqual(n.ready().messages, []);
  n.step(msg({ type: MessageType.MsgVote, from: 3n, term: 5, transfer: true }));
  assert.equal(n.term, 5);
  assert.equal(sent(n.ready(), MessageType.MsgVoteResp)[0]!.reject, false);
});

test('append: rejection carries a hint that skips a whole mismatching term', () => {
  const n = node({ hardState: { term: 3, vote: 0n, commit: 2 }, entries: ents([[1, 1], [2, 1], [3, 1], [4, 2], [5, 2], [6, 2]]) });
  // The leader's previous entry is beyond our log: hint at our last entry of term <= 3.
  n.step(msg({ type: MessageType.MsgApp, term: 3, index: 10, logTerm: 3, commit: 2 }));
  let r = sent(n.ready(), MessageType.MsgAppResp)[0]!;
  assert.deepEqual([r.reject, r.index, r.rejectHint, r.logTerm], [true, 10, 6, 2]);
  // Mismatch at 5 with leader term 1 there: our entries of term 2 cannot match, skip to 3.
  n.step(msg({ type: MessageType.MsgApp, term: 3, index: 5, logTerm: 1, commit: 2 }));
  r = sent(n.ready(), MessageType.MsgAppResp)[0]!;
  assert.deepEqual([r.reject, r.index, r.rejectHint, r.logTerm], [true, 5, 3, 1]);
  // An append below our commit is answered with the commit index.
  n.step(msg({ type: MessageType.MsgApp, term: 3, index: 1, logTerm: 1, commit: 2 }));
  r = sent(n.ready(), MessageType.MsgAppResp)[0]!;
  assert.deepEqual([r.reject, r.index], [false, 2]);
});

test('append: a conflicting suffix is replaced; the ready rewrites from the conflict and stale acks are ignored', () => {
  const n = node({ hardState: { term: 2, vote: 0n, commit: 0 } });
  n.step(msg({ type: MessageType.MsgApp, term: 2, index: 0, logTerm: 0, entries: ents([[1, 1], [2, 2], [3, 2], [4, 2]]), commit: 1 }));
  const first = n.ready();
  assert.deepEqual(first.entries.map((e) => e.index), [1, 2, 3, 4]);
  // Before that write is durable, a term-3 leader replaces 3..4.
  n.step(msg({ type: MessageType.MsgApp, term: 3, index: 2, logTerm: 2, entries: ents([[3, 3]]), commit: 2 }));
  assert.equal(n.lastIndex(), 3);
  assert.equal(n.termAt(3), 3);
  const second = n.ready();
  assert.deepEqual(second.entries.map((e) => [e.index, e.term]), [[3, 3]]);
  assert.deepEqual(sent(second, MessageType.MsgAppResp).map((m) => m.index), [3]);
  // The first write's acknowledgement covers only what still agrees with our log (up to 2).
  n.persisted(4, 2);
  assert.equal(n.durableIndex(), 2);
  assert.deepEqual(n.ready().committedEntries.map((e) => e.index), [1, 2]);
  n.persisted(3, 3);
  assert.equal(n.durableIndex(), 3);
});

test('append: commit follows the leader but never beyond the entries this message vouched for', () => {
  const n = node({ hardState: { term: 2, vote: 0n, commit: 0 }, entries: ents([[1, 1], [2, 1], [3, 1]]) });
  // Entries 2..3 are from an old term and not checked by this message: commit stops at 1.
  n.step(msg({ type: MessageType.MsgApp, term: 2, index: 0, logTerm: 0, entries: ents([[1, 1]]), commit: 3 }));
  assert.equal(n.commit, 1);
});

test('commit rule: a quorum on an entry of an earlier term does not commit it; the current term entry does', () => {
  const n = node({ hardState: { term: 1, vote: 0n, commit: 0 }, entries: ents([[1, 1], [2, 1]]) });
  elect(n);
  assert.equal(n.term, 2);
  assert.equal(n.lastIndex(), 3); // the empty entry of term 2
  drain(n);
  assert.equal(n.durableIndex(), 3);
  // Follower 2 holds 1..2 (term 1): quorum {1, 2} on index 2, but index 2 is of term 1.
  n.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 2, index: 2 }));
  assert.equal(n.commit, 0);
  n.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 2, index: 3 }));
  assert.equal(n.commit, 3);
  assert.deepEqual(n.ready().committedEntries.map((e) => e.index), [1, 2, 3]);
});

test('commit rule: the leader counts itself only for what its own storage made durable', () => {
  const n = node();
  elect(n);
  const rd0 = n.ready(); // handed to storage, not durable
  n.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 1, index: 1 }));
  assert.equal(n.commit, 0, 'follower 2 alone is no quorum while the leader is not durable');
  n.persisted(persistPoint(rd0)!.index, persistPoint(rd0)!.term);
  assert.equal(n.commit, 1);
  const n2 = node({ voters: [1n, 2n, 3n, 4n, 5n] });
  n2.campaign();
  for (const f of [2n, 3n]) n2.step(msg({ type: MessageType.MsgPreVoteResp, from: f, term: 1 }));
  for (const f of [2n, 3n]) n2.step(msg({ type: MessageType.MsgVoteResp, from: f, term: 1 }));
  assert.equal(n2.role, Role.Leader);
  const rd = n2.ready();
  n2.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 1, index: 1 }));
  n2.step(msg({ type: MessageType.MsgAppResp, from: 3n, term: 1, index: 1 }));
  assert.equal(n2.commit, 0, '2 followers of 5 plus a non-durable leader is no quorum');
  n2.persisted(persistPoint(rd)!.index, persistPoint(rd)!.term);
  assert.equal(n2.commit, 1);
});

test('ReadIndex: answered after a heartbeat round confirms leadership, with the commit at request time', () => {
  const n = node();
  elect(n);
  drain(n);
  // Before an entry of its term commits, the read waits.
  n.readIndex(42n);
  assert.deepEqual(n.ready().readStates, []);
  n.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 1, index: 1 }));
  assert.equal(n.commit, 1);
  let rd = n.ready();
  assert.deepEqual(rd.readStates, []);
  const hb = sent(rd, MessageType.MsgHeartbeat);
  assert.equal(hb.length, 2);
  assert.equal(hb[0]!.context, 42n);
  // One follower's answer makes a quorum of 3 with the leader.
  n.step(msg({ type: MessageType.MsgHeartbeatResp, from: 3n, term: 1, context: 42n }));
  rd = n.ready();
  assert.deepEqual(rd.readStates, [{ index: 1, requestCtx: 42n }]);
  // A follower's request is forwarded to the leader and answered by message.
  n.step(msg({ type: MessageType.MsgReadIndex, from: 3n, term: 1, context: 7 }));
  n.step(msg({ type: MessageType.MsgHeartbeatResp, from: 2n, term: 1, context: 7 }));
  const resp = sent(n.ready(), MessageType.MsgReadIndexResp);
  assert.deepEqual(resp.map((m) => [m.to, m.index, m.context]), [[3n, 1, 7]]);
  const f = node({ id: 3n, hardState: { term: 1, vote: 0n, commit: 0 } });
  f.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 3n, term: 1 }));
  f.ready();
  f.readIndex(7);
  const fwd = sent(f.ready(), MessageType.MsgReadIndex);
  assert.deepEqual(fwd.map((m) => [m.to, m.context]), [[1n, 7]]);
  f.step(msg({ type: MessageType.MsgReadIndexResp, from: 1n, to: 3n, term: 1, index: 1, context: 7 }));
  assert.deepEqual(f.ready().readStates, [{ index: 1, requestCtx: 7 }]);
});

test('a stale leader learns the new term from a follower and steps down', () => {
  const n = node();
  elect(n);
  n.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 5 }));
  assert.equal(n.role, Role.Follower);
  assert.equal(n.term, 5);
});

test('transfer: the leader sends MsgTimeoutNow once the target is up to date; proposals are refused meanwhile', () => {
  const n = node();
  elect(n);
  drain(n);
  n.transferLeader(2n);
  assert.throws(() => n.propose(new Uint8Array(1)), /transfer/);
  assert.deepEqual(sent(n.ready(), MessageType.MsgTimeoutNow), []);
  n.step(msg({ type: MessageType.MsgAppResp, from: 2n, term: 1, index: 1 }));
  assert.deepEqual(sent(n.ready(), MessageType.MsgTimeoutNow).map((m) => m.to), [2n]);
  // The target campaigns at once, without PreVote, flagged so voters ignore their lease.
  const t = node({ id: 2n, hardState: { term: 1, vote: 1n, commit: 0 } });
  t.step(msg({ type: MessageType.MsgTimeoutNow, from: 1n, to: 2n, term: 1 }));
  assert.equal(t.role, Role.Candidate);
  assert.equal(t.term, 2);
  assert.ok(sent(t.ready(), MessageType.MsgVote).every((m) => m.transfer === true));
});

// reportLeaderGone: the transport's evidence that the leader's process is gone.
test('leader gone: a follower drops its lease and campaigns (pre-vote) within a few ticks, the lower ids first', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const n = node({ hardState: { term: 1, vote: 0n, commit: 0 }, rng: makeRng(seed) });
    n.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
    n.ready();
    assert.equal(n.reportLeaderGone(3n), false, 'not our leader: ignored');
    assert.equal(n.lead, 2n);
    assert.equal(n.reportLeaderGone(2n), true);
    assert.equal(n.lead, 0n);
    // Out of lease now: another candidate's pre-vote is answered (granted) instead of ignored.
    n.step(msg({ type: MessageType.MsgPreVote, from: 3n, term: 2 }));
    assert.equal(sent(n.ready(), MessageType.MsgPreVoteResp)[0]!.reject, false);
    let ticks = 0;
    while (n.role === Role.Follower && ticks < 20) { n.tick(); ticks++; }
    assert.equal(n.role, Role.PreCandidate, `seed ${seed}`);
    assert.ok(ticks >= 1 && ticks <= 2, `seed ${seed}: campaigned after ${ticks} ticks`);
    assert.equal(n.term, 1, 'a pre-vote moves no term');
    // Node 3 ranks after node 1 among the survivors: its slot is the next one (ticks 3..4).
    const m = node({ id: 3n, hardState: { term: 1, vote: 0n, commit: 0 }, rng: makeRng(seed) });
    m.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, to: 3n, term: 1 }));
    assert.equal(m.reportLeaderGone(2n), true);
    let mTicks = 0;
    while (m.role === Role.Follower && mTicks < 20) { m.tick(); mTicks++; }
    assert.ok(mTicks >= 3 && mTicks <= 4, `seed ${seed}: node 3 campaigned after ${mTicks} ticks`);
  }
});

test('leader gone: ignored without pre-vote, by candidates and leaders, and for a leader heard from again', () => {
  const noPre = node({ hardState: { term: 1, vote: 0n, commit: 0 }, preVote: false });
  noPre.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
  assert.equal(noPre.reportLeaderGone(2n), false);
  assert.equal(noPre.lead, 2n);
  const l = node();
  elect(l);
  assert.equal(l.reportLeaderGone(1n), false);
  assert.equal(l.role, Role.Leader);
  // A wrong report: the leader's next heartbeat restores it and restarts the election timer.
  const f = node({ hardState: { term: 1, vote: 0n, commit: 0 } });
  f.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
  assert.equal(f.reportLeaderGone(2n), true);
  f.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
  assert.equal(f.lead, 2n);
  for (let i = 0; i < 9; i++) f.tick();
  assert.equal(f.role, Role.Follower);
});

test('leader gone, reported wrongly to one follower: its pre-vote fails while the other still hears the leader', () => {
  // Node 1 is told (wrongly) that leader 2 is gone; node 3 still hears 2 and keeps its lease.
  const a = node({ hardState: { term: 1, vote: 0n, commit: 0 } });
  const c = node({ id: 3n, hardState: { term: 1, vote: 0n, commit: 0 } });
  a.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
  c.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, to: 3n, term: 1 }));
  a.ready();
  c.ready();
  assert.equal(a.reportLeaderGone(2n), true);
  while (a.role === Role.Follower) a.tick();
  const pv = sent(a.ready(), MessageType.MsgPreVote).find((m) => m.to === 3n)!;
  c.step(pv);
  assert.deepEqual(c.ready().messages, [], 'in lease: the pre-vote is ignored');
  assert.equal(c.term, 1);
  assert.equal(a.term, 1);
  // The leader's heartbeat brings node 1 back as its follower, in the same term.
  a.step(msg({ type: MessageType.MsgHeartbeat, from: 2n, term: 1 }));
  assert.equal(a.role, Role.Follower);
  assert.equal(a.lead, 2n);
  assert.equal(a.term, 1);
});
