// Three etsd members whose peer traffic runs through a partition proxy
// (test/common/tcp-proxy.ts): each member listens on its real peer port and
// advertises the proxy's. (a) An isolated follower: the majority keeps taking
// writes, the follower's linearizable reads fail, and after healing it catches
// up to the same revision and HashKV. (b) An isolated leader: the majority
// elects a new one and takes writes, the old leader steps down (CheckQuorum),
// and after healing it follows, with every acknowledged write on all three.
//
// Waits are bounded and generous (a shared, noisy 2-core machine): no
// assertion on how fast anything happens beyond those bounds.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError } from './kv-client.js';
import { hashKV as hashKVOf, type HashKV } from './maintenance-client.js';
import { PartitionProxy } from '../common/tcp-proxy.js';
import { sleep, until } from '../common/poll.js';

const NAMES = ['n1', 'n2', 'n3'];
const ELECTION_MS = 1000;
/** Status UNAVAILABLE, and etcd's texts for a read that cannot reach a leader. */
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

const ports = await freePorts(9);
const clientPort = (i: number) => ports[i]!;
const proxy = await PartitionProxy.start([0, 1, 2].map((i) => ({ proxyPort: ports[6 + i]!, targetPort: ports[3 + i]! })));
const initialCluster = NAMES.map((n, i) => `${n}=${proxy.advertisedUrl(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`partition-${n}`));
const procs: EtsdProcess[] = [];
const clients: KvClient[] = [];

after(async () => {
  for (const c of clients) c.close();
  for (const p of procs) await p.stop();
  await proxy.close();
  for (const d of dirs) removeTempDir(d);
});


async function isLeader(i: number): Promise<boolean | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${clientPort(i)}/metrics`, { signal: AbortSignal.timeout(3000) });
    const m = /^etcd_server_is_leader (\d)$/m.exec(await res.text());
    return m ? m[1] === '1' : null;
  } catch {
    return null;
  }
}

/** The one member among `among` that says it leads, once exactly one does. */
async function leaderAmong(among: number[], timeoutMs: number): Promise<number> {
  let last = '';
  return until(timeoutMs, async () => {
    const says = await Promise.all(among.map((i) => isLeader(i)));
    last = JSON.stringify(says);
    const leaders = among.filter((_, k) => says[k] === true);
    return leaders.length === 1 ? leaders[0] : undefined;
  }, () => `no single leader among ${among.map((i) => NAMES[i]).join(', ')} (is_leader: ${last})`);
}

const hashKV = (i: number, revision: number): Promise<HashKV> => hashKVOf(clients[i]!, revision);

/** Every member answers HashKV at `rev` (waiting while it is still behind) with the same hash. */
async function sameHashKV(rev: number, timeoutMs: number): Promise<number> {
  let last = '';
  return until(timeoutMs, async () => {
    const got = await Promise.all([0, 1, 2].map((i) => hashKV(i, rev).then((h) => String(h.hash), (e: unknown) => (isGrpcError(e) ? e.details : String(e)))));
    last = JSON.stringify(got);
    return got.every((g) => /^\d+$/.test(g) && g === got[0]) ? Number(got[0]) : undefined;
  }, () => `HashKV at revision ${rev} differs or fails: ${last}`, 200);
}

/** A serializable (local) read of the member's revision. */
async function localRevision(i: number): Promise<number> {
  return (await clients[i]!.range({ key: b('x'), serializable: true }, 3000)).header.revision;
}

/** Sequential puts through each of `through` until stopped; records what was acknowledged. */
function writeLoad(through: number[], prefix: string) {
  const acked = new Map<string, number>();
  const failures: string[] = [];
  let stop = false;
  const one = async (who: number) => {
    for (let n = 0; !stop; n++) {
      const key = `${prefix}/${NAMES[who]}/${String(n).padStart(5, '0')}`;
      try {
        const r = await clients[who]!.put({ key: b(key), value: b(key) }, 5000);
        acked.set(key, r.header.revision);
      } catch (err) {
        if (!isGrpcError(err)) throw err;
        failures.push(`${NAMES[who]}: ${err.code} ${err.details}`);
        await sleep(50);
      }
    }
  };
  const running = Promise.all(through.map(one));
  return {
    acked, failures,
    async stop() { stop = true; await running; },
  };
}

