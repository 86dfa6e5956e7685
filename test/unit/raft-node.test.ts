// The single-voter raft core: election, the persist-then-commit rule, the
// current-term commit rule, ready() handing entries out once, restart, readIndex.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode, type NodeOptions } from '../../src/raft/node.js';
import { NotLeaderError, Role, type Entry } from '../../src/raft/types.js';

const ID = 1n;

function node(o: Partial<NodeOptions> = {}): RaftNode {
  return new RaftNode({
    id: ID, voters: [ID], hardState: { term: 0, vote: 0n, commit: 0 }, entries: [], applied: { index: 0, term: 0 }, ...o,
  });
}

const data = (s: string) => new Uint8Array(Buffer.from(s));
const text = (e: Entry) => Buffer.from(e.data).toString();
const idx = (es: Entry[]) => es.map((e) => [e.index, e.term]);

/** ready() + persisted() of everything it handed out; returns the ready. */
function cycle(n: RaftNode) {
  const rd = n.ready();
  if (rd.entries.length > 0) n.persisted(rd.entries[rd.entries.length - 1]!.index);
  return rd;
}

// Updated for the multi-node core: clusters of several voters are accepted now; a node
// that is one of several voters cannot elect itself alone (it needs its peers' votes).
test('a node with peers cannot elect itself alone', () => {
  const n = node({ voters: [ID, 2n, 3n] });
  n.campaign();
  assert.notEqual(n.role, Role.Leader);
  assert.equal(n.term, 0, 'a pre-vote does not raise the term');
  assert.throws(() => n.readIndex(), NotLeaderError);
});

test('campaign: leader at term+1, votes for itself, appends one empty entry of the new term', () => {
  const n = node({ hardState: { term: 4, vote: 0n, commit: 0 } });
  assert.equal(n.isLeader(), false);
  assert.throws(() => n.propose(data('x')), NotLeaderError);
  assert.throws(() => n.readIndex(), NotLeaderError);
  n.campaign();
  assert.equal(n.role, Role.Leader);
  assert.equal(n.term, 5);
  assert.equal(n.vote, ID);
  assert.equal(n.lastIndex(), 1);
  assert.equal(n.lastTerm(), 5);
  assert.equal(n.hasReady(), true);
  const rd = n.ready();
  assert.deepEqual(rd.hardState, { term: 5, vote: ID, commit: 0 });
  assert.deepEqual(idx(rd.entries), [[1, 5]]);
  assert.equal(rd.entries[0]!.data.length, 0);
  assert.deepEqual(rd.committedEntries, []);
});

// Updated for the multi-node core: a follower campaigns after its randomized election
// timeout (electionTick..2*electionTick-1 ticks, default electionTick 10), not on the first tick.
test('tick makes a follower campaign; a leader stays leader on tick', () => {
  const n = node({ hardState: { term: 2, vote: 0n, commit: 0 } });
  for (let i = 0; i < 20 && !n.isLeader(); i++) n.tick();
  assert.equal(n.isLeader(), true);
  assert.equal(n.term, 3);
  n.tick();
  assert.equal(n.term, 3);
  assert.equal(n.lastIndex(), 1);
});

test('proposals commit only once persisted, and are handed out once, in order', () => {
  const n = node();
  n.campaign();
  cycle(n); // the empty entry: persisted -> committed
  let rd = n.ready();
  assert.deepEqual(idx(rd.committedEntries), [[1, 1]]);
  assert.deepEqual(rd.hardState, { term: 1, vote: ID, commit: 1 });
  assert.equal(n.hasReady(), false);

  assert.equal(n.propose(data('a')), 2);
  assert.equal(n.propose(data('b')), 3);
  assert.equal(n.hasReady(), true);
  rd = n.ready();
  assert.deepEqual(idx(rd.entries), [[2, 1], [3, 1]]);
  assert.deepEqual(rd.committedEntries, []);
  assert.equal(rd.hardState, null);
  assert.equal(n.commit, 1);
  // Not durable yet: nothing commits, nothing is handed out again.
  rd = n.ready();
  assert.deepEqual(rd.entries, []);
  assert.deepEqual(rd.committedEntries, []);
  assert.equal(n.hasReady(), false);

  n.persisted(2);
  assert.equal(n.commit, 2);
  assert.equal(n.propose(data('c')), 4);
  rd = n.ready();
  assert.deepEqual(rd.committedEntries.map(text), ['a']);
  assert.deepEqual(idx(rd.entries), [[4, 1]]);
  assert.deepEqual(rd.hardState, { term: 1, vote: ID, commit: 2 });
  n.persisted(4);
  rd = n.ready();
  assert.deepEqual(rd.committedEntries.map(text), ['b', 'c']);
  assert.deepEqual(n.ready().committedEntries, []);
  assert.equal(n.hasReady(), false);
});

