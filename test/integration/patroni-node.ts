// One Patroni 3.0.2 process (Debian's /usr/bin/patroni) managing one
// PostgreSQL 15 data directory, with etsd as its DCS through the etcd3 JSON
// gateway (Patroni's `etcd3:` section). PostgreSQL refuses to run as root, so
// when the test runs as root Patroni (and its postmaster) runs as the
// `postgres` user the Debian package creates, in a temp dir chown'ed to it.
// Patroni's output lines are kept with their arrival time, so a test can ask
// "when did Patroni first say X after instant T". Every child is killed by
// PID at process exit, even when a test fails.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const PATRONI = '/usr/bin/patroni';
export const PG_BIN = '/usr/lib/postgresql/15/bin';
const execFileP = promisify(execFile);
const LOG_LINES = 2000;
const STOP_GRACE_MS = 60_000;

/** What is missing to run Patroni here, or null. */
export function patroniMissing(): string | null {
  for (const f of [PATRONI, join(PG_BIN, 'postgres'), join(PG_BIN, 'psql'), '/usr/lib/python3/dist-packages/etcd/__init__.py']) {
    if (!existsSync(f)) return `${f} is absent (apt-get install patroni postgresql python3-etcd)`;
  }
  if (process.getuid?.() === 0 && postgresIds() === null) return 'running as root and there is no postgres user';
  return null;
}