/** Every acknowledged key is on every member with the revision its put was acknowledged at. */
async function allPresent(acked: Map<string, number>, prefix: string, rev: number): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await clients[i]!.rangeAll(b(`${prefix}/`), b(`${prefix}0`));
    assert.ok(r.header.revision >= rev, `${NAMES[i]} at revision ${r.header.revision}, want >= ${rev}`);
    const present = new Map(r.kvs.map((kv) => [kv.key.toString(), kv.modRevision]));
    for (const [key, modRev] of acked) assert.equal(present.get(key), modRev, `${NAMES[i]}: acknowledged ${key}@${modRev} missing or changed`);
  }
}

/** What a linearizable read on member i does within a deadline: 'ok' or the gRPC failure. */
async function linearizableRead(i: number, deadlineMs: number): Promise<{ code: number; details: string } | 'ok'> {
  try {
    await clients[i]!.range({ key: b('x') }, deadlineMs);
    return 'ok';
  } catch (err) {
    if (!isGrpcError(err)) throw err;
    return { code: err.code, details: err.details };
  }
}

/** Connections to or from member i that a cut link refused or held, so far. */
function heldAcross(i: number): number {
  return Object.entries(proxy.stats.dropped)
    .filter(([k]) => k.startsWith(`${i}>`) || k.endsWith(`>${i}`))
    .reduce((n, [, v]) => n + v, 0);
}

function logs(): string {
  return procs.map((p, i) => `--- ${NAMES[i]}\n${p.logTail(30)}`).join('\n');
}

test('three members behind the partition proxy elect a leader and replicate', async () => {
  for (let i = 0; i < 3; i++) {
    procs.push(await EtsdProcess.start({
      dataDir: dirs[i]!, name: NAMES[i], clientPort: clientPort(i), peerPort: ports[3 + i]!,
      extraArgs: [
        '--listen-peer-urls', proxy.listenUrl(i),
        '--initial-advertise-peer-urls', proxy.advertisedUrl(i),
        '--initial-cluster', initialCluster,
        '--heartbeat-interval', '100', '--election-timeout', String(ELECTION_MS),
      ],
    }));
  }
  await Promise.all(procs.map((p) => p.waitReady()));
  for (let i = 0; i < 3; i++) clients.push(new KvClient(procs[i]!.endpoint));
  await leaderAmong([0, 1, 2], 30_000);
  const r = await clients[0]!.put({ key: b('hello'), value: b('world') });
  await sameHashKV(r.header.revision, 30_000);
  // Every member dialled every other one through the proxy, and the proxy named them all.
  for (let a = 0; a < 3; a++) {
    for (let c = 0; c < 3; c++) if (a !== c) assert.ok((proxy.stats.forwarded[`${a}>${c}`] ?? 0) > 0, `no connection ${NAMES[a]} -> ${NAMES[c]}`);
  }
  const unnamed = Object.keys(proxy.stats.forwarded).filter((k) => k.startsWith('-1>'));
  assert.deepEqual(unnamed, [], 'peer connections whose sender the proxy could not name');
  assert.equal(proxy.stats.unidentified, 0, 'connections without the raft preface');
});

test('an isolated follower: the majority keeps writing, its linearizable reads fail, healed it catches up', async () => {
  const leader = await leaderAmong([0, 1, 2], 30_000);
  const follower = [0, 1, 2].find((i) => i !== leader)!;
  const others = [0, 1, 2].filter((i) => i !== follower);
  proxy.isolate(follower);
  const load = writeLoad(others, 'a');
  const readOutcomes: string[] = [];
  try {
    // The majority goes on: writes acknowledged through both remaining members.
    await until(30_000, async () => (others.every((i) => [...load.acked.keys()].some((k) => k.startsWith(`a/${NAMES[i]}/`))) && load.acked.size >= 100 ? true : undefined),
      () => `the majority acknowledged only ${load.acked.size} writes; failures: ${load.failures.slice(-5).join('; ')}`);
    // The isolated member cannot serve a linearizable read: etcd's Unavailable (no leader / request timed out), or no answer at all.
    for (let attempt = 0; attempt < 2; attempt++) {
      const got = await linearizableRead(follower, 10_000);
      readOutcomes.push(got === 'ok' ? 'ok' : `${got.code} ${got.details}`);
      assert.notEqual(got, 'ok', `isolated ${NAMES[follower]} served a linearizable read`);
      if (got !== 'ok') {
        const unavailable = got.code === UNAVAILABLE && /^etcdserver: (no leader|request timed out)/.test(got.details);
        assert.ok(unavailable || got.code === DEADLINE_EXCEEDED, `isolated ${NAMES[follower]}: read failed with ${got.code} ${got.details}`);
      }
    }
    await sleep(500);
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, [], 'writes through the majority failed while a follower was isolated');
  assert.ok(proxy.stats.severed > 0 || (proxy.stats.dropped[`${follower}>${leader}`] ?? 0) > 0, 'the proxy cut nothing');
  const rev = Math.max(...await Promise.all(others.map(localRevision)));
  const behind = await localRevision(follower);
  assert.ok(behind < rev, `the isolated member is at ${behind}, the majority at ${rev}: it was not cut off`);

  proxy.heal();
  await until(60_000, async () => ((await localRevision(follower).catch(() => 0)) === rev ? true : undefined),
    () => `${NAMES[follower]} did not catch up to ${rev}\n${logs()}`, 200);
  const h = await sameHashKV(rev, 30_000);
  assert.deepEqual(await Promise.all([0, 1, 2].map((i) => hashKV(i, 0).then((x) => x.hash))), [h, h, h], 'HashKV at the current revision');
  await allPresent(load.acked, 'a', rev);
  assert.equal(await linearizableRead(follower, 10_000), 'ok', 'the healed member serves linearizable reads again');
  console.log(`# partition (a): ${load.acked.size} writes acknowledged during the isolation; ${NAMES[follower]} caught up from ${behind} to ${rev}; its reads while isolated: ${readOutcomes.join(' | ')}`);
});

