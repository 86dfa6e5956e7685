// Invariant 2: responses are byte-identical whatever the shard count.
//
// One deterministic workload (puts, deletes, txns with nested txns,
// compaction, then a battery of ranges and of bad requests) runs against a
// fresh etsd with --shards 1 and then with --shards 4. Both runs use the same
// peer URL (so the same member and cluster ids) one after the other, so the
// raw response bytes must match exactly, and errors must match in code and
// message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as codec from '../../src/proto/kv-codec.js';
import type { Compare, RangeRequest, RequestOp, TxnRequest } from '../../src/proto/kv-types.js';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import {
  KV_PATHS, KvClient, type KvPath, b, compare, deleteReq, isGrpcError, op, prefixEnd, putReq, rangeReq,
} from './kv-client.js';
import { makeRng } from '../../src/raft/rng.js';

const SEED = 0x5eed5;
const WRITE_OPS = 400;
const CONCURRENT_READS = 8;

const prng = makeRng;

interface Step { label: string; path: KvPath; body: Buffer }

/** What the server answered: the raw body, or the status. */
type Outcome = { ok: true; body: Buffer } | { ok: false; code: number; details: string };

const FROM_KEY = Buffer.from([0]);

class Workload {
  private r = prng(SEED);
  readonly writes: Step[] = [];
  private readonly keys: Buffer[] = [];

  constructor() {
    for (const p of ['a/', 'b/', 'c/d/']) for (let i = 0; i < 16; i++) this.keys.push(b(`${p}${String(i).padStart(2, '0')}`));
    // Binary keys, including 0xff bytes and a NUL inside.
    this.keys.push(Buffer.from([0x00, 0x01]), Buffer.from([0xff]), Buffer.from([0xff, 0xff, 0x00]), Buffer.from('z\u0000x'));
  }

  private int(n: number): number { return Math.floor(this.r() * n); }
  private pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  private key(): Buffer { return this.pick(this.keys); }
  private value(): Buffer { return b(`val-${this.int(1000)}-${'x'.repeat(this.int(40))}`); }

  private randomCompare(): Compare {
    const key = this.key();
    const result = this.int(4);
    switch (this.int(5)) {
      case 0: return compare({ key, result, target: 0, targetUnion: 'version', version: this.int(4) });
      case 1: return compare({ key, result, target: 1, targetUnion: 'createRevision', createRevision: this.int(200) });
      case 2: return compare({ key, result, target: 2, targetUnion: 'modRevision', modRevision: this.int(400) });
      case 3: return compare({ key, result, target: 3, targetUnion: 'value', value: this.value() });
      default: {
        // A compare over a key range (etcd 3.4: compares every key in it).
        const p = this.pick([b('a/'), b('b/')]);
        return compare({ key: p, rangeEnd: prefixEnd(p), result: this.pick([0, 1, 2]), target: 0, targetUnion: 'version', version: 1 });
      }
    }
  }

  /** Ops for one branch; keys distinct within the branch so the txn is valid. */
  private branch(depth: number, used: Set<string>): RequestOp[] {
    const ops: RequestOp[] = [];
    const n = this.int(4);
    for (let i = 0; i < n; i++) {
      const k = this.key();
      const id = k.toString('latin1');
      const kind = this.int(depth < 2 ? 5 : 4);
      if (kind === 0) ops.push(op.range({ key: k, rangeEnd: this.r() < 0.5 ? prefixEnd(k.subarray(0, 2)) : Buffer.alloc(0) }));
      else if ((kind === 1 || kind === 3) && !used.has(id)) { used.add(id); ops.push(op.put({ key: k, value: this.value(), prevKv: this.r() < 0.5 })); }
      else if (kind === 2 && !used.has(id)) { used.add(id); ops.push(op.del({ key: k, prevKv: true })); }
      else if (kind === 4) ops.push(op.txn(this.txn(depth + 1, used)));
    }
    return ops;
  }

  private txn(depth: number, used = new Set<string>()): TxnRequest {
    const compares = Array.from({ length: this.int(3) }, () => this.randomCompare());
    // Success and failure are separate paths, but a nested txn's keys must not
    // clash with its parent's path: share `used` down the tree.
    const success = this.branch(depth, used);
    const failure = this.branch(depth, used);
    return { compare: compares, success, failure };
  }

  private push(label: string, path: KvPath, body: Buffer): void {
    this.writes.push({ label: `${this.writes.length}:${label}`, path, body });
  }

