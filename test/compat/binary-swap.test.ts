// The binary swap: a real etcd 3.4 member writes a mix (puts, overwrites,
// deletes, a txn, a lease with keys, a compaction) into its data dir and is
// stopped; etsd started with the same --name, --data-dir and URLs serves the
// same state: revision, every key with its create/mod revision, version,
// value and lease, HashKV at that revision, the lease with its TTL and keys,
// the member and cluster ids; writes continue at the next revision; etcd's
// own files are left byte for byte as they were.
//
// Two ways to stop etcd: SIGTERM, and SIGKILL right after a burst of writes,
// so its WAL holds entries past the db's consistent index (etcd commits its
// bbolt batch every 100 ms). In the second case the expected state is what a
// real etcd restarted on a copy of the killed data dir serves, and the test
// checks (in the db and in etsd's log) that entries were really replayed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { readEtcdDbMeta } from '../../src/storage/bbolt/etcd-db-meta.js';
import { readEtcdWal } from '../../src/storage/wal/etcd-wal.js';
import { encodeLeaseGrantRequest } from '../../src/proto/lease-codec.js';
import { decodeEtcdRaftRequest } from '../../src/proto/etcd-raft-request.js';
import { KvClient, b, op, putReq } from '../integration/kv-client.js';
import { checkPrerequisites, runEtcdctl, stopServer, waitReady, type ServerHandle } from './harness.js';
import { freeUrls, startWithFlags, type Urls } from './snapshot-servers.js';

interface KvJson { key: string; create_revision: number; mod_revision: number; version: number; value: string; lease?: number }
interface GetJson { header: { cluster_id: string | number; member_id: string | number; revision: number }; kvs?: KvJson[] }

