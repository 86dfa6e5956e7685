// Snapshot files end to end on real RocksDB in temp dirs: a store built with
// MvccWriter/Applier is dumped by the snapshot worker, checked by the reader,
// and installed over a database holding other data. Damaged files (a flipped
// byte, truncation at many cuts, a wrong magic) are refused with
// SnapshotFormatError and leave the target untouched.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import type { PutRequest } from '../../src/proto/kv-types.js';
import { Applier } from '../../src/storage/mvcc/applier.js';
import { compactRange } from '../../src/storage/mvcc/compactor.js';
import { LeaseTable } from '../../src/storage/mvcc/leases.js';
import { MvccWriter, loadMembers } from '../../src/storage/mvcc/writer.js';
import { OneOffPool } from '../../src/workers/pool.js';
import {
  CHUNK_TARGET_BYTES, HEADER_BYTES, SnapshotFileWriter, SnapshotFormatError, TRAILER_BYTES, readSnapshotFile, verifySnapshotFile,
} from '../../src/storage/snapshot/format.js';
import { INSTALL_MARKER, installSnapshot, openStore } from '../../src/storage/snapshot/install.js';

/** The one-off pool the member makes snapshot files in. */
const pool = new OneOffPool();
after(() => pool.close());

// ------------------------------------------------------------------ harness

type T = { after(fn: () => Promise<void> | void): void };

