// The checkers on hand-made histories: known linearizable ones pass, known
// anomalies (stale read, lost write, read of a value never written,
// reordered writes, double CAS, revisions against real time, a member going
// back in time, watch gaps/duplicates/splits/bad prev_kv/bad resume) are
// caught, each by the check named for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KvInput, KvOp, KvOutput, WatchEventRec, WatchHistory } from './lib/history.js';
import { checkLinearizability, checkReadsAgainstLog, checkRevisions } from './lib/check-kv.js';
import { checkLinearizable, type Model } from './lib/linearizability.js';
import { checkLogAgainstHistory, checkLogShape, checkWatch } from './lib/check-watch.js';

let nextId = 0;
function op(call: number, ret: number, input: KvInput, output?: KvOutput, o: Partial<KvOp> = {}): KvOp {
  const outcome = o.outcome ?? (output ? 'ok' : 'unknown');
  return { id: nextId++, client: 0, member: 'n1#0', input, call, ret: outcome === 'ok' ? ret : Infinity, outcome, output, ...o };
}
const put = (key: string, value: string) => ({ type: 'put', key, value, prevKv: false }) as const;
const putP = (key: string, value: string) => ({ type: 'put', key, value, prevKv: true }) as const;
const get = (key: string, serializable = false) => ({ type: 'get', key, serializable }) as const;
const del = (key: string) => ({ type: 'delete', key, prevKv: true }) as const;
const casMod = (key: string, modRevision: number, value: string) => ({ type: 'cas', key, cmp: { target: 'mod', modRevision }, value }) as const;
const okPut = (revision: number, prevKv?: { value: string; modRevision: number } | null): KvOutput => ({ type: 'put', revision, ...(prevKv !== undefined ? { prevKv } : {}) });
const okGet = (revision: number, value?: string, modRevision = 0): KvOutput => ({ type: 'get', revision, kv: value === undefined ? null : { value, modRevision } });

const lin = (ops: KvOp[]) => checkLinearizability(ops).anomalies;
const checks = (a: { check: string }[]) => [...new Set(a.map((x) => x.check))].sort();

test('a sequential history and a concurrent read of the old value are linearizable', () => {
  assert.deepEqual(lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 30, get('a'), okGet(2, 'v1', 2)),
    op(40, 60, putP('a', 'v2'), okPut(3, { value: 'v1', modRevision: 2 })),
    op(45, 55, get('a'), okGet(2, 'v1', 2)), // concurrent with the put: may see the old value
    op(70, 80, del('a'), { type: 'delete', revision: 4, deleted: 1, prevKv: { value: 'v2', modRevision: 3 } }),
    op(90, 95, get('a'), okGet(4)),
  ]), []);
});

test('a stale read is caught', () => {
  const a = lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 30, get('a'), okGet(1)), // absent, after v1 was acknowledged
  ]);
  assert.deepEqual(checks(a), ['linearizable']);
  assert.match(a[0]!.detail, /key a/);
});

test('a lost write is caught', () => {
  assert.deepEqual(checks(lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 30, put('a', 'v2'), okPut(3)),
    op(40, 50, get('a'), okGet(3, 'v1', 2)),
  ])), ['linearizable']);
});

test('a read of a value never written is caught', () => {
  assert.deepEqual(checks(lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 30, get('a'), okGet(2, 'ghost', 2)),
  ])), ['linearizable']);
});

test('reordered writes (a later write with a lower revision) are caught by the model and by revision-order', () => {
  const ops = [
    op(0, 10, put('a', 'v1'), okPut(3)),
    op(20, 30, put('a', 'v2'), okPut(2)),
  ];
  assert.deepEqual(checks(lin(ops)), ['linearizable']);
  assert.deepEqual(checks(checkRevisions(ops)), ['revision-order']);
});

test('reads of a write in flight may see it or not, but not flip back', () => {
  const w = op(0, 100, put('a', 'v1'), okPut(2));
  assert.deepEqual(lin([w, op(10, 20, get('a'), okGet(2, 'v1', 2)), op(30, 40, get('a'), okGet(1))]).length, 1);
  assert.deepEqual(lin([w, op(10, 20, get('a'), okGet(1)), op(30, 40, get('a'), okGet(2, 'v1', 2))]), []);
});

test('an unknown write may apply (seen later) or not (never seen); its value cannot appear then vanish', () => {
  assert.deepEqual(lin([op(0, 0, put('a', 'u1'), undefined), op(20, 30, get('a'), okGet(5, 'u1', 5))]), []);
  assert.deepEqual(lin([op(0, 0, put('a', 'u1'), undefined), op(20, 30, get('a'), okGet(5))]), []);
  assert.deepEqual(checks(lin([
    op(0, 0, put('a', 'u1'), undefined),
    op(20, 30, get('a'), okGet(5, 'u1', 5)),
    op(40, 50, get('a'), okGet(6)),
  ])), ['linearizable']);
  // A definite failure never applies.
  assert.deepEqual(checks(lin([op(0, 10, put('a', 'f1'), undefined, { outcome: 'fail', error: 'x' }), op(20, 30, get('a'), okGet(5, 'f1', 5))])), ['linearizable']);
});

