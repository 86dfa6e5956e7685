// etcd's KV rules through MvccWriter + Applier + executeRange, on a real
// RocksDB in a temp dir: revisions, versions, tombstones, txns and compares,
// range options, the unflushed overlay, and physical compaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RocksLevel } from '@nxtedition/rocksdb';
import type {
  Compare, DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse,
} from '../../src/proto/kv-types.js';
import { Applier } from '../../src/storage/mvcc/applier.js';
import { openTestStore, type TestStore } from '../common/mvcc-store.js';
import { Sweep, compactRange } from '../../src/storage/mvcc/compactor.js';
import {
  PREFIX_BYREV, PREFIX_HISTORY, PREFIX_LATEST, byRevKey, decodeByRevKey, decodeHistoryKey, userKeyFromLatest,
} from '../../src/storage/mvcc/keys.js';
import { executeRange, type RangeOutcome } from '../../src/storage/mvcc/range.js';
import { decodeVersion, type StoredVersion } from '../../src/storage/mvcc/record.js';
import { MvccWriter, loadWriterState } from '../../src/storage/mvcc/writer.js';

// ------------------------------------------------------------------ harness

type Store = TestStore;

const LEASES = new Set([7n, 8n]);

const openStore = (t: { after(fn: () => Promise<void>): void }): Promise<Store> => openTestStore(t, 'mvcc', (id) => LEASES.has(id));

const B = (s: string) => Buffer.from(s, 'latin1');
const S = (b: Buffer) => b.toString('latin1');
const ALL: [string, string] = ['\0', '\0'];

function rr(key: string, rangeEnd = '', o: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: B(key), rangeEnd: B(rangeEnd), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...o,
  };
}

function pr(key: string, value: string, o: Partial<PutRequest> = {}): PutRequest {
  return { key: B(key), value: B(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...o };
}

function dr(key: string, rangeEnd = '', prevKv = false): DeleteRangeRequest {
  return { key: B(key), rangeEnd: B(rangeEnd), prevKv };
}

type Target = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';
type Result = '=' | '>' | '<' | '!=';
const TARGET: Record<Target, number> = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 };
const RESULT: Record<Result, number> = { '=': 0, '>': 1, '<': 2, '!=': 3 };

function cmp(key: string, target: Target, result: Result, operand: number | string | bigint, rangeEnd = ''): Compare {
  const c: Compare = {
    result: RESULT[result], target: TARGET[target], key: B(key), rangeEnd: B(rangeEnd),
    version: 0, createRevision: 0, modRevision: 0, value: Buffer.alloc(0), lease: 0n, targetUnion: null,
  };
  switch (target) {
    case 'VERSION': c.version = operand as number; c.targetUnion = 'version'; break;
    case 'CREATE': c.createRevision = operand as number; c.targetUnion = 'createRevision'; break;
    case 'MOD': c.modRevision = operand as number; c.targetUnion = 'modRevision'; break;
    case 'VALUE': c.value = B(operand as string); c.targetUnion = 'value'; break;
    case 'LEASE': c.lease = operand as bigint; c.targetUnion = 'lease'; break;
  }
  return c;
}

const opPut = (key: string, value: string, o: Partial<PutRequest> = {}): RequestOp => ({ kind: 'put', put: pr(key, value, o) });
const opDel = (key: string, rangeEnd = '', prevKv = false): RequestOp => ({ kind: 'deleteRange', deleteRange: dr(key, rangeEnd, prevKv) });
const opRange = (key: string, rangeEnd = '', o: Partial<RangeRequest> = {}): RequestOp => ({ kind: 'range', range: rr(key, rangeEnd, o) });
const opTxn = (txn: TxnRequest): RequestOp => ({ kind: 'txn', txn });
const txn = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare, success, failure });

/** A read as the apply worker sees it: RocksDB plus the unflushed overlay. */
function read(s: Store, r: RangeRequest, compactRev = s.w.state.compactRev): RangeOutcome {
  return executeRange(s.w, s.w.reader, r, s.w.state.rev, compactRev);
}

/** A read as a shard worker sees it: RocksDB alone. */
function readDb(s: Store, r: RangeRequest, curRev = s.w.state.rev, compactRev = s.w.state.compactRev): RangeOutcome {
  return executeRange(s.w.reader, s.w.reader, r, curRev, compactRev);
}

type Row = [key: string, value: string, create: number, mod: number, version: number, lease: bigint];
const row = (kv: KeyValue): Row => [S(kv.key), S(kv.value), kv.createRevision, kv.modRevision, kv.version, kv.lease];
const rows = (kvs: KeyValue[]) => kvs.map(row);
const get = (s: Store, key: string, rev = 0): Row | null => rows(read(s, rr(key, '', { revision: rev })).kvs)[0] ?? null;

function put(s: Store, key: string, value: string, o: Partial<PutRequest> = {}): number {
  return s.a.put(pr(key, value, o)).header.revision;
}

function txnResp(r: TxnResponse, i: number): TxnResponse {
  const op = r.responses[i]!;
  return op.kind === 'txn' ? op.txn : assert.fail(`response ${i} is ${op.kind}`);
}

function rangeResp(r: TxnResponse, i: number) {
  const op = r.responses[i]!;
  assert.equal(op.kind, 'range');
  return op.kind === 'range' ? op.range : assert.fail();
}

/** Every record of one key family, decoded. */
function scanFamily(db: RocksLevel, prefix: number): Array<[Buffer, Buffer]> {
  // One unlimited query: the test must not share the chunking logic under test.
  const { rows: r } = db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer', gte: Buffer.from([prefix]), lt: Buffer.from([prefix + 1]) });
  return pairs(r);
}

const ERR_COMPACTED = { name: 'EtcdError', message: 'etcdserver: mvcc: required revision has been compacted' };
const ERR_FUTURE = { name: 'EtcdError', message: 'etcdserver: mvcc: required revision is a future revision' };
const ERR_NOT_FOUND = { name: 'EtcdError', message: 'etcdserver: key not found' };
const ERR_NO_LEASE = { name: 'EtcdError', message: 'etcdserver: requested lease not found' };

// ------------------------------------------------------------------ revisions, versions, tombstones

test('a put creates version 1 with create = mod; later puts keep create and bump version; one revision each', async (t) => {
  const s = await openStore(t);
  assert.equal(s.w.state.rev, 1, 'an empty store is at revision 1');
  assert.equal(put(s, 'foo', 'a'), 2);
  assert.deepEqual(get(s, 'foo'), ['foo', 'a', 2, 2, 1, 0n]);
  assert.equal(put(s, 'bar', 'x', { lease: 7n }), 3);
  assert.equal(put(s, 'foo', 'b'), 4);
  assert.equal(put(s, 'foo', 'c'), 5);
  assert.deepEqual(get(s, 'foo'), ['foo', 'c', 2, 5, 3, 0n]);
  assert.deepEqual(get(s, 'bar'), ['bar', 'x', 3, 3, 1, 7n]);
  assert.equal(s.w.state.rev, 5);
  // Past-revision reads need the batch's history in RocksDB (the apply worker flushes first).
  await s.w.flush();
  // Past revisions show the versions of the time.
  assert.deepEqual(get(s, 'foo', 2), ['foo', 'a', 2, 2, 1, 0n]);
  assert.deepEqual(get(s, 'foo', 3), ['foo', 'a', 2, 2, 1, 0n]);
  assert.deepEqual(get(s, 'foo', 4), ['foo', 'b', 2, 4, 2, 0n]);
  assert.equal(get(s, 'bar', 2), null);
  assert.equal(get(s, 'foo', 1), null);
  // A read header carries the current revision, whatever revision was asked for.
  assert.equal(read(s, rr('foo', '', { revision: 2 })).revision, 5);
});