function tempDir(t: T, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etsd-snap-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A database in its own temp dir, closed before the dir goes (after hooks run in the order they were added). */
async function openDb(t: T, name: string): Promise<RocksLevel> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etsd-snap-${name}-`));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true });
  t.after(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

interface Store { db: RocksLevel; w: MvccWriter; leases: LeaseTable; a: Applier; index: number }

function storeOn(db: RocksLevel): Store {
  const w = new MvccWriter(db);
  const leases = LeaseTable.load(db);
  return { db, w, leases, a: new Applier(w, (id) => leases.has(id)), index: w.state.appliedIndex };
}

const B = (s: string) => Buffer.from(s, 'latin1');

function pr(key: string | Buffer, value: string | Buffer, o: Partial<PutRequest> = {}): PutRequest {
  return {
    key: typeof key === 'string' ? B(key) : key, value: typeof value === 'string' ? B(value) : value,
    lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...o,
  };
}

/** One applied entry per call, flushed as the apply worker would. */
async function apply(s: Store, term: number, fn: () => void): Promise<void> {
  fn();
  s.w.markApplied(++s.index, term);
  await s.w.flush();
}

/** Every record of the database, in key order, as hex pairs (an independent scan: one unlimited query). */
function dump(db: RocksLevel): [string, string][] {
  const { rows } = db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const out: [string, string][] = [];
  for (let i = 0; i < rows.length; i += 2) out.push([rows[i]!.toString('hex'), rows[i + 1]!.toString('hex')]);
  return out;
}

/** The source: puts, overwrites (history), deletes, a lease with a key, a compaction, a membership, big values. */
async function buildSource(t: T): Promise<Store> {
  const s = storeOn(await openDb(t, 'src'));
  await apply(s, 1, () => s.a.put(pr('a', '1')));
  await apply(s, 1, () => s.a.put(pr('a', '2')));
  await apply(s, 2, () => s.a.put(pr('b', 'x')));
  await apply(s, 2, () => s.a.put(pr(Buffer.from([0x00, 0x01, 0x00]), Buffer.from([0xff, 0x00]))));
  await apply(s, 2, () => s.leases.grant(s.w, 42n, 30));
  await apply(s, 2, () => s.a.put(pr('leased', 'v', { lease: 42n })));
  await apply(s, 2, () => s.a.deleteRange({ key: B('b'), rangeEnd: B(''), prevKv: false }));
  for (let i = 0; i < 300; i++) await apply(s, 3, () => s.a.put(pr(`k/${String(i).padStart(4, '0')}`, `value-${i}`.repeat(20))));
  // Larger than a chunk, and several of them: chunks cut at pair boundaries, one pair per big chunk.
  await apply(s, 3, () => s.a.put(pr('big1', Buffer.alloc(CHUNK_TARGET_BYTES + 5000, 7))));
  await apply(s, 3, () => s.a.put(pr('big2', Buffer.alloc(CHUNK_TARGET_BYTES / 2, 9))));
  await apply(s, 3, () => s.a.put(pr('a', '3')));
  await apply(s, 3, () => s.w.setMembers(B('{"members":["m1","m2"]}')));
  await apply(s, 3, () => s.w.setCompactRev(3));
  await compactRange(s.db, 0, 3);
  await s.w.markCompactionDone(3);
  await apply(s, 4, () => s.a.put(pr('a', '4')));
  return s;
}

/** A target holding unrelated data, some of it under the same keys. */
async function buildTarget(t: T): Promise<Store> {
  const s = storeOn(await openDb(t, 'dst'));
  await apply(s, 1, () => s.a.put(pr('a', 'old')));
  await apply(s, 1, () => s.a.put(pr('zzz', 'only-here')));
  await apply(s, 1, () => s.leases.grant(s.w, 99n, 10));
  await apply(s, 1, () => s.a.put(pr('old-leased', 'v', { lease: 99n })));
  await apply(s, 1, () => s.w.setMembers(B('{"members":["other"]}')));
  return s;
}

async function snapshotOf(t: T, s: Store): Promise<string> {
  const file = path.join(tempDir(t, 'file'), 'db.snap');
  const info = await pool.run({ kind: 'snapshot', handle: s.db.handle, path: file });
  assert.equal(info.index, s.w.state.appliedIndex);
  assert.equal(info.term, s.w.state.appliedTerm);
  assert.equal(info.rev, s.w.state.rev);
  assert.equal(info.compactRev, 3);
  assert.equal(info.pairs, dump(s.db).length);
  assert.equal(info.bytes, fs.statSync(file).size);
  assert.ok(!fs.existsSync(file + '.tmp'));
  return file;
}

async function refuses(fn: () => unknown, code: SnapshotFormatError['code']): Promise<void> {
  await assert.rejects(async () => { await fn(); }, (err: unknown) => {
    assert.ok(err instanceof SnapshotFormatError, `want SnapshotFormatError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

// ------------------------------------------------------------------ tests

test('the snapshot worker dumps every record; the reader checks it and hands back the same pairs', async (t) => {
  const src = await buildSource(t);
  const file = await snapshotOf(t, src);
  const got: [string, string][] = [];
  let chunks = 0;
  const sum = readSnapshotFile(file, ({ keys, values }) => {
    chunks++;
    keys.forEach((k, i) => got.push([k.toString('hex'), values[i]!.toString('hex')]));
  });
  assert.deepEqual(got, dump(src.db));
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.deepEqual(sum.header, { appliedIndex: src.w.state.appliedIndex, appliedTerm: 4, revision: src.w.state.rev, compactRevision: 3 });
  assert.equal(sum.pairs, got.length);
  assert.deepEqual(verifySnapshotFile(file), sum);
});

test('installing replaces everything: identical records, no old data, and the rebuilt state works', async (t) => {
  const src = await buildSource(t);
  const file = await snapshotOf(t, src);
  const dst = await buildTarget(t);
  const { store, summary } = await installSnapshot(dst.db, file);

  assert.deepEqual(dump(dst.db), dump(src.db));
  assert.equal(summary.header.appliedIndex, src.w.state.appliedIndex);
  assert.deepEqual(store.writer.state, src.w.state);
  assert.deepEqual(store.leases.all(), [{ id: 42n, ttl: 30 }]);
  assert.equal(store.leases.has(99n), false);
  assert.deepEqual(loadMembers(dst.db), B('{"members":["m1","m2"]}'));
  assert.equal(dst.db._getManySync([INSTALL_MARKER])[0], undefined);

  // The state is the snapshot's, not the old one cached: versions continue from the source.
  store.applier.put(pr('a', '5'));
  store.applier.put(pr('zzz', 'new'));
  store.writer.markApplied(src.w.state.appliedIndex + 1, 4);
  await store.writer.flush();
  const a = store.writer.reader.getLatest(B('a'))!;
  assert.equal(a.version, 5);
  assert.equal(a.modRevision, src.w.state.rev + 1);
  assert.equal(store.writer.reader.getLatest(B('zzz'))!.version, 1, 'zzz was never in the snapshot');
  assert.throws(() => store.applier.put(pr('x', 'y', { lease: 99n })), /lease not found/);
});

test('a damaged snapshot is refused with SnapshotFormatError and the target is unchanged', async (t) => {
  const src = await buildSource(t);
  const file = await snapshotOf(t, src);
  const dst = await buildTarget(t);
  const before = dump(dst.db);
  const good = fs.readFileSync(file);
  const dir = tempDir(t, 'bad');
  let n = 0;
  const variant = (bytes: Buffer): string => {
    const p = path.join(dir, `bad-${n++}.snap`);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const flipped = (at: number) => { const b = Buffer.from(good); b[at]! ^= 0x10; return b; };

  const cases: [string, Buffer, SnapshotFormatError['code']][] = [
    ['byte flipped in the first chunk', flipped(HEADER_BYTES + 8 + 20), 'BAD_CRC'],
    ['byte flipped in the last chunk', flipped(good.length - TRAILER_BYTES - 3), 'BAD_CRC'],
    ['byte flipped in the header revision', flipped(33), 'BAD_CRC'],
    ['chunk CRC flipped', flipped(HEADER_BYTES + 4), 'BAD_CRC'],
    ['wrong magic', Buffer.concat([B('notasnap'), good.subarray(8)]), 'BAD_MAGIC'],
    ['pair count in the trailer', flipped(good.length - TRAILER_BYTES + 6), 'BAD_TRAILER'],
    ['header CRC in the trailer', flipped(good.length - TRAILER_BYTES + 21), 'BAD_CRC'],
    ['sentinel', flipped(good.length - 1), 'BAD_TRAILER'],
    ['a byte after the trailer', Buffer.concat([good, Buffer.from([0])]), 'BAD_TRAILER'],
    ['empty file', Buffer.alloc(0), 'TRUNCATED'],
  ];
  const cuts = [1, 8, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 4, HEADER_BYTES + 8, HEADER_BYTES + 1000,
    Math.floor(good.length / 2), good.length - TRAILER_BYTES - 1, good.length - TRAILER_BYTES, good.length - 8, good.length - 1];
  for (const cut of cuts) cases.push([`truncated at ${cut}`, good.subarray(0, cut), 'TRUNCATED']);

  for (const [what, bytes, code] of cases) {
    const p = variant(bytes);
    await t.test(what, async () => {
      await refuses(() => verifySnapshotFile(p), code);
      await refuses(() => installSnapshot(dst.db, p), code);
      assert.deepEqual(dump(dst.db), before, 'target changed');
    });
  }
  // The good file still installs after all that.
  await installSnapshot(dst.db, file);
  assert.deepEqual(dump(dst.db), dump(src.db));
});

test('an install cut short by a crash is finished at boot from the marker', async (t) => {
  const src = await buildSource(t);
  const file = await snapshotOf(t, src);
  const dst = await buildTarget(t);
  // What a crash after the marker and part of the writes leaves behind.
  await dst.db.batch().put(INSTALL_MARKER, B(file)).del(B('lzzz')).put(B('l half'), B('x')).write({ sync: true });
  const store = await openStore(dst.db);
  assert.deepEqual(dump(dst.db), dump(src.db));
  assert.deepEqual(store.writer.state, src.w.state);

  // With the file gone, boot refuses rather than run on half a database.
  await dst.db.batch().put(INSTALL_MARKER, B(file + '.gone')).write({ sync: true });
  await assert.rejects(openStore(dst.db), /half-way through installing snapshot/);
});

test('the snapshot is one point in time while writes go on', async (t) => {
  const src = await buildSource(t);
  const file = path.join(tempDir(t, 'file'), 'live.snap');
  const snap = pool.run({ kind: 'snapshot', handle: src.db.handle, path: file });
  let writes = 0;
  let done = false;
  snap.then(() => { done = true; }, () => { done = true; });
  // A flush can resolve without a turn of the event loop: yield each time, or the worker's answer never lands.
  while (!done) {
    await apply(src, 5, () => src.a.put(pr(`live/${writes}`, 'x'.repeat(100))));
    writes++;
    await new Promise((r) => setImmediate(r));
  }
  const info = await snap;
  const dst = await buildTarget(t);
  // install checks the header against the meta records it wrote; check the data against the header too.
  const { store } = await installSnapshot(dst.db, file);
  assert.equal(store.writer.state.rev, info.rev);
  const { rows } = dst.db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer', gte: B('l'), lt: B('m') });
  const live = rows.filter((_, i) => i % 2 === 0 && rows[i]!.subarray(1).toString().startsWith('live/')).length;
  assert.equal(info.rev - live, src.w.state.rev - writes, `each live put is one revision: ${live} of ${writes} in the snapshot`);
});

test('the writer refuses keys out of order; a pair over the chunk target gets a chunk of its own', async (t) => {
  const p = path.join(tempDir(t, 'w'), 'x.snap');
  const w = new SnapshotFileWriter(p, { appliedIndex: 1, appliedTerm: 1, revision: 1, compactRevision: 0 });
  w.add(B('b'), B('1'));
  assert.throws(() => w.add(B('a'), B('2')), /out of order/);
  assert.throws(() => w.add(B('b'), B('2')), /out of order/);
  w.add(B('c'), Buffer.alloc(2 * CHUNK_TARGET_BYTES, 1));
  w.add(B('d'), B('4'));
  const r = w.finish();
  assert.equal(r.pairs, 3);
  const sizes: number[] = [];
  readSnapshotFile(p, ({ keys }) => sizes.push(keys.length));
  assert.deepEqual(sizes, [1, 1, 1]);
});
