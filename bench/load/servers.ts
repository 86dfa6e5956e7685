// Starts and stops the servers compare.ts measures: real etcd and etsd, with
// the same etcd-style flags, on 127.0.0.1, free ports and a temporary data dir.
// Optionally with client TLS (the same certificates for both, client
// certificates required) and with auth on (a root user, then auth enable).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RawH2Conn } from './h2raw.js';
import { messages, encodeFramed, PATHS } from './proto.js';
import { enableAuth } from './auth.js';
import type { BenchCerts } from './certs.js';
import type { TlsFiles } from './conn-types.js';

export type Target = 'etcd' | 'etsd';

export const ETSD_CLI = fileURLToPath(new URL('../../src/cli/etsd.js', import.meta.url));

export interface Server {
  target: Target;
  pid: number;
  endpoint: string;
  dataDir: string;
  logFile: string;
  /** What clients need to reach it over TLS; null for h2c. */
  tls: TlsFiles | null;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Every server started and not yet stopped, so a failure path can stop them all. */
export const running = new Set<Server>();

export interface ServerOptions {
  etcdBin?: string; keepData?: boolean; readyTimeoutMs?: number; members?: number;
  /** Client URLs over https with these certificates, --client-cert-auth. */
  certs?: BenchCerts;
  /** Auth on once ready: a root user (root role) with this password. */
  rootPassword?: string;
  /** More flags for every member of both targets (e.g. --auth-token jwt,..., --quota-backend-bytes). */
  extraArgs?: string[];
}

/**
 * Starts `members` (default 1) processes of one target as one cluster, each with
 * the same flags; the returned Server's endpoint lists every member's client
 * address (comma-separated, as --endpoints takes them) and stop() stops them all.
 */
export async function startServer(target: Target, opts: ServerOptions = {}): Promise<Server> {
  const n = opts.members ?? 1;
  const ports = await Promise.all(Array.from({ length: n }, async () => [await freePort(), await freePort()] as const));
  const cluster = ports.map(([, peer], i) => `bench-${target}-${i}=http://127.0.0.1:${peer}`).join(',');
  const started = await Promise.allSettled(ports.map(([c, p], i) => startMember(target, opts, `bench-${target}-${i}`, c, p, cluster)));
  const members = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
    throw failed.reason;
  }
  if (opts.rootPassword !== undefined) await withConn(members[0]!, (c) => enableAuth(c, opts.rootPassword!));
  if (n === 1) return members[0]!;
  for (const m of members) running.delete(m);
  const server: Server = {
    target, pid: members[0]!.pid, endpoint: members.map((m) => m.endpoint).join(','), tls: members[0]!.tls,
    dataDir: members.map((m) => m.dataDir).join(','), logFile: members.map((m) => m.logFile).join(','),
    async stop() {
      running.delete(server);
      await Promise.all(members.map((m) => m.stop()));
    },
  };
  running.add(server);
  return server;
}

async function startMember(target: Target, opts: ServerOptions, name: string, clientPort: number, peerPort: number, cluster: string): Promise<Server> {
  if (target === 'etsd' && !existsSync(ETSD_CLI)) throw new Error(`etsd not built: ${ETSD_CLI} is missing`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `bench-${target}-`));
  const certs = opts.certs;
  const client = `${certs ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', name, '--data-dir', path.join(dataDir, 'data'),
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', cluster,
    ...(certs ? ['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.server.ca, '--client-cert-auth'] : []),
    ...(opts.extraArgs ?? []),
  ];
  const logFile = path.join(dataDir, 'server.log');
  const fd = openSync(logFile, 'w');
  const child: ChildProcess = target === 'etcd'
    ? spawn(opts.etcdBin ?? '/usr/bin/etcd', args, { stdio: ['ignore', fd, fd] })
    : spawn(process.execPath, [ETSD_CLI, ...args], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${target}`);
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let alive = true;
  child.once('exit', () => { alive = false; });
  const server: Server = {
    target, pid, endpoint: `127.0.0.1:${clientPort}`, dataDir, logFile, tls: certs?.client ?? null,
    async stop() {
      running.delete(server);
      if (alive) {
        process.kill(pid, 'SIGTERM');
        const killer = setTimeout(() => { if (alive) process.kill(pid, 'SIGKILL'); }, 5000);
        await exited;
        clearTimeout(killer);
      }
      if (!opts.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(server);
  try {
    await waitReady(server.endpoint, server.tls, () => alive, opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw new Error(`${target} did not become ready: ${(err as Error).message} (log: ${logFile})`);
  }
  return server;
}

/** Ready = a linearizable Range succeeds (so there is a leader). */
export async function waitReady(endpoint: string, tls: TlsFiles | null, alive: () => boolean, timeoutMs: number): Promise<void> {
  const body = encodeFramed(messages().RangeRequest, { key: Buffer.from('bench-ready') });
  const deadline = Date.now() + timeoutMs;
  let last = 'timeout';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('process exited');
    const conn = new RawH2Conn(endpoint, tls);
    try {
      await conn.connect(1000);
      await conn.unaryAsync(PATHS.range, body);
      return;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      conn.close();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(last);
}

/** One short-lived session to a member, for set-up calls. */
async function withConn<T>(s: Server, fn: (c: RawH2Conn) => Promise<T>): Promise<T> {
  const conn = new RawH2Conn(s.endpoint, s.tls);
  try {
    await conn.connect(5000);
    return await fn(conn);
  } finally {
    conn.close();
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop().catch(() => undefined)));
}