/** uid/gid of the Debian `postgres` user, from /etc/passwd. */
function postgresIds(): { uid: number; gid: number } | null {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (line === undefined) return null;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** The ids Patroni runs under: postgres when we are root, else ourselves (PostgreSQL refuses root). */
function runAs(): { uid: number; gid: number } | null {
  return process.getuid?.() === 0 ? postgresIds() : null;
}

/** Hands a directory we created to the user Patroni runs as. */
export function giveToPostgres(dir: string): void {
  const ids = runAs();
  if (ids !== null) chownSync(dir, ids.uid, ids.gid);
}

const live = new Set<PatroniNode>();
process.on('exit', () => { for (const n of live) n.killNow(); });

export interface PatroniNodeOptions {
  scope: string;
  name: string;
  /** A directory the node owns (its data dir, socket dir and config go under it). */
  dir: string;
  pgPort: number;
  restPort: number;
  /** host:port of every etsd client URL. */
  etcdHosts: string[];
  ttl: number;
  loopWait: number;
  retryTimeout: number;
}

export interface LogLine { at: number; text: string }

export class PatroniNode {
  private child: ChildProcess | null = null;
  readonly lines: LogLine[] = [];
  private partial = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly o: PatroniNodeOptions) {}

  get name(): string { return this.o.name; }
  get dataDir(): string { return join(this.o.dir, 'data'); }
  get restUrl(): string { return `http://127.0.0.1:${this.o.restPort}`; }
  get pid(): number | undefined { return this.child?.pid; }
  get running(): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null; }

  /** The YAML config, written as JSON (YAML's superset). Short TTL so failover is quick. */
  private config(): object {
    const o = this.o;
    return {
      scope: o.scope,
      name: o.name,
      log: { level: 'INFO' },
      restapi: { listen: `127.0.0.1:${o.restPort}`, connect_address: `127.0.0.1:${o.restPort}` },
      etcd3: { hosts: o.etcdHosts },
      bootstrap: {
        dcs: {
          ttl: o.ttl, loop_wait: o.loopWait, retry_timeout: o.retryTimeout, maximum_lag_on_failover: 1048576,
          postgresql: { use_pg_rewind: false, parameters: { wal_level: 'replica', hot_standby: 'on', max_wal_senders: 5, max_replication_slots: 5 } },
        },
        initdb: [{ encoding: 'UTF8' }, { auth: 'trust' }],
        pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust'],
      },
      postgresql: {
        listen: `127.0.0.1:${o.pgPort}`,
        connect_address: `127.0.0.1:${o.pgPort}`,
        data_dir: this.dataDir,
        bin_dir: PG_BIN,
        pgpass: join(o.dir, 'pgpass'),
        authentication: { replication: { username: 'postgres' }, superuser: { username: 'postgres' } },
        // The socket beside the data dir: Debian's default /var/run/postgresql may not exist here.
        parameters: { unix_socket_directories: o.dir, shared_buffers: '16MB' },
      },
    };
  }

  start(): void {
    if (this.running) throw new Error(`patroni ${this.name} already runs`);
    mkdirSync(this.o.dir, { recursive: true });
    giveToPostgres(this.o.dir);
    const cfg = join(this.o.dir, 'patroni.yml');
    writeFileSync(cfg, JSON.stringify(this.config(), null, 1));
    giveToPostgres(cfg);
    const ids = runAs();
    const child = spawn(PATRONI, [cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: this.o.dir,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: this.o.dir, LANG: 'C.UTF-8', PYTHONUNBUFFERED: '1' },
      ...(ids ?? {}),
    });
    this.child = child;
    live.add(this);
    this.exited = new Promise((resolve) => child.once('exit', () => { live.delete(this); resolve(); }));
    child.stdout?.on('data', (d: Buffer) => this.onOutput(d));
    child.stderr?.on('data', (d: Buffer) => this.onOutput(d));
  }

  private onOutput(d: Buffer): void {
    const at = Date.now();
    const parts = (this.partial + d.toString('utf8')).split('\n');
    this.partial = parts.pop() ?? '';
    for (const text of parts) {
      this.lines.push({ at, text });
      if (this.lines.length > LOG_LINES) this.lines.shift();
    }
  }

  /** The first line matching re that arrived at or after `since` (ms epoch). */
  lineSince(since: number, re: RegExp): LogLine | undefined {
    return this.lines.find((l) => l.at >= since && re.test(l.text));
  }

  logTail(n = 40): string {
    return this.lines.slice(-n).map((l) => `${this.name}| ${l.text}`).join('\n');
  }

  /** GET on Patroni's REST API; undefined when it does not answer. */
  async rest(path: string): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await fetch(this.restUrl + path, { signal: AbortSignal.timeout(3000) });
      return await res.json() as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /**
   * The running postmaster's PID from its postmaster.pid, or undefined. A
   * stale file may name a reused PID, so the process must be a postgres on
   * our data dir (its /proc cmdline) before we would signal it.
   */
  postmasterPid(): number | undefined {
    let pid: number;
    try {
      pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[0]?.endsWith('/postgres') === true && argv.includes(this.dataDir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The remote ports of Patroni's established TCP connections (its socket
   * inodes in /proc/<pid>/fd, looked up in /proc/net/tcp): which etsd
   * member it talks to (its watch stream is long-lived).
   */
  remotePorts(): number[] {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running) return [];
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // The fd closed between readdir and readlink.
      }
    }
    const ports: number[] = [];
    for (const line of readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[2] = remote "ADDR:PORT" in hex, f[3] = state (01 established), f[9] = inode.
      if (f.length > 9 && f[3] === '01' && inodes.has(f[9]!)) ports.push(parseInt(f[2]!.split(':')[1]!, 16));
    }
    return ports;
  }

  /** psql against this node's PostgreSQL over TCP (trust auth), unaligned tuples-only output. */
  async sql(query: string): Promise<string> {
    const r = await execFileP(join(PG_BIN, 'psql'), ['-h', '127.0.0.1', '-p', String(this.o.pgPort), '-U', 'postgres', '-d', 'postgres', '-XAtqc', query],
      { timeout: 15_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PGCONNECT_TIMEOUT: '5' } });
    return r.stdout.trim();
  }

  /** kill -9 of Patroni and of its postmaster; returns the instant (ms epoch) of the kill. */
  async kill9(): Promise<number> {
    const pm = this.postmasterPid();
    const pid = this.child?.pid;
    const at = Date.now();
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    if (pm !== undefined) process.kill(pm, 'SIGKILL');
    await this.exited;
    return at;
  }

  /** SIGTERM (Patroni stops PostgreSQL first), then kill -9 after a grace period. */
  async stop(): Promise<void> {
    if (this.running && this.child?.pid !== undefined) {
      process.kill(this.child.pid, 'SIGTERM');
      const grace = new Promise<'late'>((r) => setTimeout(() => r('late'), STOP_GRACE_MS).unref());
      if (await Promise.race([this.exited.then(() => 'ok' as const), grace]) === 'late') this.killNow();
      await this.exited;
    }
    this.quitPostmaster();
  }

  /** Synchronous last resort (process exit): kill -9 Patroni, immediate shutdown of a postmaster left behind. */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid !== undefined && this.running) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    this.quitPostmaster();
  }

  /** SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends with it. */
  private quitPostmaster(): void {
    const pm = this.postmasterPid();
    if (pm === undefined) return;
    try { process.kill(pm, 'SIGQUIT'); } catch { /* not running: a stale postmaster.pid */ }
  }
}
