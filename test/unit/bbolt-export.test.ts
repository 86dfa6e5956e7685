// The etcd-format export and import on real RocksDB stores, no servers: a
// seeded history (puts, leases, single and ranged deletes, a multi-key txn
// shape via ranged deletes) with a compaction that is unswept, half swept or
// swept, exported to a bbolt file and imported into an empty store, gives
// the same records as the fully swept original (every family: latest,
// history, by-revision, leases and their keys), the same revision and
// compaction, and the same HashKV. And the sha256 trailer check refuses a
// changed byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { RocksLevel } from '@nxtedition/rocksdb';
import { openTestStore, type TestStore } from '../common/mvcc-store.js';
import { compactRange } from '../../src/storage/mvcc/compactor.js';
import { hashKV } from '../../src/storage/mvcc/hash.js';
import { PREFIX_META } from '../../src/storage/mvcc/keys.js';
import { loadWriterState } from '../../src/storage/mvcc/writer.js';
import { exportEtcdDb } from '../../src/storage/bbolt/export.js';
import { checkSnapshotHash, importEtcdDb } from '../../src/storage/bbolt/import.js';
import { makeRng } from '../../src/raft/rng.js';

type T = { after(fn: () => Promise<void> | void): void };
const B = (s: string) => Buffer.from(s, 'latin1');
const LEASE = 0x1234n;

function tempDir(t: T): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-bbolt-export-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A seeded history of n requests over a few keys (and enough distinct ones to pass 1000 records). */
async function history(t: T, seed: number, n: number): Promise<TestStore> {
  const s = await openTestStore(t, 'export', (id) => id === LEASE);
  s.w.putLease(LEASE, 600);
  const rnd = makeRng(seed);
  const keys = ['a', 'b', 'c', 'd', 'e', 'a\0', 'a\0b', ...Array.from({ length: 40 }, (_, i) => `k/${i}`)];
  for (let i = 0; i < n; i++) {
    const k = keys[Math.floor(rnd() * keys.length)]!;
    const r = rnd();
    if (r < 0.7) s.a.put({ key: B(k), value: Buffer.alloc(Math.floor(rnd() * 300), i & 0xff), lease: r < 0.1 ? LEASE : 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
    else if (r < 0.9) s.a.deleteRange({ key: B(k), rangeEnd: Buffer.alloc(0), prevKv: false });
    else s.a.deleteRange({ key: B('b'), rangeEnd: B('e'), prevKv: false });
    if (i % 200 === 199) { s.w.markApplied(i + 1, 1); await s.w.flush(); }
  }
  s.w.markApplied(n, 1);
  await s.w.flush();
  return s;
}

/** Every record but the meta family, as hex pairs. */
function records(db: RocksLevel): string[] {
  const { rows } = db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer', gte: Buffer.alloc(1), lt: Buffer.from([0xff]) });
  const out: string[] = [];
  for (let i = 0; i < rows.length; i += 2) if (rows[i]![0] !== PREFIX_META) out.push(`${rows[i]!.toString('hex')}=${rows[i + 1]!.toString('hex')}`);
  return out;
}

async function imported(t: T, file: string): Promise<RocksLevel> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-bbolt-import-'));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true });
  // Closed before its directory goes.
  t.after(async () => { await db.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  await importEtcdDb(file, db);
  return db;
}

for (const sweep of ['unswept', 'half swept', 'swept'] as const) {
  test(`export then import gives the swept store's records, revision, compaction and HashKV (compaction ${sweep})`, async (t) => {
    const steps = 1500;
    const orig = await history(t, 7, steps);
    const ref = await history(t, 7, steps);
    const cur = orig.w.state.rev;
    const c = Math.floor(cur * 0.6);
    // The compaction as the store records it; the sweep done fully, partly, or not at all.
    orig.w.setCompactRev(c);
    await orig.w.flush();
    if (sweep === 'swept') await compactRange(orig.db, 0, c);
    if (sweep === 'half swept') await compactRange(orig.db, Math.floor(c / 2), c);
    ref.w.setCompactRev(c);
    await ref.w.flush();
    await compactRange(ref.db, 0, c);

    const file = path.join(tempDir(t), 'snap.db');
    const info = await exportEtcdDb(orig.db, file, [{ id: 0x8e9e05c52164694dn, name: 'm1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: [], isLearner: false }]);
    assert.equal(info.revision, cur);
    assert.equal(info.compactRevision, c);
    assert.equal(info.bytes, fs.statSync(file).size);
    const db = await imported(t, file);

    const st = loadWriterState(db);
    assert.equal(st.rev, cur);
    assert.equal(st.compactRev, c);
    assert.equal(st.compactDoneRev, c);
    const want = records(ref.db);
    assert.ok(want.length > 1000, `${want.length} records`);
    assert.deepEqual(records(db), want);
    for (const rev of [c + 1, Math.floor((c + cur) / 2), cur]) assert.equal(hashKV(db, rev, c), hashKV(orig.db, rev, c), `HashKV at ${rev}`);
  });
}

test('the sha256 trailer: checked, a changed byte refused, a file without one needs skipHashCheck', (t) => {
  const dir = tempDir(t);
  const body = Buffer.alloc(4096 * 3, 7);
  const withHash = path.join(dir, 'with');
  fs.writeFileSync(withHash, Buffer.concat([body, createHash('sha256').update(body).digest()]));
  checkSnapshotHash(withHash, false);
  const fd = fs.openSync(withHash, 'r+');
  fs.writeSync(fd, Buffer.from([8]), 0, 1, 5000);
  fs.closeSync(fd);
  assert.throws(() => checkSnapshotHash(withHash, false), /^Error: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}$/);
  checkSnapshotHash(withHash, true);
  const bare = path.join(dir, 'bare');
  fs.writeFileSync(bare, body);
  assert.throws(() => checkSnapshotHash(bare, false), /^Error: snapshot missing hash but --skip-hash-check=false$/);
  checkSnapshotHash(bare, true);
});
