// Real clusters for fault runs: N etsd members, or N real etcd members, as
// child processes on loopback with fresh data dirs. Peer traffic runs through
// the partition proxy (test/common/tcp-proxy.ts), which names the sender of
// etsd's connections by their hello and of etcd's by the X-Server-From header,
// so a member of either can be isolated. Every child is killed by PID (also
// at process exit); data dirs are removed on close.
//
// Fault kinds that need more than that ask for it at start (ClusterOptions):
// a per-member environment (a failpoint armed in one member only), a small
// tmpfs mounted as one member's --wal-dir (disk full; unmounted on close),
// and the power-cut shim (test/faults/powercut/) preloaded into every etsd
// member, journaling its file writes and syncs so that powerCut() can drop
// what was never synced. Members can be removed, wiped and re-added (member
// replace), and each member counts the log lines that mark a raft snapshot
// install.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../common/ports.js';
import { buildShim } from '../powercut/build.js';
import { revertUnsynced, type RevertReport } from '../powercut/revert.js';
import { etsdScript } from '../../common/repo.js';
import { PartitionProxy } from '../../common/tcp-proxy.js';
import { KvClient, isGrpcError } from '../../integration/kv-client.js';

export type ClusterKind = 'etsd' | 'etcd';
export const ETCD_BIN = '/usr/bin/etcd';
export const ETCDCTL_BIN = '/usr/bin/etcdctl';
export const HEARTBEAT_MS = 100;
export const ELECTION_MS = 1000;
const READY_TIMEOUT_MS = 60_000;
const LOG_LINES = 100;

const live = new Set<ChildProcess>();
/** tmpfs mounts still up: lazily unmounted at exit if a run dies before close(). */
const mounts = new Set<string>();process.on('exit', () => {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  for (const dir of mounts) {
    try { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A raft snapshot from the leader installed: etsd's log line, etcd 3.4's (capnslog and zap). */
const SNAPSHOT_INSTALLED = /installed a snapshot from the leader|finished applying incoming snapshot|applied incoming Raft snapshot/;

export interface ClusterOptions {
  /** Added to member i's environment only (over `env`). */
  memberEnv?: Record<number, Record<string, string>>;
  /** A tmpfs of sizeMb MiB mounted as member i's --wal-dir (we run as root; MountError when mount is refused). */
  tmpfsWal?: { member: number; sizeMb: number };
  /** The power-cut shim preloaded into every member (etsd only: PowerCutError for etcd). */
  powerCut?: boolean;
}

/**
 * etcd is a Go binary: its file I/O goes through raw syscalls, not libc, so an LD_PRELOAD
 * shim never sees it and a power cut cannot be simulated that way for it.
 */
export class PowerCutError extends Error { override name = 'PowerCutError'; }

/** The cluster was closed under a run still using it (a test gave up on the run). */
export class ClusterClosedError extends Error { override name = 'ClusterClosedError'; }

/** mount(8) refused: the disk-full runs need root (or a tmpfs-capable container). */
export class MountError extends Error { override name = 'MountError'; }

class Member {
  child: ChildProcess | null = null;
  incarnation = -1;
  stopped = false;
  /** Log lines marking a raft snapshot installed, over every incarnation. */
  snapshotsInstalled = 0;
  private tail: string[] = [];
  private partial = '';
  private exit: Promise<void> = Promise.resolve();

  constructor(readonly name: string, readonly clientPort: number, readonly dataDir: string, private readonly argv: () => [string, string[]],
    public extraEnv: Record<string, string>, private readonly launchEnv: (incarnation: number) => Record<string, string> = () => ({})) {}

  get endpoint(): string { return `127.0.0.1:${this.clientPort}`; }
  get label(): string { return `${this.name}#${this.incarnation}`; }
  get up(): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null; }

  start(): void {
    const [file, args] = this.argv();
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && k !== 'ETSD_FAILPOINTS')), ...this.extraEnv,
      ...this.launchEnv(this.incarnation + 1) };
    const c = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child = c;
    this.incarnation++;
    this.stopped = false;
    live.add(c);
    const onData = (d: Buffer) => {
      const lines = (this.partial + d.toString('utf8')).split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) {
        if (!l) continue;
        if (SNAPSHOT_INSTALLED.test(l)) this.snapshotsInstalled++;
        this.tail.push(l);
        if (this.tail.length > LOG_LINES) this.tail.shift();
      }
    };
    c.stdout!.on('data', onData);
    c.stderr!.on('data', onData);
    // 'close': after the exit and the last of its output (a crash's last words included).
    this.exit = new Promise((r) => c.once('close', () => { live.delete(c); r(); }));
  }

  /** Resolves when the current incarnation exits (at once if it is not running). */
  exited(): Promise<void> { return this.exit; }

  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const kv = new KvClient(this.endpoint);
    const deadline = Date.now() + timeoutMs;
    let last = '';
    try {
      while (Date.now() < deadline) {
        if (!this.up) throw new Error(`${this.name} exited before it was ready:\n${this.logTail()}`);
        try { await kv.range({ key: Buffer.from('faults-ready-probe') }, 1000); return; } catch (e) {
          if (!isGrpcError(e)) throw e;
          last = `${e.code} ${e.details}`;
        }
        await sleep(50);
      }
    } finally { kv.close(); }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms (${last}):\n${this.logTail()}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.up) return;
    if (this.stopped) process.kill(this.child!.pid!, 'SIGCONT');
    process.kill(this.child!.pid!, signal);
    await this.exit;
  }

  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    if (!this.up) return;
    process.kill(this.child!.pid!, sig);
    this.stopped = sig === 'SIGSTOP';
  }

  logTail(n = 30): string { return this.tail.slice(-n).join('\n'); }
}