test('persisted() beyond what ready() handed out is capped at what storage was given', () => {
  const n = node();
  n.campaign();
  cycle(n);
  n.ready();
  n.propose(data('a'));
  n.propose(data('b'));
  // Storage cannot have made durable what it was never given.
  n.persisted(3);
  assert.equal(n.commit, 1);
  const rd = n.ready();
  assert.deepEqual(idx(rd.entries), [[2, 1], [3, 1]]);
  assert.deepEqual(rd.committedEntries, []);
  n.persisted(3);
  assert.equal(n.commit, 3);
  assert.deepEqual(n.ready().committedEntries.map(text), ['a', 'b']);
  // An old acknowledgement changes nothing.
  n.persisted(1);
  assert.equal(n.commit, 3);
});

test('entries of a previous term commit only once the current term empty entry is durable', () => {
  // Restart: entries 1..3 durable in the WAL (term 2), commit 1, nothing applied.
  const entries: Entry[] = [
    { index: 1, term: 2, data: new Uint8Array(0) },
    { index: 2, term: 2, data: data('x') },
    { index: 3, term: 2, data: data('y') },
  ];
  const n = node({ hardState: { term: 2, vote: ID, commit: 1 }, entries });
  assert.equal(n.lastIndex(), 3);
  assert.equal(n.commit, 1);
  // The commit from the hard state is handed out; 2 and 3 wait.
  let rd = n.ready();
  assert.deepEqual(idx(rd.committedEntries), [[1, 2]]);
  assert.deepEqual(rd.entries, []);
  // Durable already, but from an older term: persisted() alone does not commit them.
  n.persisted(3);
  assert.equal(n.commit, 1);

  n.campaign();
  assert.equal(n.term, 3);
  assert.equal(n.lastIndex(), 4);
  // readIndex is at least the current term's first index, even before it commits.
  assert.ok(n.readIndex() >= 4);
  rd = n.ready();
  assert.deepEqual(idx(rd.entries), [[4, 3]]);
  assert.deepEqual(rd.committedEntries, []);
  assert.equal(n.commit, 1);
  n.persisted(4);
  assert.equal(n.commit, 4);
  rd = n.ready();
  assert.deepEqual(idx(rd.committedEntries), [[2, 2], [3, 2], [4, 3]]);
  assert.deepEqual(rd.hardState, { term: 3, vote: ID, commit: 4 });
  assert.ok(n.readIndex() >= 4);
});

test('readIndex is never below the current term start, and follows commit after it', () => {
  const n = node();
  n.campaign();
  assert.equal(n.readIndex(), 1);
  cycle(n);
  n.ready();
  n.propose(data('a'));
  assert.equal(n.readIndex(), 1);
  cycle(n);
  assert.equal(n.readIndex(), 2);
  // A second campaign moves the term start forward.
  n.campaign();
  assert.equal(n.term, 2);
  assert.equal(n.lastIndex(), 3);
  assert.ok(n.readIndex() >= 3);
});

