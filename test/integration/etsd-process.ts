// Starts etsd as a child process for integration tests: free loopback ports,
// temp data dirs under os.tmpdir(), readiness by polling a Range over gRPC,
// kill by PID, and cleanup that runs even when a test fails or the test
// process exits abruptly. Every wait here has a timeout.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvClient, isGrpcError } from './kv-client.js';
import { freePorts } from '../common/ports.js';
import { etsdScript, repoRoot } from '../common/repo.js';

export { etsdScript, repoRoot };

export const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const PROBE_INTERVAL_MS = 10;
const PROBE_DEADLINE_MS = 1_000;
/** Lines of the child's stderr kept for error messages. */
const LOG_TAIL_LINES = 200;


export { freePorts };



// Everything we created, so an abrupt exit of the test process still kills
// the children (by PID) and removes the temp dirs.
const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const c of liveChildren) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
  if (process.env['ETSD_KEEP_TMP'] !== '1') {
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  }
});

/** A fresh directory under os.tmpdir(), removed by removeTempDir or at process exit. */
export function makeTempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `etsd-it-${label.replace(/[^a-z0-9]/gi, '')}-`));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  if (process.env['ETSD_KEEP_TMP'] === '1') return;
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface EtsdOptions {
  dataDir: string;
  /** Defaults to fresh free ports. Pass the same ports to restart "the same" member. */
  clientPort?: number;
  peerPort?: number;
  name?: string;
  shards?: number;
  extraArgs?: string[];
  /** Extra environment variables (e.g. ETSD_FAILPOINTS). */
  env?: Record<string, string>;
  /** Working directory of the child (unix:// URLs name sockets relative to it). */
  cwd?: string;
}

export interface ExitInfo { code: number | null; signal: NodeJS.Signals | null }

/** One running etsd child process. */
export class EtsdProcess {
  private tail: string[] = [];
  private partial = '';
  private exitInfo: ExitInfo | null = null;
  private readonly exited: Promise<ExitInfo>;
  readonly startedAt: bigint;
  readonly pid: number;

  private constructor(
    readonly child: ChildProcess,
    readonly opts: Required<Omit<EtsdOptions, 'extraArgs' | 'shards' | 'env' | 'cwd'>> & { shards?: number; extraArgs: string[] },
  ) {
    this.startedAt = process.hrtime.bigint();
    if (child.pid === undefined) throw new Error('etsd failed to spawn');
    this.pid = child.pid;
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        liveChildren.delete(child);
        resolve(this.exitInfo);
      });
    });
    // Drain both pipes always: a full pipe would block the server.
    child.stdout?.on('data', (d: Buffer) => this.onOutput(d));
    child.stderr?.on('data', (d: Buffer) => this.onOutput(d));
  }

  /** Spawns etsd (does not wait for readiness; see waitReady / startReady). */
  static async start(o: EtsdOptions): Promise<EtsdProcess> {
    const [cp, pp] = o.clientPort !== undefined && o.peerPort !== undefined ? [o.clientPort, o.peerPort] : await freePorts(2);
    const clientPort = o.clientPort ?? cp!;
    const peerPort = o.peerPort ?? pp!;
    const name = o.name ?? 'n1';
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const args = [
      etsdScript(),
      '--name', name,
      '--data-dir', o.dataDir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${name}=${peer}`,
      ...(o.shards !== undefined ? ['--shards', String(o.shards)] : []),
      ...(o.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env }, cwd: o.cwd });
    const ready = new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    await ready;
    return new EtsdProcess(child, { dataDir: o.dataDir, clientPort, peerPort, name, shards: o.shards, extraArgs: o.extraArgs ?? [] });
  }

  /** Spawns etsd and waits until it answers a Range. */
  static async startReady(o: EtsdOptions, timeoutMs = READY_TIMEOUT_MS): Promise<EtsdProcess> {
    const p = await EtsdProcess.start(o);
    try {
      await p.waitReady(timeoutMs);
    } catch (err) {
      await p.kill('SIGKILL');
      throw err;
    }
    return p;
  }

  get endpoint(): string { return `127.0.0.1:${this.opts.clientPort}`; }
  get isRunning(): boolean { return this.exitInfo === null; }

  private onOutput(d: Buffer): void {
    const text = this.partial + d.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) {
      this.tail.push(l);
      if (this.tail.length > LOG_TAIL_LINES) this.tail.shift();
    }
  }

  logTail(n = 40): string {
    return [...this.tail, this.partial].filter(Boolean).slice(-n).join('\n');
  }

  /**
   * Polls a Range (serializable: false) until one succeeds. Returns the
   * nanoseconds from spawn to that first successful Range.
   */
  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<bigint> {
    const deadline = Date.now() + timeoutMs;
    const client = new KvClient(this.endpoint);
    let lastErr = 'none';
    try {
      while (Date.now() < deadline) {
        if (this.exitInfo) {
          throw new Error(`etsd (pid ${this.pid}) exited (${describeExit(this.exitInfo)}) before becoming ready; log tail:\n${this.logTail()}`);
        }
        try {
          await client.range({ key: Buffer.from('etsd-it-readiness-probe') }, PROBE_DEADLINE_MS);
          return process.hrtime.bigint() - this.startedAt;
        } catch (err) {
          lastErr = isGrpcError(err) ? `${err.code} ${err.details}` : String(err);
        }
        await sleep(PROBE_INTERVAL_MS);
      }
    } finally {
      client.close();
    }
    throw new Error(`etsd (pid ${this.pid}) not ready after ${timeoutMs} ms on ${this.endpoint}; last probe: ${lastErr}\nlog tail:\n${this.logTail()}`);
  }

  /** Sends a signal to our child by PID and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = STOP_GRACE_MS): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    try { process.kill(this.pid, signal); } catch { /* already gone */ }
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    const r = await Promise.race([this.exited, timer]);
    if (r !== 'timeout') return r;
    throw new Error(`etsd (pid ${this.pid}) did not exit within ${timeoutMs} ms of ${signal}; log tail:\n${this.logTail()}`);
  }

  /** Best-effort stop for cleanup: SIGTERM, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    if (this.exitInfo) return;
    try {
      await this.kill('SIGTERM');
    } catch {
      await this.kill('SIGKILL');
    }
  }

  waitExit(): Promise<ExitInfo> { return this.exited; }
}

export function describeExit(e: ExitInfo): string {
  return e.signal !== null ? `killed by ${e.signal}` : `exit code ${e.code}`;
}
