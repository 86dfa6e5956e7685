// Backup and restore in etcd's own snapshot format, with the real tools:
// etsd -> `etcdctl snapshot save` -> `etcdctl snapshot status` (bbolt opens it
// and runs its consistency check; our reader computes the same hash) ->
// `etcdctl snapshot restore` -> a real etcd 3.4 started on the restored data
// dir serves the same keys, values, create/mod revisions, versions, leases and
// revision as etsd did. The other way: a real etcd's snapshot through
// `etsdutl snapshot restore` -> etsd serves what etcd served. And the same
// operations on both give snapshots that agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../../src/common/crc32c.js';
import { BboltReader } from '../../src/storage/bbolt/reader.js';
import { checkPrerequisites, runEtcdctl, startServer, stopServer, waitReady, type ServerHandle } from './harness.js';
import type { BucketRef } from '../../src/storage/bbolt/reader.js';
import { execFileSync } from 'node:child_process';
import http2 from 'node:http2';
import { repoRoot } from '../common/repo.js';
import { freeUrls, startWithFlags } from './snapshot-servers.js';

interface GetJson { header: { revision: number }; kvs?: { key: string; create_revision: number; mod_revision: number; version: number; value: string; lease?: number }[]; count?: number }

async function ctl(h: ServerHandle, args: string[]): Promise<string> {
  const r = await runEtcdctl(h, args, Buffer.alloc(0), 30_000);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** Everything a get --prefix '' -w json shows, without the ids that differ between clusters. */
async function state(h: ServerHandle): Promise<{ revision: number; kvs: GetJson['kvs'] }> {
  const j = JSON.parse(await ctl(h, ['get', '--prefix', '', '-w', 'json'])) as GetJson;
  return { revision: j.header.revision, kvs: j.kvs };
}

/** The lease's granted TTL and attached keys (timetolive --keys), without the remaining TTL. */
async function leaseView(h: ServerHandle, id: string): Promise<{ grantedTTL: number; keys: string[] }> {
  const j = JSON.parse(await ctl(h, ['lease', 'timetolive', id, '--keys', '-w', 'json'])) as { grantedTTL: number; keys?: string[] };
  return { grantedTTL: j.grantedTTL, keys: (j.keys ?? []).sort() };
}

/** Puts, overwrites, a delete, a lease with keys, a transaction with several changes, and a compaction. */
async function fill(h: ServerHandle): Promise<string> {
  for (const [k, v] of [['a', '1'], ['a', '2'], ['b', 'x'], ['c', 'y'], ['a', '3'], ['dir/one', 'v1'], ['dir/two', 'v2']]) await ctl(h, ['put', k!, v!]);
  await ctl(h, ['del', 'b']);
  const grant = await ctl(h, ['lease', 'grant', '600']);
  const id = /lease ([0-9a-f]+) granted/.exec(grant)![1]!;
  await ctl(h, ['put', '--lease', id, 'leased', 'lv']);
  await ctl(h, ['put', '--lease', id, 'leased2', 'lv2']);
  const rev = (await state(h)).revision;
  await ctl(h, ['compact', String(rev - 3)]);
  await ctl(h, ['put', 'c', 'y2']);
  await ctl(h, ['del', '--prefix', 'dir/']);
  await ctl(h, ['put', 'e', Buffer.alloc(3000, 'e').toString()]);
  return id;
}

test('etsd snapshot -> etcdctl snapshot save/status/restore -> real etcd serves the same data', { timeout: 120_000 }, async (t) => {
  checkPrerequisites();
  const tmp = mkdtempSync(join(tmpdir(), 'etsd-bak-'));
  const src = await startServer('etsd', 'snapsrc');
  t.after(async () => { await stopServer(src); rmSync(tmp, { recursive: true, force: true }); });
  await waitReady(src);
  const leaseId = await fill(src);
  // About 2 MB more, in two transactions: the snapshot streams in some 70 chunks, through backpressure.
  for (const part of [0, 1]) {
    const ops = Array.from({ length: 100 }, (_, i) => `put bulk/${part}/${String(i).padStart(3, '0')} ${Buffer.alloc(10_000, 97 + (i % 26)).toString()}`);
    const txn = await runEtcdctl(src, ['txn'], Buffer.from(`\n${ops.join('\n')}\n\n\n`), 30_000);
    assert.equal(txn.code, 0, txn.stderr.toString());
  }
  const want = await state(src);
  const wantLease = await leaseView(src, leaseId);
  assert.deepEqual(want.kvs!.map((kv) => Buffer.from(kv.key, 'base64').toString()).filter((k) => !k.startsWith('bulk/')), ['a', 'c', 'e', 'leased', 'leased2']);
  assert.equal(want.kvs!.length, 205);
  assert.deepEqual(wantLease.keys.length, 2);

  const file = join(tmp, 'snap.db');
  await ctl(src, ['snapshot', 'save', file]);
  assert.ok(statSync(file).size > 2_000_000, `${statSync(file).size} bytes`);
  // The member's scratch file is gone once the call ends.
  assert.deepEqual(readdirSync(join(src.tempDir, 'data', 'member', 'snap')), []);
  const st = JSON.parse(await ctl(src, ['snapshot', 'status', file, '-w', 'json'])) as { hash: number; revision: number; totalKey: number; totalSize: number };
  assert.equal(st.revision, want.revision);
  assert.equal(st.totalSize + 32, statSync(file).size, 'the file is the bbolt pages plus the 32-byte sha256');
  // Our reader sees the same file etcd's tools see: same hash and pair count.
  const r = BboltReader.open(file);
  let hash = 0;
  let keys = 0;
  for (const b of r.entries(r.root)) {
    hash = crc32c(b.key, hash);
    for (const e of r.entries(r.bucketRef(b.value))) { hash = crc32c(e.value, crc32c(e.key, hash)); keys++; }
  }
  r.close();
  assert.equal(st.hash, hash);
  assert.equal(st.totalKey, keys);

  const urls = await freeUrls();
  const dataDir = join(tmp, 'restored');
  const restore = await runEtcdctl(src, ['snapshot', 'restore', file, '--data-dir', dataDir, '--name', 'r1',
    '--initial-cluster', `r1=${urls.peer}`, '--initial-cluster-token', 'bak-token', '--initial-advertise-peer-urls', urls.peer], Buffer.alloc(0), 30_000);
  assert.equal(restore.code, 0, restore.stderr.toString());

  const etcd = startWithFlags('etcd', 'restored-etcd', tmp, urls, ['--name', 'r1', '--data-dir', dataDir,
    '--initial-advertise-peer-urls', urls.peer, '--initial-cluster', `r1=${urls.peer}`, '--initial-cluster-token', 'bak-token']);
  t.after(() => stopServer(etcd, true));
  await waitReady(etcd);
  assert.deepEqual(await state(etcd), want);
  assert.deepEqual(await leaseView(etcd, leaseId), wantLease);
  // The compaction came along: below it etcd answers "compacted".
  const old = await runEtcdctl(etcd, ['get', 'a', '--rev', '2'], Buffer.alloc(0), 15_000);
  assert.match(old.stderr.toString(), /required revision has been compacted/);
});

interface Status { hash: number; revision: number; totalKey: number; totalSize: number }

/** Every bucket's pairs, by bucket name (key bucket and everything else as hex). */
function dump(file: string): Map<string, [string, string][]> {
  const r = BboltReader.open(file);
  try {
    const out = new Map<string, [string, string][]>();
    for (const b of r.entries(r.root)) {
      const ref: BucketRef = r.bucketRef(b.value);
      out.set(b.key.toString(), [...r.entries(ref)].map((e): [string, string] => [e.key.toString('hex'), e.value.toString('hex')]));
    }
    return out;
  } finally {
    r.close();
  }
}

/**
 * Overwrites, a multi-op transaction with a delete, a delete, a compaction, a put after it (no leases: their ids differ);
 * roles with permissions and a user without a password (a bcrypt hash would differ), so the auth buckets agree byte for byte.
 */
async function fillSame(h: ServerHandle): Promise<void> {
  for (const args of [['role', 'add', 'r1'], ['role', 'grant-permission', 'r1', 'readwrite', 'dir/', '--prefix=true'],
    ['role', 'grant-permission', 'r1', 'read', 'foo'], ['role', 'add', 'r0'], ['user', 'add', 'nopw', '--no-password'],
    ['user', 'grant-role', 'nopw', 'r1'], ['user', 'grant-role', 'nopw', 'r0']]) await ctl(h, args);
  for (const [k, v] of [['a', '1'], ['a', '2'], ['b', 'x']]) await ctl(h, ['put', k!, v!]);
  const txn = await runEtcdctl(h, ['txn'], Buffer.from('\nput c 1\nput d 2\ndel a\n\n\n'), 30_000);
  assert.equal(txn.code, 0, txn.stderr.toString());
  await ctl(h, ['del', 'b']);
  await ctl(h, ['compact', '4']);
  await ctl(h, ['put', 'e', '5']);
  await ctl(h, ['put', 'big', Buffer.alloc(5000, 'z').toString()]);
}

test('the same operations on real etcd and on etsd give snapshots that agree', { timeout: 120_000 }, async (t) => {
  checkPrerequisites();
  const tmp = mkdtempSync(join(tmpdir(), 'etsd-bakcmp-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const files = new Map<string, string>();
  const status = new Map<string, Status>();
  for (const kind of ['etcd', 'etsd'] as const) {
    const h = await startServer(kind, `cmp${kind}`);
    try {
      await waitReady(h);
      await fillSame(h);
      const file = join(tmp, `${kind}.db`);
      await ctl(h, ['snapshot', 'save', file]);
      files.set(kind, file);
      status.set(kind, JSON.parse(await ctl(h, ['snapshot', 'status', file, '-w', 'json'])) as Status);
    } finally {
      await stopServer(h);
    }
  }
  const [e, s] = [status.get('etcd')!, status.get('etsd')!];
  assert.equal(s.revision, e.revision, 'revision');
  assert.equal(s.totalKey, e.totalKey, 'totalKey');
  const [de, ds] = [dump(files.get('etcd')!), dump(files.get('etsd')!)];
  assert.deepEqual([...ds.keys()], [...de.keys()], 'bucket names');
  for (const name of de.keys()) {
    if (name === 'members' || name === 'meta') {
      // Member ids and raft indexes differ between two clusters: the record names must match.
      assert.deepEqual(ds.get(name)!.map(([k]) => name === 'meta' ? k : ''), de.get(name)!.map(([k]) => name === 'meta' ? k : ''), name);
    } else {
      assert.deepEqual(ds.get(name), de.get(name), `bucket ${name}`);
    }
  }
  // The compaction marks are the same bytes.
  const metaOf = (d: Map<string, [string, string][]>) => d.get('meta')!.filter(([k]) => k !== Buffer.from('consistent_index').toString('hex'));
  assert.deepEqual(metaOf(ds), metaOf(de));
});

test('real etcd snapshot -> etsdutl snapshot restore -> etsd serves the same data, history and HashKV', { timeout: 120_000 }, async (t) => {
  checkPrerequisites();
  const tmp = mkdtempSync(join(tmpdir(), 'etsd-utl-'));
  const src = await startServer('etcd', 'utlsrc');
  t.after(async () => { await stopServer(src); rmSync(tmp, { recursive: true, force: true }); });
  await waitReady(src);
  const leaseId = await fill(src);
  const want = await state(src);
  const wantLease = await leaseView(src, leaseId);
  const wantHash = await hashKVOf(src);
  // A past revision above the compaction, read on both.
  const pastRev = want.revision - 2;
  const wantPast = JSON.parse(await ctl(src, ['get', '--prefix', '', '--rev', String(pastRev), '-w', 'json'])) as GetJson;
  const file = join(tmp, 'etcd.db');
  await ctl(src, ['snapshot', 'save', file]);
  await stopServer(src, true);

  const urls = await freeUrls();
  const dataDir = join(tmp, 'restored');
  const member = ['--name', 'u1', '--initial-cluster', `u1=${urls.peer}`, '--initial-cluster-token', 'utl-token', '--initial-advertise-peer-urls', urls.peer];
  const utl = join(repoRoot(), 'dist', 'src', 'cli', 'etsdutl.js');
  const out = execFileSync(process.execPath, [utl, 'snapshot', 'restore', file, '--data-dir', dataDir, ...member]).toString();
  assert.match(out, new RegExp(`revision ${want.revision}`));
  // As etcdctl: an existing data dir is refused.
  assert.throws(() => execFileSync(process.execPath, [utl, 'snapshot', 'restore', file, '--data-dir', dataDir, ...member], { stdio: 'pipe' }),
    (err: { stderr: Buffer }) => err.stderr.toString().includes(`data-dir "${dataDir}" exists`));

  const etsd = startWithFlags('etsd', 'restored-etsd', tmp, urls, ['--data-dir', dataDir, ...member]);
  t.after(() => stopServer(etsd, true));
  await waitReady(etsd);
  assert.deepEqual(await state(etsd), want);
  assert.deepEqual(await leaseView(etsd, leaseId), wantLease);
  const past = JSON.parse(await ctl(etsd, ['get', '--prefix', '', '--rev', String(pastRev), '-w', 'json'])) as GetJson;
  assert.deepEqual(past.kvs, wantPast.kvs, `history at revision ${pastRev}`);
  const old = await runEtcdctl(etsd, ['get', 'a', '--rev', '2'], Buffer.alloc(0), 15_000);
  assert.match(old.stderr.toString(), /required revision has been compacted/);
  assert.equal(await hashKVOf(etsd), wantHash, 'HashKV at the restored revision');
  // Writes go on from the restored revision.
  const put = JSON.parse(await ctl(etsd, ['put', 'after', '1', '-w', 'json'])) as { header: { revision: number } };
  assert.equal(put.header.revision, want.revision + 1);
});

async function hashKVOf(h: ServerHandle): Promise<string> {
  const [j] = JSON.parse(await ctl(h, ['endpoint', 'hashkv', '-w', 'json'])) as { HashKV: { hash: number; compact_revision: number; header: { revision: number } } }[];
  return `hash ${j!.HashKV.hash} compact ${j!.HashKV.compact_revision} revision ${j!.HashKV.header.revision}`;
}

/** Waits (polling, bounded) until `check` holds; the bound is a failure, not a timing assertion. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`never happened: ${what}`);
}

test('a Snapshot call cancelled mid-stream stops, removes its file, and the next snapshot works', { timeout: 120_000 }, async (t) => {
  checkPrerequisites();
  const src = await startServer('etsd', 'snapcancel');
  t.after(() => stopServer(src));
  await waitReady(src);
  const ops = Array.from({ length: 100 }, (_, i) => `put big/${i} ${Buffer.alloc(10_000, 98).toString()}`);
  const txn = await runEtcdctl(src, ['txn'], Buffer.from(`\n${ops.join('\n')}\n\n\n`), 30_000);
  assert.equal(txn.code, 0, txn.stderr.toString());

  const session = http2.connect(`http://${src.endpoint}`);
  t.after(() => session.close());
  const stream = session.request({
    ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc', te: 'trailers',
  });
  // One empty SnapshotRequest: gRPC frame header only.
  stream.end(Buffer.alloc(5));
  // Read a first piece, then stop reading and cancel: the server must notice and stop.
  const first = await new Promise<Buffer>((resolve, reject) => {
    stream.once('data', (d: Buffer) => resolve(d));
    stream.once('error', reject);
  });
  assert.ok(first.length > 0);
  stream.pause();
  stream.close(http2.constants.NGHTTP2_CANCEL);
  const snapDir = join(src.tempDir, 'data', 'member', 'snap');
  await eventually(() => readdirSync(snapDir).length === 0, 'the cancelled call\'s file removed');

  const file = join(src.tempDir, 'after.db');
  await ctl(src, ['snapshot', 'save', file]);
  const st = JSON.parse(await ctl(src, ['snapshot', 'status', file, '-w', 'json'])) as Status;
  assert.equal(st.revision, 2);
});
