// Three etsd members on loopback: replication, forwarding, kill -9 of the
// leader under a write load, no acknowledged write lost, convergence.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError } from './kv-client.js';
import { LeaseClient, newClient } from './watch-client.js';
import { HttpStream, dig } from './gateway-http.js';

const NAMES = ['n1', 'n2', 'n3'];
const ports = await freePorts(6);
const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
const initialCluster = NAMES.map((n, i) => `${n}=${peer(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`cluster-${n}`));
const procs: (EtsdProcess | null)[] = [null, null, null];
const clients: KvClient[] = [];

async function startMember(i: number, extra: string[] = []): Promise<EtsdProcess> {
  const p = await EtsdProcess.start({
    dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[3 + i],
    extraArgs: ['--initial-cluster', initialCluster, '--heartbeat-interval', '100', '--election-timeout', '1000', ...extra],
  });
  procs[i] = p;
  return p;
}

after(async () => {
  for (const c of clients) c.close();
  for (const p of procs) await p?.stop();
  for (const d of dirs) removeTempDir(d);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Which member leads: the one whose Status says so is not exposed here, so ask raft through a write's header term and a probe. */
async function leaderIndex(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    for (let i = 0; i < 3; i++) {
      if (!procs[i]) continue;
      const res = await fetch(`http://127.0.0.1:${ports[i]}/metrics`).then((r) => r.text()).catch(() => '');
      if (/^etcd_server_is_leader 1$/m.test(res)) return i;
    }
    await sleep(100);
  }
  throw new Error('no leader found');
}

test('three members elect a leader; writes through any member are replicated to all', async () => {
  await Promise.all([0, 1, 2].map((i) => startMember(i)));
  await Promise.all(procs.map((p) => p!.waitReady()));
  for (let i = 0; i < 3; i++) clients.push(new KvClient(procs[i]!.endpoint));
  for (let i = 0; i < 3; i++) await clients[i]!.put({ key: b(`k${i}`), value: b(`v${i}`) });
  for (let i = 0; i < 3; i++) {
    const r = await clients[i]!.range({ key: b('k'), rangeEnd: b('l') });
    assert.deepEqual(r.kvs.map((kv) => kv.value.toString()), ['v0', 'v1', 'v2'], `member ${NAMES[i]}`);
    assert.equal(r.header.revision, 4);
  }
});

test('kill -9 of the leader under load: a new leader, the writer resumes, no acknowledged write lost, members converge', async () => {
  const leader = await leaderIndex();
  const survivors = [0, 1, 2].filter((i) => i !== leader);
  const acked = new Map<string, number>();
  let stop = false;
  let failures = 0;
  // Writers on the survivors, sequential keys; failures during the election are retried later keys.
  const writer = async (who: number) => {
    let n = 0;
    while (!stop) {
      const key = `w${who}-${n++}`;
      try {
        const r = await clients[who]!.put({ key: b(key), value: b(key) }, 3000);
        acked.set(key, r.header.revision);
      } catch (err) {
        if (!isGrpcError(err)) throw err;
        failures++;
        await sleep(50);
      }
    }
  };
  const writers = survivors.map((i) => writer(i));
  await sleep(700);
  const killedAt = Date.now();
  await procs[leader]!.kill('SIGKILL');
  procs[leader] = null;
  // Wait until a write acknowledged after the kill shows up.
  const before = acked.size;
  while (acked.size < before + 20 && Date.now() - killedAt < 20_000) await sleep(50);
  const failover = Date.now() - killedAt;
  assert.ok(acked.size >= before + 20, `writes did not resume within 20 s (acked ${acked.size - before} after the kill)`);
  await sleep(500);
  stop = true;
  await Promise.all(writers);
  console.log(`# cluster: failover to resumed writes ${failover} ms; ${acked.size} writes acknowledged, ${failures} failed during the election`);

  // The killed member comes back and catches up.
  await startMember(leader);
  clients[leader]!.close();
  clients[leader] = new KvClient(procs[leader]!.endpoint);
  await procs[leader]!.waitReady();
  let views: string[] = [];
  for (let attempt = 0; attempt < 50; attempt++) {
    views = await Promise.all([0, 1, 2].map(async (i) => {
      const r = await clients[i]!.rangeAll(b('w'), b('x'));
      return JSON.stringify({ rev: r.header.revision, kvs: r.kvs.map((kv) => [kv.key.toString(), kv.modRevision]) });
    }));
    if (views[0] === views[1] && views[1] === views[2]) break;
    await sleep(200);
  }
  assert.equal(views[0], views[1], 'members 1 and 2 differ');
  assert.equal(views[1], views[2], 'members 2 and 3 differ');
  const present = new Map((JSON.parse(views[0]!) as { kvs: [string, number][] }).kvs);
  for (const [key, rev] of acked) assert.equal(present.get(key), rev, `acknowledged ${key}@${rev} missing or changed`);
});

