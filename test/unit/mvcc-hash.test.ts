// Maintenance.HashKV / Hash over a real RocksDB in a temp dir: members with
// the same history agree, any difference shows, a swept and an unswept (or
// half-swept) compaction hash the same, and etcd's revision errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { openTestStore, type TestStore } from '../common/mvcc-store.js';
import { compactRange } from '../../src/storage/mvcc/compactor.js';
import { hashAll, hashKV, hashKVRevision } from '../../src/storage/mvcc/hash.js';
import { PREFIX_HISTORY, decodeHistoryKey } from '../../src/storage/mvcc/keys.js';
import { decodeVersion } from '../../src/storage/mvcc/record.js';
import { crc32c } from '../../src/common/crc32c.js';
import { GrpcCode } from '../../src/common/errors.js';
import { encodeKeyValue, revBytes } from '../../src/storage/bbolt/etcd-schema.js';

type Store = TestStore;

const openStore = (t: { after(fn: () => Promise<void>): void }): Promise<Store> => openTestStore(t, 'hash', (id) => id === 7n);

const B = (s: string) => Buffer.from(s, 'latin1');

/** One step of a history: the same steps applied to two stores make two members with the same history. */
type Step = ['put', string, string, bigint?] | ['del', string, string?];

function apply(s: Store, steps: Step[]): void {
  for (const st of steps) {
    if (st[0] === 'put') {
      s.a.put({ key: B(st[1]), value: B(st[2]), lease: st[3] ?? 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
    } else {
      s.a.deleteRange({ key: B(st[1]), rangeEnd: B(st[2] ?? ''), prevKv: false });
    }
  }
}

/** A seeded history over a few keys: puts (some with a lease), single and ranged deletes. */
function randomHistory(seed: number, n: number): Step[] {
  let x = seed >>> 0 || 1;
  const rnd = (m: number) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % m; };
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'a\0', 'a\0b'];
  const steps: Step[] = [];
  for (let i = 0; i < n; i++) {
    const k = keys[rnd(keys.length)]!;
    const r = rnd(10);
    if (r < 7) steps.push(['put', k, `v${i}`, r === 0 ? 7n : 0n]);
    else if (r < 9) steps.push(['del', k]);
    else steps.push(['del', 'b', 'e']);
  }
  return steps;
}

async function storeWith(t: { after(fn: () => Promise<void>): void }, steps: Step[], flushEvery = 0): Promise<Store> {
  const s = await openStore(t);
  if (flushEvery > 0) {
    for (let i = 0; i < steps.length; i += flushEvery) {
      apply(s, steps.slice(i, i + flushEvery));
      s.w.markApplied(i + 1, 1);
      await s.w.flush();
    }
  } else {
    apply(s, steps);
    s.w.markApplied(steps.length, 1);
  }
  await s.w.flush();
  return s;
}

/**
 * etcd 3.4's hashByRev written apart from hash.ts and key-bucket.ts, the way
 * etcd computes it: one unlimited query, every key's versions split into
 * generations at tombstones, a compaction at c applied as keyIndex.compact
 * does, the keep set as keyIndex.keep(rev) does (doCompact, then drop a
 * generation's tombstone), and the surviving pairs hashed in revision order.
 */