test('prefetchMeta: puts after a batched lookup keep create revision, version and lease as one at a time would', async (t) => {
  const s = await openStore(t);
  put(s, 'a', '1');
  put(s, 'b', '1', { lease: 7n });
  put(s, 'a', '2');
  s.a.deleteRange(dr('b'));
  await s.w.flush();
  // A writer opened on the flushed store knows nothing of these keys until it looks them up.
  const w = new MvccWriter(s.db);
  const fresh: Store = { db: s.db, w, a: new Applier(w, (id) => LEASES.has(id)) };
  w.prefetchMeta([B('a'), B('b'), B('c'), B('a')]);
  assert.equal(put(fresh, 'a', '3'), 6);
  assert.equal(put(fresh, 'b', '2'), 7);
  assert.equal(put(fresh, 'c', '1', { lease: 8n }), 8);
  assert.deepEqual(get(fresh, 'a'), ['a', '3', 2, 6, 3, 0n]);
  assert.deepEqual(get(fresh, 'b'), ['b', '2', 7, 7, 1, 0n], 'a deleted key starts over at version 1');
  assert.deepEqual(get(fresh, 'c'), ['c', '1', 8, 8, 1, 8n]);
  // Keys the batch already wrote are not looked up again (the batch knows better than RocksDB).
  w.prefetchMeta([B('a')]);
  assert.equal(put(fresh, 'a', '4'), 9);
  assert.deepEqual(get(fresh, 'a'), ['a', '4', 2, 9, 4, 0n]);
});

test('the metadata cache rolls over generations: keys dropped from it are read back from RocksDB, right', async (t) => {
  const s = await openStore(t);
  // More distinct keys than two generations of the cache hold (100k each), each put twice.
  const n = 210_000;
  const key = (i: number) => `g${String(i).padStart(7, '0')}`;
  for (let round = 1; round <= 2; round++) {
    for (let i = 0; i < n; i++) {
      put(s, key(i), `v${round}`);
      if (i % 20_000 === 0) await s.w.flush();
    }
    await s.w.flush();
  }
  for (const i of [0, 1, 99_999, 100_000, 150_000, n - 1]) {
    const [k, v, create, mod, version] = get(s, key(i))!;
    assert.deepEqual([k, v, version], [key(i), 'v2', 2], key(i));
    assert.equal(create, 2 + i, `${key(i)} keeps its create revision`);
    assert.equal(mod, 2 + n + i);
  }
});

test('delete leaves a tombstone; a re-put restarts version at 1 with a new create revision', async (t) => {
  const s = await openStore(t);
  put(s, 'k', 'v1'); // 2
  put(s, 'k', 'v2'); // 3
  const d = s.a.deleteRange(dr('k'));
  assert.equal(d.deleted, 1);
  assert.equal(d.header.revision, 4);
  assert.equal(s.w.state.rev, 4);
  assert.equal(get(s, 'k'), null);
  assert.equal(read(s, rr('k')).count, 0);
  await s.w.flush();
  assert.deepEqual(get(s, 'k', 3), ['k', 'v2', 2, 3, 2, 0n]);
  assert.equal(put(s, 'k', 'v3'), 5);
  assert.deepEqual(get(s, 'k'), ['k', 'v3', 5, 5, 1, 0n]);
  await s.w.flush();
  assert.equal(get(s, 'k', 4), null);
  assert.deepEqual(get(s, 'k', 3), ['k', 'v2', 2, 3, 2, 0n]);
  // The same through RocksDB alone after a flush.
  await s.w.flush();
  assert.deepEqual(rows(readDb(s, rr('k')).kvs), [['k', 'v3', 5, 5, 1, 0n]]);
  assert.deepEqual(rows(readDb(s, rr('k', '', { revision: 4 })).kvs), []);
  assert.deepEqual(rows(readDb(s, rr('k', '', { revision: 3 })).kvs), [['k', 'v2', 2, 3, 2, 0n]]);
});

test('deleting a missing key (or an empty range) does not bump the revision', async (t) => {
  const s = await openStore(t);
  put(s, 'a', '1'); // 2
  put(s, 'b', '1'); // 3
  s.a.deleteRange(dr('b')); // 4
  for (const d of [dr('zz'), dr('b'), dr('c', 'd'), dr('x', '\0'), dr('b', 'a')]) {
    const resp = s.a.deleteRange(d);
    assert.equal(resp.deleted, 0);
    assert.equal(resp.header.revision, 4);
    assert.equal(s.w.state.rev, 4);
  }
  // A txn whose only write is such a delete does not bump it either.
  const r = s.a.txn(txn([], [opDel('nope'), opDel('b')]));
  assert.equal(r.header.revision, 4);
  assert.equal(s.w.state.rev, 4);
  assert.equal(put(s, 'c', '1'), 5);
});

test('a ranged delete removes every key in the range at one revision, with prev_kvs on request', async (t) => {
  const s = await openStore(t);
  for (const k of ['a', 'b1', 'b2', 'b3', 'c']) put(s, k, `v-${k}`); // 2..6
  const d = s.a.deleteRange(dr('b', 'c', true));
  assert.equal(d.header.revision, 7);
  assert.equal(d.deleted, 3);
  assert.deepEqual(rows(d.prevKvs), [['b1', 'v-b1', 3, 3, 1, 0n], ['b2', 'v-b2', 4, 4, 1, 0n], ['b3', 'v-b3', 5, 5, 1, 0n]]);
  assert.deepEqual(rows(read(s, rr(...ALL)).kvs).map((r) => r[0]), ['a', 'c']);
  const d2 = s.a.deleteRange(dr('a', '\0'));
  assert.equal(d2.deleted, 2);
  assert.deepEqual(d2.prevKvs, []);
  assert.equal(d2.header.revision, 8);
  assert.equal(read(s, rr(...ALL)).count, 0);
  await s.w.flush();
  // The tombstones of one request share the main revision, with sub-revisions 0, 1, 2.
  const r = s.db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer', gte: byRevKey(7, 0), lt: byRevKey(8, 0) }).rows;
  assert.deepEqual(pairs(r).map(([k, v]) => [decodeByRevKey(k), S(v)]),
    [[{ rev: 7, sub: 0 }, 'b1'], [{ rev: 7, sub: 1 }, 'b2'], [{ rev: 7, sub: 2 }, 'b3']]);
});

function pairs(r: Buffer[]): Array<[Buffer, Buffer]> {
  const out: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < r.length; i += 2) out.push([r[i]!, r[i + 1]!]);
  return out;
}

test('prev_kv on put: null for a missing key, the old version otherwise; absent when not asked', async (t) => {
  const s = await openStore(t);
  assert.equal(s.a.put(pr('k', 'v1', { prevKv: true })).prevKv, null);
  const r = s.a.put(pr('k', 'v2', { prevKv: true, lease: 8n }));
  assert.deepEqual(row(r.prevKv!), ['k', 'v1', 2, 2, 1, 0n]);
  assert.equal(s.a.put(pr('k', 'v3')).prevKv, null);
  s.a.deleteRange(dr('k'));
  assert.equal(s.a.put(pr('k', 'v4', { prevKv: true })).prevKv, null, 'a tombstone is not a previous kv');
  const d = s.a.deleteRange(dr('k', '', true));
  assert.deepEqual(rows(d.prevKvs), [['k', 'v4', 6, 6, 1, 0n]]);
});

// ------------------------------------------------------------------ ignore_value / ignore_lease / leases