test('two concurrent CAS on the same mod revision cannot both succeed; a CAS answer must match the state', () => {
  assert.deepEqual(checks(lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 40, casMod('a', 2, 'c1'), { type: 'cas', revision: 3, succeeded: true, kv: null }),
    op(21, 41, casMod('a', 2, 'c2'), { type: 'cas', revision: 4, succeeded: true, kv: null }),
  ])), ['linearizable']);
  assert.deepEqual(lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 40, casMod('a', 2, 'c1'), { type: 'cas', revision: 3, succeeded: true, kv: null }),
    op(21, 41, casMod('a', 2, 'c2'), { type: 'cas', revision: 3, succeeded: false, kv: { value: 'c1', modRevision: 3 } }),
  ]), []);
  // A failed CAS whose compare held is wrong.
  assert.deepEqual(checks(lin([
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(20, 30, casMod('a', 2, 'c1'), { type: 'cas', revision: 2, succeeded: false, kv: { value: 'v1', modRevision: 2 } }),
  ])), ['linearizable']);
  // Compare on a missing key: mod 0 holds, a value compare never does.
  assert.deepEqual(lin([op(0, 10, casMod('b', 0, 'c0'), { type: 'cas', revision: 2, succeeded: true, kv: null })]), []);
  assert.deepEqual(checks(lin([op(0, 10, { type: 'cas', key: 'b', cmp: { target: 'value', value: '' }, value: 'c0' }, { type: 'cas', revision: 2, succeeded: true, kv: null })])), ['linearizable']);
});

test('a wrong prev_kv on put or delete is caught', () => {
  assert.deepEqual(checks(lin([op(0, 10, put('a', 'v1'), okPut(2)), op(20, 30, putP('a', 'v2'), okPut(3, null))])), ['linearizable']);
  assert.deepEqual(checks(lin([op(0, 10, put('a', 'v1'), okPut(2)), op(20, 30, del('a'), { type: 'delete', revision: 3, deleted: 0, prevKv: null })])), ['linearizable']);
});

test('revision-order across keys and member-monotonic reads', () => {
  assert.deepEqual(checkRevisions([op(0, 10, put('a', 'v1'), okPut(5)), op(20, 30, put('b', 'w1'), okPut(4))]).map((x) => x.check), ['revision-order']);
  assert.deepEqual(checkRevisions([op(0, 10, put('a', 'v1'), okPut(5)), op(20, 30, get('b'), okGet(5))]), []);
  assert.deepEqual(checkRevisions([op(0, 10, put('a', 'v1'), okPut(5)), op(5, 30, put('b', 'w1'), okPut(4))]), []);
  // Serializable reads may be stale against other members, not against their own member's past.
  assert.deepEqual(checkRevisions([op(0, 10, put('a', 'v1'), okPut(5), { member: 'n2#0' }), op(20, 30, get('a', true), okGet(3), { member: 'n1#0' })]), []);
  assert.deepEqual(checkRevisions([op(0, 10, get('a', true), okGet(5)), op(20, 30, get('a', true), okGet(3))]).map((x) => x.check), ['member-monotonic']);
  assert.deepEqual(checkRevisions([op(0, 10, get('a', true), okGet(5)), op(20, 30, get('a', true), okGet(3), { member: 'n1#1' })]), []);
  assert.deepEqual(checkRevisions([op(0, 10, put('a', 'v'), okPut(5)), op(1, 11, put('b', 'w'), okPut(5))]).map((x) => x.check), ['revision-order']);
});

test('the WGL search backtracks through concurrent writes (a register history needing reordering)', () => {
  // A plain register: writes w(1), w(2) concurrent; reads see 2 then 1 is impossible after both returned.
  const reg: Model<number, { w?: number }, number | null> = {
    init: 0,
    step: (s, i, o) => (i.w !== undefined ? [i.w] : o === s ? [s] : []),
    key: (s) => String(s),
  };
  const h = (reads: number[]) => [
    { id: 0, call: 0, ret: 50, input: { w: 1 }, output: null },
    { id: 1, call: 0, ret: 50, input: { w: 2 }, output: null },
    ...reads.map((v, k) => ({ id: 2 + k, call: 10 + 10 * k, ret: 15 + 10 * k, input: {}, output: v })),
  ];
  assert.equal(checkLinearizable(reg, h([2, 1])).ok, true);
  assert.equal(checkLinearizable(reg, h([1, 2])).ok, true);
  assert.equal(checkLinearizable(reg, h([1, 2, 1])).ok, false);
  assert.equal(checkLinearizable(reg, [...h([2]), { id: 9, call: 60, ret: 70, input: {}, output: 0 }]).ok, false);
});

