// Property tests of the MVCC RocksDB key layout (keys.ts) and the stored
// version codec (record.ts), over seeded random binary keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HISTORY_END, LATEST_END, MAX_REV, PREFIX_HISTORY, PREFIX_LATEST, byRevKey, decodeByRevKey, decodeHistoryKey,
  historyKey, historyKeyEnd, historyKeyPrefix, historyScanStart, isFromKey, latestKey, userKeyFromLatest,
} from '../../src/storage/mvcc/keys.js';
import {
  RECORD_HEADER, decodeVersion, encodeVersion, isTombstoneRecord, modRevisionOf, type StoredVersion,
} from '../../src/storage/mvcc/record.js';
import { makeRng } from '../../src/raft/rng.js';

const prng = makeRng;

const SEEDS = [1, 2, 3, 0xdeadbeef, 20240601];

// Bytes that stress the escaping: the escape byte, the terminator byte, and their neighbours.
const SPECIAL = [0x00, 0x01, 0x02, 0xfe, 0xff, 0x61];

function randomKey(rnd: () => number, maxLen = 6): Buffer {
  const len = Math.floor(rnd() * (maxLen + 1));
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = rnd() < 0.7 ? SPECIAL[Math.floor(rnd() * SPECIAL.length)]! : Math.floor(rnd() * 256);
  return b;
}

/** A key set rich in shared prefixes: random keys plus their prefixes and one-byte extensions. */
function keySet(rnd: () => number, n: number): Buffer[] {
  const out: Buffer[] = [Buffer.alloc(0)];
  while (out.length < n) {
    const k = randomKey(rnd);
    out.push(k);
    if (k.length > 0) out.push(k.subarray(0, Math.floor(rnd() * k.length)));
    out.push(Buffer.concat([k, Buffer.from([SPECIAL[Math.floor(rnd() * SPECIAL.length)]!])]));
  }
  return out;
}

function randomRev(rnd: () => number): number {
  const r = rnd();
  if (r < 0.15) return Math.floor(rnd() * 4); // 0..3
  if (r < 0.3) return MAX_REV - Math.floor(rnd() * 4); // near the top
  if (r < 0.4) return 2 ** 32 + Math.floor(rnd() * 4) - 2; // across the u32 boundary
  return Math.floor(rnd() * MAX_REV);
}

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

test('historyKey byte order is (user key ascending, revision descending)', () => {
  for (const seed of SEEDS) {
    const rnd = prng(seed);
    const keys = keySet(rnd, 120);
    const items = keys.map((k) => ({ k, rev: randomRev(rnd) }));
    // Same key at several revisions too.
    for (let i = 0; i < 40; i++) items.push({ k: keys[Math.floor(rnd() * keys.length)]!, rev: randomRev(rnd) });
    for (const a of items) {
      const ha = historyKey(a.k, a.rev);
      assert.equal(ha[0], PREFIX_HISTORY);
      assert.ok(Buffer.compare(ha, HISTORY_END) < 0);
      for (const b of items) {
        const want = Buffer.compare(a.k, b.k) || sign(b.rev - a.rev);
        const got = sign(Buffer.compare(ha, historyKey(b.k, b.rev)));
        if (got !== want) {
          assert.fail(`seed ${seed}: (${a.k.toString('hex')}, ${a.rev}) vs (${b.k.toString('hex')}, ${b.rev}): got ${got}, want ${want}`);
        }
      }
    }
  }
});

test('decodeHistoryKey round trips keys with 00/ff bytes, the empty key, and extreme revisions', () => {
  for (const seed of SEEDS) {
    const rnd = prng(seed);
    for (const k of keySet(rnd, 300)) {
      for (const rev of [0, 1, 2, randomRev(rnd), MAX_REV - 1, MAX_REV]) {
        const d = decodeHistoryKey(historyKey(k, rev));
        assert.ok(d.key.equals(k), `seed ${seed}: key ${k.toString('hex')} decoded as ${d.key.toString('hex')}`);
        assert.equal(d.rev, rev);
      }
    }
  }
  // A key that is all escape bytes, and a view into a larger buffer.
  const zeros = Buffer.alloc(5);
  assert.ok(decodeHistoryKey(historyKey(zeros, 7)).key.equals(zeros));
  const big = Buffer.alloc(64, 0xaa);
  const hk = historyKey(Buffer.from([0, 0xff, 0, 1]), 99);
  hk.copy(big, 10);
  const d = decodeHistoryKey(big.subarray(10, 10 + hk.length));
  assert.ok(d.key.equals(Buffer.from([0, 0xff, 0, 1])));
  assert.equal(d.rev, 99);
});

test('historyKey(k, rev) .. historyKeyEnd(k) holds exactly the versions of k at or below rev', () => {
  for (const seed of SEEDS) {
    const rnd = prng(seed);
    const keys = keySet(rnd, 80);
    for (const k of keys) {
      const rev = randomRev(rnd);
      const lo = historyKey(k, rev);
      const hi = historyKeyEnd(k);
      assert.ok(Buffer.compare(historyKeyPrefix(k), lo) < 0);
      for (const o of keys) {
        for (const orev of [0, 1, rev === 0 ? 0 : rev - 1, rev, rev === MAX_REV ? MAX_REV : rev + 1, MAX_REV, randomRev(rnd)]) {
          const h = historyKey(o, orev);
          const inside = Buffer.compare(h, lo) >= 0 && Buffer.compare(h, hi) < 0;
          const want = o.equals(k) && orev <= rev;
          if (inside !== want) {
            assert.fail(`seed ${seed}: k=${k.toString('hex')}@${rev}, entry ${o.toString('hex')}@${orev}: inside=${inside}`);
          }
          // historyKeyEnd(k) is above every entry of keys <= k and below every entry of keys > k.
          assert.equal(Buffer.compare(h, hi) < 0, Buffer.compare(o, k) <= 0);
        }
      }
    }
  }
});

