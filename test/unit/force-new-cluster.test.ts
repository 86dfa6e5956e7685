// restartAsStandalone, etcd's restartAsStandaloneNode + getIDs + createConfigChangeEnts:
// what is discarded, which members are removed, where the appended entries go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restartAsStandalone } from '../../src/member/force-new-cluster.js';
import { decodeConfChange, encodeConfChange } from '../../src/raft/confchange.js';
import { ConfChangeType, EntryType, type Entry } from '../../src/raft/types.js';

const normal = (index: number, term: number): Entry => ({ index, term, data: Buffer.from([index]) });
const cc = (index: number, type: ConfChangeType, nodeId: bigint): Entry => ({ index, term: 2, type: EntryType.ConfChange, data: encodeConfChange({ type, nodeId }) });

test('uncommitted entries are dropped; every other member (the log\'s conf changes included) is removed after the commit index', () => {
  const entries = [normal(11, 2), cc(12, ConfChangeType.AddLearnerNode, 9n), cc(13, ConfChangeType.RemoveNode, 3n), normal(14, 2), normal(15, 3), cc(16, ConfChangeType.AddNode, 7n)];
  const r = restartAsStandalone(2n, [1n, 2n, 3n], entries, 14, 3);
  assert.equal(r.discarded, 2);
  assert.equal(r.firstDiscarded, 15);
  assert.deepEqual(r.entries.slice(0, 4).map((e) => e.index), [11, 12, 13, 14]);
  const removed = r.appended.map((e) => ({ index: e.index, term: e.term, type: e.type, cc: decodeConfChange(e.data) }));
  // 3 was removed in the log, 9 added as a learner, 7's addition was never committed.
  assert.deepEqual(removed.map((x) => [x.index, x.term, x.cc.type, x.cc.nodeId]), [[15, 3, ConfChangeType.RemoveNode, 1n], [16, 3, ConfChangeType.RemoveNode, 9n]]);
  assert.ok(removed.every((x) => x.type === EntryType.ConfChange));
  assert.equal(r.commit, 16);
});

test('a lone member appends nothing; a member outside the kept membership is refused', () => {
  const r = restartAsStandalone(1n, [1n], [], 20, 4);
  assert.deepEqual(r.appended, []);
  assert.equal(r.commit, 20);
  assert.throws(() => restartAsStandalone(5n, [1n, 2n], [], 20, 4), /not in the membership/);
});
