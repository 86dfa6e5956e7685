// ReadyDriver (src/raft/driver.ts), case by case: the leader's early appends, messages
// held until their barrier is durable, lazy hard state, barrier ordering, the snapshot
// hold, proposal forwarding and reportSnapshot. A recording sink stands in for the WAL,
// the transport and the apply worker; the simulator runs the same driver at scale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode } from '../../src/raft/node.js';
import { ReadyDriver, type DropReason, type PersistWrites, type ReadySink } from '../../src/raft/driver.js';
import { ProgressState } from '../../src/raft/progress.js';
import {
  MessageType, NotLeaderError, Role, type Entry, type Message, type ReadState, type SnapshotMeta,
} from '../../src/raft/types.js';

type Ev =
  | { k: 'persist'; w: PersistWrites; barrier: number | null }
  | { k: 'send'; msgs: Message[] }
  | { k: 'apply'; entries: Entry[] }
  | { k: 'read'; rs: ReadState[] }
  | { k: 'restore'; snap: SnapshotMeta }
  | { k: 'dropped'; m: Message; reason: DropReason };

class Recorder implements ReadySink {
  evs: Ev[] = [];
  persist(w: PersistWrites, barrier: number | null): void { this.evs.push({ k: 'persist', w, barrier }); }
  send(msgs: Message[]): void { this.evs.push({ k: 'send', msgs }); }
  apply(entries: Entry[]): void { this.evs.push({ k: 'apply', entries }); }
  readStates(rs: ReadState[]): void { this.evs.push({ k: 'read', rs }); }
  restoreSnapshot(snap: SnapshotMeta): void { this.evs.push({ k: 'restore', snap }); }
  proposalDropped(m: Message, reason: DropReason): void { this.evs.push({ k: 'dropped', m, reason }); }
  /** Everything recorded since the last take(). */
  take(): Ev[] { const e = this.evs; this.evs = []; return e; }
}

const sent = (evs: Ev[]): Message[] => evs.flatMap((e) => (e.k === 'send' ? e.msgs : []));
const types = (ms: Message[]): string[] => ms.map((m) => `${MessageType[m.type]}->${m.to}`);
const persists = (evs: Ev[]) => evs.filter((e): e is Extract<Ev, { k: 'persist' }> => e.k === 'persist');
const data = (s: string) => new Uint8Array(Buffer.from(s));

function msg(m: Partial<Message> & { type: MessageType; from: bigint; to: bigint }): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m };
}

function node(id: bigint, o: { term?: number; entries?: Entry[]; commit?: number } = {}): { raft: RaftNode; d: ReadyDriver; sink: Recorder } {
  const raft = new RaftNode({
    id, voters: [1n, 2n, 3n], hardState: { term: o.term ?? 0, vote: 0n, commit: o.commit ?? 0 }, entries: o.entries ?? [],
    applied: { index: 0, term: 0 }, preVote: false, retainApplied: Infinity,
  });
  const sink = new Recorder();
  return { raft, d: new ReadyDriver(raft, sink), sink };
}

/** Node 1 elected leader of term 1 by node 2's vote; its vote is durable, its empty entry (index 1) is not. */
function leader() {
  const n = node(1n);
  n.raft.campaign();
  n.d.processReady();
  let evs = n.sink.take();
  // Its own vote must be durable before it asks for others'.
  assert.deepEqual(sent(evs), []);
  assert.equal(persists(evs)[0]!.barrier, 1);
  assert.equal(persists(evs)[0]!.w.lazy, false);
  n.d.onDurable(1);
  assert.deepEqual(types(sent(n.sink.take())), ['MsgVote->2', 'MsgVote->3']);
  n.d.step(msg({ type: MessageType.MsgVoteResp, from: 2n, to: 1n, term: 1 }));
  n.d.processReady();
  evs = n.sink.take();
  assert.equal(n.raft.role, Role.Leader);
  return { ...n, evs };
}

test('a leader sends its appends at once, before its own write is durable (thesis 10.2.1)', () => {
  const { raft, d, sink, evs } = leader();
  const p = persists(evs);
  assert.equal(p.length, 1);
  assert.deepEqual(p[0]!.w.entries.map((e) => e.index), [1]);
  assert.deepEqual(types(sent(evs)), ['MsgApp->2', 'MsgApp->3']);
  // The send came before the write was handed to storage, and raft does not count it durable yet.
  assert.ok(evs.findIndex((e) => e.k === 'send') < evs.findIndex((e) => e.k === 'persist'));
  assert.equal(raft.durableIndex(), 0);
  assert.equal(raft.progress(1n)!.match, 0);
  // A follower's acknowledgement alone does not commit: the leader's own copy is not durable.
  d.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 1, index: 1 }));
  d.processReady();
  sink.take();
  assert.equal(raft.commit, 0);
  d.onDurable(p[0]!.barrier!);
  assert.equal(raft.durableIndex(), 1);
  assert.equal(raft.commit, 1, 'leader + node 2 are a quorum once the leader is durable');
  assert.deepEqual(sink.take().filter((e) => e.k === 'apply').flatMap((e) => (e.k === 'apply' ? e.entries.map((x) => x.index) : [])), [1]);
});

