// Deterministic simulation of the raft core driven by the production ReadyDriver: random seeds (drops, delays, duplicates,
// partitions, crashes losing unpersisted state, compaction, transfers, conf changes)
// with safety checks after every event and a liveness bound once faults stop, plus
// scripted scenarios. A failing seed prints its replay command and trace tail.
// SIM_SEEDS=<n> scales the random part (default 6000: 4000 three-node + 2000 five-node, ~40 s here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, type SimConfig } from './cluster.js';
import { runSeeds } from './run-seeds.js';
import { ConfChangeType, Role } from '../../src/raft/types.js';

const total = Number(process.env.SIM_SEEDS ?? 6000);

function randomBatch(nodes: number, count: number): void {
  const res = runSeeds(1, count, nodes);
  const f = res.failures[0];
  if (f) {
    assert.fail(
      `${res.failures.length}/${count} seeds failed (${nodes} nodes); first: seed ${f.seed}\n` +
      `replay: node scripts/sim.mjs --nodes ${nodes} --seed ${f.seed}\n` +
      `${(f.trace ?? []).slice(-60).join('\n')}\n${f.error}`,
    );
  }
  // The runs must actually exercise the cluster.
  assert.ok(res.stats.acked! > count, `too few acknowledged writes: ${JSON.stringify(res.stats)}`);
  assert.ok(res.stats.readsServed! > 0 && res.stats.snapshotsSent! > 0 && res.stats.crashes! > 0);
  // ...and the driver's paths: forwarding, the leader's early appends, lazy hard state
  // (some lost in crashes), snapshot installs and transfer reports both ways.
  for (const k of ['forwarded', 'forwardedAcked', 'earlyApps', 'lazyWrites', 'lazyLost', 'installs', 'snapReportsOk', 'snapReportsFailed', 'goneReports', 'goneWrong']) {
    assert.ok(res.stats[k]! > 0, `${k} never happened: ${JSON.stringify(res.stats)}`);
  }
}

test(`random seeds, 3 nodes (${Math.round(total * 2 / 3)})`, () => randomBatch(3, Math.round(total * 2 / 3)));
test(`random seeds, 5 nodes (${Math.round(total / 3)})`, () => randomBatch(5, Math.round(total / 3)));

// ---- scenarios ----

const ELECTION = 10 * 10 * 2; // 2 x electionTick x tickUnits: an upper bound on one election timeout
const quiet: Partial<SimConfig> = { seed: 7, nodes: 3 };

function cluster(o: Partial<SimConfig> = {}): Cluster {
  return new Cluster({ ...quiet, ...o });
}

function electLeader(c: Cluster): bigint {
  assert.ok(c.runUntil(() => c.leader() !== undefined, 3 * ELECTION), 'no leader elected');
  return c.leader()!.id;
}

/** Proposes at the leader and runs until every listed node applied it; returns the index. */
function commitOne(c: Cluster, payload: string, on?: bigint[]): number {
  const l = c.leader();
  assert.ok(l, 'no leader');
  const i = c.propose(l.id, payload);
  assert.ok(i !== null, 'proposal refused');
  const who = on ?? c.members();
  assert.ok(c.runUntil(() => who.every((id) => c.node(id).appliedIndex >= i), 2 * ELECTION), `${payload} at ${i} not applied everywhere`);
  return i;
}

test('scenario: leader crash, re-election, the old leader catches up', () => {
  const c = cluster();
  const l1 = electLeader(c);
  const t1 = c.raft(l1).term;
  for (let i = 0; i < 5; i++) commitOne(c, `a${i}`);
  c.crash(l1);
  assert.ok(c.runUntil(() => c.leader() !== undefined && c.leader()!.id !== l1, 3 * ELECTION), 'no new leader');
  const l2 = c.leader()!.id;
  assert.ok(c.raft(l2).term > t1);
  const i = commitOne(c, 'after', [...c.nodes.keys()].filter((x) => x !== l1));
  c.restart(l1);
  assert.ok(c.runUntil(() => c.node(l1).appliedIndex >= i, 2 * ELECTION), 'restarted node did not catch up');
  c.checkAcked();
});

