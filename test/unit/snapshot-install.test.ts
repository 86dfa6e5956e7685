// The real apply worker installing a snapshot from a control record on its
// inbound ring: a damaged file is answered ok=false with nothing changed; a
// good one replaces the database after the entries sent before it, answers
// SnapshotInstalled, publishes the new revision, tells the shards' event
// rings to resync, and the entries after it apply on top.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { RocksLevel } from '@nxtedition/rocksdb';
import { ETCD_DISK_BUCKETS, SharedHistogram } from '../../src/common/shared-histogram.js';
import { encodePutRequest } from '../../src/proto/kv-codec.js';
import type { PutRequest } from '../../src/proto/kv-types.js';
import { Applier } from '../../src/storage/mvcc/applier.js';
import { LeaseTable } from '../../src/storage/mvcc/leases.js';
import { MvccWriter } from '../../src/storage/mvcc/writer.js';
import { OneOffPool } from '../../src/workers/pool.js';
import { installSnapshot } from '../../src/storage/snapshot/install.js';
import { DbReader } from '../../src/storage/mvcc/reader.js';
import { decodeWatchResponse } from '../../src/proto/watch-codec.js';
import { WatchHub } from '../../src/workers/watch-hub.js';
import type { ApplyWorkerData } from '../../src/workers/apply-worker.js';
import { startApplyWorker } from '../common/apply-worker.js';
import { readRevisionEvents, readStorageReset } from '../../src/workers/events.js';
import { EntryKind, encodeEntryData } from '../../src/workers/protocol/entry.js';
import { ResultType, decodeResult, decodeSnapshotInstalled, type Result, type SnapshotInstalled } from '../../src/workers/protocol/result-ring.js';
import { Shared, loadShared, sharedState } from '../../src/workers/protocol/shared-state.js';
import { encodeInstallSnapshot } from '../../src/workers/protocol/apply-ring.js';
import { Ring } from '../../src/workers/ring/ring.js';

/** The one-off pool the member makes snapshot files in. */
const pool = new OneOffPool();
after(() => pool.close());

const B = (s: string) => Buffer.from(s, 'latin1');
const pr = (key: string, value: string, lease = 0n): PutRequest =>
  ({ key: B(key), value: B(value), lease, prevKv: false, ignoreValue: false, ignoreLease: false });

function tempDir(t: { after(fn: () => void): void }, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etsd-snapw-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function dump(db: RocksLevel): [string, string][] {
  const { rows } = db.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const out: [string, string][] = [];
  for (let i = 0; i < rows.length; i += 2) out.push([rows[i]!.toString('hex'), rows[i + 1]!.toString('hex')]);
  return out;
}

/** A store with `n` applied entries (puts, a lease, a delete), its db left open. */
async function build(dir: string, prefix: string, n: number, term: number): Promise<{ db: RocksLevel; w: MvccWriter }> {
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true });
  const w = new MvccWriter(db);
  const leases = LeaseTable.load(db);
  const a = new Applier(w, (id) => leases.has(id));
  leases.grant(w, 7n, 60);
  w.markApplied(1, term);
  await w.flush();
  for (let i = 2; i <= n; i++) {
    if (i % 10 === 0) a.deleteRange({ key: B(`${prefix}${i - 1}`), rangeEnd: B(''), prevKv: false });
    else a.put(pr(`${prefix}${i}`, `v${i}`, i % 7 === 0 ? 7n : 0n));
    w.markApplied(i, term);
    await w.flush();
  }
  return { db, w };
}

function entry(index: number, term: number, kind: EntryKind, reqId: number, req: Uint8Array): Uint8Array[] {
  const h = Buffer.allocUnsafe(16);
  h.writeDoubleLE(index, 0);
  h.writeDoubleLE(term, 8);
  return [h, encodeEntryData(kind, reqId, req)];
}

