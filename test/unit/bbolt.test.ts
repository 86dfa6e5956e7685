// The bbolt writer and reader on real files, and the real bbolt (inside
// `etcdctl snapshot status`, which opens the file with bbolt and runs its
// tx.Check consistency walk) as the judge: trees of one leaf, of several
// branch levels, overflow pages for big values, empty and nested buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '../../src/common/crc32c.js';
import { BboltWriter } from '../../src/storage/bbolt/writer.js';
import { BboltFormatError, BboltReader, type BucketRef } from '../../src/storage/bbolt/reader.js';
import { fnv64a } from '../../src/storage/bbolt/layout.js';
import { makeRng } from '../../src/raft/rng.js';

type T = { after(fn: () => void): void };
function tempDir(t: T): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-bbolt-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function revKey(main: number, sub: number): Buffer {
  const b = Buffer.alloc(17);
  b.writeBigUInt64BE(BigInt(main), 0);
  b[8] = 0x5f;
  b.writeBigUInt64BE(BigInt(sub), 9);
  return b;
}

interface Status { hash: number; revision: number; totalKey: number; totalSize: number }
function etcdctlStatus(file: string): Status {
  const out = execFileSync('etcdctl', ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } });
  return JSON.parse(out.toString()) as Status;
}

/** The Status hash etcd computes: CRC-32C over each top-level bucket's name, then its keys and values. */
function statusHash(r: BboltReader): { hash: number; totalKey: number } {
  let h = 0;
  let totalKey = 0;
  for (const b of r.entries(r.root)) {
    h = crc32c(b.key, h);
    // bbolt's ForEach gives a nested bucket's entry a nil value.
    for (const e of r.entries(r.bucketRef(b.value))) { h = crc32c(e.bucket ? Buffer.alloc(0) : e.value, crc32c(e.key, h)); totalKey++; }
  }
  return { hash: h, totalKey };
}

test('FNV-64a matches the reference vectors', () => {
  assert.equal(fnv64a(Buffer.alloc(0)), 0xcbf29ce484222325n);
  assert.equal(fnv64a(Buffer.from('a')), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv64a(Buffer.from('foobar')), 0x85944171f73967e8n);
});

test('a written file reads back and passes bbolt\'s own check (etcdctl snapshot status)', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'db');
  const w = new BboltWriter(file);
  const keys = w.bucket();
  const want: [Buffer, Buffer][] = [];
  // Enough pairs for three tree levels, with a few values that need overflow pages.
  for (let i = 1; i <= 20000; i++) {
    const v = Buffer.alloc(i % 5000 === 0 ? 9000 : 20 + (i % 50), i & 0xff);
    const k = revKey(i + 1, 0);
    keys.put(k, v);
    want.push([k, v]);
  }
  const keyRoot = keys.finish();
  const empty = w.bucket().finish();
  const child = w.bucket();
  child.put(Buffer.from('x'), Buffer.from('1'));
  const childRoot = child.finish();
  const parent = w.bucket();
  parent.put(Buffer.from('a'), Buffer.from('plain'));
  parent.putBucket(Buffer.from('child'), childRoot);
  const parentRoot = parent.finish();
  const size = w.finish([
    { name: Buffer.from('empty'), root: empty },
    { name: Buffer.from('key'), root: keyRoot },
    { name: Buffer.from('nested'), root: parentRoot },
  ]);
  assert.equal(fs.statSync(file).size, size);
  assert.equal(size % 4096, 0);

  const r = BboltReader.open(file);
  t.after(() => r.close());
  assert.deepEqual(r.metaProblems(), { page0: null, page1: null });
  const kb = r.bucket(r.root, Buffer.from('key'))!;
  let i = 0;
  for (const e of r.entries(kb)) {
    assert.ok(e.key.equals(want[i]![0]) && e.value.equals(want[i]![1]), `pair ${i}`);
    i++;
  }
  assert.equal(i, want.length);
  assert.equal([...r.entries(r.bucket(r.root, Buffer.from('empty'))!)].length, 0);
  const nested = r.bucket(r.root, Buffer.from('nested'))!;
  const inner = r.bucket(nested, Buffer.from('child')) as BucketRef;
  assert.deepEqual([...r.entries(inner)].map((e) => e.key.toString()), ['x']);
  assert.equal(r.bucket(r.root, Buffer.from('nope')), null);

  const st = etcdctlStatus(file);
  const mine = statusHash(r);
  assert.equal(st.totalSize, size);
  assert.equal(st.revision, 20001);
  // etcdctl counts every pair of every top-level bucket, nested bucket entries included.
  assert.equal(st.totalKey, mine.totalKey);
  assert.equal(st.hash, mine.hash);
});