test('an isolated leader: the majority elects a new one and writes; the old one steps down and rejoins as follower', async () => {
  const old = await leaderAmong([0, 1, 2], 30_000);
  const others = [0, 1, 2].filter((i) => i !== old);
  const startRev = await localRevision(old);
  // This time new connections across the cut are held open and never answered, as a dead network would.
  proxy.mode = 'blackhole';
  const heldBefore = heldAcross(old);
  proxy.isolate(old);
  const isolatedAt = Date.now();

  // A write sent to the isolated leader must not be acknowledged unless it really commits (it cannot).
  const stranded = clients[old]!.put({ key: b('b/stranded'), value: b('x') }, 15_000).then((r) => r.header.revision, (e: unknown) => e);

  const leader = await leaderAmong(others, 10 * ELECTION_MS + 20_000);
  const electedMs = Date.now() - isolatedAt;
  const load = writeLoad(others, 'b');
  try {
    await until(30_000, async () => (load.acked.size >= 100 ? true : undefined),
      () => `the new majority acknowledged only ${load.acked.size} writes; failures: ${load.failures.slice(-5).join('; ')}`);
    // The old leader hears from no quorum: CheckQuorum makes it step down.
    await until(10 * ELECTION_MS + 20_000, async () => ((await isLeader(old)) === false ? true : undefined),
      () => `isolated ${NAMES[old]} still says it leads\n${logs()}`);
    // And it cannot take a write.
    const w = await clients[old]!.put({ key: b('b/isolated-write'), value: b('x') }, 10_000).then(() => 'ok', (e: unknown) => e);
    assert.ok(w !== 'ok', `isolated ${NAMES[old]} acknowledged a write`);
  } finally {
    await load.stop();
  }
  const strandedResult = await stranded;
  const acked = new Map(load.acked);
  if (typeof strandedResult === 'number') acked.set('b/stranded', strandedResult);
  else assert.ok(isGrpcError(strandedResult), `stranded write failed with ${String(strandedResult)}`);
  const rev = Math.max(...await Promise.all(others.map(localRevision)));
  assert.ok(rev > startRev);
  assert.ok(heldAcross(old) > heldBefore, 'no new connection across the cut was held by the blackhole');

  proxy.heal();
  await until(60_000, async () => ((await localRevision(old).catch(() => 0)) === rev ? true : undefined),
    () => `${NAMES[old]} did not catch up to ${rev}\n${logs()}`, 200);
  // It follows the new leader: still exactly one leader, and not the old one.
  assert.equal(await leaderAmong([0, 1, 2], 30_000), leader, 'leadership moved after the heal');
  assert.equal(await isLeader(old), false);
  const h = await sameHashKV(rev, 30_000);
  await allPresent(acked, 'b', rev);
  // A failed write may still commit later (as in etcd); whether it did, every member agrees (same HashKV).
  // New writes go through the old leader again (forwarded to the new one).
  const after = await clients[old]!.put({ key: b('b/after-heal'), value: b('y') }, 15_000);
  await sameHashKV(after.header.revision, 30_000);
  console.log(`# partition (b): new leader ${NAMES[leader]} after ${electedMs} ms; ${acked.size} writes acknowledged; HashKV ${h} at ${rev}; stranded write: ${typeof strandedResult === 'number' ? `committed at ${strandedResult}` : (strandedResult as Error).message}`);
});
