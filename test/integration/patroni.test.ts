// Patroni 3.0.2 (Debian's package) with etsd as its DCS through the etcd3
// JSON gateway: two PostgreSQL 15 nodes, each managed by its own Patroni,
// against one etsd member and then against three.
// - Bootstrap: one node takes the leader key, the other streams from it.
// - kill -9 of the primary's Patroni and postmaster: the replica is promoted
//   once the leader key's lease runs out (ttl 10, loop_wait 2, retry_timeout 5).
// - Three members: kill -9 of the etsd leader; Patroni keeps (or regains)
//   its leader key through the survivors.
// The measured times are printed, never asserted: waits are generous polls
// (a loaded 2-core machine). Skipped, with the reason, only when the Debian
// packages are absent; .ci/run installs patroni, postgresql and python3-etcd.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { post, b64, unb64, dig, type Json } from './gateway-http.js';
import { PatroniNode, patroniMissing, giveToPostgres } from './patroni-node.js';
import { until } from '../common/poll.js';

const missing = patroniMissing();
const TTL = 10;
const LOOP_WAIT = 2;
const RETRY_TIMEOUT = 5;
/** Bootstrap is initdb, a checkpoint and a pg_basebackup: slow on a busy machine. */
const BOOTSTRAP_MS = 300_000;
const FAILOVER_MS = 120_000;
const TEST_MS = 900_000;


/** etsd members on loopback, started as the cluster tests do. */
class Etsd {
  readonly procs: (EtsdProcess | null)[];
  private constructor(readonly names: string[], readonly ports: number[], readonly dirs: string[]) {
    this.procs = names.map(() => null);
  }

  static async start(n: number, label: string): Promise<Etsd> {
    const names = Array.from({ length: n }, (_, i) => `e${i + 1}`);
    const e = new Etsd(names, await freePorts(2 * n), names.map((m) => makeTempDir(`${label}-${m}`)));
    await Promise.all(names.map((_, i) => e.startMember(i)));
    await Promise.all(e.procs.map((p) => p!.waitReady()));
    return e;
  }

  clientPort(i: number): number { return this.ports[i]!; }
  get hosts(): string[] { return this.names.map((_, i) => `127.0.0.1:${this.clientPort(i)}`); }

  async startMember(i: number): Promise<EtsdProcess> {
    const peer = (j: number) => `http://127.0.0.1:${this.ports[this.names.length + j]}`;
    const p = await EtsdProcess.start({
      dataDir: this.dirs[i]!, name: this.names[i], clientPort: this.clientPort(i), peerPort: this.ports[this.names.length + i],
      extraArgs: ['--initial-cluster', this.names.map((m, j) => `${m}=${peer(j)}`).join(','), '--heartbeat-interval', '100', '--election-timeout', '1000'],
    });
    this.procs[i] = p;
    return p;
  }