test('historyScanStart(s) .. historyScanStart(e) holds exactly the entries of keys in [s, e)', () => {
  for (const seed of SEEDS) {
    const rnd = prng(seed);
    const keys = keySet(rnd, 80);
    for (let i = 0; i < 200; i++) {
      const s = keys[Math.floor(rnd() * keys.length)]!;
      const e = keys[Math.floor(rnd() * keys.length)]!;
      const lo = historyScanStart(s);
      const hi = historyScanStart(e);
      for (const o of keys) {
        for (const orev of [0, 1, MAX_REV, randomRev(rnd)]) {
          const h = historyKey(o, orev);
          assert.equal(Buffer.compare(h, lo) >= 0, Buffer.compare(o, s) >= 0,
            `seed ${seed}: start ${s.toString('hex')}, entry ${o.toString('hex')}@${orev}`);
          assert.equal(Buffer.compare(h, hi) < 0, Buffer.compare(o, e) < 0,
            `seed ${seed}: end ${e.toString('hex')}, entry ${o.toString('hex')}@${orev}`);
        }
      }
    }
  }
  // The empty key's scan start is the bare prefix: below every history entry.
  assert.ok(historyScanStart(Buffer.alloc(0)).equals(Buffer.from([PREFIX_HISTORY])));
});

test('latestKey order equals user key order; userKeyFromLatest inverts it', () => {
  for (const seed of SEEDS) {
    const rnd = prng(seed);
    const keys = keySet(rnd, 150);
    for (const a of keys) {
      const la = latestKey(a);
      assert.equal(la[0], PREFIX_LATEST);
      assert.ok(Buffer.compare(la, LATEST_END) < 0);
      assert.ok(userKeyFromLatest(la).equals(a));
      for (const b of keys) assert.equal(sign(Buffer.compare(la, latestKey(b))), Buffer.compare(a, b));
    }
  }
  // Every 'k' key sorts below every 'l' key (distinct families).
  assert.ok(Buffer.compare(historyKey(Buffer.alloc(8, 0xff), 0), latestKey(Buffer.alloc(0))) < 0);
});

test('byRevKey order equals (rev, sub) order and decodes back', () => {
  const rnd = prng(7);
  const items: Array<{ rev: number; sub: number }> = [];
  for (let i = 0; i < 150; i++) {
    items.push({ rev: randomRev(rnd), sub: rnd() < 0.5 ? Math.floor(rnd() * 4) : Math.floor(rnd() * 2 ** 32) });
  }
  for (const a of items) {
    const ka = byRevKey(a.rev, a.sub);
    assert.deepEqual(decodeByRevKey(ka), a);
    for (const b of items) {
      const want = sign(a.rev - b.rev) || sign(a.sub - b.sub);
      assert.equal(sign(Buffer.compare(ka, byRevKey(b.rev, b.sub))), want);
    }
  }
});

test('isFromKey is exactly the single byte 0x00', () => {
  assert.equal(isFromKey(Buffer.from([0])), true);
  assert.equal(isFromKey(Buffer.alloc(0)), false);
  assert.equal(isFromKey(Buffer.from([0, 0])), false);
  assert.equal(isFromKey(Buffer.from([1])), false);
});

test('record codec round trips live versions, tombstones, negative leases and revisions near 2^48', () => {
  const rnd = prng(99);
  const leases = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 0x694d_7a2b_1c3e_5f00n, -12345678901234n];
  const revs = [0, 1, 2, 2 ** 32, 2 ** 48 - 2, 2 ** 48 - 1];
  for (let i = 0; i < 500; i++) {
    const tombstone = rnd() < 0.3;
    const pick = () => (rnd() < 0.5 ? revs[Math.floor(rnd() * revs.length)]! : Math.floor(rnd() * 2 ** 48));
    const v: StoredVersion = tombstone
      ? { tombstone, createRevision: 0, modRevision: pick(), version: 0, lease: 0n, sub: Math.floor(rnd() * 2 ** 32), value: Buffer.alloc(0) }
      : {
        tombstone, createRevision: pick(), modRevision: pick(), version: pick(),
        lease: leases[Math.floor(rnd() * leases.length)]!, sub: rnd() < 0.5 ? 0 : Math.floor(rnd() * 2 ** 32),
        value: randomKey(rnd, 40),
      };
    const enc = encodeVersion(v);
    assert.equal(enc.length, RECORD_HEADER + v.value.length);
    assert.equal(isTombstoneRecord(enc), tombstone);
    assert.equal(modRevisionOf(enc), v.modRevision);
    const dec = decodeVersion(enc);
    assert.deepEqual({ ...dec, value: Buffer.from(dec.value) }, { ...v, value: Buffer.from(v.value) });
  }
  assert.throws(() => decodeVersion(Buffer.alloc(RECORD_HEADER - 1)), /too short/);
});