test('reads are checked against the log at their header revision (serializable ones included)', () => {
  const log: WatchEventRec[] = [
    { type: 'put', key: 'a', value: 'v1', modRevision: 2, prevKv: null },
    { type: 'put', key: 'a', value: 'v2', modRevision: 4, prevKv: { value: 'v1', modRevision: 2 } },
  ];
  assert.deepEqual(checkReadsAgainstLog([op(0, 1, get('a', true), okGet(3, 'v1', 2)), op(0, 1, get('a', true), okGet(1))], log, 10), []);
  assert.deepEqual(checkReadsAgainstLog([op(0, 1, get('a', true), okGet(4, 'v1', 2))], log, 10).map((x) => x.check), ['read-at-revision']);
});

// ---- watch ----

const E = (key: string, value: string, modRevision: number, prev: [string, number] | null, type: 'put' | 'delete' = 'put'): WatchEventRec =>
  ({ type, key, value, modRevision, prevKv: prev ? { value: prev[0], modRevision: prev[1] } : null });
const LOG: WatchEventRec[] = [
  E('a', 'v1', 2, null), E('b', 'w1', 3, null), E('a', 'v2', 4, ['v1', 2]), E('a', '', 5, ['v2', 4], 'delete'), E('b', 'w2', 6, ['w1', 3]),
];
function wh(resps: WatchEventRec[][], streams: [number, number][] = [[0, 2]], streamOf: number[] = resps.map(() => 0)): WatchHistory {
  return {
    startRevision: 2,
    streams: streams.map(([stream, startRevision]) => ({ stream, member: 'n1#0', startRevision, end: 'closed' })),
    responses: resps.map((events, i) => ({ stream: streamOf[i]!, revision: 6, events })),
  };
}

test('a correct watch passes, with a resume in the middle', () => {
  assert.deepEqual(checkLogShape(LOG, 2), []);
  assert.deepEqual(checkWatch(wh([[LOG[0]!, LOG[1]!], [LOG[2]!]]), LOG, 6).anomalies, []);
  assert.deepEqual(checkWatch(wh([[LOG[0]!, LOG[1]!], [LOG[2]!, LOG[3]!], [LOG[4]!]], [[0, 2], [1, 4]], [0, 1, 1]), LOG, 6).anomalies, []);
});

test('watch anomalies are caught each by its own check', () => {
  const c = (h: WatchHistory) => checks(checkWatch(h, LOG, 6).anomalies);
  assert.deepEqual(c(wh([[LOG[0]!], [LOG[2]!]])), ['reliable']); // gap: b@3 missing
  assert.deepEqual(c(wh([[LOG[0]!, LOG[1]!], [LOG[1]!, LOG[2]!]])), ['atomic', 'unique']); // duplicate
  assert.deepEqual(c(wh([[LOG[1]!], [LOG[0]!]])), ['ordered']);
  assert.deepEqual(c(wh([[LOG[0]!, LOG[1]!, { ...LOG[2]!, prevKv: null }]])), ['prev-kv']);
  assert.deepEqual(c(wh([[LOG[0]!, LOG[1]!, { ...LOG[2]!, value: 'zz' }]])), ['log-equal']);
  // A resume from revision 4 that starts at revision 5: event 4 lost across the resume.
  assert.deepEqual(c(wh([[LOG[0]!, LOG[1]!], [LOG[3]!]], [[0, 2], [1, 4]], [0, 1])), ['reliable', 'resumable']);
  // One revision split in two responses (a txn writing two keys at revision 7).
  const log2 = [...LOG, E('c', 'x', 7, null), E('d', 'y', 7, null)];
  assert.deepEqual(checks(checkWatch(wh([LOG, [log2[5]!], [log2[6]!]]), log2, 7).anomalies), ['atomic']);
  assert.deepEqual(checkLogShape([LOG[0]!, { ...LOG[2]!, prevKv: null }], 2).map((x) => x.check), ['prev-kv']);
});

test('an event past the log (committed after the sentinel) is not compared with it; one inside it still is', () => {
  // A write of unknown outcome that committed at revision 8, after the sentinel at 6: the log stops at 6.
  const late = E('a', 'late', 8, null);
  assert.deepEqual(checkWatch(wh([LOG, [late]]), LOG, 6).anomalies, []);
  assert.deepEqual(checks(checkWatch(wh([LOG, [late]]), LOG, 8).anomalies), ['log-equal']);
  assert.deepEqual(checks(checkWatch(wh([LOG, [late], [LOG[4]!]]), LOG, 6).anomalies), ['atomic', 'ordered', 'unique']);
});

test('the log is checked against the KV history: lost acknowledged writes and writes from nowhere', () => {
  const ops = [
    op(0, 10, put('a', 'v1'), okPut(2)),
    op(0, 10, put('b', 'w1'), okPut(3)),
    op(0, 10, put('a', 'v2'), okPut(4)),
    op(0, 10, del('a'), { type: 'delete', revision: 5, deleted: 1, prevKv: { value: 'v2', modRevision: 4 } }),
    op(0, 10, put('b', 'w2'), undefined), // unknown, present in the log
  ];
  assert.deepEqual(checkLogAgainstHistory(ops, LOG), []);
  assert.deepEqual(checks(checkLogAgainstHistory(ops, LOG.filter((e) => e.modRevision !== 4))), ['history']);
  assert.deepEqual(checks(checkLogAgainstHistory(ops.slice(0, 4), LOG)), ['history']);
});
