// Lease expiry as etcd does it: the keys of an expired lease go in one
// revision, keep-alive holds a lease, a key moved to another lease survives
// the first one's revoke, unknown leases answer NOT_FOUND, and leases survive
// a kill -9 with their TTL refreshed, then expire normally.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError, prefixEnd } from './kv-client.js';
import { EVENT_DELETE, LeaseClient, WatchStream, newClient } from './watch-client.js';

const dir = makeTempDir('leaseexpiry');
let server = await EtsdProcess.startReady({ dataDir: dir });
let kv = new KvClient(server.endpoint);
let conn = newClient(server.endpoint);
let lease = new LeaseClient(conn);
after(async () => { kv.close(); conn.close(); await server.stop(); removeTempDir(dir); });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const GRPC_NOT_FOUND = 5;

async function keysUnder(prefix: string): Promise<string[]> {
  const r = await kv.range({ key: b(prefix), rangeEnd: prefixEnd(b(prefix)) });
  return r.kvs.map((x) => x.key.toString());
}

/** Waits until `n` DELETE events arrived on the stream; returns them with their response index. */
async function deletes(s: WatchStream, n: number, timeoutMs: number): Promise<{ rev: number; key: string; resp: number }[]> {
  const collect = () => s.responses.flatMap((r, i) => r.events.filter((e) => e.type === EVENT_DELETE).map((e) => ({ rev: e.kv.modRevision, key: e.kv.key.toString(), resp: i })));
  const deadline = Date.now() + timeoutMs;
  while (collect().length < n && Date.now() < deadline) await sleep(20);
  return collect();
}

test('an expired lease deletes all its keys in one revision; it is gone from Leases and TimeToLive says -1', async () => {
  const g = await lease.grant(2);
  assert.equal(g.ttl, 2);
  const N = 6;
  for (let i = 0; i < N; i++) await kv.put({ key: b(`le/exp/${i}`), value: b(`v${i}`), lease: g.id });
  await kv.put({ key: b('le/exp/free'), value: b('no lease') });
  const s = new WatchStream(conn);
  try {
    await s.create({ key: b('le/exp/'), rangeEnd: prefixEnd(b('le/exp/')) });
    const t0 = Date.now();
    const dels = await deletes(s, N, 10_000);
    const took = Date.now() - t0;
    assert.equal(dels.length, N, `${dels.length} DELETE events within 10 s`);
    assert.deepEqual(dels.map((d) => d.key).sort(), Array.from({ length: N }, (_, i) => `le/exp/${i}`));
    assert.equal(new Set(dels.map((d) => d.rev)).size, 1, `one revision for all deletes, got ${[...new Set(dels.map((d) => d.rev))]}`);
    assert.equal(new Set(dels.map((d) => d.resp)).size, 1, 'all deletes of the revision in one response');
    console.log(`lease TTL 2 s: keys deleted ${took} ms after the watch started, at revision ${dels[0]!.rev}`);
    assert.deepEqual(await keysUnder('le/exp/'), ['le/exp/free']);
    assert.ok(!(await lease.leases()).includes(g.id), 'expired lease not listed by LeaseLeases');
    assert.equal((await lease.timeToLive(g.id)).ttl, -1);
  } finally {
    s.close();
  }
});

test('a lease kept alive every 500 ms for 6 s never expires and its keys stay', async () => {
  const g = await lease.grant(2);
  for (let i = 0; i < 3; i++) await kv.put({ key: b(`le/ka/${i}`), value: b('x'), lease: g.id });
  const ka = lease.keepAliveStream();
  try {
    const t0 = Date.now();
    while (Date.now() - t0 < 6000) {
      ka.send(g.id);
      await sleep(500);
      assert.equal((await keysUnder('le/ka/')).length, 3, `keys gone after ${Date.now() - t0} ms of keep-alive`);
    }
    assert.ok(ka.responses.length >= 10, `${ka.responses.length} keep-alive responses`);
    for (const r of ka.responses) { assert.equal(r.id, g.id); assert.equal(r.ttl, 2); }
    const ttl = await lease.timeToLive(g.id, true);
    assert.ok(ttl.ttl > 0 && ttl.ttl <= 2, `TTL ${ttl.ttl}`);
    assert.equal(ttl.grantedTtl, 2);
    assert.deepEqual(ttl.keys.map((k) => k.toString()).sort(), ['le/ka/0', 'le/ka/1', 'le/ka/2']);
  } finally {
    ka.close();
  }
  await lease.revoke(g.id);
  assert.deepEqual(await keysUnder('le/ka/'), []);
});