test('restart from (hardState, entries, applied) continues the indexes', () => {
  // First life: elect, commit 'a', 'b', apply up to 2, propose 'c' (persisted but uncommitted at crash).
  const wal: Entry[] = [];
  let hs = { term: 0, vote: 0n, commit: 0 };
  const n1 = node();
  n1.campaign();
  const drive = () => {
    const rd = n1.ready();
    if (rd.hardState) hs = rd.hardState;
    wal.push(...rd.entries);
    if (rd.entries.length > 0) n1.persisted(rd.entries[rd.entries.length - 1]!.index);
    return rd;
  };
  drive();
  drive();
  n1.propose(data('a'));
  n1.propose(data('b'));
  drive();
  const applied = drive().committedEntries;
  assert.deepEqual(applied.map(text), ['a', 'b']);
  assert.deepEqual(hs, { term: 1, vote: ID, commit: 3 });

  // Second life: applied index 2 (the state machine lags the commit by one).
  const n2 = node({ hardState: hs, entries: wal, applied: { index: 2, term: 1 } });
  assert.equal(n2.lastIndex(), 3);
  assert.equal(n2.lastTerm(), 1);
  assert.equal(n2.commit, 3);
  const rd = n2.ready();
  assert.deepEqual(rd.entries, [], 'entries already in the WAL are not handed out again');
  assert.deepEqual(rd.committedEntries.map(text), ['b'], 'committed but unapplied entries are re-applied');
  n2.campaign();
  assert.equal(n2.term, 2);
  assert.equal(n2.lastIndex(), 4);
  n2.ready();
  n2.persisted(4);
  assert.equal(n2.propose(data('c')), 5);
  const rd2 = cycle(n2);
  assert.deepEqual(idx(rd2.committedEntries), [[4, 2]]);
  assert.deepEqual(idx(rd2.entries), [[5, 2]]);
  assert.deepEqual(n2.ready().committedEntries.map(text), ['c']);

  // Restart with applied beyond every entry (a snapshot point): the log starts after it.
  const n3 = node({ hardState: { term: 2, vote: ID, commit: 5 }, entries: wal, applied: { index: 5, term: 2 } });
  assert.equal(n3.lastIndex(), 5);
  assert.equal(n3.lastTerm(), 2);
  assert.deepEqual(n3.ready().committedEntries, []);
  n3.campaign();
  assert.equal(n3.lastIndex(), 6);
  assert.equal(n3.lastTerm(), 3);
});

test('appliedTo drops applied entries; later indexes, terms and hand-outs are unaffected', () => {
  const n = node();
  n.campaign();
  cycle(n);
  n.ready();
  for (const s of ['a', 'b', 'c']) n.propose(data(s));
  cycle(n);
  assert.deepEqual(n.ready().committedEntries.map(text), ['a', 'b', 'c']);
  n.appliedTo(3);
  assert.equal(n.lastIndex(), 4);
  assert.equal(n.lastTerm(), 1);
  // appliedTo past what was handed out is capped, and calling it twice is harmless.
  n.appliedTo(100);
  n.appliedTo(2);
  assert.equal(n.lastIndex(), 4);
  assert.equal(n.lastTerm(), 1);
  assert.equal(n.propose(data('d')), 5);
  cycle(n);
  assert.deepEqual(idx(n.ready().committedEntries), [[5, 1]]);
  n.appliedTo(5);
  assert.equal(n.lastIndex(), 5);
  // An election after everything was dropped still finds the right last index/term.
  n.campaign();
  assert.equal(n.lastIndex(), 6);
  const rd = cycle(n);
  assert.deepEqual(idx(rd.entries), [[6, 2]]);
  assert.deepEqual(idx(n.ready().committedEntries), [[6, 2]]);
});

test('appliedTo does not drop entries that were never handed out for apply', () => {
  const n = node();
  n.campaign();
  cycle(n);
  n.ready(); // hands out 1
  n.propose(data('a'));
  n.ready(); // 2 sent to storage, not durable
  n.appliedTo(2); // capped at 1
  n.persisted(2);
  assert.deepEqual(n.ready().committedEntries.map(text), ['a']);
});

test('a long random schedule: every committed entry is handed out exactly once, in index order', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const n = node();
  n.campaign();
  const durableQ: number[] = [];
  let handed = 0;
  let proposed = 0;
  for (let step = 0; step < 3000; step++) {
    const r = rnd();
    if (r < 0.35) {
      n.propose(data(`p${proposed++}`));
    } else if (r < 0.6) {
      const rd = n.ready();
      if (rd.entries.length > 0) durableQ.push(rd.entries[rd.entries.length - 1]!.index);
      for (const e of rd.committedEntries) {
        assert.equal(e.index, handed + 1);
        assert.ok(e.index <= n.commit);
        handed = e.index;
      }
    } else if (r < 0.85) {
      const i = durableQ.shift();
      if (i !== undefined) n.persisted(i);
    } else if (r < 0.95) {
      n.appliedTo(Math.floor(rnd() * (handed + 2)));
    } else {
      assert.ok(n.readIndex() >= 1);
    }
    assert.ok(n.commit <= n.lastIndex());
  }
  // Drain.
  for (let i = 0; i < 5; i++) {
    const rd = n.ready();
    if (rd.entries.length > 0) durableQ.push(rd.entries[rd.entries.length - 1]!.index);
    for (const e of rd.committedEntries) { assert.equal(e.index, handed + 1); handed = e.index; }
    while (durableQ.length > 0) n.persisted(durableQ.shift()!);
  }
  assert.equal(handed, n.lastIndex());
  assert.equal(handed, proposed + 1);
});
