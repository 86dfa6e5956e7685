// --force-new-cluster, as etcd 3.4's restartAsStandaloneNode: a three-member
// cluster loses two members for good (kill -9); the survivor restarts with the
// flag and becomes a one-member cluster with its data: it leads alone, the
// member list shows only it, every acknowledged write is there at its
// revision, a write that was never acknowledged is not, and writes work. A
// restart without the flag keeps working, and a new member added afterwards
// joins and catches up (the cluster grows again).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError } from './kv-client.js';
import { etcdctlAt } from '../common/etcdctl.js';

const NAMES = ['f1', 'f2', 'f3', 'f4'];
const ports = await freePorts(8);
const peer = (i: number) => `http://127.0.0.1:${ports[4 + i]}`;
const initialCluster = NAMES.slice(0, 3).map((n, i) => `${n}=${peer(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`force-${n}`));
const procs: (EtsdProcess | null)[] = [null, null, null, null];
/** Processes that ended, kept for their logs. */
const retired: EtsdProcess[] = [];
const clients: (KvClient | null)[] = [null, null, null, null];
const TIMING = ['--heartbeat-interval', '100', '--election-timeout', '1000'];

after(async () => {
  for (const c of clients) c?.close();
  for (const p of procs) await p?.stop();
  for (const d of dirs) removeTempDir(d);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(i: number, cluster: string, extra: string[] = []): Promise<EtsdProcess> {
  if (procs[i]) retired.push(procs[i]!);
  procs[i] = await EtsdProcess.start({
    dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[4 + i],
    extraArgs: ['--initial-cluster', cluster, ...TIMING, ...extra],
  });
  clients[i]?.close();
  clients[i] = new KvClient(procs[i]!.endpoint);
  return procs[i]!;
}

function etcdctl(i: number, args: string[]): Promise<string> {
  return etcdctlAt(procs[i]!.endpoint, args);
}

async function isLeader(i: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${ports[i]}/metrics`).then((r) => r.text()).catch(() => '');
  return /^etcd_server_is_leader 1$/m.test(res);
}

async function leaderIndex(among: number[]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    for (const i of among) if (await isLeader(i)) return i;
    await sleep(100);
  }
  throw new Error('no leader found');
}

interface MemberJson { ID: string | number; name: string; peerURLs: string[]; clientURLs?: string[] }
async function memberList(i: number): Promise<MemberJson[]> {
  return (JSON.parse(await etcdctl(i, ['member', 'list', '-w', 'json'])) as { members: MemberJson[] }).members;
}

/** Every key under w/ with its mod revision, and the revision, read through member i. */
async function view(i: number): Promise<{ rev: number; kvs: Map<string, number> }> {
  const r = await clients[i]!.rangeAll(b('w/'), b('w0'));
  return { rev: r.header.revision, kvs: new Map(r.kvs.map((kv) => [kv.key.toString(), kv.modRevision])) };
}

/** On failure, every member's log tail goes with the error: this test failed once in CI with nothing to read. */
async function withLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const all = [...retired, ...procs.filter((p): p is EtsdProcess => p !== null)];
    const tails = all.map((p) => `--- pid ${p.pid} (${p.endpoint}):\n${p.logTail(60)}`).join('\n');
    if (err instanceof Error) err.message += `\n${tails}`;
    throw err;
  }
}

test('a survivor restarted with --force-new-cluster is a one-member cluster with all acknowledged data; it grows again', { timeout: 300_000 }, () => withLogs(async () => {
  await Promise.all([0, 1, 2].map((i) => start(i, initialCluster)));
  await Promise.all([0, 1, 2].map((i) => procs[i]!.waitReady()));
  const survivor = await leaderIndex([0, 1, 2]);
  const lost = [0, 1, 2].filter((i) => i !== survivor);

  const acked = new Map<string, number>();
  for (let n = 0; n < 60; n++) {
    const key = `w/${String(n).padStart(3, '0')}`;
    const r = await clients[(survivor + n) % 3]!.put({ key: b(key), value: b(`v${n}`) }, 10_000);
    acked.set(key, r.header.revision);
  }
  await clients[survivor]!.deleteRange({ key: b('w/000') }, 10_000);
  acked.delete('w/000');
  const before = await view(survivor);
  for (const [k, rev] of acked) assert.equal(before.kvs.get(k), rev, k);

  // The two others are gone for good; a write the survivor takes now can never commit.
  await Promise.all(lost.map((i) => procs[i]!.kill('SIGKILL')));
  for (const i of lost) { clients[i]!.close(); clients[i] = null; retired.push(procs[i]!); procs[i] = null; }
  await assert.rejects(clients[survivor]!.put({ key: b('w/unacked'), value: b('x') }, 2000), (err: unknown) => isGrpcError(err));
  await procs[survivor]!.kill('SIGKILL');

  const p = await start(survivor, initialCluster, ['--force-new-cluster']);
  await p.waitReady();
  assert.match(p.logTail(200), /forcing restart member/);
  assert.equal(await leaderIndex([survivor]), survivor);
  const members = await memberList(survivor);
  assert.deepEqual(members.map((m) => m.name), [NAMES[survivor]]);
  const after1 = await view(survivor);
  assert.equal(after1.rev, before.rev, 'the revision is kept');
  assert.deepEqual([...after1.kvs], [...before.kvs], 'every acknowledged write, at its revision; nothing else');
  const w = await clients[survivor]!.put({ key: b('w/after'), value: b('1') }, 10_000);
  assert.equal(w.header.revision, before.rev + 1);

  // A restart without the flag: still one member, still serving.
  await procs[survivor]!.stop();
  await start(survivor, initialCluster);
  await procs[survivor]!.waitReady();
  assert.equal((await memberList(survivor)).length, 1);
  const w2 = await clients[survivor]!.put({ key: b('w/after2'), value: b('2') }, 10_000);
  assert.equal(w2.header.revision, before.rev + 2);

  // It grows again: member add, then the new member starts into the existing cluster and catches up.
  const added = await etcdctl(survivor, ['member', 'add', NAMES[3]!, `--peer-urls=${peer(3)}`]);
  assert.match(added, /Member +[0-9a-f]+ added to cluster/); // etcdctl pads the id (%16x)
  const grown = `${NAMES[survivor]}=${peer(survivor)},${NAMES[3]}=${peer(3)}`;
  await start(3, grown, ['--initial-cluster-state', 'existing']);
  await procs[3]!.waitReady();
  const list = await memberList(survivor);
  assert.deepEqual(list.map((m) => m.name).sort(), [NAMES[survivor], NAMES[3]].sort());
  const w3 = await clients[3]!.put({ key: b('w/grown'), value: b('3') }, 10_000);
  assert.equal(w3.header.revision, before.rev + 3);
  const [a, c] = [await view(survivor), await view(3)];
  assert.equal(c.rev, a.rev);
  assert.deepEqual([...c.kvs], [...a.kvs]);
}));
