// Real clusters for fault runs: N etsd members, or N real etcd members, as
// child processes on loopback with fresh data dirs. Peer traffic runs through
// the partition proxy (test/common/tcp-proxy.ts), which names the sender of
// etsd's connections by their hello and of etcd's by the X-Server-From header,
// so a member of either can be isolated. Every child is killed by PID (also
// at process exit); data dirs are removed on close.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../common/ports.js';
import { etsdScript } from '../../common/repo.js';
import { PartitionProxy } from '../../common/tcp-proxy.js';
import { KvClient, isGrpcError } from '../../integration/kv-client.js';

export type ClusterKind = 'etsd' | 'etcd';
export const ETCD_BIN = '/usr/bin/etcd';
export const HEARTBEAT_MS = 100;
export const ELECTION_MS = 1000;
const READY_TIMEOUT_MS = 60_000;
const LOG_LINES = 100;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Member {
  child: ChildProcess | null = null;
  incarnation = -1;
  stopped = false;
  private tail: string[] = [];
  private exit: Promise<void> = Promise.resolve();

  constructor(readonly name: string, readonly clientPort: number, readonly dataDir: string, private readonly argv: () => [string, string[]],
    private readonly extraEnv: Record<string, string>) {}

  get endpoint(): string { return `127.0.0.1:${this.clientPort}`; }
  get label(): string { return `${this.name}#${this.incarnation}`; }
  get up(): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null; }

  start(): void {
    const [file, args] = this.argv();
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && k !== 'ETSD_FAILPOINTS')), ...this.extraEnv };
    const c = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child = c;
    this.incarnation++;
    this.stopped = false;
    live.add(c);
    const onData = (d: Buffer) => {
      for (const l of d.toString('utf8').split('\n')) if (l) { this.tail.push(l); if (this.tail.length > LOG_LINES) this.tail.shift(); }
    };
    c.stdout!.on('data', onData);
    c.stderr!.on('data', onData);
    this.exit = new Promise((r) => c.once('exit', () => { live.delete(c); r(); }));
  }

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
  private constructor(readonly kind: ClusterKind, private readonly members: Member[], private readonly proxy: PartitionProxy, private readonly base: string) {}

  /**
   * Starts `size` members and waits until every one answers and one leads; `env` is added to
   * theirs (ETSD_FAILPOINTS only from here), `flags` to their command lines.
   */
  static async start(kind: ClusterKind, size: number, env: Record<string, string> = {}, flags: string[] = []): Promise<Cluster> {
    const ports = await freePorts(size * 3);
    const base = mkdtempSync(join(tmpdir(), `etsd-faults-${kind}-`));
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
    const proxy = await PartitionProxy.start(names.map((_, i) => ({ proxyPort: ports[2 * size + i]!, targetPort: ports[size + i]! })));
    const advertised = (i: number) => proxy.advertisedUrl(i);
    const listenPeer = (i: number) => `http://127.0.0.1:${ports[size + i]}`;
    const initialCluster = names.map((n, i) => `${n}=${advertised(i)}`).join(',');
    const members = names.map((name, i) => {
      const dataDir = join(base, name);
      const client = `http://127.0.0.1:${ports[i]}`;
      const argvFlags = [
        '--name', name, '--data-dir', dataDir,
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', listenPeer(i), '--initial-advertise-peer-urls', advertised(i),
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
        '--heartbeat-interval', String(HEARTBEAT_MS), '--election-timeout', String(ELECTION_MS),
        ...flags,
      ];
      const argv = (): [string, string[]] => (kind === 'etcd' ? [ETCD_BIN, argvFlags] : [process.execPath, [etsdScript(), ...argvFlags]]);
      return new Member(name, ports[i]!, dataDir, argv, env);
    });
    const c = new Cluster(kind, members, proxy, base);
    try {
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
      const says = await Promise.all(among.map((i) => this.isLeader(i)));
      const l = among.filter((_, k) => says[k] === true);
      if (l.length === 1) return l[0]!;
      if (Date.now() > deadline) throw new Error(`no single leader among ${among.map((i) => this.name(i)).join(',')} after ${timeoutMs} ms: ${JSON.stringify(says)}\n${this.logs()}`);
      await sleep(pollMs);
    }
  }

  async kill(i: number): Promise<void> { await this.members[i]!.kill('SIGKILL'); }
  async restart(i: number): Promise<void> { const m = this.members[i]!; m.start(); await m.waitReady(); }
  signal(i: number, sig: 'SIGSTOP' | 'SIGCONT'): void { this.members[i]!.signal(sig); }

  isolate(i: number): void {
    this.proxy.isolate(i);
  }
  heal(): void { this.proxy.heal(); }

  async close(): Promise<void> {
    for (const m of this.members) await m.kill('SIGKILL').catch(() => undefined);
    await this.proxy.close();
    if (process.env['ETSD_KEEP_TMP'] !== '1') rmSync(this.base, { recursive: true, force: true });
  }
}