export class Cluster {
  /** The --initial-cluster-state each member starts with ('existing' once re-added). */
  private readonly state: ('new' | 'existing')[];
  private mounted: string | null = null;
  private isClosed = false;

  private constructor(readonly kind: ClusterKind, private readonly members: Member[], readonly proxy: PartitionProxy, private readonly base: string,
    readonly flags: string[], readonly options: ClusterOptions) {
    this.state = members.map(() => 'new');
  }

  /**
   * Starts `size` members and waits until every one answers and one leads; `env` is added to
   * theirs (ETSD_FAILPOINTS only from here), `flags` to their command lines.
   */
  static async start(kind: ClusterKind, size: number, env: Record<string, string> = {}, flags: string[] = [], options: ClusterOptions = {}): Promise<Cluster> {
    if (options.powerCut && kind !== 'etsd') throw new PowerCutError('power-cut: etcd (Go) makes raw syscalls that an LD_PRELOAD shim cannot see; etsd members only');
    const ports = await freePorts(size * 3);
    const base = mkdtempSync(join(tmpdir(), `etsd-faults-${kind}-`));
    // The WAL dir is a directory inside the mount: etcd creates its WAL beside it and renames it into place.
    const walDir = (i: number): string[] => (options.tmpfsWal?.member === i ? ['--wal-dir', join(base, 'tmpfs', 'wal')] : []);
    let cluster: Cluster | null = null;
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
    const proxy = await PartitionProxy.start(names.map((_, i) => ({ proxyPort: ports[2 * size + i]!, targetPort: ports[size + i]! })));
    const advertised = (i: number) => proxy.advertisedUrl(i);
    const listenPeer = (i: number) => `http://127.0.0.1:${ports[size + i]}`;
    const initialCluster = names.map((n, i) => `${n}=${advertised(i)}`).join(',');
    const shim = options.powerCut ? buildShim() : null;
    const members = names.map((name, i) => {
      const dataDir = join(base, name);
      // One journal per incarnation (the revert covers the one the cut came in); io_uring off,
      // or libuv could write past libc. The data dir exists first: the shim resolves it at load.
      const powerCutEnv = (n: number): Record<string, string> => {
        if (!shim) return {};
        mkdirSync(dataDir, { recursive: true });
        return { LD_PRELOAD: shim, POWERCUT_DIR: dataDir, POWERCUT_JOURNAL: Cluster.journalPath(base, name, n), UV_USE_IO_URING: '0' };
      };
      const client = `http://127.0.0.1:${ports[i]}`;
      const argvFlags = [
        '--name', name, '--data-dir', dataDir,
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', listenPeer(i), '--initial-advertise-peer-urls', advertised(i),
        '--initial-cluster', initialCluster,
        '--heartbeat-interval', String(HEARTBEAT_MS), '--election-timeout', String(ELECTION_MS),
        ...walDir(i), ...flags,
      ];
      const withState = (): string[] => [...argvFlags, '--initial-cluster-state', cluster!.state[i]!];
      const argv = (): [string, string[]] => (kind === 'etcd' ? [ETCD_BIN, withState()] : [process.execPath, [etsdScript(), ...withState()]]);
      return new Member(name, ports[i]!, dataDir, argv, { ...env, ...options.memberEnv?.[i] }, powerCutEnv);
    });
    const c = new Cluster(kind, members, proxy, base, flags, options);
    cluster = c;
    try {
      if (shim) mkdirSync(join(base, 'powercut'));
      if (options.tmpfsWal) c.mountTmpfs(join(base, 'tmpfs'), options.tmpfsWal.sizeMb);
      for (const m of members) m.start();
      await Promise.all(members.map((m) => m.waitReady()));
      await c.leader(30_000);
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  get size(): number { return this.members.length; }
  /** close() was called: restarts and leader waits throw ClusterClosedError, so a run given up on ends soon. */
  get closed(): boolean { return this.isClosed; }
  private assertOpen(): void { if (this.isClosed) throw new ClusterClosedError('the cluster was closed'); }
  endpoint(i: number): string { return this.members[i]!.endpoint; }
  label(i: number): string { return this.members[i]!.label; }
  name(i: number): string { return this.members[i]!.name; }
  isUp(i: number): boolean { return this.members[i]!.up; }
  logs(): string { return this.members.map((m) => `--- ${m.label}\n${m.logTail()}`).join('\n'); }

  /** Whether member i says it leads (etcd_server_is_leader on /metrics); null when it does not answer. */
  async isLeader(i: number, timeoutMs = 1000): Promise<boolean | null> {
    if (!this.members[i]!.up || this.members[i]!.stopped) return null;
    try {
      const res = await fetch(`http://${this.endpoint(i)}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      const m = /^etcd_server_is_leader (\d)/m.exec(await res.text());
      return m ? m[1] === '1' : null;
    } catch { return null; }
  }

  /** The member among `among` that leads, once exactly one of them says so. */
  async leader(timeoutMs: number, among: number[] = this.members.map((_, i) => i), pollMs = 100): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertOpen();
      const says = await Promise.all(among.map((i) => this.isLeader(i)));
      const l = among.filter((_, k) => says[k] === true);
      if (l.length === 1) return l[0]!;
      if (Date.now() > deadline) throw new Error(`no single leader among ${among.map((i) => this.name(i)).join(',')} after ${timeoutMs} ms: ${JSON.stringify(says)}\n${this.logs()}`);
      await sleep(pollMs);
    }
  }

  async kill(i: number): Promise<void> { await this.members[i]!.kill('SIGKILL'); }

  private static journalPath(base: string, name: string, incarnation: number): string { return join(base, 'powercut', `${name}.${incarnation}.journal`); }

  /**
   * A power cut of members `which`: each killed -9 (all signalled before any is awaited), then
   * its data dir put back as the disk would hold it, every write its current incarnation never
   * synced undone (test/faults/powercut/revert.ts). Needs the cluster started with powerCut.
   */
  async powerCut(which: number[]): Promise<RevertReport[]> {
    if (!this.options.powerCut) throw new PowerCutError('this cluster was not started with the power-cut shim (ClusterOptions.powerCut)');
    await Promise.all(which.map((i) => this.members[i]!.kill('SIGKILL')));
    return which.map((i) => {
      const m = this.members[i]!;
      return revertUnsynced(m.dataDir, [Cluster.journalPath(this.base, m.name, m.incarnation)]);
    });
  }
  /** Starts member i again (with `env` as its extra environment from now on, if given) and waits until it answers. */
  async restart(i: number, env?: Record<string, string>, readyTimeoutMs?: number): Promise<void> {
    this.assertOpen();
    const m = this.members[i]!;
    if (env) m.extraEnv = env;
    m.start();
    await m.waitReady(readyTimeoutMs);
  }
  /** Starts member i (with `env` as its extra environment from now on) without waiting for it. */
  launch(i: number, env: Record<string, string>): void {
    this.assertOpen();
    const m = this.members[i]!;
    m.extraEnv = env;
    m.start();
  }
  async waitReady(i: number): Promise<void> { await this.members[i]!.waitReady(); }
  /** Resolves when member i's current process exits. */
  exited(i: number): Promise<void> { return this.members[i]!.exited(); }
  snapshotsInstalled(i: number): number { return this.members[i]!.snapshotsInstalled; }
  logTail(i: number, n = 30): string { return this.members[i]!.logTail(n); }
  /** The tmpfs mount holding one member's WAL directory (disk-full runs), if this cluster has one. */
  get tmpfsWalDir(): string | null { return this.mounted; }

  /**
   * Member replace: removes member i from the cluster (through a survivor), kills it, wipes its data
   * (and WAL) dir, adds it back under its name and peer URL, and starts it with --initial-cluster-state
   * existing, so it catches up from the leader as a new member. Returns the old and new member ids.
   */
  async replace(i: number, via: number): Promise<{ oldId: string; newId: string }> {
    const m = this.members[i]!;
    const list = await this.etcdctl(via, ['member', 'list']);
    const row = list.split('\n').find((l) => l.split(', ')[2] === m.name);
    if (!row) throw new Error(`member ${m.name} not in the member list:\n${list}`);
    const oldId = row.split(', ')[0]!;
    await this.etcdctl(via, ['member', 'remove', oldId]);
    await m.kill('SIGKILL');
    rmSync(m.dataDir, { recursive: true, force: true });
    if (this.options.tmpfsWal?.member === i && this.mounted) for (const f of readdirSync(this.mounted)) rmSync(join(this.mounted, f), { recursive: true, force: true });

    const added = await this.etcdctl(via, ['member', 'add', m.name, `--peer-urls=${this.proxy.advertisedUrl(i)}`]);
    const id = /Member\s+([0-9a-f]+)\s+added/.exec(added);
    if (!id) throw new Error(`member add said: ${added}`);
    this.proxy.setId(i, BigInt(`0x${id[1]}`));
    this.state[i] = 'existing';
    await this.restart(i);
    return { oldId, newId: id[1]! };
  }

  /** etcdctl against member i; a change refused as "unhealthy cluster" (a peer connected < 5 s ago) is retried. */
  async etcdctl(i: number, args: string[]): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<string>((resolve, reject) => {
          execFile(ETCDCTL_BIN, [`--endpoints=${this.endpoint(i)}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 }, (err, out, errOut) => {
            if (err) reject(new Error(`etcdctl ${args.join(' ')}: ${errOut || err.message}`));
            else resolve(out);
          });
        });
      } catch (err) {
        if (attempt > 40 || !/unhealthy cluster|leader changed|timed out/.test(String(err))) throw err;
        await sleep(500);
      }
    }
  }

  /** Grows the tmpfs WAL dir to sizeMb (the operator freeing space) . */
  growTmpfs(sizeMb: number): void {
    if (!this.mounted) throw new Error('no tmpfs in this cluster');
    execFileSync('mount', ['-o', `remount,size=${sizeMb}m`, this.mounted]);
  }

  private mountTmpfs(dir: string, sizeMb: number): void {
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new MountError(`mount -t tmpfs on ${dir} refused: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`);
    }
    this.mounted = dir;
    mounts.add(dir);
  }
  signal(i: number, sig: 'SIGSTOP' | 'SIGCONT'): void { this.members[i]!.signal(sig); }

  isolate(i: number, mode: 'refuse' | 'blackhole' = 'refuse'): void {
    this.proxy.mode = mode;
    this.proxy.isolate(i);
  }
  /** Member a's raft messages to member b are lost; b's to a still arrive. */
  drop(a: number, b: number): void { this.proxy.drop(a, b); }
  heal(): void { this.proxy.heal(); this.proxy.mode = 'refuse'; }

  async close(): Promise<void> {
    this.isClosed = true;
    for (const m of this.members) await m.kill('SIGKILL').catch(() => undefined);
    await this.proxy.close();
    if (this.mounted) {
      // A member that just died may still hold the mount for a moment.
      for (let tries = 0; ; tries++) {
        try { execFileSync('umount', [this.mounted], { stdio: ['ignore', 'ignore', 'pipe'] }); break; } catch (e) {
          if (tries > 20) throw new Error(`umount ${this.mounted}: ${(e as { stderr?: Buffer }).stderr?.toString().trim()}`);
          await sleep(250);
        }
      }
      mounts.delete(this.mounted);
      this.mounted = null;
    }
    if (process.env['ETSD_KEEP_TMP'] !== '1') rmSync(this.base, { recursive: true, force: true });
  }
}