test('ignore_value / ignore_lease: key not found on a missing or deleted key; otherwise keep value / lease', async (t) => {
  const s = await openStore(t);
  for (const o of [{ ignoreValue: true }, { ignoreLease: true }, { ignoreValue: true, ignoreLease: true }]) {
    assert.throws(() => s.a.put(pr('k', '', o)), ERR_NOT_FOUND);
  }
  assert.equal(s.w.state.rev, 1, 'a failed put does not bump the revision');
  put(s, 'k', 'v1', { lease: 7n }); // 2
  assert.equal(put(s, 'k', '', { ignoreValue: true }), 3);
  assert.deepEqual(get(s, 'k'), ['k', 'v1', 2, 3, 2, 0n], 'ignore_value keeps the value, the lease is the request one');
  put(s, 'k', 'v1', { lease: 7n }); // 4
  assert.equal(put(s, 'k', 'v2', { ignoreLease: true }), 5);
  assert.deepEqual(get(s, 'k'), ['k', 'v2', 2, 5, 4, 7n], 'ignore_lease keeps the lease');
  assert.equal(put(s, 'k', '', { ignoreValue: true, ignoreLease: true, prevKv: true }), 6);
  assert.deepEqual(get(s, 'k'), ['k', 'v2', 2, 6, 5, 7n]);
  s.a.deleteRange(dr('k')); // 7
  assert.throws(() => s.a.put(pr('k', '', { ignoreValue: true })), ERR_NOT_FOUND);
  assert.throws(() => s.a.put(pr('k', 'x', { ignoreLease: true })), ERR_NOT_FOUND);
  assert.equal(s.w.state.rev, 7);
});

test('ignore_value on a missing key inside a txn fails the whole txn before anything is written', async (t) => {
  const s = await openStore(t);
  put(s, 'a', '0'); // 2
  assert.throws(() => s.a.txn(txn([], [opPut('a', '1'), opPut('missing', '', { ignoreValue: true })])), ERR_NOT_FOUND);
  assert.equal(s.w.state.rev, 2);
  assert.deepEqual(get(s, 'a'), ['a', '0', 2, 2, 1, 0n]);
  assert.equal(s.w.pendingChanges, 1, 'only the first put is pending');
  // The branch not taken is not checked.
  const r = s.a.txn(txn([cmp('a', 'VALUE', '=', '0')], [opPut('b', '1')], [opPut('missing', '', { ignoreValue: true })]));
  assert.equal(r.succeeded, true);
  assert.equal(s.w.state.rev, 3);
});

test('an unknown lease fails put and txn put with lease not found', async (t) => {
  const s = await openStore(t);
  assert.throws(() => s.a.put(pr('k', 'v', { lease: 99n })), ERR_NO_LEASE);
  assert.throws(() => s.a.txn(txn([], [opPut('j', 'v'), opPut('k', 'v', { lease: 99n })])), ERR_NO_LEASE);
  assert.equal(s.w.state.rev, 1);
  assert.equal(read(s, rr(...ALL)).count, 0);
});

// ------------------------------------------------------------------ txn

test('a txn of several puts and deletes takes one main revision with sub-revisions 0, 1, 2, ...', async (t) => {
  const s = await openStore(t);
  put(s, 'd1', 'x'); // 2
  put(s, 'd2', 'x'); // 3
  const r = s.a.txn(txn([], [opPut('a', '1'), opDel('d1'), opPut('b', '2'), opDel('nothing'), opDel('d2'), opPut('c', '3')]));
  assert.equal(r.succeeded, true);
  assert.equal(r.header.revision, 4);
  assert.equal(s.w.state.rev, 4);
  const ops = r.responses.map((o) => (o.kind === 'put' ? ['put', o.put.header.revision] : o.kind === 'deleteRange' ? ['del', o.deleteRange.deleted] : [o.kind]));
  assert.deepEqual(ops, [['put', 4], ['del', 1], ['put', 4], ['del', 0], ['del', 1], ['put', 4]]);
  for (const k of ['a', 'b', 'c']) assert.equal(get(s, k)![3], 4);
  await s.w.flush();
  const recs = s.db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer', gte: byRevKey(4, 0), lt: byRevKey(5, 0) }).rows;
  assert.deepEqual(pairs(recs).map(([k, v]) => [decodeByRevKey(k).rev, decodeByRevKey(k).sub, S(v)]),
    [[4, 0, 'a'], [4, 1, 'd1'], [4, 2, 'b'], [4, 3, 'd2'], [4, 4, 'c']]);
  // The stored versions carry the same sub-revisions.
  for (const [k, sub] of [['a', 0], ['d1', 1], ['b', 2], ['d2', 3], ['c', 4]] as const) {
    assert.equal(s.w.reader.getLatest(B(k))!.sub, sub);
  }
  assert.equal(loadWriterState(s.db).rev, 4);
});

test('reads inside a txn see its earlier writes; compares and past-revision reads see the state before it', async (t) => {
  const s = await openStore(t);
  put(s, 'a', 'old'); // 2
  put(s, 'b', 'old'); // 3
  // The apply worker flushes before a txn with past-revision ranges (their history must be in RocksDB).
  await s.w.flush();
  const r = s.a.txn(txn([cmp('a', 'VALUE', '=', 'old')], [
    opRange('a'),
    opPut('a', 'new'),
    opRange('a'),
    opDel('b'),
    opRange('b'),
    opRange('a', '', { revision: 3 }),
    opRange('', '\0', { countOnly: true }),
    // Nested compares are evaluated before any write of the txn.
    opTxn(txn([cmp('a', 'VALUE', '=', 'old'), cmp('b', 'VERSION', '=', 1)], [opPut('c', 'saw-old')], [opPut('c', 'saw-new')])),
  ]));
  assert.equal(r.succeeded, true);
  assert.equal(r.header.revision, 4);
  assert.deepEqual(rows(rangeResp(r, 0).kvs), [['a', 'old', 2, 2, 1, 0n]]);
  assert.equal(rangeResp(r, 0).header.revision, 3, 'before any write the txn view is the begin revision');
  assert.deepEqual(rows(rangeResp(r, 2).kvs), [['a', 'new', 2, 4, 2, 0n]]);
  assert.equal(rangeResp(r, 2).header.revision, 4);
  assert.deepEqual(rangeResp(r, 4).kvs, []);
  assert.deepEqual(rows(rangeResp(r, 5).kvs), [['a', 'old', 2, 2, 1, 0n]]);
  assert.equal(rangeResp(r, 6).count, 1);
  assert.deepEqual(get(s, 'c'), ['c', 'saw-old', 4, 4, 1, 0n]);
  // A range for a revision beyond the begin revision fails the txn up front.
  assert.throws(() => s.a.txn(txn([], [opPut('x', '1'), opRange('a', '', { revision: 5 })])), ERR_FUTURE);
  assert.equal(s.w.state.rev, 4);
  assert.equal(get(s, 'x'), null);
});

test('compares: every target against every result on an existing key', async (t) => {
  const s = await openStore(t);
  put(s, 'k', 'v1'); // 2
  put(s, 'k', 'v2', { lease: 7n }); // 3
  put(s, 'other', 'z'); // 4
  // k: create 2, mod 3, version 2, value v2, lease 7.
  const cases: Array<[Target, Result, number | string | bigint, boolean]> = [
    ['VERSION', '=', 2, true], ['VERSION', '=', 1, false], ['VERSION', '>', 1, true], ['VERSION', '>', 2, false],
    ['VERSION', '<', 3, true], ['VERSION', '<', 2, false], ['VERSION', '!=', 1, true], ['VERSION', '!=', 2, false],
    ['CREATE', '=', 2, true], ['CREATE', '=', 3, false], ['CREATE', '>', 1, true], ['CREATE', '>', 2, false],
    ['CREATE', '<', 3, true], ['CREATE', '<', 2, false], ['CREATE', '!=', 3, true], ['CREATE', '!=', 2, false],
    ['MOD', '=', 3, true], ['MOD', '=', 2, false], ['MOD', '>', 2, true], ['MOD', '>', 3, false],
    ['MOD', '<', 4, true], ['MOD', '<', 3, false], ['MOD', '!=', 4, true], ['MOD', '!=', 3, false],
    ['VALUE', '=', 'v2', true], ['VALUE', '=', 'v1', false], ['VALUE', '>', 'v1', true], ['VALUE', '>', 'v2', false],
    ['VALUE', '<', 'v3', true], ['VALUE', '<', 'v2', false], ['VALUE', '!=', 'v1', true], ['VALUE', '!=', 'v2', false],
    ['VALUE', '>', '', true], ['VALUE', '<', 'v2\0', true],
    ['LEASE', '=', 7n, true], ['LEASE', '=', 0n, false], ['LEASE', '>', 6n, true], ['LEASE', '>', 7n, false],
    ['LEASE', '<', 8n, true], ['LEASE', '<', 7n, false], ['LEASE', '!=', 0n, true], ['LEASE', '!=', 7n, false],
  ];
  for (const [target, result, operand, want] of cases) {
    const r = s.a.txn(txn([cmp('k', target, result, operand)], [opRange('k')], [opRange('other')]));
    assert.equal(r.succeeded, want, `k ${target} ${result} ${String(operand)}`);
    assert.equal(S(rangeResp(r, 0).kvs[0]!.key), want ? 'k' : 'other');
    assert.equal(r.header.revision, 4);
  }
  // Several compares: all must hold.
  assert.equal(s.a.txn(txn([cmp('k', 'VERSION', '=', 2), cmp('other', 'VALUE', '=', 'z')], [])).succeeded, true);
  assert.equal(s.a.txn(txn([cmp('k', 'VERSION', '=', 2), cmp('other', 'VALUE', '=', 'y')], [])).succeeded, false);
  assert.equal(s.a.txn(txn([], [])).succeeded, true, 'no compares: success');
  assert.equal(s.w.state.rev, 4);
});