async function ctl(h: ServerHandle, args: string[], stdin = ''): Promise<string> {
  const r = await runEtcdctl(h, args, Buffer.from(stdin), 30_000);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')} failed on ${h.kind}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** What a client sees: ids, revision, every key with its metadata, HashKV at the revision, the leases with granted TTL and keys. */
interface View {
  clusterId: string; memberId: string; revision: number; kvs: KvJson[]; hashKV: string;
  leases: { id: string; grantedTTL: number; keys: string[] }[];
}

async function view(h: ServerHandle): Promise<View & { remaining: number[] }> {
  // etcdctl -w json prints the uint64 ids as JSON numbers: keep their digits.
  const raw = await ctl(h, ['get', '--prefix', '', '-w', 'json']);
  const j = JSON.parse(raw.replace(/"(cluster_id|member_id)":(\d+)/g, '"$1":"$2"')) as GetJson;
  const hk = JSON.parse(await ctl(h, ['endpoint', 'hashkv', '--rev', String(j.header.revision), '-w', 'json'])) as { HashKV: { hash?: number; compact_revision?: number } }[];
  const ids = (await ctl(h, ['lease', 'list'])).split('\n').slice(1).filter((l) => l.trim() !== '').sort();
  const leases: View['leases'] = [];
  const remaining: number[] = [];
  for (const id of ids) {
    // clientv3's LeaseTimeToLiveResponse: the granted TTL is "granted-ttl".
    const t = JSON.parse(await ctl(h, ['lease', 'timetolive', id, '--keys', '-w', 'json'])) as { 'granted-ttl': number; ttl: number; keys?: string[] };
    leases.push({ id, grantedTTL: t['granted-ttl'], keys: (t.keys ?? []).map((k) => Buffer.from(k, 'base64').toString()).sort() });
    remaining.push(t.ttl);
  }
  return {
    clusterId: String(j.header.cluster_id), memberId: String(j.header.member_id), revision: j.header.revision, kvs: j.kvs ?? [],
    hashKV: `hash ${hk[0]!.HashKV.hash ?? 0} compact ${hk[0]!.HashKV.compact_revision ?? 0}`, leases, remaining,
  };
}

function memberFlags(dataDir: string, urls: Urls): string[] {
  return ['--name', 'swap1', '--data-dir', dataDir, '--initial-advertise-peer-urls', urls.peer, '--initial-cluster', `swap1=${urls.peer}`,
    '--initial-cluster-token', 'swap-token'];
}

/** sha256 of every file under etcd's member/wal and member/snap (names and bytes). */
function etcdFilesDigest(dataDir: string): string {
  const h = createHash('sha256');
  for (const sub of ['wal', 'snap']) {
    const dir = join(dataDir, 'member', sub);
    for (const name of readdirSync(dir).sort()) {
      if (!statSync(join(dir, name)).isFile()) continue;
      h.update(`${sub}/${name}\n`).update(readFileSync(join(dir, name)));
    }
  }
  return h.digest('hex');
}

/** Puts, overwrites, deletes, a txn, a lease with two keys, a compaction, more writes after it. */
async function fill(h: ServerHandle): Promise<void> {
  for (const [k, v] of [['a', '1'], ['a', '2'], ['b', 'x'], ['c', 'y'], ['dir/one', 'v1'], ['dir/two', 'v2']]) await ctl(h, ['put', k!, v!]);
  await ctl(h, ['del', 'b']);
  const id = /lease ([0-9a-f]+) granted/.exec(await ctl(h, ['lease', 'grant', '600']))![1]!;
  await ctl(h, ['put', '--lease', id, 'leased', 'lv']);
  await ctl(h, ['put', '--lease', id, 'leased2', 'lv2']);
  await ctl(h, ['txn'], '\nput t1 one\nput t2 two\ndel a\n\n\n');
  await ctl(h, ['compact', '5']);
  await ctl(h, ['put', 'c', 'y2']);
  await ctl(h, ['del', '--prefix', 'dir/']);
}

/** etsd on the data dir etcd left: same view, etcd's files untouched, the takeover logged, writes go on. */
async function swapAndCheck(tmp: string, dataDir: string, urls: Urls, want: View, label: string): Promise<{ log: string }> {
  const digest = etcdFilesDigest(dataDir);
  const etsd = startWithFlags('etsd', label, tmp, urls, memberFlags(dataDir, urls));
  try {
    await waitReady(etsd, 120_000);
    const got = await view(etsd);
    const { remaining, ...same } = got;
    assert.deepEqual(same, want);
    for (const [i, ttl] of remaining.entries()) assert.ok(ttl > 0 && ttl <= want.leases[i]!.grantedTTL, `lease ${want.leases[i]!.id} remaining TTL ${ttl}`);
    const put = JSON.parse(await ctl(etsd, ['put', 'after-swap', 'z', '-w', 'json'])) as { header: { revision: number } };
    assert.equal(put.header.revision, want.revision + 1);
  } finally {
    await stopServer(etsd, true);
  }
  assert.equal(etcdFilesDigest(dataDir), digest, 'etcd\'s WAL and snap files are unchanged');
  return { log: readFileSync(etsd.logFile, 'utf8') };
}

test('binary swap: etcd 3.4 stopped with SIGTERM -> etsd on the same data dir serves the same state', { timeout: 300_000 }, async (t) => {
  checkPrerequisites();
  const tmp = mkdtempSync(join(tmpdir(), 'etsd-swap-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const urls = await freeUrls();
  const dataDir = join(tmp, 'data');
  const etcd = startWithFlags('etcd', 'etcd', tmp, urls, memberFlags(dataDir, urls));
  t.after(() => stopServer(etcd, true));
  await waitReady(etcd);
  await fill(etcd);
  const { remaining: _r, ...want } = await view(etcd);
  assert.equal(want.leases.length, 1);
  assert.equal(want.leases[0]!.grantedTTL, 600);
  assert.deepEqual(want.leases[0]!.keys, ['leased', 'leased2']);
  await stopServer(etcd, true);

  const { log } = await swapAndCheck(tmp, dataDir, urls, want, 'etsd');
  assert.match(log, /took over an etcd data dir/);

  // A second start finds etsd's own files beside etcd's and takes nothing over again.
  const again = startWithFlags('etsd', 'etsd-again', tmp, urls, memberFlags(dataDir, urls));
  try {
    await waitReady(again, 120_000);
    const { remaining: _a, ...got } = await view(again);
    assert.equal(got.revision, want.revision + 1);
    assert.deepEqual(got.kvs.filter((kv) => Buffer.from(kv.key, 'base64').toString() !== 'after-swap'), want.kvs);
    assert.deepEqual([got.clusterId, got.memberId, got.leases], [want.clusterId, want.memberId, want.leases]);
  } finally {
    await stopServer(again, true);
  }
  assert.doesNotMatch(readFileSync(again.logFile, 'utf8'), /took over an etcd data dir/);

  // The way back: etcd on the same data dir serves what it had (etsd's write is not in its files).
  const back = startWithFlags('etcd', 'etcd-back', tmp, urls, memberFlags(dataDir, urls));
  try {
    await waitReady(back);
    const { remaining: _b, ...got } = await view(back);
    assert.deepEqual(got, want);
  } finally {
    await stopServer(back, true);
  }
  // etsd then refuses its stale copy instead of serving it over what etcd wrote since.
  const stale = startWithFlags('etsd', 'etsd-stale', tmp, urls, memberFlags(dataDir, urls));
  await assert.rejects(waitReady(stale, 120_000), /changed after etsd took it over/);
  await stopServer(stale, true);
});

/** What a real etcd restarted on a copy of `dataDir` serves (the copy, so etsd gets the files as they were). */
async function etcdViewOfCopy(tmp: string, dataDir: string, urls: Urls): Promise<View> {
  const copy = join(tmp, 'copy');
  rmSync(copy, { recursive: true, force: true });
  cpSync(dataDir, copy, { recursive: true });
  const oracle = startWithFlags('etcd', 'oracle', tmp, urls, memberFlags(copy, urls));
  try {
    await waitReady(oracle);
    const { remaining: _r, ...v } = await view(oracle);
    return v;
  } finally {
    await stopServer(oracle, true);
  }
}

test('binary swap: a data dir made by etcdctl snapshot restore -> etsd serves what etcd serves on it (new cluster, new member only)', { timeout: 300_000 }, async (t) => {
  checkPrerequisites();
  const tmp = mkdtempSync(join(tmpdir(), 'etsd-swaprestore-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const urls = await freeUrls();
  const etcd = startWithFlags('etcd', 'etcd', tmp, urls, memberFlags(join(tmp, 'data'), urls));
  t.after(() => stopServer(etcd, true));
  await waitReady(etcd);
  await fill(etcd);
  const file = join(tmp, 'snap.db');
  await ctl(etcd, ['snapshot', 'save', file]);
  await stopServer(etcd, true);
  const restored = join(tmp, 'restored');
  // A new token: a new cluster and member id, while the db still holds the old cluster's members bucket.
  const r = await runEtcdctl(etcd, ['snapshot', 'restore', file, '--data-dir', restored, '--name', 'swap1', '--initial-cluster', `swap1=${urls.peer}`,
    '--initial-cluster-token', 'restored-token', '--initial-advertise-peer-urls', urls.peer], Buffer.alloc(0), 30_000);
  assert.equal(r.code, 0, r.stderr.toString());
  const want = await etcdViewOfCopy(tmp, restored, urls);
  const flags = ['--name', 'swap1', '--data-dir', restored, '--initial-advertise-peer-urls', urls.peer, '--initial-cluster', `swap1=${urls.peer}`,
    '--initial-cluster-token', 'restored-token'];
  const etsd = startWithFlags('etsd', 'etsd', tmp, urls, flags);
  t.after(() => stopServer(etsd, true));
  await waitReady(etsd, 120_000);
  const { remaining: _r, ...got } = await view(etsd);
  assert.deepEqual(got, want);
  const members = (await ctl(etsd, ['member', 'list'])).trim().split('\n');
  assert.equal(members.length, 1, members.join('\n'));
  assert.match(members[0]!, new RegExp(`^${BigInt(want.memberId).toString(16)}, started, swap1, `));
});

/** A lease grant with an id we choose, through raw gRPC (etcd honours a client's lease id). */
function leaseGrant(endpoint: string, id: bigint, ttl: number): Promise<void> {
  const c = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  return new Promise<void>((resolve, reject) => {
    c.makeUnaryRequest<Buffer, Buffer>('/etcdserverpb.Lease/LeaseGrant', (x) => x, (x) => x, encodeLeaseGrantRequest({ id, ttl: BigInt(ttl) }),
      new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) => { c.close(); if (err) reject(err); else resolve(); });
  });
}

test('binary swap: etcd 3.4 killed right after writes -> etsd replays the WAL past the db\'s consistent index', { timeout: 600_000 }, async (t) => {
  checkPrerequisites();
  const tmp = mkdtempSync(join(tmpdir(), 'etsd-swapkill-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const urls = await freeUrls();
  const dataDir = join(tmp, 'data');
  // etcd commits its bbolt batch every 100 ms, and at once for a compaction; a long interval keeps
  // everything after fill()'s compaction in the WAL only, so the replay is certain and covers every kind.
  const etcd = startWithFlags('etcd', 'etcd', tmp, urls, [...memberFlags(dataDir, urls), '--backend-batch-interval', '1h']);
  try {
    await waitReady(etcd);
    await fill(etcd);
    const kv = new KvClient(etcd.endpoint);
    try {
      // Then, killed right after: a lease and a key on it, puts, a txn, a delete.
      await leaseGrant(etcd.endpoint, 0x5a5a01n, 900);
      const burst: Promise<unknown>[] = [];
      for (let i = 0; i < 60; i++) burst.push(kv.put(putReq({ key: b(`burst/${i % 20}`), value: b(`v${i}`) })));
      burst.push(kv.put(putReq({ key: b('burst-leased'), value: b('l'), lease: 0x5a5a01n })));
      burst.push(kv.txn({ compare: [], success: [op.put(putReq({ key: b('burst-txn'), value: b('t') })), op.del({ key: b('t1') })], failure: [] }));
      burst.push(kv.deleteRange({ key: b('c') }));
      await Promise.all(burst);
      await kv.put(putReq({ key: b('last'), value: b('1') }));
    } finally {
      kv.close();
    }
    process.kill(etcd.child.pid!, 'SIGKILL');
  } finally {
    await stopServer(etcd, true);
  }
  const w = readEtcdWal(join(dataDir, 'member', 'wal'));
  const ci = readEtcdDbMeta(join(dataDir, 'member', 'snap', 'db')).consistentIndex;
  const behind = w.hardState.commit - ci;
  const kinds: string[] = w.entries.filter((e) => e.index > ci && e.index <= w.hardState.commit).map((e) => {
    const r = decodeEtcdRaftRequest(e.data);
    return r.kind === 'v3' ? r.op : r.kind;
  });
  t.diagnostic(`consistent index ${ci}, commit ${w.hardState.commit}, committed entries past the db: ${[...new Set(kinds)].join(' ')}`);
  for (const k of ['leaseGrant', 'put', 'txn', 'deleteRange']) assert.ok(kinds.includes(k), `a ${k} past the consistent index: ${kinds.join(' ')}`);

  // What etcd itself serves after the crash: a real etcd restarted on a copy of the data dir.
  const want = await etcdViewOfCopy(tmp, dataDir, urls);
  assert.ok(want.kvs.some((kv) => Buffer.from(kv.key, 'base64').toString() === 'last'), 'the last acknowledged write survived the crash');
  assert.ok(want.leases.some((l) => l.id === '00000000005a5a01' && l.keys.includes('burst-leased')), JSON.stringify(want.leases));

  const { log } = await swapAndCheck(tmp, dataDir, urls, want, 'etsd-killed');
  const took = /"entries-to-replay":(\d+)/.exec(log);
  assert.ok(took && Number(took[1]) >= behind, `etsd's takeover log names the entries to replay (${behind} behind): ${took?.[0] ?? 'none'}`);
  const recovered = /"replay":(\d+)[^\n]*"msg":"recovered state"/.exec(log);
  assert.ok(recovered && Number(recovered[1]) > 0, `etsd replayed entries at boot: ${recovered?.[0] ?? 'none'}`);
});