function referenceHashKV(db: RocksLevel, rev: number, c: number): number {
  const { rows } = db.querySync({
    keyEncoding: 'buffer', valueEncoding: 'buffer', gte: Buffer.from([PREFIX_HISTORY]), lt: Buffer.from([PREFIX_HISTORY + 1]),
  });
  type V = { key: Buffer; main: number; sub: number; tomb: boolean; kv: Buffer };
  const byKey = new Map<string, V[]>();
  for (let i = 0; i < rows.length; i += 2) {
    const hk = decodeHistoryKey(rows[i]!);
    const v = decodeVersion(rows[i + 1]!);
    const name = hk.key.toString('latin1');
    if (!byKey.has(name)) byKey.set(name, []);
    const kv = v.tombstone
      ? encodeKeyValue({ key: hk.key, createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n })
      : encodeKeyValue({ key: hk.key, createRevision: v.createRevision, modRevision: v.modRevision, version: v.version, value: v.value, lease: v.lease });
    byKey.get(name)!.unshift({ key: hk.key, main: v.modRevision, sub: v.sub, tomb: v.tombstone, kv }); // oldest first
  }
  const bucket: V[] = [];
  const keep = new Set<V>();
  for (const versions of byKey.values()) {
    // Generations: each ends with its tombstone; the last one is open (maybe empty).
    let gens: V[][] = [[]];
    for (const v of versions) { gens[gens.length - 1]!.push(v); if (v.tomb) gens.push([]); }
    // keyIndex.compact(c): drop generations that ended at or before c, then versions below the newest <= c,
    // then a generation left holding only its tombstone.
    let gi = 0;
    while (gi < gens.length - 1 && gens[gi]![gens[gi]!.length - 1]!.main <= c) gi++;
    gens = gens.slice(gi);
    const g0 = gens[0]!;
    let idx = -1;
    for (let i = g0.length - 1; i >= 0; i--) if (g0[i]!.main <= c) { idx = i; break; }
    if (idx > 0) gens[0] = g0.slice(idx);
    if (gens[0]!.length === 1 && gens.length > 1 && gens[0]![0]!.tomb) gens = gens.slice(1);
    for (const g of gens) bucket.push(...g);
    // keyIndex.keep(rev) on what is left.
    let ki = 0;
    while (ki < gens.length - 1 && gens[ki]![gens[ki]!.length - 1]!.main <= rev) ki++;
    const g = gens[ki]!;
    for (let i = g.length - 1; i >= 0; i--) {
      if (g[i]!.main <= rev) {
        if (!(i === g.length - 1 && ki !== gens.length - 1)) keep.add(g[i]!);
        break;
      }
    }
  }
  bucket.sort((a, b) => a.main - b.main || a.sub - b.sub);
  let crc = crc32c(Buffer.from('key'));
  for (const v of bucket) {
    if (v.main > rev) continue;
    if (v.main <= c && keep.size > 0 && !keep.has(v)) continue;
    crc = crc32c(v.kv, crc32c(revBytes(v.main, v.sub, v.tomb), crc));
  }
  return crc;
}