  build(): void {
    // Seed every key once so ranges have data.
    for (const k of this.keys) this.push('seed put', KV_PATHS.put, codec.encodePutRequest(putReq({ key: k, value: this.value() })));
    for (let i = 0; i < WRITE_OPS; i++) {
      const dice = this.int(10);
      if (i === Math.floor(WRITE_OPS / 2)) {
        // Compact to a revision from the middle (the revision is known: one write per step at most).
        this.push('compact', KV_PATHS.compact, codec.encodeCompactionRequest({ revision: 150, physical: true }));
        continue;
      }
      if (dice < 4) {
        this.push('put', KV_PATHS.put, codec.encodePutRequest(putReq({ key: this.key(), value: this.value(), prevKv: this.r() < 0.3 })));
      } else if (dice === 4) {
        this.push('put ignore_value', KV_PATHS.put, codec.encodePutRequest(putReq({ key: this.key(), ignoreValue: true, prevKv: true })));
      } else if (dice === 5) {
        const k = this.key();
        this.push('delete key', KV_PATHS.deleteRange, codec.encodeDeleteRangeRequest(deleteReq({ key: k, prevKv: this.r() < 0.5 })));
      } else if (dice === 6) {
        const p = this.pick([b('a/'), b('b/'), b('c/'), b('a/0'), b('b/1')]);
        this.push('delete prefix', KV_PATHS.deleteRange, codec.encodeDeleteRangeRequest(deleteReq({ key: p, rangeEnd: prefixEnd(p), prevKv: true })));
      } else {
        this.push('txn', KV_PATHS.txn, codec.encodeTxnRequest(this.txn(0)));
      }
    }
    // Compaction errors: already compacted, and a future revision.
    this.push('compact again (compacted)', KV_PATHS.compact, codec.encodeCompactionRequest({ revision: 100, physical: false }));
    this.push('compact future', KV_PATHS.compact, codec.encodeCompactionRequest({ revision: 1_000_000, physical: false }));
  }
}

/** The battery of reads, at revisions known only after the writes ran. */
function rangeBattery(headRev: number): Step[] {
  const steps: Step[] = [];
  const add = (label: string, m: Partial<RangeRequest> & { key: Buffer }) =>
    steps.push({ label: `range ${label}`, path: KV_PATHS.range, body: codec.encodeRangeRequest(rangeReq(m)) });
  const shapes: Array<[string, Partial<RangeRequest> & { key: Buffer }]> = [
    ['single a/03', { key: b('a/03') }],
    ['single missing', { key: b('nope') }],
    ['prefix a/', { key: b('a/'), rangeEnd: prefixEnd(b('a/')) }],
    ['prefix c/', { key: b('c/'), rangeEnd: prefixEnd(b('c/')) }],
    ['from-key b/08', { key: b('b/08'), rangeEnd: FROM_KEY }],
    ['all keys', { key: FROM_KEY, rangeEnd: FROM_KEY }],
    ['0xff prefix', { key: Buffer.from([0xff]), rangeEnd: FROM_KEY }],
    ['empty interval', { key: b('b/'), rangeEnd: b('a/') }],
  ];
  const revs: Array<[string, number]> = [['latest', 0], ['head', headRev], ['compact rev', 150], ['mid', 260], ['head-7', headRev - 7]];
  for (const [rl, revision] of revs) {
    for (const [sl, shape] of shapes) {
      add(`${sl} @${rl}`, { ...shape, revision });
      add(`${sl} @${rl} serializable`, { ...shape, revision, serializable: true });
      add(`${sl} @${rl} count_only`, { ...shape, revision, countOnly: true });
      add(`${sl} @${rl} keys_only`, { ...shape, revision, keysOnly: true });
      for (const limit of [1, 3, 7]) add(`${sl} @${rl} limit ${limit}`, { ...shape, revision, limit });
    }
  }
  const all = { key: FROM_KEY, rangeEnd: FROM_KEY };
  for (const revision of [0, 200]) {
    for (let order = 0; order <= 2; order++) {
      for (let target = 0; target <= 4; target++) {
        add(`all sort ${order}/${target} @${revision}`, { ...all, revision, sortOrder: order, sortTarget: target });
        add(`all sort ${order}/${target} limit 5 @${revision}`, { ...all, revision, sortOrder: order, sortTarget: target, limit: 5 });
        add(`all sort ${order}/${target} keys_only @${revision}`, { ...all, revision, sortOrder: order, sortTarget: target, keysOnly: true });
      }
    }
  }
  const mid = Math.floor(headRev / 2);
  const filters: Array<[string, Partial<RangeRequest>]> = [
    ['min_mod', { minModRevision: mid }],
    ['max_mod', { maxModRevision: mid }],
    ['min_create', { minCreateRevision: 40 }],
    ['max_create', { maxCreateRevision: 40 }],
    ['mod window', { minModRevision: mid - 30, maxModRevision: mid + 30 }],
    ['create+mod', { minCreateRevision: 10, maxModRevision: headRev - 10 }],
  ];
  for (const [fl, f] of filters) {
    add(`all ${fl}`, { ...all, ...f });
    add(`all ${fl} limit 2`, { ...all, ...f, limit: 2 });
    add(`all ${fl} count_only`, { ...all, ...f, countOnly: true });
    add(`all ${fl} sort mod desc`, { ...all, ...f, sortOrder: 2, sortTarget: 3 });
    add(`all ${fl} @200`, { ...all, ...f, revision: 200 });
  }
  // Errors from the read path.
  add('ERR empty key', { key: Buffer.alloc(0) });
  add('ERR compacted', { key: b('a/'), rangeEnd: prefixEnd(b('a/')), revision: 149 });
  add('ERR compacted rev 1', { key: b('a/00'), revision: 1 });
  add('ERR future', { key: b('a/00'), revision: headRev + 1 });
  add('ERR future serializable', { key: b('a/00'), revision: headRev + 100, serializable: true });
  add('ERR bad sort order', { key: b('a/00'), sortOrder: 7 });
  add('ERR bad sort target', { key: b('a/00'), sortTarget: 9 });
  return steps;
}