test('the apply worker installs a snapshot sent on its ring, between entries', async (t) => {
  // The source: 100 applied entries at term 3.
  const src = await build(tempDir(t, 'src'), 'src/', 100, 3);
  const file = path.join(tempDir(t, 'file'), 'db.snap');
  const info = await pool.run({ kind: 'snapshot', handle: src.db.handle, path: file });
  const srcDump = dump(src.db);
  const srcState = { ...src.w.state };
  await src.db.close();
  assert.equal(info.index, 100);

  // The target: 20 other entries, closed, then opened by the apply worker.
  const dstDir = tempDir(t, 'dst');
  const dst = await build(dstDir, 'dst/', 20, 1);
  await dst.db.close();

  const shared = new SharedArrayBuffer(8 * Shared.Size);
  const inSab = Ring.allocate(4 * 1024 * 1024);
  const outSab = Ring.allocate(4 * 1024 * 1024);
  const eventSab = Ring.allocate(1024 * 1024);
  const doorbell = new SharedArrayBuffer(4);
  const applyDoorbell = new SharedArrayBuffer(4);
  const counts = new Int32Array(new SharedArrayBuffer(4));
  counts[0] = 1; // one shard with watchers: events flow to its ring
  const data: ApplyWorkerData = {
    dbDir: path.join(dstDir), clusterId: 1n, memberId: 2n, shared, inRing: inSab, outRing: outSab,
    directRing: Ring.allocate(1024 * 1024), doorbell: applyDoorbell,
    eventRings: [eventSab], doorbells: [doorbell], watcherCounts: counts.buffer as SharedArrayBuffer,
    commitHistogram: SharedHistogram.allocate(ETCD_DISK_BUCKETS),
    quotaBytes: Infinity,
  };
  const { worker, ready, failed } = await startApplyWorker(t, data);
  assert.equal(ready.appliedIndex, 20);

  const inRing = new Ring(inSab, { doorbell: applyDoorbell });
  const outRing = new Ring(outSab);
  const eventRing = new Ring(eventSab, { doorbell });
  const state = sharedState(shared);
  const send = (records: Uint8Array[][]) => {
    inRing.cork();
    for (const r of records) assert.ok(inRing.tryWriteParts(r));
    inRing.uncork();
  };
  /** Results until (and including) the first SnapshotInstalled, or until `until` says stop. */
  type Got = Result | ({ type: 'installed' } & SnapshotInstalled);
  const results: Got[] = [];
  const pieces: Buffer[] = [];
  const collect = (v: Uint8Array) => {
    const r = decodeResult(v);
    if (r.type === ResultType.SnapshotInstalledPart) pieces.push(r.piece);
    else if (r.type === ResultType.SnapshotInstalled) results.push({ type: 'installed', ...decodeSnapshotInstalled([...pieces.splice(0), r.piece]) });
    else results.push(r);
  };
  const next = async (until: (r: Got) => boolean): Promise<Got> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const i = results.findIndex(until);
      if (i >= 0) return results.splice(0, i + 1)[i]!;
      if (Date.now() > deadline) assert.fail(`no matching result; have ${JSON.stringify(results.map((r) => r.type))}`);
      outRing.drain(collect);
      await Promise.race([outRing.waitReadableAsync(100), failed]);
    }
  };
  const installed = (r: Got) => r.type === 'installed';
  // Drained all along, as a shard would: the install waits for the event rings to empty before it wipes storage.
  const seen: string[] = [];
  const drainEvents = () => eventRing.drain((v) => {
    const reset = readStorageReset(v);
    seen.push(reset !== null ? `reset@${reset}` : `events@${readRevisionEvents(v).rev}`);
  });
  const poll = setInterval(drainEvents, 2);
  t.after(() => clearInterval(poll));
  const events = () => { drainEvents(); return seen.splice(0); };
  const reader = new RocksLevel(ready.handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await reader.open(); // never closed: it is the worker's database

  // A damaged file: refused, nothing changed.
  const dstBefore = dump(reader);
  const bad = path.join(path.dirname(file), 'bad.snap');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 40]! ^= 1;
  fs.writeFileSync(bad, bytes);
  send([encodeInstallSnapshot(bad)]);
  const refused = await next(installed);
  assert.ok(refused.type === 'installed');
  assert.equal(refused.ok, false);
  assert.match(refused.error ?? '', /CRC/);
  assert.equal(refused.appliedIndex, 20);
  assert.deepEqual(dump(reader), dstBefore);
  assert.equal(loadShared(state, Shared.StorageEpoch), 0);

  // An entry, then the snapshot, in one drain: the entry is applied and published first.
  send([entry(21, 1, EntryKind.Put, 501, encodePutRequest(pr('dst/late', 'x'))), encodeInstallSnapshot(file)]);
  const ok = await next(installed);
  assert.ok(ok.type === 'installed');
  assert.equal(ok.error, null);
  assert.equal(ok.ok, true);
  assert.deepEqual([ok.appliedIndex, ok.appliedTerm, ok.rev], [100, 3, srcState.rev]);
  assert.deepEqual(ok.leases, [{ id: 7n, ttl: 60 }]);
  assert.equal(ok.members, null);
  assert.deepEqual(results, [], 'nothing after SnapshotInstalled yet');
  assert.deepEqual(dump(reader), srcDump);
  assert.equal(loadShared(state, Shared.AppliedIndex), 100);
  assert.equal(loadShared(state, Shared.Revision), srcState.rev);
  assert.equal(loadShared(state, Shared.StorageEpoch), 2, 'bumped odd for the install, even after');
  const dstRev = dst.w.state.rev;
  assert.deepEqual(events(), [`events@${dstRev + 1}`, `reset@${srcState.rev}`]);

  // A snapshot not past the applied index is stale: refused.
  send([encodeInstallSnapshot(file)]);
  const stale = await next(installed);
  assert.ok(stale.type === 'installed');
  assert.equal(stale.ok, false);
  assert.match(stale.error ?? '', /not past the applied index 100/);

  // Entries after the install apply on top of the snapshot's state.
  send([entry(100, 3, EntryKind.Put, 502, encodePutRequest(pr('replayed', 'no'))), entry(101, 3, EntryKind.Put, 503, encodePutRequest(pr('src/2', 'again')))]);
  const applied = await next((r) => r.type === ResultType.Applied && r.index === 101);
  assert.ok(applied.type === ResultType.Applied);
  assert.equal(applied.rev, srcState.rev + 1);
  const latest = reader.querySync({ keyEncoding: 'buffer', valueEncoding: 'buffer', gte: B('lreplayed'), lt: B('lreplayee') });
  assert.equal(latest.rows.length, 0, 'an entry at or below the snapshot index is not applied');
  assert.deepEqual(events(), [`events@${srcState.rev + 1}`]);
  // Before the temp dirs go (after hooks run later); `reader` dies with the worker's database.
  await worker.terminate();
});