  async isLeader(i: number): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.clientPort(i)}/metrics`, { signal: AbortSignal.timeout(3000) });
      return /^etcd_server_is_leader 1$/m.test(await res.text());
    } catch {
      return false;
    }
  }

  async leader(timeoutMs = 60_000): Promise<number> {
    return until(timeoutMs, async () => {
      for (let i = 0; i < this.procs.length; i++) if (this.procs[i]?.isRunning === true && await this.isLeader(i)) return i;
      return undefined;
    }, () => 'no etsd leader');
  }

  /** Hands the raft leadership to member i (Maintenance.MoveLeader through the gateway, sent to the leader). */
  async moveLeaderTo(i: number): Promise<void> {
    const members = await this.call('/v3/cluster/member/list', {});
    const list = (dig(members, 'members') ?? []) as Json[];
    const target = list.find((m) => String(dig(m, 'clientURLs', 0)).endsWith(`:${this.clientPort(i)}`));
    assert.ok(target !== undefined, `member ${this.names[i]} not in ${JSON.stringify(members)}`);
    await until(60_000, async () => {
      if (await this.isLeader(i)) return true;
      await post(`127.0.0.1:${this.clientPort(await this.leader())}`, '/v3/maintenance/transfer-leadership', { targetID: String(dig(target, 'ID')) }, 10_000).catch(() => undefined);
      return await this.isLeader(i) ? true : undefined;
    }, () => `member ${this.names[i]} did not become leader`, 500);
  }

  /** A gateway POST to the first running member that answers. */
  async call(path: string, body: Json): Promise<Json | undefined> {
    for (let i = 0; i < this.procs.length; i++) {
      if (this.procs[i]?.isRunning !== true) continue;
      try {
        const r = await post(`127.0.0.1:${this.clientPort(i)}`, path, body, 5000);
        if (r.status === 200) return r.json;
      } catch {
        // This member does not answer now (killed, electing): the next one may.
      }
    }
    return undefined;
  }

  /** The Patroni leader key (value and lease) as etsd holds it, read through the gateway. */
  async leaderKey(scope: string): Promise<{ value: string; lease: string } | undefined> {
    const r = await this.call('/v3/kv/range', { key: b64(`/service/${scope}/leader`) });
    const kv = dig(r, 'kvs', 0);
    if (kv === undefined) return undefined;
    return { value: unb64(String(dig(kv, 'value'))), lease: String(dig(kv, 'lease') ?? '0') };
  }

  /** The lease's remaining TTL in seconds (-1 when it has expired), asked of the leader, whose clock decides expiry. */
  async leaseTtl(lease: string): Promise<number | undefined> {
    const r = await post(`127.0.0.1:${this.clientPort(await this.leader())}`, '/v3/lease/timetolive', { ID: lease }, 5000).catch(() => undefined);
    const ttl = r?.status === 200 ? dig(r.json, 'TTL') : undefined;
    return ttl === undefined ? undefined : Number(ttl);
  }

  async stop(): Promise<void> {
    for (const p of this.procs) await p?.stop();
    for (const d of this.dirs) removeTempDir(d);
  }
}

interface Pair { nodes: PatroniNode[]; dir: string; scope: string }

async function startPair(etsd: Etsd, scope: string): Promise<Pair> {
  const dir = makeTempDir(`patroni-${scope}`);
  giveToPostgres(dir);
  const ports = await freePorts(4);
  const nodes = [0, 1].map((i) => new PatroniNode({
    scope, name: `pg${i + 1}`, dir: join(dir, `pg${i + 1}`), pgPort: ports[i]!, restPort: ports[2 + i]!,
    etcdHosts: etsd.hosts, ttl: TTL, loopWait: LOOP_WAIT, retryTimeout: RETRY_TIMEOUT,
  }));
  // Both at once: they race for the initialize key (a txn on create_revision 0), one wins.
  for (const n of nodes) n.start();
  return { nodes, dir, scope };
}

async function stopPair(p: Pair): Promise<void> {
  for (const n of p.nodes) await n.stop();
  removeTempDir(p.dir);
}

/** Patroni's leader logs this after each HA cycle in which it refreshed its leader key. */
const LEADER_LINE = /no action\. I am \((pg\d)\), the leader with the lock/;
const isPrimaryRole = (r: unknown) => r === 'master' || r === 'primary';
const tails = (nodes: PatroniNode[]) => nodes.map((n) => n.logTail()).join('\n');

/**
 * Waits for a running primary and a replica streaming from it (the primary's
 * /patroni lists the replica's walsender as streaming), checks the leader key
 * in etsd, and that a row written on the primary reaches the replica.
 */
async function waitReplicating(etsd: Etsd, pair: Pair, among: PatroniNode[], timeoutMs: number): Promise<{ primary: PatroniNode; replica: PatroniNode }> {
  let last = '';
  const roles = await until(timeoutMs, async () => {
    const states = await Promise.all(among.map((n) => n.rest('/patroni')));
    last = JSON.stringify(states);
    const pi = states.findIndex((s) => s !== undefined && isPrimaryRole(s['role']) && s['state'] === 'running');
    const ri = states.findIndex((s) => s !== undefined && s['role'] === 'replica' && s['state'] === 'running');
    if (pi < 0 || ri < 0) return undefined;
    const primary = among[pi]!;
    const replica = among[ri]!;
    const repl = states[pi]!['replication'];
    const streaming = Array.isArray(repl) && repl.some((w: Record<string, unknown>) => w['application_name'] === replica.name && w['state'] === 'streaming');
    return streaming ? { primary, replica } : undefined;
  }, () => `no primary with a streaming replica; /patroni: ${last}\n${tails(pair.nodes)}`, 500);

  const key = await until(30_000, () => etsd.leaderKey(pair.scope), () => 'no leader key in etsd');
  assert.equal(key.value, roles.primary.name, 'the leader key names the primary');
  assert.notEqual(key.lease, '0', 'the leader key is attached to a lease');

  const cluster = await roles.primary.rest('/cluster');
  const members = (cluster?.['members'] ?? []) as Record<string, unknown>[];
  assert.deepEqual(members.map((m) => `${m['name']}:${m['role']}`).sort(), [`${roles.primary.name}:leader`, `${roles.replica.name}:replica`].sort(), JSON.stringify(cluster));

  const mark = `m${Date.now()}`;
  await roles.primary.sql(`CREATE TABLE IF NOT EXISTS etsd_probe (v text); INSERT INTO etsd_probe VALUES ('${mark}')`);
  await until(60_000, async () => {
    const got = await roles.replica.sql(`SELECT count(*) FROM etsd_probe WHERE v = '${mark}'`).catch(() => '');
    return got === '1' ? true : undefined;
  }, () => `the row ${mark} did not reach the replica ${roles.replica.name}`, 250);
  return roles;
}

/** kill -9 of the primary's Patroni and postmaster; returns the ms until the replica is a primary holding the leader key. */
async function killPrimary(etsd: Etsd, pair: Pair, primary: PatroniNode, replica: PatroniNode): Promise<number> {
  const killedAt = await primary.kill9();
  let last = '';
  await until(FAILOVER_MS, async () => {
    const s = await replica.rest('/patroni');
    last = JSON.stringify(s);
    return s !== undefined && isPrimaryRole(s['role']) && s['state'] === 'running' ? true : undefined;
  }, () => `${replica.name} was not promoted; /patroni: ${last}\n${tails(pair.nodes)}`, 100);
  const promotedMs = Date.now() - killedAt;
  const key = await until(30_000, () => etsd.leaderKey(pair.scope), () => 'no leader key after the failover');
  assert.equal(key.value, replica.name, 'the promoted replica holds the leader key');
  // The promoted node takes writes.
  assert.equal(await replica.sql('SELECT pg_is_in_recovery()'), 'f');
  await replica.sql(`INSERT INTO etsd_probe VALUES ('after-failover')`);
  return promotedMs;
}

test('Patroni on one etsd member: bootstrap, streaming replica, kill -9 of the primary promotes the replica', { skip: missing ?? false, timeout: TEST_MS }, async () => {
  const etsd = await Etsd.start(1, 'patroni1');
  const pair = await startPair(etsd, 'etsd1');
  try {
    const { primary, replica } = await waitReplicating(etsd, pair, pair.nodes, BOOTSTRAP_MS);
    const ms = await killPrimary(etsd, pair, primary, replica);
    console.log(`patroni, 1 etsd member: kill -9 of primary ${primary.name} -> ${replica.name} promoted in ${ms} ms (ttl ${TTL}, loop_wait ${LOOP_WAIT})`);
  } finally {
    await stopPair(pair);
    await etsd.stop();
  }
});

test('Patroni on three etsd members: kill -9 of the etsd leader, Patroni keeps its leader key; then a primary failover', { skip: missing ?? false, timeout: TEST_MS }, async () => {
  const etsd = await Etsd.start(3, 'patroni3');
  const pair = await startPair(etsd, 'etsd3');
  try {
    const { primary } = await waitReplicating(etsd, pair, pair.nodes, BOOTSTRAP_MS);
    const before = await etsd.leaderKey(pair.scope);
    assert.ok(before !== undefined);

    // The hard case: the etsd member the primary's Patroni talks to (watch and requests) is made the
    // raft leader, then killed -9. Patroni must fail over to a survivor and refresh its key there.
    const victim = await until(60_000, async () => {
      const used = primary.remotePorts();
      const i = etsd.hosts.findIndex((_, j) => used.includes(etsd.clientPort(j)));
      return i >= 0 ? i : undefined;
    }, () => `the primary's Patroni has no connection to an etsd member`, 500);
    await etsd.moveLeaderTo(victim);
    // Killed just after a HA cycle ends (its line is the cycle's last step), so the next such line
    // comes from a cycle that refreshed the key after the kill, not from one that did it before.
    const cycleEnd = Date.now();
    await until(FAILOVER_MS, async () => primary.lineSince(cycleEnd, LEADER_LINE), () => `no HA cycle on ${primary.name}\n${tails(pair.nodes)}`, 10);
    const killedAt = Date.now();
    await etsd.procs[victim]!.kill('SIGKILL');
    const refreshed = await until(FAILOVER_MS, async () => {
      for (const n of pair.nodes) {
        const l = n.lineSince(killedAt, LEADER_LINE);
        if (l !== undefined) return { node: n, at: l.at };
      }
      return undefined;
    }, () => `no Patroni refreshed its leader key after the etsd leader was killed\n${tails(pair.nodes)}`, 100);
    const demoted = primary.lineSince(killedAt, /demot/i) !== undefined;
    const now = await until(30_000, () => etsd.leaderKey(pair.scope), () => 'no leader key after the etsd leader kill');
    assert.equal(now.value, refreshed.node.name);
    const ttl = await until(30_000, () => etsd.leaseTtl(now.lease), () => 'no lease TTL');
    assert.ok(ttl > 0, `the leader key's lease ${now.lease} is alive (TTL ${ttl})`);
    console.log(`patroni, 3 etsd members: kill -9 of etsd leader ${etsd.names[victim]} (the member the primary's Patroni used) -> leader key refreshed by ${refreshed.node.name} after ${refreshed.at - killedAt} ms` +
      ` (primary demoted: ${demoted}; lease ${before.lease === now.lease ? 'kept' : `replaced ${before.lease} -> ${now.lease}`})`);

    // The killed member comes back (same data dir and ports), and replication is whole again.
    await etsd.startMember(victim);
    await etsd.procs[victim]!.waitReady();
    const roles = await waitReplicating(etsd, pair, pair.nodes, BOOTSTRAP_MS);
    const ms = await killPrimary(etsd, pair, roles.primary, roles.replica);
    console.log(`patroni, 3 etsd members: kill -9 of primary ${roles.primary.name} -> ${roles.replica.name} promoted in ${ms} ms (ttl ${TTL}, loop_wait ${LOOP_WAIT})`);
  } finally {
    await stopPair(pair);
    await etsd.stop();
  }
});