test('a damaged meta page falls back to the other; both damaged is refused', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'db');
  const w = new BboltWriter(file);
  const b = w.bucket();
  b.put(Buffer.from('k'), Buffer.from('v'));
  w.finish([{ name: Buffer.from('b'), root: b.finish() }]);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 4096 + 16 + 20); // meta 1's root page id
  fs.closeSync(fd);
  const r = BboltReader.open(file);
  assert.equal(r.metaProblems().page1, 'checksum');
  assert.equal(r.meta.txid, 2);
  assert.deepEqual([...r.entries(r.bucket(r.root, Buffer.from('b'))!)].map((e) => e.value.toString()), ['v']);
  r.close();
  const fd2 = fs.openSync(file, 'r+');
  fs.writeSync(fd2, Buffer.from([0xff]), 0, 1, 16 + 20);
  fs.closeSync(fd2);
  assert.throws(() => BboltReader.open(file), BboltFormatError);
});

test('keys out of order are refused by the writer', (t) => {
  const w = new BboltWriter(path.join(tempDir(t), 'db'));
  const b = w.bucket();
  b.put(Buffer.from('b'), Buffer.alloc(0));
  assert.throws(() => b.put(Buffer.from('a'), Buffer.alloc(0)), /out of order/);
  w.close();
});

test('page and meta layout: two metas (txid 2 and 3) with magic, version, page size, freelist page 2 and the high-water mark; typed page headers', (t) => {
  const file = path.join(tempDir(t), 'db');
  const w = new BboltWriter(file);
  const b = w.bucket();
  // Three leaves' worth of pairs: one branch page above them.
  for (let i = 0; i < 300; i++) b.put(revKey(i + 2, 0), Buffer.alloc(30, i));
  const size = w.finish([{ name: Buffer.from('key'), root: b.finish() }]);
  const raw = fs.readFileSync(file);
  assert.equal(raw.length, size);
  const pages = size / 4096;
  for (const [page, txid] of [[0, 2], [1, 3]] as const) {
    const p = raw.subarray(page * 4096, page * 4096 + 4096);
    assert.equal(p.readBigUInt64LE(0), BigInt(page), 'page id');
    assert.equal(p.readUInt16LE(8), 0x04, 'meta flag');
    assert.equal(p.readUInt32LE(16), 0xed0cdaed, 'magic');
    assert.equal(p.readUInt32LE(20), 2, 'version');
    assert.equal(p.readUInt32LE(24), 4096, 'page size');
    assert.equal(p.readBigUInt64LE(48), 2n, 'freelist page');
    assert.equal(p.readBigUInt64LE(56), BigInt(pages), 'high-water mark');
    assert.equal(p.readBigUInt64LE(64), BigInt(txid), 'txid');
    assert.equal(p.readBigUInt64LE(72), fnv64a(p.subarray(16, 72)), 'checksum');
  }
  const fl = raw.subarray(2 * 4096, 3 * 4096);
  assert.equal(fl.readBigUInt64LE(0), 2n);
  assert.equal(fl.readUInt16LE(8), 0x10, 'freelist flag');
  assert.equal(fl.readUInt16LE(10), 0, 'no free pages');
  const kinds = new Map<number, number>();
  for (let id = 3; id < pages;) {
    const p = raw.subarray(id * 4096);
    assert.equal(Number(p.readBigUInt64LE(0)), id, `page ${id} header id`);
    const flags = p.readUInt16LE(8);
    kinds.set(flags, (kinds.get(flags) ?? 0) + 1);
    id += 1 + p.readUInt32LE(12);
  }
  // 300 elements of 16+17+30 bytes, 64 to a 4 KiB leaf: five leaves, one branch above them, and the root bucket's leaf.
  assert.deepEqual([...kinds.entries()].sort(), [[0x01, 1], [0x02, 6]]);
});

