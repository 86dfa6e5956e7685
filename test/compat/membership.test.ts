// Membership changes through the real etcdctl, differential: the same scenario
// (grow a one-member cluster with a learner, promote it, add a voter, errors,
// update, remove) runs against real etcd 3.4 and against etsd; every etcdctl
// answer must match after naming ids and ports by role.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ETCD_BIN, ETCDCTL_BIN, checkPrerequisites, serverCommand, type ServerKind } from './harness.js';
import { freePorts } from '../common/ports.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live = new Set<ChildProcess>();
const dirs: string[] = [];
after(() => {
  for (const c of live) c.kill('SIGKILL');
  if (process.env['ETSD_KEEP_TMP'] !== '1') for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Node { name: string; client: number; peer: number; child: ChildProcess | null; exited: boolean; log: string }

class Cluster {
  readonly nodes: Node[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'etsd-members-'));
  /** Role names for every port and id seen, so two runs compare. */
  readonly names = new Map<string, string>();

  constructor(readonly kind: ServerKind) { dirs.push(this.dir); }

  async addNode(name: string): Promise<Node> {
    const [client, peer] = await freePorts(2);
    const n: Node = { name, client: client!, peer: peer!, child: null, exited: false, log: join(this.dir, `${name}.log`) };
    this.names.set(String(client), `C_${name}`);
    this.names.set(String(peer), `P_${name}`);
    this.nodes.push(n);
    return n;
  }

  start(n: Node, initialCluster: string, state: 'new' | 'existing'): void {
    const cmd = this.kind === 'etcd' ? { file: ETCD_BIN, prefix: [] } : serverCommand('etsd');
    const c = `http://127.0.0.1:${n.client}`;
    const p = `http://127.0.0.1:${n.peer}`;
    const fd = openSync(n.log, 'a');
    try {
      n.child = spawn(cmd.file, [...cmd.prefix, '--name', n.name, '--data-dir', join(this.dir, n.name),
        '--listen-client-urls', c, '--advertise-client-urls', c, '--listen-peer-urls', p, '--initial-advertise-peer-urls', p,
        '--initial-cluster', initialCluster, '--initial-cluster-state', state], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    live.add(n.child);
    n.child.on('exit', () => { n.exited = true; live.delete(n.child!); });
  }

  ctl(n: Node, args: string[]): Promise<{ code: number; out: string; err: string }> {
    return new Promise((resolve) => {
      execFile(ETCDCTL_BIN, [`--endpoints=127.0.0.1:${n.client}`, '--dial-timeout=2s', '--command-timeout=5s', ...args],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 }, (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, out: stdout, err: stderr });
        });
    });
  }

  /** One etcdctl step as compared: exit code, stdout, and the "Error:" lines of stderr, with ids and ports named. */
  async step(n: Node, args: string[]): Promise<string> {
    const r = await this.ctl(n, args);
    const errLines = r.err.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
    return this.normalize(`$ ${args.join(' ')}\n[exit ${r.code}]\n${r.out}${errLines}`);
  }

  normalize(text: string): string {
    let s = text.replace(/\b[0-9a-f]{12,16}\b/g, (id) => {
      if (!this.names.has(id)) this.names.set(id, `ID${this.names.size}`);
      return this.names.get(id)!;
    });
    // etcdctl prints member and cluster ids with %16x: a 15-digit id gets a leading space.
    s = s.replace(/ {2,}(ID\d+)/g, ' $1');
    s = s.replace(/127\.0\.0\.1:(\d+)/g, (_, port: string) => `127.0.0.1:${this.names.get(port) ?? 'port?'}`);
    // Member order follows random ids: compare sorted.
    s = s.replace(/^ETCD_INITIAL_CLUSTER="(.*)"$/m, (_, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`);
    const lines = s.split('\n');
    const memberLines = lines.filter((l) => /^ID\d+, (started|unstarted),/.test(l)).sort();
    let k = 0;
    return lines.map((l) => (/^ID\d+, (started|unstarted),/.test(l) ? memberLines[k++]! : l)).join('\n');
  }

  /** Runs an etcdctl command until it is not refused with "unhealthy cluster" (a peer connected less than 5 s ago). */
  async untilHealthy(n: Node, args: string[]): Promise<{ code: number; out: string; err: string }> {
    let r = await this.ctl(n, args);
    const unhealthy = (x: { err: string }) => /Error: etcdserver: unhealthy cluster/.test(x.err);
    await this.waitFor(`${args.join(' ')} to be judged on a healthy cluster`, async () => {
      if (!unhealthy(r)) return true;
      await sleep(500);
      r = await this.ctl(n, args);
      return !unhealthy(r);
    });
    return r;
  }

  /** Learns a member's id (hex) from member list, by peer port. */
  async idOf(via: Node, n: Node): Promise<string> {
    const r = await this.ctl(via, ['member', 'list']);
    const line = r.out.split('\n').find((l) => l.includes(`:${n.peer}`));
    assert.ok(line, `member with peer port ${n.peer} not listed:\n${r.out}${r.err}`);
    return line.split(',')[0]!;
  }

  async waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await fn()) return;
      await sleep(200);
    }
    const logs = this.nodes.map((n) => `--- ${n.name}\n${tail(n.log)}`).join('\n');
    throw new Error(`${this.kind}: timed out waiting for ${what}\n${logs}`);
  }

  stopAll(): void {
    for (const n of this.nodes) if (n.child && !n.exited) n.child.kill('SIGKILL');
  }
}

function tail(file: string): string {
  try { return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).join('\n'); } catch { return '<no log>'; }
}

async function scenario(kind: ServerKind): Promise<string[]> {
  const cl = new Cluster(kind);
  const out: string[] = [];
  try {
    const m1 = await cl.addNode('m1');
    const m2 = await cl.addNode('m2');
    const m3 = await cl.addNode('m3');
    const url = (n: Node) => `http://127.0.0.1:${n.peer}`;
    cl.start(m1, `m1=${url(m1)}`, 'new');
    await cl.waitFor('m1 ready', async () => (await cl.ctl(m1, ['get', 'x'])).code === 0);
    out.push(await cl.step(m1, ['put', 'k1', 'v1']));

    // A learner joins, serves serializable reads only, then is promoted.
    const add2 = await cl.ctl(m1, ['member', 'add', 'm2', '--learner', `--peer-urls=${url(m2)}`]);
    out.push(cl.normalize(`[exit ${add2.code}]\n${add2.out}`));
    const ic2 = /ETCD_INITIAL_CLUSTER="(.*)"/.exec(add2.out)?.[1];
    assert.ok(ic2, `${kind}: member add printed no ETCD_INITIAL_CLUSTER:\n${add2.out}${add2.err}`);
    cl.start(m2, ic2, 'existing');
    await cl.waitFor('the learner to catch up', async () => (await cl.ctl(m2, ['get', 'k1', '--consistency=s', '--print-value-only'])).out === 'v1\n');
    await cl.waitFor('m2 to publish its name', async () => !(await cl.ctl(m1, ['member', 'list'])).out.includes('unstarted'));
    out.push(await cl.step(m1, ['member', 'list']));
    out.push(await cl.step(m2, ['put', 'k2', 'v2']));
    out.push(await cl.step(m2, ['get', 'k1']));
    out.push(await cl.step(m2, ['member', 'list']));
    out.push(await cl.step(m2, ['get', 'k1', '--consistency=s']));
    const id2 = await cl.idOf(m1, m2);
    await cl.waitFor('the learner to be promotable', async () => (await cl.ctl(m1, ['member', 'promote', id2])).code === 0);
    out.push(await cl.step(m1, ['member', 'list']));
    out.push(await cl.step(m2, ['member', 'promote', id2]));
    out.push(await cl.step(m2, ['put', 'k2', 'v2']));

    // A voter joins through a follower's answer.
    // Both refuse a voter until the member asked has been connected to every voter for 5 s ("unhealthy cluster").
    const add3 = await cl.untilHealthy(m2, ['member', 'add', 'm3', `--peer-urls=${url(m3)}`]);
    out.push(cl.normalize(`[exit ${add3.code}]\n${add3.out}`));
    const ic3 = /ETCD_INITIAL_CLUSTER="(.*)"/.exec(add3.out)?.[1];
    assert.ok(ic3, `${kind}: member add printed no ETCD_INITIAL_CLUSTER:\n${add3.out}${add3.err}`);
    cl.start(m3, ic3, 'existing');
    await cl.waitFor('m3 to serve', async () => (await cl.ctl(m3, ['get', 'k2', '--print-value-only'])).out === 'v2\n');
    out.push(await cl.step(m3, ['put', 'k3', 'v3']));
    out.push(await cl.step(m1, ['get', 'k', '--prefix']));
    await cl.waitFor('m3 to publish its name', async () => !(await cl.ctl(m1, ['member', 'list'])).out.includes('unstarted'));
    out.push(await cl.step(m3, ['member', 'list']));

    // Refusals.
    const dup = await cl.untilHealthy(m1, ['member', 'add', 'dup', '--learner', `--peer-urls=${url(m2)}`]);
    out.push(cl.normalize(`[exit ${dup.code}]\n${dup.out}${dup.err.split('\n').filter((l) => l.startsWith('Error:')).join('\n')}`));
    out.push(await cl.step(m1, ['member', 'remove', '1234']));
    out.push(await cl.step(m1, ['member', 'promote', '1234']));
    out.push(await cl.step(m1, ['member', 'update', '1234', `--peer-urls=http://127.0.0.1:1`]));
    const id3 = await cl.idOf(m1, m3);
    out.push(await cl.step(m1, ['member', 'update', id3, `--peer-urls=${url(m3)}`]));

    // Moving a member to another peer port: update its URL, restart it there; it keeps its id and data.
    const [moved] = await freePorts(1);
    cl.names.set(String(moved), 'P_m3_moved');
    out.push(await cl.step(m1, ['member', 'update', id3, `--peer-urls=http://127.0.0.1:${moved}`]));
    m3.child!.kill('SIGTERM');
    await cl.waitFor('m3 to stop', async () => m3.exited);
    m3.peer = moved!;
    m3.exited = false;
    cl.start(m3, `m1=${url(m1)},m2=${url(m2)},m3=${url(m3)}`, 'existing');
    await cl.waitFor('m3 to serve from its new peer port', async () => (await cl.ctl(m3, ['put', 'k5', 'v5'])).code === 0);
    out.push(await cl.step(m3, ['get', 'k5']));
    out.push(await cl.step(m2, ['member', 'list']));

    // Removal: the removed member stops, the rest go on.
    const rm = await cl.untilHealthy(m1, ['member', 'remove', id3]);
    out.push(cl.normalize(`[exit ${rm.code}]\n${rm.out}`));
    await cl.waitFor('the removed member to exit', async () => m3.exited, 20_000);
    out.push(await cl.step(m2, ['member', 'list']));
    out.push(await cl.step(m2, ['put', 'k4', 'v4']));
    out.push(await cl.step(m1, ['get', 'k4']));
    out.push(await cl.step(m1, ['member', 'remove', id3]));
    return out;
  } finally {
    cl.stopAll();
  }
}

test('etcdctl member add/promote/update/remove: etsd answers as etcd 3.4', { timeout: 240_000 }, async () => {
  checkPrerequisites();
  const want = await scenario('etcd');
  const got = await scenario('etsd');
  if (process.env['ETSD_SHOW_STEPS'] === '1') console.log(got.join('\n---\n'));
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    assert.equal(got[i], want[i], `step ${i} differs`);
  }
});