test('compares on missing keys: value compares fail, the others compare against 0', async (t) => {
  const s = await openStore(t);
  put(s, 'gone', 'x'); // 2
  s.a.deleteRange(dr('gone')); // 3
  const cases: Array<[Target, Result, number | string | bigint, boolean]> = [
    ['VERSION', '=', 0, true], ['VERSION', '>', 0, false], ['VERSION', '<', 1, true], ['VERSION', '!=', 0, false],
    ['CREATE', '=', 0, true], ['CREATE', '<', 2, true], ['CREATE', '!=', 0, false],
    ['MOD', '=', 0, true], ['MOD', '>', 0, false], ['MOD', '<', 3, true],
    ['LEASE', '=', 0n, true], ['LEASE', '!=', 0n, false], ['LEASE', '<', 1n, true],
    ['VALUE', '=', '', false], ['VALUE', '!=', 'x', false], ['VALUE', '<', 'x', false], ['VALUE', '>', '', false],
  ];
  for (const key of ['never', 'gone']) {
    for (const [target, result, operand, want] of cases) {
      const r = s.a.txn(txn([cmp(key, target, result, operand)], []));
      assert.equal(r.succeeded, want, `${key} ${target} ${result} ${String(operand)}`);
    }
  }
  // A compare without its target field set compares against the zero value.
  const bare = cmp('never', 'VERSION', '=', 0);
  bare.targetUnion = null;
  assert.equal(s.a.txn(txn([bare], [])).succeeded, true);
});

test('compares with range_end: every key in the range must match; an empty range is a missing key', async (t) => {
  const s = await openStore(t);
  put(s, 'r1', 'x'); // 2
  put(s, 'r2', 'x'); // 3
  put(s, 'r2', 'x'); // 4
  put(s, 'r3', 'x'); // 5
  put(s, 's', 'y'); // 6
  const cases: Array<[Compare, boolean]> = [
    [cmp('r', 'VERSION', '>', 0, 's'), true],
    [cmp('r', 'VERSION', '=', 1, 's'), false],
    [cmp('r', 'VERSION', '<', 3, 's'), true],
    [cmp('r', 'VALUE', '=', 'x', 's'), true],
    [cmp('r', 'VALUE', '=', 'x', '\0'), false], // takes in s=y
    [cmp('r', 'VALUE', '!=', 'y', 's'), true],
    [cmp('r', 'CREATE', '<', 5, 's'), false], // r3 was created at 5
    [cmp('r', 'CREATE', '<', 6, 's'), true],
    [cmp('r', 'MOD', '>', 2, 's'), false], // r1 mod 2
    [cmp('r1', 'MOD', '<', 6, '\0'), false], // s mod 6
    [cmp('r1', 'MOD', '<', 7, '\0'), true],
    [cmp('t', 'VERSION', '=', 0, 'u'), true],
    [cmp('t', 'VALUE', '=', '', 'u'), false],
  ];
  for (const [c, want] of cases) {
    assert.equal(s.a.txn(txn([c], [])).succeeded, want, `${S(c.key)}..${S(c.rangeEnd)} target ${c.target} result ${c.result}`);
  }
});

test('nested txns take the right branches, depth first, at one revision', async (t) => {
  const s = await openStore(t);
  put(s, 'k', 'v'); // 2
  const inner = (flag: boolean, success: RequestOp[], failure: RequestOp[]) =>
    opTxn(txn([cmp('k', 'VALUE', flag ? '=' : '!=', 'v')], success, failure));
  const r = s.a.txn(txn([cmp('k', 'VERSION', '=', 1)], [
    opPut('a', '1'),
    // A: false -> failure: A1 (true -> put a1), A2 is in the success branch and never runs.
    inner(false, [inner(true, [opPut('wrong-a2', '1')], [])], [inner(true, [opPut('a1', '1'), opRange('a')], [opPut('wrong-a1', '1')])]),
    // B: false -> put b. Its path entry comes after A1's.
    inner(false, [opPut('wrong-b', '1')], [opPut('b', '1')]),
    // C: true -> C1 false -> put c1.
    inner(true, [inner(false, [opPut('wrong-c1', '1')], [opPut('c1', '1')])], [opPut('wrong-c', '1')]),
  ], [opPut('wrong-outer', '1')]));
  assert.equal(r.succeeded, true);
  assert.equal(r.header.revision, 3);
  const live = rows(read(s, rr(...ALL)).kvs).map((x) => [x[0], x[3]]);
  assert.deepEqual(live, [['a', 3], ['a1', 3], ['b', 3], ['c1', 3], ['k', 2]]);
  const shape = (resp: TxnResponse): unknown => [resp.succeeded, resp.responses.map((o) => (o.kind === 'txn' ? shape(o.txn) : o.kind))];
  assert.deepEqual(shape(r), [true, ['put', [false, [[true, ['put', 'range']]]], [false, ['put']], [true, [[false, ['put']]]]]]);
  // The nested range saw the outer txn's earlier put.
  const a1 = txnResp(txnResp(r, 1), 0);
  assert.deepEqual(rows(rangeResp(a1, 1).kvs), [['a', '1', 3, 3, 1, 0n]]);

  // The outer failure branch with a nested txn.
  const f = s.a.txn(txn([cmp('k', 'VERSION', '=', 9)], [opPut('wrong', '1')], [inner(true, [opDel('a', 'b')], [])]));
  assert.equal(f.succeeded, false);
  assert.equal(f.header.revision, 4);
  assert.deepEqual(rows(read(s, rr(...ALL)).kvs).map((x) => x[0]), ['b', 'c1', 'k']);
});

// ------------------------------------------------------------------ range options

async function rangeFixture(t: { after(fn: () => Promise<void>): void }): Promise<Store> {
  const s = await openStore(t);
  put(s, 'k3', 'c'); // 2
  put(s, 'k1', 'e'); // 3
  put(s, 'k5', 'a'); // 4
  put(s, 'k2', 'd'); // 5
  put(s, 'k4', 'b'); // 6
  put(s, 'k1', 'e2'); // 7
  put(s, 'k1', 'e3'); // 8
  put(s, 'k2', 'd2'); // 9
  put(s, 'other', 'zz'); // 10
  await s.w.flush();
  // k1: create 3 mod 8 v3 | k2: create 5 mod 9 v2 | k3: create 2 mod 2 v1 | k4: create 6 mod 6 v1 | k5: create 4 mod 4 v1
  return s;
}