test('after an install, watchers catch up the skipped revisions from storage; not while it runs', async (t) => {
  // The same operations, so the target is a prefix of the source's history (as a lagging follower's is).
  const src = await build(tempDir(t, 'src'), 'k/', 60, 2);
  const file = path.join(tempDir(t, 'file'), 'db.snap');
  const info = await pool.run({ kind: 'snapshot', handle: src.db.handle, path: file });
  await src.db.close();
  const dstDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-snapw-hub-'));
  const dst = await build(dstDir, 'k/', 20, 1);
  t.after(async () => {
    await dst.db.close();
    fs.rmSync(dstDir, { recursive: true, force: true });
  });
  const oldRev = dst.w.state.rev;

  let published = oldRev;
  let epoch = 0;
  const sent: { watchId: number; revs: number[] }[] = [];
  const hub = new WatchHub(new DbReader(dst.db), {
    header: (revision) => ({ clusterId: 1n, memberId: 2n, revision, raftTerm: 1 }),
    publishedRev: () => published,
    compactRev: () => 0,
    storageEpoch: () => epoch,
    send: (_stream, watchId, body) => sent.push({ watchId, revs: decodeWatchResponse(body).events.map((e) => e.kv.modRevision) }),
    maxRequestBytes: 1 << 20,
  });
  const watch = { streamId: 1, key: B('k/'), end: B('k0'), prevKv: false, fragment: false, progressNotify: false, noPut: false, noDelete: false };
  hub.create({ ...watch, watchId: 1, minRev: oldRev + 1 }); // synced: waits for live events
  hub.create({ ...watch, watchId: 2, minRev: oldRev - 3 }); // unsynced: catching up
  epoch = 1; // the install has begun: nothing is read from storage
  assert.equal(hub.syncStep(), false);
  assert.equal(sent.length, 0);

  await installSnapshot(dst.db, file);
  published = info.rev;
  epoch = 2;
  hub.resync(info.rev);
  while (hub.syncStep()) { /* bounded steps */ }
  const revsOf = (id: number) => sent.filter((s) => s.watchId === id).flatMap((s) => s.revs);
  const all = Array.from({ length: info.rev - oldRev }, (_, i) => oldRev + 1 + i);
  assert.deepEqual(revsOf(1), all, 'every revision the live stream skipped');
  assert.deepEqual(revsOf(2), [oldRev - 3, oldRev - 2, oldRev - 1, oldRev, ...all]);
});