test('scenario: leader crash reported gone to the followers: a new leader well within one election timeout', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const c = cluster({ seed });
    const l1 = electLeader(c);
    commitOne(c, 'a');
    const t1 = c.raft(l1).term;
    c.crash(l1);
    const start = c.now;
    // The report comes once the leader's stream to us ended: after what it had in flight.
    c.run(10);
    for (const f of c.nodes.keys()) if (f !== l1) c.peerGone(f, l1);
    assert.ok(c.runUntil(() => c.leader() !== undefined, 3 * ELECTION), `seed ${seed}: no new leader`);
    // electionTick 10 x tickUnits 10 = 100 units is the earliest an unreported election could start.
    assert.ok(c.now - start < 100, `seed ${seed}: new leader after ${c.now - start} units`);
    assert.equal(c.raft(c.leader()!.id).term, t1 + 1, `seed ${seed}: one election, no split vote`);
    commitOne(c, 'b', [...c.nodes.keys()].filter((x) => x !== l1));
    c.checkAcked();
  }
});

test('scenario: a live leader wrongly reported gone to one follower keeps leading, same term', () => {
  const c = cluster();
  const l1 = electLeader(c);
  commitOne(c, 'a');
  const t1 = c.raft(l1).term;
  const f = [...c.nodes.keys()].find((x) => x !== l1)!;
  c.peerGone(f, l1);
  c.run(ELECTION);
  assert.equal(c.leader()!.id, l1);
  assert.equal(c.raft(l1).term, t1, 'no term moved: the pre-vote failed against the other follower\'s lease');
  commitOne(c, 'b');
});

test('scenario: a partitioned leader steps down (CheckQuorum); the majority elects another', () => {
  const c = cluster();
  const l1 = electLeader(c);
  const others = [...c.nodes.keys()].filter((x) => x !== l1);
  c.partition([[l1], others]);
  assert.ok(c.runUntil(() => c.raft(l1).role !== Role.Leader, 2 * ELECTION), 'isolated leader kept leading');
  assert.ok(c.runUntil(() => others.some((x) => c.raft(x).role === Role.Leader), 3 * ELECTION), 'majority elected nobody');
  c.heal();
  const i = commitOne(c, 'x');
  assert.ok(c.runUntil(() => c.node(l1).appliedIndex >= i, 2 * ELECTION));
});

test('scenario: PreVote keeps a rejoining partitioned follower from inflating terms', () => {
  const c = cluster();
  const l = electLeader(c);
  const term = c.raft(l).term;
  const f = [...c.nodes.keys()].find((x) => x !== l)!;
  c.partition([[f], [...c.nodes.keys()].filter((x) => x !== f)]);
  c.run(20 * ELECTION);
  assert.equal(c.raft(f).term, term, 'an isolated pre-candidate must not raise its term');
  assert.equal(c.raft(f).role, Role.PreCandidate);
  c.heal();
  commitOne(c, 'y');
  assert.equal(c.leader()!.id, l, 'the rejoining node must not depose the leader');
  assert.equal(c.raft(l).term, term);
});

test('scenario: without PreVote the same rejoin disrupts (control experiment)', () => {
  const c = cluster({ preVote: false });
  const l = electLeader(c);
  const term = c.raft(l).term;
  const f = [...c.nodes.keys()].find((x) => x !== l)!;
  c.partition([[f], [...c.nodes.keys()].filter((x) => x !== f)]);
  c.run(20 * ELECTION);
  assert.ok(c.raft(f).term > term + 5);
  c.heal();
  commitOne(c, 'z');
  assert.ok(c.leader()!.raft.term > term, 'the inflated term forced a new election');
});

test('scenario: a follower behind the compacted log catches up through a snapshot', () => {
  const c = cluster();
  const l = electLeader(c);
  const f = [...c.nodes.keys()].find((x) => x !== l)!;
  c.crash(f);
  let last = 0;
  for (let i = 0; i < 30; i++) last = commitOne(c, `s${i}`, [...c.nodes.keys()].filter((x) => x !== f));
  for (const id of c.nodes.keys()) if (id !== f) c.compact(id);
  assert.ok(c.raft(l).firstIndex() > last - 1);
  const before = c.stats.snapshotsSent;
  c.restart(f);
  assert.ok(c.runUntil(() => c.node(f).appliedIndex >= last, 2 * ELECTION), 'follower did not catch up');
  assert.ok(c.stats.snapshotsSent > before, 'expected a MsgSnap');
  assert.equal(c.raft(f).firstIndex(), c.raft(l).firstIndex(), 'follower restored from the leader snapshot');
  commitOne(c, 'after-snap');
  c.checkAcked();
});