test('range: limit sets more, count is every key in the range', async (t) => {
  const s = await rangeFixture(t);
  const names = (o: RangeOutcome) => o.kvs.map((kv) => S(kv.key));
  for (const [limit, want, more] of [[0, 5, false], [1, 1, true], [2, 2, true], [4, 4, true], [5, 5, false], [6, 5, false]] as const) {
    const o = read(s, rr('k', 'l', { limit }));
    assert.equal(o.kvs.length, want, `limit ${limit}`);
    assert.equal(o.more, more, `limit ${limit}`);
    assert.equal(o.count, 5);
    assert.equal(o.revision, 10);
  }
  assert.deepEqual(names(read(s, rr('k', 'l', { limit: 2 }))), ['k1', 'k2']);
  const d = read(s, rr('k', 'l', { limit: 2, sortOrder: 2 }));
  assert.deepEqual(names(d), ['k5', 'k4']);
  assert.equal(d.more, true);
  assert.equal(d.count, 5);
  // A single key: limit 1 and no more.
  const one = read(s, rr('k1', '', { limit: 1 }));
  assert.deepEqual([names(one), one.more, one.count], [['k1'], false, 1]);
});

test('range: sort order x target', async (t) => {
  const s = await rangeFixture(t);
  const field = (target: number) => (kv: KeyValue): string | number =>
    [S(kv.key), kv.version, kv.createRevision, kv.modRevision, S(kv.value)][target]!;
  // Expected orders where the target is unique (version has ties: checked for monotony only).
  const expect: Record<number, string[]> = {
    0: ['k1', 'k2', 'k3', 'k4', 'k5'],
    2: ['k3', 'k1', 'k5', 'k2', 'k4'],
    3: ['k3', 'k5', 'k4', 'k1', 'k2'],
    4: ['k5', 'k4', 'k3', 'k2', 'k1'], // a b c d2 e3
  };
  for (let target = 0; target <= 4; target++) {
    for (let order = 0; order <= 2; order++) {
      const o = read(s, rr('k', 'l', { sortOrder: order, sortTarget: target }));
      const keys = o.kvs.map((kv) => S(kv.key));
      assert.deepEqual([...keys].sort(), expect[0], `order ${order} target ${target}: a permutation`);
      const vals = o.kvs.map(field(target));
      // etcd: NONE with a non-key target sorts ascending; NONE with key is key order.
      const desc = order === 2;
      for (let i = 1; i < vals.length; i++) {
        const a = vals[i - 1]!;
        const b = vals[i]!;
        const c = typeof a === 'number' ? a - (b as number) : Buffer.compare(B(a), B(b as string));
        assert.ok(desc ? c >= 0 : c <= 0, `order ${order} target ${target}: ${JSON.stringify(vals)}`);
      }
      if (expect[target]) assert.deepEqual(keys, desc ? [...expect[target]].reverse() : expect[target]);
    }
  }
  // Sorted by version descending with a limit: the top versions, more set.
  const top = read(s, rr('k', 'l', { sortOrder: 2, sortTarget: 1, limit: 2 }));
  assert.deepEqual(top.kvs.map((kv) => [S(kv.key), kv.version]), [['k1', 3], ['k2', 2]]);
  assert.equal(top.more, true);
  assert.equal(top.count, 5);
});

test('range: keys_only and count_only', async (t) => {
  const s = await rangeFixture(t);
  const ko = read(s, rr('k', 'l', { keysOnly: true }));
  assert.deepEqual(rows(ko.kvs), [
    ['k1', '', 3, 8, 3, 0n], ['k2', '', 5, 9, 2, 0n], ['k3', '', 2, 2, 1, 0n], ['k4', '', 6, 6, 1, 0n], ['k5', '', 4, 4, 1, 0n],
  ]);
  assert.equal(get(s, 'k1')![1], 'e3', 'keys_only does not touch the stored value');
  const co = read(s, rr('k', 'l', { countOnly: true }));
  assert.deepEqual([co.kvs, co.count, co.more], [[], 5, false]);
  const col = read(s, rr('k', 'l', { countOnly: true, limit: 2 }));
  assert.deepEqual([col.kvs, col.count], [[], 5]);
  assert.equal(read(s, rr('', '\0', { countOnly: true })).count, 6);
  assert.equal(read(s, rr('nope', '', { countOnly: true })).count, 0);
});

test('range: min/max mod and create revision filters', async (t) => {
  const s = await rangeFixture(t);
  const all = read(s, rr('k', 'l')).kvs;
  type F = 'minModRevision' | 'maxModRevision' | 'minCreateRevision' | 'maxCreateRevision';
  const keep = (f: F, v: number) => (kv: KeyValue) => {
    switch (f) {
      case 'minModRevision': return kv.modRevision >= v;
      case 'maxModRevision': return kv.modRevision <= v;
      case 'minCreateRevision': return kv.createRevision >= v;
      case 'maxCreateRevision': return kv.createRevision <= v;
    }
  };
  for (const f of ['minModRevision', 'maxModRevision', 'minCreateRevision', 'maxCreateRevision'] as const) {
    for (let v = 1; v <= 11; v++) {
      const o = read(s, rr('k', 'l', { [f]: v }));
      assert.deepEqual(rows(o.kvs), rows(all.filter(keep(f, v))), `${f} ${v}`);
      assert.equal(o.count, 5, 'count is taken before the filters (etcd)');
    }
  }
  const both = read(s, rr('k', 'l', { minModRevision: 4, maxModRevision: 8, minCreateRevision: 3 }));
  assert.deepEqual(both.kvs.map((kv) => S(kv.key)), ['k1', 'k4', 'k5']);
  // The limit applies after the filters.
  const lim = read(s, rr('k', 'l', { minCreateRevision: 3, limit: 2 }));
  assert.deepEqual(lim.kvs.map((kv) => S(kv.key)), ['k1', 'k2']);
  assert.equal(lim.more, true);
  const lim2 = read(s, rr('k', 'l', { minCreateRevision: 5, limit: 2 }));
  assert.deepEqual(lim2.kvs.map((kv) => S(kv.key)), ['k2', 'k4']);
  assert.equal(lim2.more, false);
});

test('range: from-key, prefix-like bounds, empty and inverted ranges', async (t) => {
  const s = await rangeFixture(t);
  const keys = (r: RangeRequest) => read(s, r).kvs.map((kv) => S(kv.key));
  assert.deepEqual(keys(rr('k3', '\0')), ['k3', 'k4', 'k5', 'other']);
  assert.deepEqual(keys(rr('\0', '\0')), ['k1', 'k2', 'k3', 'k4', 'k5', 'other']);
  assert.deepEqual(keys(rr('', '\0')), ['k1', 'k2', 'k3', 'k4', 'k5', 'other']);
  assert.deepEqual(keys(rr('k2', 'k4')), ['k2', 'k3']);
  assert.deepEqual(keys(rr('k4', 'k2')), []);
  assert.deepEqual(keys(rr('k2', 'k2')), []);
  assert.deepEqual(keys(rr('k', '')), [], 'no range_end: the exact key only');
  assert.deepEqual(keys(rr('p', '\0')), []);
});