test('a lease kept alive only through a follower does not expire (keep-alives reach the leader)', async () => {
  const leader = await leaderIndex();
  const follower = [0, 1, 2].find((i) => i !== leader)!;
  const grpcClient = newClient(procs[follower]!.endpoint);
  const leases = new LeaseClient(grpcClient);
  try {
    const { id } = await leases.grant(2);
    await clients[follower]!.put({ key: b('leased'), value: b('x'), lease: id });
    const ka = leases.keepAliveStream();
    for (let i = 0; i < 10; i++) {
      ka.send(id);
      await sleep(500);
    }
    ka.close();
    // 5 s after a 2 s grant, the key is still there on the leader.
    const r = await clients[leader]!.range({ key: b('leased') });
    assert.equal(r.kvs.length, 1, 'the leased key expired although a follower kept the lease alive');
    // Without keep-alives it expires, through the log, on every member.
    await sleep(3500);
    for (let i = 0; i < 3; i++) assert.equal((await clients[i]!.range({ key: b('leased') })).kvs.length, 0, `member ${NAMES[i]}`);
  } finally {
    grpcClient.close();
  }
});

test('a lease kept alive through one follower answers keep-alives on the other follower too (only the leader\'s clock expires leases)', async () => {
  // A client that fails over between members (Patroni does) must not hear TTL 0 for a live lease.
  const leader = await leaderIndex();
  const [f1, f2] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
  const conns = [newClient(procs[f1]!.endpoint), newClient(procs[f2]!.endpoint)];
  const [l1, l2] = conns.map((c) => new LeaseClient(c)) as [LeaseClient, LeaseClient];
  try {
    const { id } = await l1.grant(2);
    const ka1 = l1.keepAliveStream();
    for (let i = 0; i < 10; i++) {
      ka1.send(id);
      await sleep(500);
    }
    ka1.close();
    // 5 s after a 2 s grant, kept alive only through f1: TimeToLive on f2 is the leader's clock, not f2's.
    const left = await l2.timeToLive(id);
    assert.ok(left.ttl > 0 && left.ttl <= 2, `TimeToLive on the other follower: TTL ${left.ttl}`);
    assert.equal(left.grantedTtl, 2);
    // f2 renews it as well.
    const ka2 = l2.keepAliveStream();
    ka2.send(id);
    for (let i = 0; i < 100 && ka2.responses.length === 0; i++) await sleep(50);
    ka2.close();
    assert.deepEqual(ka2.responses, [{ id, ttl: 2 }]);
    await l2.revoke(id);
  } finally {
    for (const c of conns) c.close();
  }
});

test('MoveLeader hands leadership to the target; a non-leader answers "not leader"', async () => {
  const leader = await leaderIndex();
  const target = [0, 1, 2].find((i) => i !== leader)!;
  const status = async (i: number) => (await fetch(`http://127.0.0.1:${ports[i]}/metrics`).then((r) => r.text()));
  const idOf = async (i: number) => BigInt('0x' + /etcd_server_id\{server_id="([0-9a-f]+)"\}/.exec(await status(i))![1]!);
  const targetId = await idOf(target);
  const body = Buffer.concat([Buffer.from([0x08]), varint(targetId)]);
  const call = (i: number) => clients[i]!.call('/etcdserverpb.Maintenance/MoveLeader' as never, body, 10_000);
  await call(leader);
  assert.match(await status(target), /^etcd_server_is_leader 1$/m);
  await assert.rejects(call(leader), (e: unknown) => isGrpcError(e) && e.code === 9 && e.details === 'etcdserver: not leader');
  // Writes go on through the new leader.
  await clients[leader]!.put({ key: b('after-move'), value: b('ok') });
});

test('a member restarted with --experimental-initial-corrupt-check compares HashKV with both peers, then rejoins', async () => {
  const i = (await leaderIndex() + 1) % 3;
  await procs[i]!.stop();
  clients[i]!.close();
  // The others write on while it is down: the check asks them for the hash at its older revision.
  await clients[(i + 1) % 3]!.put({ key: b('while-down'), value: b('x') });
  const p = await startMember(i, ['--experimental-initial-corrupt-check']);
  await p.waitReady();
  clients[i] = new KvClient(p.endpoint);
  const logs = p.logTail(200);
  assert.match(logs, /starting initial corruption check/);
  assert.match(logs, /initial corruption checking passed; no corruption/);
  assert.doesNotMatch(logs, /failed hash kv request|found different/);
  assert.equal((await clients[i]!.range({ key: b('while-down') })).kvs.length, 1);
});

function varint(v: bigint): Buffer {
  const out: number[] = [];
  while (v > 0x7fn) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
  return Buffer.from(out);
}

test('a follower cut off from the other members answers a keep-alive with etcd\'s timeout, not from its own clock', async () => {
  // Last in this file: it leaves one member of three. The majority would let the lease expire,
  // so the follower must not tell its client (Patroni, say) that the lease lives.
  const leader = await leaderIndex();
  const conn = newClient(procs[leader]!.endpoint);
  const { id } = await new LeaseClient(conn).grant(30).finally(() => conn.close());
  const f = (leader + 1) % 3;
  for (const i of [0, 1, 2].filter((j) => j !== f)) await procs[i]!.kill('SIGKILL');
  const ka = new HttpStream(procs[f]!.endpoint, '/v3/lease/keepalive');
  try {
    ka.send({ ID: id.toString() });
    const line = await ka.waitFor(() => true, 'an answer to the keep-alive', 30_000);
    assert.equal(dig(line, 'message'), 'etcdserver: request timed out', JSON.stringify(line));
  } finally {
    ka.destroy();
  }
});