test('a key moved from lease A to lease B survives the revoke of A', async () => {
  const a = await lease.grant(60);
  const bl = await lease.grant(60);
  await kv.put({ key: b('le/mv/moved'), value: b('1'), lease: a.id });
  await kv.put({ key: b('le/mv/stays-on-a'), value: b('2'), lease: a.id });
  await kv.put({ key: b('le/mv/moved'), value: b('3'), lease: bl.id });
  assert.deepEqual((await lease.timeToLive(a.id, true)).keys.map((k) => k.toString()), ['le/mv/stays-on-a']);
  await lease.revoke(a.id);
  const r = await kv.range({ key: b('le/mv/'), rangeEnd: prefixEnd(b('le/mv/')) });
  assert.deepEqual(r.kvs.map((x) => x.key.toString()), ['le/mv/moved']);
  assert.equal(r.kvs[0]!.lease, bl.id);
  assert.equal(r.kvs[0]!.value.toString(), '3');
  assert.deepEqual((await lease.timeToLive(bl.id, true)).keys.map((k) => k.toString()), ['le/mv/moved']);
  assert.equal((await lease.timeToLive(a.id)).ttl, -1);
  await lease.revoke(bl.id);
  assert.deepEqual(await keysUnder('le/mv/'), []);
});

test('LeaseRevoke of an unknown lease answers NOT_FOUND', async () => {
  await assert.rejects(lease.revoke(0x1234567n), (e: unknown) =>
    isGrpcError(e) && e.code === GRPC_NOT_FOUND && e.details === 'etcdserver: requested lease not found');
});

test('leases survive kill -9 with their TTL refreshed, then expire normally', async () => {
  const TTL = 5;
  const g = await lease.grant(TTL);
  for (let i = 0; i < 3; i++) await kv.put({ key: b(`le/rs/${i}`), value: b('x'), lease: g.id });
  await sleep(3000); // about 2 s left when killed; a refreshed clock restarts at 5 s
  const before = await lease.timeToLive(g.id);
  kv.close(); conn.close();
  await server.kill('SIGKILL');
  const killedAt = Date.now();
  server = await EtsdProcess.startReady({ dataDir: dir, clientPort: server.opts.clientPort, peerPort: server.opts.peerPort });
  const startMs = Date.now() - killedAt;
  kv = new KvClient(server.endpoint);
  conn = newClient(server.endpoint);
  lease = new LeaseClient(conn);
  const ttl = await lease.timeToLive(g.id, true);
  console.log(`TTL before kill ${before.ttl} s; restart took ${startMs} ms; TTL after restart ${ttl.ttl} s (granted ${ttl.grantedTtl})`);
  assert.ok(ttl.ttl > 0 && ttl.ttl <= TTL, `TTL after restart ${ttl.ttl}`);
  // Time only runs down: a remaining TTL above the one before the kill means the clock was restarted.
  assert.ok(ttl.ttl > before.ttl, `TTL after restart ${ttl.ttl} s is not above ${before.ttl} s before the kill: not refreshed`);
  assert.equal(ttl.grantedTtl, TTL);
  assert.ok((await lease.leases()).includes(g.id), 'the lease is listed after restart');
  assert.deepEqual(ttl.keys.map((k) => k.toString()).sort(), ['le/rs/0', 'le/rs/1', 'le/rs/2']);
  assert.equal((await keysUnder('le/rs/')).length, 3, 'keys still there after restart');
  const s = new WatchStream(conn);
  try {
    await s.create({ key: b('le/rs/'), rangeEnd: prefixEnd(b('le/rs/')) });
    const dels = await deletes(s, 3, (TTL + 6) * 1000);
    assert.equal(dels.length, 3, `${dels.length} DELETE events after restart`);
    assert.equal(new Set(dels.map((d) => d.rev)).size, 1, 'one revision for all deletes');
    assert.deepEqual(await keysUnder('le/rs/'), []);
    assert.equal((await lease.timeToLive(g.id)).ttl, -1);
    assert.ok(!(await lease.leases()).includes(g.id));
  } finally {
    s.close();
  }
});