test('range: past revisions, future revision and compacted revision errors', async (t) => {
  const s = await rangeFixture(t);
  const at = (rev: number) => rows(read(s, rr('k', 'l', { revision: rev })).kvs).map((x) => `${x[0]}=${x[1]}`);
  assert.deepEqual(at(1), []);
  assert.deepEqual(at(2), ['k3=c']);
  assert.deepEqual(at(4), ['k1=e', 'k3=c', 'k5=a']);
  assert.deepEqual(at(7), ['k1=e2', 'k2=d', 'k3=c', 'k4=b', 'k5=a']);
  assert.deepEqual(at(10), at(0));
  const past = read(s, rr('k', 'l', { revision: 7, limit: 2 }));
  assert.deepEqual([past.kvs.length, past.more, past.count, past.revision], [2, true, 5, 10]);
  assert.equal(read(s, rr('k', 'l', { revision: 4, countOnly: true })).count, 3);
  assert.throws(() => read(s, rr('k1', '', { revision: 11 })), ERR_FUTURE);
  assert.throws(() => read(s, rr('k1', '', { revision: 4 }), 5), ERR_COMPACTED);
  assert.deepEqual(rows(read(s, rr('k1', '', { revision: 5 }), 5).kvs), [['k1', 'e', 3, 3, 1, 0n]]);
  // revision 0 (latest) is never "compacted".
  assert.equal(read(s, rr('k1', ''), 10).kvs.length, 1);
  // The same answers from RocksDB alone after a flush.
  await s.w.flush();
  for (const rev of [1, 2, 4, 7, 10]) {
    assert.deepEqual(rows(readDb(s, rr('k', 'l', { revision: rev })).kvs), rows(read(s, rr('k', 'l', { revision: rev })).kvs));
  }
});

// ------------------------------------------------------------------ overlay and flush

test('requests applied before one flush see each other; after the flush RocksDB alone gives the same answers', async (t) => {
  const s = await openStore(t);
  put(s, 'a', '1'); // 2
  await s.w.flush();
  put(s, 'a', '2'); // 3
  put(s, 'b', '1'); // 4
  const pb = s.a.put(pr('b', '2', { prevKv: true })); // 5
  assert.deepEqual(row(pb.prevKv!), ['b', '1', 4, 4, 1, 0n], 'prev_kv sees the unflushed put');
  assert.deepEqual(rows(rangeResp(s.a.txn(txn([], [opRange('b')])), 0).kvs), [['b', '2', 4, 5, 2, 0n]]);
  s.a.deleteRange(dr('a')); // 6
  put(s, 'a', '3'); // 7
  const tr = s.a.txn(txn([cmp('a', 'VERSION', '=', 1), cmp('b', 'MOD', '=', 5)], [opPut('c', '1'), opDel('b')])); // 8
  assert.equal(tr.succeeded, true, 'compares see the unflushed writes');
  put(s, 'c', '2', { ignoreLease: true }); // 9: ignore_lease finds the unflushed c
  assert.equal(s.w.pendingChanges, 3, 'the overlay holds the latest state of a, b, c');
  const latest: Row[] = [['a', '3', 7, 7, 1, 0n], ['c', '2', 8, 9, 2, 0n]];
  assert.deepEqual(rows(read(s, rr(...ALL)).kvs), latest);
  assert.deepEqual(rows(read(s, rr('b', 'd')).kvs), latest.slice(1));
  assert.deepEqual(get(s, 'b'), null);
  assert.equal(read(s, rr(...ALL, { countOnly: true })).count, 2);
  // RocksDB alone has only the first flush.
  assert.deepEqual(rows(readDb(s, rr(...ALL), 2).kvs), [['a', '1', 2, 2, 1, 0n]]);
  await s.w.flush();
  assert.equal(s.w.pendingChanges, 0);
  assert.deepEqual(rows(readDb(s, rr(...ALL)).kvs), latest);
  const expect: Record<number, Row[]> = {
    1: [],
    2: [['a', '1', 2, 2, 1, 0n]],
    3: [['a', '2', 2, 3, 2, 0n]],
    4: [['a', '2', 2, 3, 2, 0n], ['b', '1', 4, 4, 1, 0n]],
    5: [['a', '2', 2, 3, 2, 0n], ['b', '2', 4, 5, 2, 0n]],
    6: [['b', '2', 4, 5, 2, 0n]],
    7: [['a', '3', 7, 7, 1, 0n], ['b', '2', 4, 5, 2, 0n]],
    8: [['a', '3', 7, 7, 1, 0n], ['c', '1', 8, 8, 1, 0n]],
    9: latest,
  };
  for (let rev = 1; rev <= 9; rev++) {
    assert.deepEqual(rows(readDb(s, rr(...ALL, { revision: rev })).kvs), expect[rev], `RocksDB alone at ${rev}`);
    assert.deepEqual(rows(read(s, rr(...ALL, { revision: rev })).kvs), expect[rev], `writer at ${rev}`);
    for (const k of ['a', 'b', 'c']) {
      assert.deepEqual(rows(readDb(s, rr(k, '', { revision: rev })).kvs), expect[rev]!.filter((x) => x[0] === k), `${k} at ${rev}`);
    }
  }
  // A fresh writer resumes from the flushed revision and applied index.
  s.w.markApplied(42, 3);
  await s.w.flush();
  const st = loadWriterState(s.db);
  assert.deepEqual([st.rev, st.appliedIndex, st.appliedTerm], [9, 42, 3]);
  const w2 = new MvccWriter(s.db);
  const a2 = new Applier(w2, () => false);
  assert.equal(a2.put(pr('d', '1')).header.revision, 10);
});

test('a reader whose view revision lags RocksDB resolves the newer records from history', async (t) => {
  const s = await openStore(t);
  put(s, 'a', '1'); // 2
  put(s, 'b', '1'); // 3
  await s.w.flush();
  put(s, 'a', '2'); // 4
  s.a.deleteRange(dr('b')); // 5
  put(s, 'c', '1'); // 6
  await s.w.flush();
  // A shard worker that has not yet seen revisions 4..6 published reads at its view revision 3.
  const lag = (r: RangeRequest) => rows(executeRange(s.w.reader, s.w.reader, r, 3, 0).kvs);
  assert.deepEqual(lag(rr(...ALL)), [['a', '1', 2, 2, 1, 0n], ['b', '1', 3, 3, 1, 0n]]);
  assert.deepEqual(lag(rr('a')), [['a', '1', 2, 2, 1, 0n]]);
  assert.deepEqual(lag(rr('b')), [['b', '1', 3, 3, 1, 0n]]);
  assert.deepEqual(lag(rr('c')), []);
  assert.equal(executeRange(s.w.reader, s.w.reader, rr(...ALL, { countOnly: true }), 3, 0).count, 2);
});

// ------------------------------------------------------------------ model-based random workload

type MKv = { create: number; mod: number; version: number; value: string; lease: bigint };
type MState = Map<string, MKv>;

class Model {
  rev = 1;
  readonly at: MState[] = [new Map(), new Map()]; // at[rev]
  get cur(): MState { return this.at[this.rev]!; }
  /** Applies a list of writes as one request; returns whether the revision moved. */
  apply(ops: Array<{ put?: [string, string, bigint]; del?: [string, string] }>): boolean {
    const next = new Map(this.cur);
    const rev = this.rev + 1;
    let changed = false;
    for (const op of ops) {
      if (op.put) {
        const [k, v, lease] = op.put;
        const prev = next.get(k);
        next.set(k, { create: prev ? prev.create : rev, mod: rev, version: prev ? prev.version + 1 : 1, value: v, lease });
        changed = true;
      } else if (op.del) {
        for (const k of [...next.keys()]) {
          if (inRange(k, op.del[0], op.del[1])) { next.delete(k); changed = true; }
        }
      }
    }
    if (changed) { this.rev = rev; this.at[rev] = next; }
    return changed;
  }
  range(key: string, end: string, rev: number): Row[] {
    const m = this.at[rev]!;
    return [...m.entries()].filter(([k]) => inRange(k, key, end)).sort(([a], [b]) => Buffer.compare(B(a), B(b)))
      .map(([k, v]) => [k, v.value, v.create, v.mod, v.version, v.lease]);
  }
}

function inRange(k: string, key: string, end: string): boolean {
  if (end === '') return k === key;
  const kb = B(k);
  if (Buffer.compare(kb, B(key)) < 0) return false;
  return end === '\0' || Buffer.compare(kb, B(end)) < 0;
}

const KEYS = ['a', 'a\0', 'a\0\0', 'a\xff', 'a\x01', 'ab', 'b', 'b\0', '\xff', '\xff\xff', '\0', '\0\xff', 'c'];