test('scenario: a learner is added, catches up without voting, then is promoted', () => {
  const c = cluster({ spare: 1 });
  const l = electLeader(c);
  for (let i = 0; i < 5; i++) commitOne(c, `l${i}`);
  c.run(50);
  const ci = c.proposeConfChange(l, { type: ConfChangeType.AddLearnerNode, nodeId: 4n });
  assert.ok(ci !== null);
  const i = commitOne(c, 'for-learner', [1n, 2n, 3n, 4n]);
  assert.deepEqual(c.raft(l).conf().learners, [4n]);
  assert.equal(c.raft(4n).role, Role.Follower);
  // Learners do not count: with two voters down the leader cannot commit even though the learner is up.
  const [a, b] = [1n, 2n, 3n].filter((x) => x !== l);
  c.crash(a!);
  c.crash(b!);
  const j = c.propose(l, 'stuck');
  c.run(ELECTION / 2);
  assert.ok(j !== null && c.raft(l).commit < j, 'a learner must not complete a quorum');
  c.restart(a!);
  c.restart(b!);
  assert.ok(c.runUntil(() => c.leader() !== undefined, 3 * ELECTION));
  c.run(100);
  const l2 = c.leader()!.id;
  assert.ok(c.runUntil(() => c.proposeConfChange(c.leader()!.id, { type: ConfChangeType.AddNode, nodeId: 4n }) !== null, 2 * ELECTION), 'promotion refused');
  assert.ok(c.runUntil(() => c.raft(4n).conf().voters.includes(4n) && c.leader() !== undefined && c.leader()!.raft.conf().voters.length === 4, 2 * ELECTION));
  assert.ok(i > 0 && l2 > 0n);
  commitOne(c, 'four-voters', [1n, 2n, 3n, 4n]);
  c.checkAcked();
});

test('scenario: a removed voter leaves the quorum; a second conf change waits for the first', () => {
  const c = cluster({ nodes: 5 });
  let l = electLeader(c);
  c.run(100); // let the leader apply its first entry
  const victim = [...c.nodes.keys()].find((x) => x !== l)!;
  assert.ok(c.proposeConfChange(l, { type: ConfChangeType.RemoveNode, nodeId: victim }) !== null);
  // While the removal is pending, another change is refused.
  assert.equal(c.proposeConfChange(l, { type: ConfChangeType.RemoveNode, nodeId: victim === 2n ? 3n : 2n }), null);
  const rest = [...c.nodes.keys()].filter((x) => x !== victim);
  assert.ok(c.runUntil(() => rest.every((x) => !c.raft(x).conf().voters.includes(victim)), 2 * ELECTION));
  c.crash(victim);
  // 4 voters left: with one more down the other three still commit.
  l = c.leader()!.id;
  const down = rest.find((x) => x !== l)!;
  c.crash(down);
  commitOne(c, 'after-remove', rest.filter((x) => x !== down));
  c.checkAcked();
});

test('scenario: leadership transfer to a chosen follower', () => {
  const c = cluster({ nodes: 5 });
  const l = electLeader(c);
  for (let i = 0; i < 3; i++) commitOne(c, `t${i}`);
  const target = [...c.nodes.keys()].find((x) => x !== l)!;
  const term = c.raft(l).term;
  c.transfer(target);
  assert.ok(c.runUntil(() => c.leader()?.id === target, ELECTION), 'transfer did not complete');
  assert.equal(c.raft(target).term, term + 1);
  commitOne(c, 'after-transfer');
});

test('scenario: ReadIndex at the leader and at followers returns a current index', () => {
  const c = cluster();
  const l = electLeader(c);
  for (let i = 0; i < 3; i++) commitOne(c, `r${i}`);
  const before = c.readsServed();
  for (const id of c.nodes.keys()) assert.ok(c.read(id) !== null);
  assert.ok(c.runUntil(() => c.readsServed() === before + 3, ELECTION), 'reads not answered');
  // An isolated old leader cannot answer reads (no quorum confirms it).
  c.partition([[l], [...c.nodes.keys()].filter((x) => x !== l)]);
  const served = c.readsServed();
  c.read(l);
  c.run(ELECTION / 4);
  assert.equal(c.readsServed(), served);
});

test('scenario: removing the leader: it steps down once the removal applies, the rest elect a leader', () => {
  const c = cluster({ nodes: 5 });
  const l = electLeader(c);
  c.run(100);
  assert.ok(c.proposeConfChange(l, { type: ConfChangeType.RemoveNode, nodeId: l }) !== null);
  assert.ok(c.runUntil(() => c.raft(l).role !== Role.Leader, 2 * ELECTION), 'removed leader kept leading');
  const rest = [...c.nodes.keys()].filter((x) => x !== l);
  assert.ok(c.runUntil(() => c.leader() !== undefined && c.leader()!.id !== l, 3 * ELECTION), 'no new leader');
  commitOne(c, 'after-leader-removal', rest);
  c.run(10 * ELECTION);
  assert.notEqual(c.raft(l).role, Role.Leader, 'a removed node never campaigns');
  c.checkAcked();
});