/** Bad writes: they must fail the same way and change nothing. */
function badWrites(): Step[] {
  const steps: Step[] = [];
  const put = (label: string, m: Parameters<typeof putReq>[0]) =>
    steps.push({ label: `ERR put ${label}`, path: KV_PATHS.put, body: codec.encodePutRequest(putReq(m)) });
  const txn = (label: string, t: TxnRequest) =>
    steps.push({ label: `ERR txn ${label}`, path: KV_PATHS.txn, body: codec.encodeTxnRequest(t) });
  put('empty key', { key: Buffer.alloc(0), value: b('v') });
  put('lease not found', { key: b('a/00'), value: b('v'), lease: 7n });
  put('ignore_value with value', { key: b('a/00'), value: b('v'), ignoreValue: true });
  put('ignore_lease with lease', { key: b('a/00'), lease: 5n, ignoreLease: true });
  put('ignore_value on missing key', { key: b('missing/key'), ignoreValue: true });
  steps.push({ label: 'ERR delete empty key', path: KV_PATHS.deleteRange, body: codec.encodeDeleteRangeRequest(deleteReq({ key: Buffer.alloc(0) })) });
  txn('duplicate put', { compare: [], success: [op.put({ key: b('a/01') }), op.put({ key: b('a/01') })], failure: [] });
  txn('put inside deleted range', {
    compare: [], success: [op.del({ key: b('a/'), rangeEnd: prefixEnd(b('a/')) }), op.put({ key: b('a/02') })], failure: [],
  });
  txn('nested duplicate', {
    compare: [], success: [op.put({ key: b('b/01') }), op.txn({ success: [op.put({ key: b('b/01') })] })], failure: [],
  });
  txn('too many ops', { compare: [], success: Array.from({ length: 129 }, (_, i) => op.put({ key: b(`many/${i}`) })), failure: [] });
  txn('empty compare key', { compare: [compare({ key: Buffer.alloc(0), targetUnion: 'version' })], success: [], failure: [] });
  txn('empty op', { compare: [], success: [{ kind: 'none' }], failure: [] });
  txn('range with bad sort', { compare: [], success: [op.range({ key: b('a/00'), sortOrder: 3 })], failure: [] });
  txn('future rev range inside', { compare: [], success: [op.range({ key: b('a/00'), revision: 1_000_000 })], failure: [] });
  txn('compacted range inside', { compare: [], success: [op.range({ key: b('a/00'), revision: 2 })], failure: [] });
  steps.push({ label: 'ERR malformed put', path: KV_PATHS.put, body: Buffer.from([0x0a, 0x05, 0x61]) });
  return steps;
}

async function runOne(client: KvClient, step: Step): Promise<Outcome> {
  try {
    return { ok: true, body: await client.call(step.path, step.body) };
  } catch (err) {
    if (!isGrpcError(err)) throw err;
    return { ok: false, code: err.code, details: err.details };
  }
}

interface RunResult { outcomes: Outcome[]; steps: Step[]; headRev: number }