/** Runs a seeded random workload against the store and the model; flushes at random points. */
function workload(s: Store, m: Model, seed: number, steps: number, flushes: Array<() => Promise<void>>): Array<() => void> {
  let x = seed >>> 0;
  const rnd = () => { // mulberry32
    x = (x + 0x6d2b79f5) >>> 0;
    let z = Math.imul(x ^ (x >>> 15), x | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
  const steps_: Array<() => void> = [];
  for (let i = 0; i < steps; i++) {
    steps_.push(() => {
      const r = rnd();
      if (r < 0.45) {
        const k = pick(KEYS);
        const v = `v${i}`;
        const lease = rnd() < 0.2 ? 7n : 0n;
        const resp = s.a.put(pr(k, v, { lease }));
        m.apply([{ put: [k, v, lease] }]);
        assert.equal(resp.header.revision, m.rev);
      } else if (r < 0.65) {
        const k = pick(KEYS);
        const end = rnd() < 0.5 ? '' : rnd() < 0.3 ? '\0' : pick(KEYS);
        const resp = s.a.deleteRange(dr(k, end));
        const n = m.range(k, end, m.rev).length;
        m.apply([{ del: [k, end] }]);
        assert.equal(resp.deleted, n);
        assert.equal(resp.header.revision, m.rev);
      } else {
        // A txn on distinct keys: compare one key's version, then puts / point deletes.
        const ck = pick(KEYS);
        const cv = m.cur.get(ck)?.version ?? 0;
        const want = rnd() < 0.5;
        const keys = [...KEYS].sort(() => rnd() - 0.5).slice(0, 1 + Math.floor(rnd() * 4));
        const ops: RequestOp[] = [];
        const mops: Array<{ put?: [string, string, bigint]; del?: [string, string] }> = [];
        for (const k of keys) {
          if (rnd() < 0.7) { ops.push(opPut(k, `t${i}`)); mops.push({ put: [k, `t${i}`, 0n] }); } else { ops.push(opDel(k)); mops.push({ del: [k, ''] }); }
        }
        const resp = s.a.txn(txn([cmp(ck, 'VERSION', '=', want ? cv : cv + 1)], ops, [opRange(ck)]));
        assert.equal(resp.succeeded, want);
        if (want) m.apply(mops);
        assert.equal(resp.header.revision, m.rev);
      }
      assert.equal(s.w.state.rev, m.rev);
      if (rnd() < 0.15) flushes.push(() => s.w.flush());
    });
  }
  return steps_;
}

async function runWorkload(s: Store, m: Model, seed: number, steps: number): Promise<void> {
  const flushes: Array<() => Promise<void>> = [];
  for (const step of workload(s, m, seed, steps, flushes)) {
    step();
    // Latest reads are valid with unflushed changes (past-revision reads need a flush first).
    assert.deepEqual(rows(read(s, rr('', '\0')).kvs), m.range('', '\0', m.rev));
    while (flushes.length > 0) await flushes.shift()!();
  }
}

function checkAgainstModel(s: Store, m: Model, fromRev: number, src: 'writer' | 'db', compactRev = 0): void {
  const ranges: Array<[string, string]> = [['\0', '\0'], ['', '\0'], ['a', 'b'], ['a\0', 'a\x01'], ['b', '\0'], ['\0', 'a']];
  for (const k of KEYS) ranges.push([k, '']);
  for (let rev = fromRev; rev <= m.rev; rev++) {
    for (const [k, e] of ranges) {
      const r = rr(k, e, { revision: rev });
      const o = src === 'writer' ? read(s, r, compactRev) : readDb(s, r, m.rev, compactRev);
      const want = m.range(k, e, rev);
      assert.deepEqual(rows(o.kvs), want, `${src} rev ${rev} range ${JSON.stringify([k, e])}`);
      assert.equal(o.count, want.length);
    }
  }
}

test('random workload over binary keys: every range at every revision matches a model', async (t) => {
  for (const seed of [1, 2, 3]) {
    const s = await openStore(t);
    const m = new Model();
    await runWorkload(s, m, seed, 150);
    await s.w.flush();
    checkAgainstModel(s, m, 1, 'writer');
    checkAgainstModel(s, m, 1, 'db');
  }
});

// ------------------------------------------------------------------ compaction

interface Phys { k: Map<string, StoredVersion[]>; l: Map<string, StoredVersion>; r: Array<[number, number, string]> }

/** The three record families, decoded; asserts the history is self-consistent. */
function physical(db: RocksLevel): Phys {
  const k = new Map<string, StoredVersion[]>();
  for (const [hk, v] of scanFamily(db, PREFIX_HISTORY)) {
    const d = decodeHistoryKey(hk);
    const sv = decodeVersion(v);
    assert.equal(sv.modRevision, d.rev, 'a history record is filed under its mod revision');
    const list = k.get(S(d.key)) ?? [];
    list.push(sv);
    k.set(S(d.key), list);
  }
  const l = new Map<string, StoredVersion>();
  for (const [lk, v] of scanFamily(db, PREFIX_LATEST)) l.set(S(userKeyFromLatest(lk)), decodeVersion(v));
  const r = scanFamily(db, PREFIX_BYREV).map(([rk, v]): [number, number, string] => {
    const d = decodeByRevKey(rk);
    return [d.rev, d.sub, S(v)];
  });
  return { k, l, r };
}

function checkCompacted(before: Phys, after: Phys, c: number): void {
  for (const [key, vs] of before.k) {
    const newestAtC = vs.find((v) => v.modRevision <= c); // history is newest first
    const want = vs.filter((v) => v.modRevision > c);
    if (newestAtC && !newestAtC.tombstone) want.push(newestAtC);
    const got = after.k.get(key) ?? [];
    assert.deepEqual(got.map((v) => [v.modRevision, v.version, S(v.value)]), want.map((v) => [v.modRevision, v.version, S(v.value)]),
      `history of ${JSON.stringify(key)} after compaction at ${c}`);
  }
  for (const key of after.k.keys()) assert.ok(before.k.has(key));
  for (const [key, v] of after.l) {
    assert.ok(!(v.tombstone && v.modRevision <= c), `latest tombstone of ${JSON.stringify(key)} at ${v.modRevision} <= ${c} kept`);
    const hist = after.k.get(key);
    assert.ok(hist && hist[0]!.modRevision === v.modRevision, `latest of ${JSON.stringify(key)} is its newest history record`);
  }
  for (const [key, v] of before.l) {
    if (!(v.tombstone && v.modRevision <= c)) assert.deepEqual(after.l.get(key), v);
  }
  // The by-revision records are exactly the history records (no orphans either way).
  const fromK = [...after.k].flatMap(([key, vs]) => vs.map((v): [number, number, string] => [v.modRevision, v.sub, key]))
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.deepEqual(after.r, fromK, 'by-revision records match the history records');
}

test('compaction keeps reads at and above C, makes reads below C compacted, drops old versions and tombstones', async (t) => {
  for (const seed of [11, 12, 13]) {
    const s = await openStore(t);
    const m = new Model();
    await runWorkload(s, m, seed, 160);
    await s.w.flush();
    const c = Math.floor(m.rev / 2);
    const before = physical(s.db);
    const removed = await compactRange(s.db, 0, c);
    const after = physical(s.db);
    const count = (p: Phys) => [...p.k.values()].reduce((n, vs) => n + vs.length, 0);
    assert.equal(removed, count(before) - count(after), 'compactRange returns the number of versions removed');
    assert.ok(removed > 0);
    checkCompacted(before, after, c);
    s.w.setCompactRev(c);
    await s.w.flush();
    checkAgainstModel(s, m, c, 'db', c);
    checkAgainstModel(s, m, c, 'writer', c);
    assert.throws(() => readDb(s, rr(...ALL, { revision: c - 1 }), m.rev, c), ERR_COMPACTED);
    assert.throws(() => read(s, rr('a', '', { revision: 1 })), ERR_COMPACTED);
    assert.throws(() => s.a.txn(txn([], [opRange('a', '', { revision: c - 1 })])), ERR_COMPACTED);
    assert.equal(loadWriterState(s.db).compactRev, c);

    // More writes, then a second compaction over (c, c2].
    await runWorkload(s, m, seed + 100, 80);
    await s.w.flush();
    const c2 = c + Math.floor((m.rev - c) / 2);
    const before2 = physical(s.db);
    await compactRange(s.db, c, c2);
    const after2 = physical(s.db);
    checkCompacted(before2, after2, c2);
    checkAgainstModel(s, m, c2, 'db', c2);
    // Compacting the same range again changes nothing.
    assert.equal(await compactRange(s.db, c, c2), 0);
    assert.deepEqual(physical(s.db), after2);
  }
});

test('a sweep taken a step at a time, extended to a newer compaction, with writes between steps, ends as one whole sweep does', async (t) => {
  for (const seed of [21, 22]) {
    const stepped = await openStore(t);
    const whole = await openStore(t);
    const ms = new Model();
    const mw = new Model();
    await runWorkload(stepped, ms, seed, 160);
    await runWorkload(whole, mw, seed, 160);
    await stepped.w.flush();
    await whole.w.flush();
    const c1 = Math.floor(ms.rev / 3);
    const c2 = Math.floor((2 * ms.rev) / 3);
    // Stepped: a few records toward c1, then writes (as the apply worker applies batches between steps), then on to c2.
    const sweep = new Sweep(stepped.db, 0, c1);
    assert.equal(await sweep.step(3), false);
    await runWorkload(stepped, ms, seed + 100, 60);
    await stepped.w.flush();
    assert.equal(await sweep.step(3), false);
    sweep.extend(c2);
    await runWorkload(stepped, ms, seed + 200, 60);
    await stepped.w.flush();
    while (!(await sweep.step(3))) { /* next step */ }
    // Whole: the same writes around one sweep to c2.
    await runWorkload(whole, mw, seed + 100, 60);
    await whole.w.flush();
    await compactRange(whole.db, 0, c2);
    await runWorkload(whole, mw, seed + 200, 60);
    await whole.w.flush();
    assert.deepEqual(physical(stepped.db), physical(whole.db));
    checkAgainstModel(stepped, ms, c2, 'db', c2);
    assert.throws(() => sweep.extend(c1), /cannot shrink/);
  }
});

test('compaction, hand-checked: newest version <= C kept, tombstone <= C dropped from k and l, later versions untouched', async (t) => {
  const s = await openStore(t);
  put(s, 'a', 'a1'); // 2
  put(s, 'a', 'a2'); // 3
  put(s, 'b', 'b1'); // 4
  s.a.deleteRange(dr('b')); // 5
  put(s, 'c', 'c1'); // 6
  s.a.deleteRange(dr('c')); // 7 tombstone above C
  put(s, 'a', 'a3'); // 8
  put(s, 'd', 'd1'); // 9
  s.a.deleteRange(dr('d')); // 10
  put(s, 'd', 'd2'); // 11
  await s.w.flush();
  const C = 6;
  const snapshot = (rev: number) => rows(readDb(s, rr(...ALL, { revision: rev })).kvs);
  const atC = snapshot(C);
  const later = [7, 8, 9, 10, 11].map(snapshot);
  assert.equal(await compactRange(s.db, 0, C), 3); // a@2, b@4, b@5(tombstone)
  const p = physical(s.db);
  assert.deepEqual([...p.k].map(([k, vs]) => [k, vs.map((v) => v.modRevision)]), [['a', [8, 3]], ['c', [7, 6]], ['d', [11, 10, 9]]]);
  assert.deepEqual([...p.l.keys()], ['a', 'c', 'd'], "b's latest tombstone is gone");
  assert.deepEqual(p.r.map(([rev]) => rev), [3, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(snapshot(C), atC);
  assert.deepEqual([7, 8, 9, 10, 11].map(snapshot), later);
  assert.throws(() => readDb(s, rr('a', '', { revision: C - 1 }), 11, C), ERR_COMPACTED);
  // Second compaction (6, 10]: a keeps 8, c's tombstone at 7 goes with its older version, d's tombstone at 10 goes.
  assert.equal(await compactRange(s.db, C, 10), 5); // a@3, c@6, c@7 (tombstone), d@9, d@10 (tombstone)
  const p2 = physical(s.db);
  assert.deepEqual([...p2.k].map(([k, vs]) => [k, vs.map((v) => v.modRevision)]), [['a', [8]], ['d', [11]]]);
  assert.deepEqual([...p2.l.keys()], ['a', 'd']);
  assert.deepEqual(snapshot(10), later[3]);
  assert.deepEqual(snapshot(11), later[4]);
  // Reopened writer state: re-put of a compacted-away key starts fresh.
  put(s, 'b', 'b2');
  assert.deepEqual(get(s, 'b'), ['b', 'b2', 12, 12, 1, 0n]);
});

// RocksDB queries run in chunks of 1000 records. These fixtures exceed that in
// every family: 1500 'l' records, 3750 'k' and 'r' records.
const N = 1500;
const chunkKey = (i: number) => `key/${String(i).padStart(5, '0')}`;
const isLive = (i: number) => i % 3 !== 0;
const liveIdx = [...Array(N).keys()].filter(isLive);

async function chunkFixture(t: { after(fn: () => Promise<void>): void }): Promise<Store> {
  const s = await openStore(t);
  for (let i = 0; i < N; i++) put(s, chunkKey(i), 'v1'); // 2 .. N+1
  await s.w.flush();
  for (let i = 0; i < N; i += 2) put(s, chunkKey(i), 'v2'); // even keys get v2
  for (let i = 0; i < N; i += 3) s.a.deleteRange(dr(chunkKey(i))); // multiples of 3 deleted
  await s.w.flush();
  return s;
}

test('a latest range over more than 1000 keys returns them all (RocksDB query chunks)', async (t) => {
  const s = await chunkFixture(t);
  for (const [name, o] of [['db', readDb(s, rr('key/', 'key0'))], ['writer', read(s, rr('key/', 'key0'))]] as const) {
    assert.equal(o.count, liveIdx.length, `${name}: count`);
    assert.deepEqual(o.kvs.map((kv) => S(kv.key)), liveIdx.map(chunkKey), `${name}: keys`);
    assert.deepEqual(o.kvs.map((kv) => S(kv.value)), liveIdx.map((i) => (i % 2 === 0 ? 'v2' : 'v1')), `${name}: values`);
  }
  assert.equal(readDb(s, rr('key/', 'key0', { countOnly: true })).count, liveIdx.length);
  // A ranged delete goes through the same scan.
  const d = s.a.deleteRange(dr('key/', 'key0'));
  assert.equal(d.deleted, liveIdx.length);
});

test('a past-revision range over more than 1000 history records returns them all', async (t) => {
  const s = await chunkFixture(t);
  // At revision N+1 every key exists at v1; the history scan walks 3750 records.
  const past = readDb(s, rr('key/', 'key0', { revision: N + 1 }));
  assert.equal(past.count, N);
  assert.ok(past.kvs.every((kv) => S(kv.value) === 'v1'));
  assert.equal(S(past.kvs[past.kvs.length - 1]!.key), chunkKey(N - 1));
});

test('compaction over more than 1000 by-revision records compacts all of them', async (t) => {
  const s = await chunkFixture(t);
  const cur = s.w.state.rev;
  const before = physical(s.db);
  await compactRange(s.db, 0, cur);
  const after = physical(s.db);
  checkCompacted(before, after, cur);
  assert.equal(after.l.size, liveIdx.length, 'every tombstone is gone from l');
  assert.equal(after.r.length, liveIdx.length, 'one by-revision record per live key is left');
});