const ERR_COMPACTED = { name: 'EtcdError', code: GrpcCode.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision has been compacted' };
const ERR_FUTURE = { name: 'EtcdError', code: GrpcCode.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision is a future revision' };

test('two stores with the same history give the same HashKV at every revision, and the same Hash', async (t) => {
  for (const seed of [1, 2, 3]) {
    const steps = randomHistory(seed, 120);
    // Different batch boundaries (and so different meta records) on each side.
    const s1 = await storeWith(t, steps);
    const s2 = await storeWith(t, steps, 7);
    const cur = s1.w.state.rev;
    assert.equal(s2.w.state.rev, cur);
    assert.ok(cur > 50);
    const seen = new Set<number>();
    for (let rev = 1; rev <= cur; rev++) {
      const h = hashKV(s1.db, rev, 0);
      assert.equal(hashKV(s2.db, rev, 0), h, `seed ${seed}, revision ${rev}`);
      assert.equal(h, referenceHashKV(s1.db, rev, 0), `seed ${seed}, revision ${rev}: reference`);
      seen.add(h);
    }
    assert.ok(seen.size >= cur - 2, 'revisions that change the store change the hash');
    assert.equal(hashAll(s2.db), hashAll(s1.db), 'Hash ignores the meta records');
  }
});

test('a different value, lease or key changes the hash from that revision on, not before', async (t) => {
  const base: Step[] = [['put', 'a', '1'], ['put', 'b', '2'], ['put', 'a', '3'], ['del', 'b']];
  const variants: Step[][] = [
    [['put', 'a', '1'], ['put', 'b', '2'], ['put', 'a', '4'], ['del', 'b']], // value at 4
    [['put', 'a', '1'], ['put', 'b', '2'], ['put', 'a', '3', 7n], ['del', 'b']], // lease at 4
    [['put', 'a', '1'], ['put', 'c', '2'], ['put', 'a', '3'], ['del', 'c']], // key at 3
  ];
  const s = await storeWith(t, base);
  for (const [i, steps] of variants.entries()) {
    const o = await storeWith(t, steps);
    const from = i === 2 ? 3 : 4;
    for (let rev = 1; rev <= 5; rev++) {
      if (rev < from) assert.equal(hashKV(o.db, rev, 0), hashKV(s.db, rev, 0), `variant ${i}, revision ${rev}`);
      else assert.notEqual(hashKV(o.db, rev, 0), hashKV(s.db, rev, 0), `variant ${i}, revision ${rev}`);
    }
    assert.notEqual(hashAll(o.db), hashAll(s.db), `variant ${i}: Hash`);
  }
  // One more write is one more revision, and a different hash.
  const longer = await storeWith(t, [...base, ['put', 'z', '']]);
  assert.equal(hashKV(longer.db, 5, 0), hashKV(s.db, 5, 0));
  assert.notEqual(hashKV(longer.db, 6, 0), hashKV(s.db, 5, 0));
});

test('a swept, a half-swept and an unswept compaction give the same HashKV', async (t) => {
  for (const seed of [4, 5, 6]) {
    const steps = randomHistory(seed, 150);
    const unswept = await storeWith(t, steps);
    const swept = await storeWith(t, steps);
    const twoSteps = await storeWith(t, steps);
    const half = await storeWith(t, steps);
    const cur = unswept.w.state.rev;
    const c1 = Math.floor(cur / 3);
    const c2 = Math.floor((2 * cur) / 3);
    // Compaction at c2: in one sweep, in two (c1 then c2), and only keys changed in (c1, c2] (a sweep cut short).
    assert.ok(await compactRange(swept.db, 0, c2) > 0);
    await compactRange(twoSteps.db, 0, c1);
    await compactRange(twoSteps.db, c1, c2);
    assert.ok(await compactRange(half.db, c1, c2) > 0);
    assert.notEqual(hashAll(swept.db), hashAll(unswept.db), 'the sweep did remove records');
    for (let rev = c2; rev <= cur; rev++) {
      const h = hashKV(unswept.db, rev, c2);
      assert.equal(hashKV(swept.db, rev, c2), h, `seed ${seed}, revision ${rev}: swept`);
      assert.equal(hashKV(twoSteps.db, rev, c2), h, `seed ${seed}, revision ${rev}: swept in two steps`);
      assert.equal(hashKV(half.db, rev, c2), h, `seed ${seed}, revision ${rev}: half swept`);
      assert.equal(referenceHashKV(unswept.db, rev, c2), h, `seed ${seed}, revision ${rev}: reference`);
    }
    // The compaction itself is part of what is hashed: history below it no longer counts.
    assert.notEqual(hashKV(unswept.db, cur, c2), hashKV(unswept.db, cur, 0));
  }
});

/** crc32c over "key" and the given key-bucket pairs, in the order given. */
function expectedHash(pairs: { key: string; main: number; tomb?: boolean; create?: number; version?: number; value?: string }[]): number {
  let crc = crc32c(Buffer.from('key'));
  for (const p of pairs) {
    const kv = p.tomb
      ? encodeKeyValue({ key: B(p.key), createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n })
      : encodeKeyValue({ key: B(p.key), createRevision: p.create!, modRevision: p.main, version: p.version!, value: B(p.value!), lease: 0n });
    crc = crc32c(kv, crc32c(revBytes(p.main, 0, p.tomb === true), crc));
  }
  return crc;
}

test('hand-checked: compaction survivors, etcd\'s keep set, and no skipping when no key exists', async (t) => {
  const s = await storeWith(t, [
    ['put', 'a', 'a1'], // 2
    ['put', 'a', 'a2'], // 3
    ['put', 'b', 'b1'], // 4
    ['del', 'b'], // 5
    ['put', 'c', 'c1'], // 6
    ['del', 'c'], // 7
  ]);
  // C = 6: the bucket holds a@3, c@6, c@7(t). At 7 only a exists (keep {a@3}): c@6, at or below C and not kept, is skipped.
  const a3 = { key: 'a', main: 3, create: 2, version: 2, value: 'a2' };
  assert.equal(hashKV(s.db, 7, 6), expectedHash([a3, { key: 'c', main: 7, tomb: true }]));
  assert.equal(hashKV(s.db, 7, 6), referenceHashKV(s.db, 7, 6));
  // C = 7: c's tombstone goes with its older version.
  assert.equal(hashKV(s.db, 7, 7), expectedHash([a3]));
  // No compaction: everything up to 7.
  assert.equal(hashKV(s.db, 7, 0), referenceHashKV(s.db, 7, 0));

  const x = await storeWith(t, [['put', 'x', 'x1'], ['del', 'x'], ['put', 'y', 'y1']]); // 2, 3, 4
  // At 3 with C = 2 no key exists: the keep set is empty and etcd skips nothing (x@2 counts).
  assert.equal(hashKV(x.db, 3, 2), expectedHash([{ key: 'x', main: 2, create: 2, version: 1, value: 'x1' }, { key: 'x', main: 3, tomb: true }]));
  // At 4, y exists: x@2 is not kept and is skipped.
  assert.equal(hashKV(x.db, 4, 2), expectedHash([{ key: 'x', main: 3, tomb: true }, { key: 'y', main: 4, create: 4, version: 1, value: 'y1' }]));
});

test('HashKV revisions: 0 is current, above current is a future revision, at or below compact is compacted (etcd 3.4)', () => {
  assert.equal(hashKVRevision(0, 20, 5), 20);
  assert.equal(hashKVRevision(-3, 20, 5), 20);
  assert.equal(hashKVRevision(20, 20, 5), 20);
  assert.throws(() => hashKVRevision(5, 20, 5), ERR_COMPACTED, 'etcd 3.4 refuses the compact revision itself');
  assert.equal(hashKVRevision(6, 20, 5), 6);
  assert.equal(hashKVRevision(7, 20, 0), 7);
  assert.throws(() => hashKVRevision(21, 20, 5), ERR_FUTURE);
  assert.throws(() => hashKVRevision(4, 20, 5), ERR_COMPACTED);
  assert.throws(() => hashKVRevision(1, 20, 5), ERR_COMPACTED);
});

test('more than 1000 history records (RocksDB query chunks) hash like the reference, with and without a compaction', async (t) => {
  const steps: Step[] = [];
  for (let i = 0; i < 1300; i++) steps.push(['put', `key/${String(i % 450).padStart(4, '0')}`, `v${i}`]);
  for (let i = 0; i < 450; i += 4) steps.push(['del', `key/${String(i).padStart(4, '0')}`]);
  const s = await storeWith(t, steps, 500);
  const o = await storeWith(t, steps);
  const cur = s.w.state.rev;
  for (const [rev, c] of [[cur, 0], [900, 0], [cur, 700], [cur, 1400], [cur, cur]]) {
    assert.equal(hashKV(s.db, rev!, c!), referenceHashKV(s.db, rev!, c!), `revision ${rev}, compact ${c}`);
  }
  await compactRange(o.db, 0, 1400);
  assert.equal(hashKV(o.db, cur, 1400), hashKV(s.db, cur, 1400));
  assert.equal(hashAll(s.db), hashAll((await storeWith(t, steps, 100)).db));
});
