// --experimental-corrupt-check-time, as etcd 3.4's monitorKVHash: three
// members check every second; while their stores agree the leader's passes
// find nothing. Then one follower's store is altered on disk while it is
// stopped (one value rewritten in its RocksDB, the same revision and
// compaction), it restarts, and the leader's next pass raises CORRUPT through
// the log: `etcdctl alarm list` shows it (for member 0, as etcd 3.4.23 raises it)
// and writes are refused with etcd's "corrupt cluster".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError } from './kv-client.js';
import { historyKey, latestKey } from '../../src/storage/mvcc/keys.js';
import { decodeVersion, encodeVersion } from '../../src/storage/mvcc/record.js';
import { etcdctlAt } from '../common/etcdctl.js';

const NAMES = ['c1', 'c2', 'c3'];
const ports = await freePorts(6);
const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
const initialCluster = NAMES.map((n, i) => `${n}=${peer(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`corrupt-${n}`));
const procs: (EtsdProcess | null)[] = [null, null, null];
const clients: (KvClient | null)[] = [null, null, null];

after(async () => {
  for (const c of clients) c?.close();
  for (const p of procs) await p?.stop();
  for (const d of dirs) removeTempDir(d);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(i: number): Promise<EtsdProcess> {
  procs[i] = await EtsdProcess.start({
    dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[3 + i],
    extraArgs: ['--initial-cluster', initialCluster, '--heartbeat-interval', '100', '--election-timeout', '1000', '--experimental-corrupt-check-time', '1s'],
  });
  clients[i]?.close();
  clients[i] = new KvClient(procs[i]!.endpoint);
  return procs[i]!;
}

function etcdctl(i: number, args: string[]): Promise<string> {
  return etcdctlAt(procs[i]!.endpoint, args);
}

async function leaderIndex(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://127.0.0.1:${ports[i]}/metrics`).then((r) => r.text()).catch(() => '');
      if (/^etcd_server_is_leader 1$/m.test(res)) return i;
    }
    await sleep(100);
  }
  throw new Error('no leader found');
}

/** Waits (polling, bounded) until `check` holds; the bound is a failure, not a timing assertion. */
async function eventually(check: () => Promise<boolean>, what: string, tries = 150): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`never happened: ${what}`);
}

/** Rewrites the value of `key` at revision `rev` in a stopped member's RocksDB (its history record and latest record). */
async function alterValue(dir: string, key: string, rev: number, value: string): Promise<void> {
  const db = new RocksLevel(join(dir, 'member', 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: false });
  try {
    const batch = db.batch();
    for (const k of [historyKey(b(key), rev), latestKey(b(key))]) {
      const [raw] = db._getManySync([k], { valueEncoding: 'buffer' });
      assert.ok(raw, `no record ${k.toString('hex')}`);
      const v = decodeVersion(Buffer.from(raw));
      assert.equal(v.modRevision, rev);
      batch.put(k, encodeVersion({ ...v, value: b(value) }));
    }
    await batch.write({ sync: true });
  } finally {
    await db.close();
  }
}

test('the leader\'s periodic HashKV check finds a member whose store was altered on disk and raises CORRUPT', { timeout: 300_000 }, async () => {
  await Promise.all([0, 1, 2].map((i) => start(i)));
  await Promise.all(procs.map((p) => p!.waitReady()));
  let rev = 0;
  for (let n = 0; n < 20; n++) rev = (await clients[n % 3]!.put({ key: b(`k${n}`), value: b(`v${n}`) }, 10_000)).header.revision;
  const leader = await leaderIndex();
  const victim = (leader + 1) % 3;
  // Every member at the last revision, and the leader's passes see all of them agree.
  await eventually(async () => (await clients[victim]!.range({ key: b('k0') }, 5000)).header.revision === rev, 'the follower applied everything');
  await eventually(async () => (procs[leader]!.logTail(400).match(/"number-of-peers-checked":2/g) ?? []).length >= 2, 'two clean passes over both peers');
  assert.match(procs[leader]!.logTail(400), /enabled corruption checking/);
  assert.doesNotMatch(procs[leader]!.logTail(400), /hashes must match|found hash mismatch/);
  assert.equal((await etcdctl(leader, ['alarm', 'list'])).trim(), '');

  const k5rev = (await clients[leader]!.range({ key: b('k5') })).kvs[0]!.modRevision;
  await procs[victim]!.stop();
  await alterValue(dirs[victim]!, 'k5', k5rev, 'CORRUPTED');
  await start(victim);
  await procs[victim]!.waitReady();
  // The altered member serves the altered value: the store on disk is what changed.
  assert.equal((await clients[victim]!.range({ key: b('k5') }, 5000)).kvs[0]!.value.toString(), 'CORRUPTED');

  // etcdctl prints the AlarmMember in protobuf text form, where a zero member id is left out.
  await eventually(async () => (await etcdctl(leader, ['alarm', 'list'])).trim() === 'alarm:CORRUPT', 'CORRUPT in etcdctl alarm list');
  assert.match(procs[leader]!.logTail(400), /same compact revision then hashes must match/);
  assert.equal((await etcdctl(victim, ['alarm', 'list'])).trim(), 'alarm:CORRUPT');
  await assert.rejects(clients[leader]!.put({ key: b('after'), value: b('x') }, 10_000),
    (err: unknown) => isGrpcError(err) && err.details === 'etcdserver: corrupt cluster');
  // Reads still answer (etcd serves Range from its base applier).
  assert.equal((await clients[leader]!.range({ key: b('k1') }, 5000)).kvs[0]!.value.toString(), 'v1');
});