test('a follower acknowledges an append only once its barrier is durable', () => {
  const { raft, d, sink } = node(2n);
  d.step(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, index: 0, logTerm: 0, entries: [{ index: 1, term: 1, data: data('a') }] }));
  d.processReady();
  const evs = sink.take();
  const p = persists(evs);
  assert.equal(p.length, 1);
  assert.deepEqual(p[0]!.w.entries.map((e) => e.index), [1]);
  assert.equal(p[0]!.barrier, 1);
  assert.deepEqual(sent(evs), [], 'MsgAppResp held');
  assert.equal(d.pendingReadies, 1);
  d.onDurable(1);
  const out = sent(sink.take());
  assert.deepEqual(types(out), ['MsgAppResp->1']);
  assert.equal(out[0]!.index, 1);
  assert.equal(raft.durableIndex(), 1);
  assert.equal(d.pendingReadies, 0);
});

test('a vote is sent only once the new term and vote are durable (not lazy)', () => {
  const { d, sink } = node(2n);
  d.step(msg({ type: MessageType.MsgVote, from: 3n, to: 2n, term: 5, index: 0, logTerm: 0 }));
  d.processReady();
  const evs = sink.take();
  const p = persists(evs);
  assert.deepEqual(p[0]!.w.hardState, { term: 5, vote: 3n, commit: 0 });
  assert.equal(p[0]!.w.lazy, false);
  assert.equal(p[0]!.barrier, 1);
  assert.deepEqual(sent(evs), []);
  d.onDurable(1);
  assert.deepEqual(types(sent(sink.take())), ['MsgVoteResp->3']);
});

/** A follower of term 1 holding entries 1..2 durably (the first hard state already written). */
function durableFollower() {
  const n = node(2n);
  n.d.step(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, entries: [{ index: 1, term: 1, data: data('a') }, { index: 2, term: 1, data: data('b') }] }));
  n.d.processReady();
  n.d.onDurable(1);
  n.sink.take();
  return n;
}

test('lazy hard state: a commit-only change gets no barrier, and its messages go at once when nothing waits', () => {
  const { raft, d, sink } = durableFollower();
  d.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1, commit: 2 }));
  d.processReady();
  const evs = sink.take();
  const p = persists(evs);
  assert.equal(p.length, 1);
  assert.deepEqual(p[0]!.w.hardState, { term: 1, vote: 0n, commit: 2 });
  assert.equal(p[0]!.w.lazy, true);
  assert.equal(p[0]!.barrier, null, 'no fsync of its own');
  assert.deepEqual(types(sent(evs)), ['MsgHeartbeatResp->1']);
  assert.equal(raft.commit, 2);
  assert.equal(d.pendingReadies, 0);
});

test('lazy hard state: its messages join the last ready still waiting for its barrier', () => {
  const { d, sink } = durableFollower();
  d.step(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, index: 2, logTerm: 1, entries: [{ index: 3, term: 1, data: data('c') }] }));
  d.processReady();
  assert.equal(persists(sink.take())[0]!.barrier, 2);
  d.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1, commit: 3 }));
  d.processReady();
  const evs = sink.take();
  assert.equal(persists(evs)[0]!.barrier, null);
  assert.deepEqual(sent(evs), [], 'the heartbeat answer waits with the append before it');
  d.onDurable(2);
  assert.deepEqual(types(sent(sink.take())), ['MsgAppResp->1', 'MsgHeartbeatResp->1']);
});

test('barriers release readies in order, each up to the barrier storage reports', () => {
  const { raft, d, sink } = node(2n);
  for (let i = 1; i <= 3; i++) {
    d.step(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, index: i - 1, logTerm: i === 1 ? 0 : 1, entries: [{ index: i, term: 1, data: data(`e${i}`) }] }));
    d.processReady();
  }
  assert.deepEqual(persists(sink.take()).map((p) => p.barrier), [1, 2, 3]);
  d.onDurable(2);
  assert.deepEqual(sent(sink.take()).map((m) => m.index), [1, 2]);
  assert.equal(raft.durableIndex(), 2);
  d.onDurable(1); // stale: nothing more
  assert.deepEqual(sent(sink.take()), []);
  d.onDurable(3);
  assert.deepEqual(sent(sink.take()).map((m) => m.index), [3]);
  assert.equal(raft.durableIndex(), 3);
});