async function runAll(shards: number, clientPort: number, peerPort: number, w: Workload, t: { after: (fn: () => Promise<void>) => void }): Promise<RunResult> {
  const dir = makeTempDir(`shards${shards}`);
  const proc = await EtsdProcess.startReady({ dataDir: dir, clientPort, peerPort, shards });
  const client = new KvClient(proc.endpoint);
  t.after(async () => {
    client.close();
    await proc.kill('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  });
  const outcomes: Outcome[] = [];
  for (const s of w.writes) outcomes.push(await runOne(client, s));
  const head = codec.decodeRangeResponse((await client.call(KV_PATHS.range, codec.encodeRangeRequest(rangeReq({ key: b('a/00') }))))).header.revision;
  const reads = [...rangeBattery(head), ...badWrites(), ...rangeBattery(head).map((s) => ({ ...s, label: `${s.label} (after bad writes)` }))];
  // Reads one at a time, then the same reads again with several in flight (spread over the shards).
  for (const s of reads) outcomes.push(await runOne(client, s));
  const rangeSteps = reads.filter((s) => s.path === KV_PATHS.range);
  const concurrent: Outcome[] = new Array(rangeSteps.length);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENT_READS }, async () => {
    while (next < rangeSteps.length) {
      const i = next++;
      concurrent[i] = await runOne(client, rangeSteps[i]!);
    }
  }));
  outcomes.push(...concurrent);
  const steps = [...w.writes, ...reads, ...rangeSteps.map((s) => ({ ...s, label: `${s.label} (concurrent)` }))];
  client.close();
  await proc.kill('SIGTERM');
  return { outcomes, steps, headRev: head };
}

function describe(step: Step, o: Outcome): string {
  if (!o.ok) return `error ${o.code}: ${o.details}`;
  const decoders: Record<string, (x: Buffer) => unknown> = {
    [KV_PATHS.range]: codec.decodeRangeResponse,
    [KV_PATHS.put]: codec.decodePutResponse,
    [KV_PATHS.deleteRange]: codec.decodeDeleteRangeResponse,
    [KV_PATHS.txn]: codec.decodeTxnResponse,
    [KV_PATHS.compact]: codec.decodeCompactionResponse,
  };
  const text = JSON.stringify(decoders[step.path]!(o.body), (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer'
      ? Buffer.from((v as { data: number[] }).data).toString('latin1') : v);
  return `${o.body.length} bytes ${text.slice(0, 600)}`;
}

test('responses are byte-identical with --shards 1 and --shards 4', { timeout: 170_000 }, async (t) => {
  const w = new Workload();
  w.build();
  // One peer port for both runs (member and cluster ids derive from it); runs are sequential.
  const [clientPort, peerPort] = await freePorts(2);
  const one = await runAll(1, clientPort!, peerPort!, w, t);
  const four = await runAll(4, clientPort!, peerPort!, w, t);

  assert.equal(one.steps.length, four.steps.length);
  assert.equal(one.headRev, four.headRev, 'the workload ended at different revisions');
  const errors = one.outcomes.filter((o) => !o.ok).length;
  const stats = `${one.steps.length} requests (${w.writes.length} writes), ${errors} errors, head revision ${one.headRev}`;
  console.log(`shards: ${stats}`);
  // Sanity: the workload is not degenerate.
  assert.ok(one.headRev > 200, `workload reached only revision ${one.headRev}`);
  const mismatches: string[] = [];
  for (let i = 0; i < one.steps.length; i++) {
    const a = one.outcomes[i]!;
    const c = four.outcomes[i]!;
    const same = a.ok && c.ok ? a.body.equals(c.body) : !a.ok && !c.ok && a.code === c.code && a.details === c.details;
    if (!same) {
      const s = one.steps[i]!;
      mismatches.push(`#${i} ${s.label}\n  shards=1: ${describe(s, a)}\n  shards=4: ${describe(s, c)}`);
    }
  }
  assert.equal(mismatches.length, 0, `${mismatches.length} of ${one.steps.length} responses differ:\n${mismatches.slice(0, 8).join('\n')}`);

  const writeErrors = new Map<string, number>();
  w.writes.forEach((s, i) => {
    const o = one.outcomes[i]!;
    if (!o.ok) writeErrors.set(`${s.label.replace(/^\d+:/, '')}: ${o.details}`, (writeErrors.get(`${s.label.replace(/^\d+:/, '')}: ${o.details}`) ?? 0) + 1);
  });
  console.log(`shards: write errors ${JSON.stringify([...writeErrors])}`);
  const compactStep = w.writes.findIndex((s) => s.label.endsWith(':compact'));
  assert.equal(one.outcomes[compactStep]!.ok, true, `the compaction failed: ${describe(w.writes[compactStep]!, one.outcomes[compactStep]!)}`);
  // Every ERR step must actually be an error (else the battery is not testing what it says).
  one.steps.forEach((s, i) => {
    if (s.label.includes('ERR')) assert.equal(one.outcomes[i]!.ok, false, `${s.label} succeeded: ${describe(s, one.outcomes[i]!)}`);
  });
});