test('random buckets round-trip through writer and reader', (t) => {
  const file = path.join(tempDir(t), 'db');
  const rng = makeRng(12345);
  const rnd = (n: number): number => Math.floor(rng() * n);
  const want = new Map<string, [Buffer, Buffer][]>();
  const w = new BboltWriter(file);
  const roots: { name: Buffer; root: number }[] = [];
  for (const name of ['alpha', 'beta', 'gamma']) {
    const keys = new Set<string>();
    const n = 500 + rnd(2000);
    while (keys.size < n) keys.add(Buffer.from(Array.from({ length: 1 + rnd(40) }, () => rnd(256))).toString('hex'));
    const pairs = [...keys].map((k) => Buffer.from(k, 'hex')).sort(Buffer.compare)
      .map((k): [Buffer, Buffer] => [k, Buffer.from(Array.from({ length: rnd(10) === 0 ? 5000 + rnd(6000) : rnd(100) }, () => rnd(256)))]);
    const b = w.bucket();
    for (const [k, v] of pairs) b.put(k, v);
    roots.push({ name: Buffer.from(name), root: b.finish() });
    want.set(name, pairs);
  }
  w.finish(roots);
  const r = BboltReader.open(file);
  t.after(() => r.close());
  for (const [name, pairs] of want) {
    const got = [...r.entries(r.bucket(r.root, Buffer.from(name))!)].map((e): [Buffer, Buffer] => [e.key, e.value]);
    assert.equal(got.length, pairs.length, name);
    got.forEach(([k, v], i) => assert.ok(k.equals(pairs[i]![0]) && v.equals(pairs[i]![1]), `${name} pair ${i}`));
  }
  const st = etcdctlStatus(file);
  assert.equal(st.hash, statusHash(r).hash);
});

test('values of half a page or more share multi-page leaves: at most 16 pages, 90% used, and bbolt\'s check holds', (t) => {
  const dir = tempDir(t);
  for (const valueBytes of [1000, 2100, 4096, 9000]) {
    const file = path.join(dir, `db-${valueBytes}`);
    const w = new BboltWriter(file);
    const b = w.bucket();
    const n = 600;
    for (let i = 0; i < n; i++) b.put(revKey(i + 2, 0), Buffer.alloc(valueBytes, i));
    const size = w.finish([{ name: Buffer.from('key'), root: b.finish() }]);
    const raw = fs.readFileSync(file);
    let leafPages = 0;
    let leafBytes = 0;
    for (let id = 3; id < size / 4096;) {
      const p = raw.subarray(id * 4096);
      const pages = 1 + p.readUInt32LE(12);
      if (p.readUInt16LE(8) === 0x02 && p.readUInt16LE(10) > 1) {
        assert.ok(pages <= 16, `${valueBytes} B values: a leaf of ${pages} pages`);
        leafPages += pages;
        leafBytes += 16 + p.readUInt16LE(10) * (16 + 17 + valueBytes);
      }
      id += pages;
    }
    // Before, one 4096 B value took a two-page leaf of its own (50% used).
    assert.ok(leafBytes / (leafPages * 4096) > 0.85, `${valueBytes} B values: leaves ${(100 * leafBytes / (leafPages * 4096)).toFixed(0)}% used`);
    const r = BboltReader.open(file);
    const got = [...r.entries(r.bucket(r.root, Buffer.from('key'))!)];
    assert.equal(got.length, n);
    got.forEach((e, i) => assert.ok(e.key.equals(revKey(i + 2, 0)) && e.value.equals(Buffer.alloc(valueBytes, i)), `pair ${i}`));
    assert.equal(etcdctlStatus(file).hash, statusHash(r).hash);
    r.close();
  }
});