test('snapshot hold: the snapshot ready and every later one keep their messages until the install completes', () => {
  const { raft, d, sink } = node(2n);
  const snap: SnapshotMeta = { index: 10, term: 1, conf: { voters: [1n, 2n, 3n], learners: [] } };
  d.step(msg({ type: MessageType.MsgSnap, from: 1n, to: 2n, term: 1, snapshot: snap }));
  d.processReady();
  let evs = sink.take();
  assert.deepEqual(evs.filter((e) => e.k === 'restore').map((e) => (e.k === 'restore' ? e.snap.index : 0)), [10]);
  const p = persists(evs);
  assert.equal(p[0]!.w.snapshot?.index, 10);
  assert.equal(p[0]!.barrier, 1);
  d.onDurable(1);
  assert.deepEqual(sent(sink.take()), [], 'durable but not installed: no acknowledgement');
  assert.ok(raft.durableIndex() < 10, 'raft does not hear the snapshot is persisted before the install');
  // A later append, durable too, still waits behind the snapshot.
  d.step(msg({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, index: 10, logTerm: 1, entries: [{ index: 11, term: 1, data: data('x') }] }));
  d.processReady();
  evs = sink.take();
  assert.equal(persists(evs)[0]!.barrier, 2);
  d.onDurable(2);
  assert.deepEqual(sent(sink.take()), []);
  d.onSnapshotInstalled();
  const out = sent(sink.take());
  assert.deepEqual(out.map((m) => [MessageType[m.type], m.index]), [['MsgAppResp', 10], ['MsgAppResp', 11]]);
  assert.equal(raft.durableIndex(), 11);
});

test('forwarding: a follower forwards proposals to its leader; without a leader it refuses', () => {
  const { d, sink } = node(2n);
  assert.throws(() => d.propose(data('p')), NotLeaderError);
  d.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1 }));
  d.processReady();
  sink.take();
  assert.equal(d.propose(data('p')), null);
  const out = sent(sink.take());
  assert.deepEqual(types(out), ['MsgProp->1']);
  assert.equal(out[0]!.from, 2n);
  assert.equal(Buffer.from(out[0]!.entries[0]!.data).toString(), 'p');
});

test('forwarding: a leader appends a MsgProp; a follower passes one on to a different leader, drops one from its leader', () => {
  const l = leader();
  const before = l.raft.lastIndex();
  l.d.step(msg({ type: MessageType.MsgProp, from: 3n, to: 1n, entries: [{ index: 0, term: 0, data: data('q') }] }));
  assert.equal(l.raft.lastIndex(), before + 1);
  assert.equal(Buffer.from(l.raft.entries(before + 1, before + 1)[0]!.data).toString(), 'q');

  const f = node(2n);
  f.d.step(msg({ type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1 }));
  f.d.processReady();
  f.sink.take();
  f.d.step(msg({ type: MessageType.MsgProp, from: 3n, to: 2n, entries: [{ index: 0, term: 0, data: data('r') }] }));
  const out = sent(f.sink.take());
  assert.deepEqual(out.map((m) => [MessageType[m.type], m.from, m.to]), [['MsgProp', 2n, 1n]]);
  // From the leader it believes in: that node is not leading, so the proposal is dropped (and said so).
  f.d.step(msg({ type: MessageType.MsgProp, from: 1n, to: 2n, entries: [{ index: 0, term: 0, data: data('s') }] }));
  const evs = f.sink.take();
  assert.deepEqual(sent(evs), []);
  assert.deepEqual(evs.map((e) => (e.k === 'dropped' ? e.reason : e.k)), ['no-leader']);
});

test('forwarding: a leader in a transfer drops a forwarded proposal and reports it', () => {
  const l = leader();
  l.d.onDurable(2);
  l.d.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 1, index: 1 }));
  l.d.processReady();
  l.raft.transferLeader(3n); // node 3 lags: the transfer stays pending
  l.d.processReady();
  l.sink.take();
  l.d.step(msg({ type: MessageType.MsgProp, from: 2n, to: 1n, entries: [{ index: 0, term: 0, data: data('t') }] }));
  assert.deepEqual(l.sink.take().map((e) => (e.k === 'dropped' ? e.reason : e.k)), ['transfer']);
});

test('reportSnapshot: the leader probes a follower again when the snapshot transfer ends', () => {
  const l = leader();
  l.d.onDurable(2);
  l.d.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 1, index: 1 }));
  l.d.processReady();
  l.sink.take();
  assert.equal(l.raft.commit, 1);
  l.raft.appliedTo(1);
  l.raft.compact(1);
  // Node 3 answers a heartbeat: its next entry (1) is compacted away, so it gets a snapshot.
  l.d.step(msg({ type: MessageType.MsgHeartbeatResp, from: 3n, to: 1n, term: 1 }));
  l.d.processReady();
  assert.deepEqual(types(sent(l.sink.take())), ['MsgSnap->3']);
  assert.equal(l.raft.progress(3n)!.state, ProgressState.Snapshot);
  l.d.reportSnapshot(3n, true);
  assert.equal(l.raft.progress(3n)!.state, ProgressState.Probe);
});
