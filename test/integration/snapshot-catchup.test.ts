// Snapshots between real members: with a small --snapshot-count the leader
// cuts its raft log, so (a) a follower that was stopped while the cluster
// moved on, and (b) a member wiped and re-added under a new id, can only
// catch up from a snapshot of the leader's state streamed over the peer port.
// Both must end with the same revision, keys, leases and HashKV as the rest.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b } from './kv-client.js';
import { hashKV } from './maintenance-client.js';

const NAMES = ['s1', 's2', 's3'];
const ports = await freePorts(6);
const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
const initialCluster = NAMES.map((n, i) => `${n}=${peer(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`snapcatch-${n}`));
const procs: (EtsdProcess | null)[] = [null, null, null];
const clients: (KvClient | null)[] = [null, null, null];
const SNAP_ARGS = ['--snapshot-count', '100', '--experimental-snapshot-catchup-entries', '20', '--heartbeat-interval', '100', '--election-timeout', '1000'];

after(async () => {
  for (const c of clients) c?.close();
  for (const p of procs) await p?.stop();
  for (const d of dirs) removeTempDir(d);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(i: number, extra: string[]): Promise<void> {
  procs[i] = await EtsdProcess.start({ dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[3 + i], extraArgs: [...SNAP_ARGS, ...extra] });
  clients[i]?.close();
  clients[i] = new KvClient(procs[i]!.endpoint);
}

/** etcdctl through s1; a change refused as "unhealthy cluster" (a peer connected < 5 s ago) is retried. */
async function etcdctl(args: string[]): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await etcdctlOnce(args);
    } catch (err) {
      if (attempt > 40 || !String(err).includes('unhealthy cluster')) throw err;
      await sleep(500);
    }
  }
}

function etcdctlOnce(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', [`--endpoints=${procs[0]!.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 }, (err, out, errOut) => {
      if (err) reject(new Error(`etcdctl ${args.join(' ')}: ${errOut}`));
      else resolve(out);
    });
  });
}

async function writeKeys(prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await clients[0]!.put({ key: b(`${prefix}${String(i).padStart(4, '0')}`), value: b(`v${i}`) }, 5000);
}

/** Every running member serves the same revision, keys and HashKV. */
async function converged(members: number[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const views = await Promise.all(members.map(async (i) => {
        const r = await clients[i]!.range({ key: b('\0'), rangeEnd: b('\0'), serializable: true, keysOnly: true }, 3000);
        const h = await hashKV(clients[i]!, r.header.revision);
        return JSON.stringify({ rev: r.header.revision, keys: r.kvs.length, hash: h.hash });
      }));
      last = views.join(' | ');
      if (views.every((v) => v === views[0])) return;
    } catch (err) {
      last = String(err);
    }
    await sleep(250);
  }
  throw new Error(`members did not converge: ${last}\n${members.map((i) => procs[i]!.logTail(10)).join('\n')}`);
}

async function isLeader(i: number): Promise<boolean> {
  const text = await fetch(`http://${procs[i]!.endpoint}/metrics`).then((r) => r.text(), () => '');
  return /^etcd_server_is_leader 1$/m.test(text);
}

test('a stopped follower catches up from a snapshot after the leader cut its log', async () => {
  await Promise.all([0, 1, 2].map((i) => start(i, ['--initial-cluster', initialCluster])));
  await Promise.all(procs.map((p) => p!.waitReady()));
  await writeKeys('a', 50);
  await converged([0, 1, 2]);
  // Kill a follower while the log moves past it (a frozen one would still find
  // every append waiting in its socket buffer), then bring it back.
  let frozen = -1;
  for (let attempt = 0; attempt < 100 && frozen < 0; attempt++) {
    const leads = await Promise.all([0, 1, 2].map(isLeader));
    if (leads.some(Boolean)) frozen = leads.lastIndexOf(false);
    else await sleep(100);
  }
  assert.ok(frozen >= 0, 'no leader found');
  const writer = frozen === 0 ? 1 : 0;
  await procs[frozen]!.kill('SIGKILL');
  for (let i = 0; i < 300; i++) await clients[writer]!.put({ key: b(`b${String(i).padStart(4, '0')}`), value: b(`v${i}`) }, 5000);
  await start(frozen, ['--initial-cluster', initialCluster]);
  await converged([0, 1, 2]);
  const logs = procs.map((p) => p!.logTail(400)).join('\n');
  assert.match(logs, /made a snapshot for a follower/, `the leader never made a snapshot: the test did not exercise snapshots\n${procs[frozen]!.logTail(40)}`);
  assert.match(procs[frozen]!.logTail(400), /installed a snapshot from the leader/);
});

test('a member wiped and re-added under a new id catches up from a snapshot', async () => {
  const before = await etcdctl(['member', 'list']);
  const old = before.split('\n').find((l) => l.includes(`, ${NAMES[2]}, `))!.split(',')[0]!;
  await procs[2]!.kill('SIGKILL');
  procs[2] = null;
  removeTempDir(dirs[2]!);
  dirs[2] = makeTempDir('snapcatch-s3-again');
  // A lease with a key, so the snapshot carries leases too.
  const lease = await etcdctl(['lease', 'grant', '600']);
  const leaseId = /lease ([0-9a-f]+) granted/.exec(lease)![1]!;
  await etcdctl(['put', 'leased', 'x', `--lease=${leaseId}`]);
  await etcdctl(['member', 'remove', old]);
  const added = await etcdctl(['member', 'add', NAMES[2]!, `--peer-urls=${peer(2)}`]);
  const cluster = /ETCD_INITIAL_CLUSTER="(.*)"/.exec(added)![1]!;
  await writeKeys('c', 200);
  await start(2, ['--initial-cluster', cluster, '--initial-cluster-state', 'existing']);
  await procs[2]!.waitReady();
  await converged([0, 1, 2]);
  assert.match(procs[2]!.logTail(400), /installed a snapshot from the leader/);
  const r = await clients[2]!.range({ key: b('leased') });
  assert.equal(r.kvs[0]?.lease, BigInt('0x' + leaseId), 'the lease attachment came with the snapshot');
  // It serves writes and linearizable reads like any member afterwards.
  await clients[2]!.put({ key: b('after'), value: b('1') });
  await converged([0, 1, 2]);
  const list = await etcdctl(['member', 'list']);
  assert.equal(list.trim().split('\n').length, 3);
  assert.ok(!list.includes(old), 'the removed id is gone');
  // A member whose state came from a snapshot restarts from it (kill -9: no clean shutdown) and keeps up.
  await procs[2]!.kill('SIGKILL');
  await writeKeys('d', 30);
  await start(2, ['--initial-cluster', cluster, '--initial-cluster-state', 'existing']);
  await procs[2]!.waitReady();
  await converged([0, 1, 2]);
});
