// Process management for the differential compatibility suite: free ports,
// temp data dirs, starting a real etcd and an etsd with identical flags,
// waiting for readiness, running etcdctl with a timeout, and stopping every
// process we started by its PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunOutput } from './cases.js';
import { freePorts } from '../common/ports.js';
import { etsdScript, repoRoot } from '../common/repo.js';

export { repoRoot };

export { freePorts };

export const ETCD_BIN = '/usr/bin/etcd';
export const ETCDCTL_BIN = '/usr/bin/etcdctl';

/** Timeouts (ms). Every wait in this file has one. */
export const READY_TIMEOUT_MS = 30_000;
export const COMMAND_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const PROBE_INTERVAL_MS = 200;
/** Cap on captured output per stream; etcdctl output in the cases is tiny. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

export type ServerKind = 'etcd' | 'etsd';

export interface ServerHandle {
  /** Label used in reports ("etcd", "etsd", or "etcd#2" in self-test mode). */
  readonly label: string;
  readonly kind: ServerKind;
  /** host:port of the client listener, as passed to --endpoints. */
  readonly endpoint: string;
  readonly tempDir: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  exited: boolean;
  exitDescription: string;
}

/** Fails loudly (never skips) when the reference binaries are not installed. */
export function checkPrerequisites(): void {
  const missing = [ETCD_BIN, ETCDCTL_BIN].filter((p) => {
    try {
      accessSync(p, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `compat suite needs real etcd 3.4 and etcdctl 3.4, missing: ${missing.join(', ')}. ` +
        `Install them with: apt-get install etcd-server etcd-client`,
    );
  }
}


/** Which server the suite compares against etcd: ETSD_COMPAT_TARGET unset = etsd, "etcd" = self-test. */
export function targetKind(): ServerKind {
  const v = process.env['ETSD_COMPAT_TARGET'];
  if (v === undefined || v === '' || v === 'etsd') return 'etsd';
  if (v === 'etcd') return 'etcd';
  throw new Error(`ETSD_COMPAT_TARGET must be unset, "etsd" or "etcd", got "${v}"`);
}


// Every child we spawn, so an abrupt exit still kills them (by PID).
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveChildren) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

/** The program and leading args that start a server of this kind; throws a clear error if etsd is not built. */
export function serverCommand(kind: ServerKind): { file: string; prefix: string[] } {
  if (kind === 'etcd') return { file: ETCD_BIN, prefix: [] };
  const script = etsdScript('run "npm run build", or set ETSD_COMPAT_TARGET=etcd for the harness self-test');
  return { file: process.execPath, prefix: [script] };
}

/** Starts one single-node server on fresh ports with a fresh data dir. Does not wait for readiness. */
export async function startServer(kind: ServerKind, label: string): Promise<ServerHandle> {
  const cmd = serverCommand(kind);
  const [clientPort, peerPort] = await freePorts(2);
  const tempDir = mkdtempSync(join(tmpdir(), `etsd-compat-${label.replace(/[^a-z0-9]/gi, '')}-`));
  const dataDir = join(tempDir, 'data');
  const logFile = join(tempDir, 'server.log');
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const flags = [
    '--name', 'node1',
    '--data-dir', dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `node1=${peer}`,
  ];
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd.file, [...cmd.prefix, ...flags], {
      cwd: tempDir,
      stdio: ['ignore', logFd, logFd],
      env: cleanEnv(),
    });
  } finally {
    closeSync(logFd);
  }
  liveChildren.add(child);
  const handle: ServerHandle = {
    label, kind, endpoint: `127.0.0.1:${clientPort}`, tempDir, logFile, child,
    exited: false, exitDescription: '',
  };
  child.on('error', (err) => {
    handle.exited = true;
    handle.exitDescription = `failed to spawn: ${err.message}`;
  });
  child.on('exit', (code, signal) => {
    handle.exited = true;
    handle.exitDescription = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
    liveChildren.delete(child);
  });
  return handle;
}

/** Last lines of a server's log, for error messages. */
export function logTail(h: ServerHandle, lines = 30): string {
  try {
    const text = readFileSync(h.logFile, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '<no log>';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `etcdctl get` answers on the server (a read: it does not change the revision). */
export async function waitReady(h: ServerHandle, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: RunOutput | undefined;
  while (Date.now() < deadline) {
    if (h.exited) {
      throw new Error(`${h.label} ${h.exitDescription} before becoming ready; log tail:\n${logTail(h)}`);
    }
    last = await runEtcdctl(h, ['--dial-timeout=1s', '--command-timeout=2s', 'get', 'compat-readiness-probe'], Buffer.alloc(0), 5_000);
    if (last.code === 0) return;
    await sleep(PROBE_INTERVAL_MS);
  }
  throw new Error(
    `${h.label} not ready after ${timeoutMs} ms on ${h.endpoint}; last probe: ${last?.stderr.toString('utf8').trim() ?? 'none'}\n` +
      `log tail:\n${logTail(h)}`,
  );
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('ETCDCTL_') && !k.startsWith('ETCD_')) env[k] = v;
  }
  env['ETCDCTL_API'] = '3';
  return env;
}

/** A running etcdctl: its output so far, and its result once it has exited. */
export interface EtcdctlProc {
  readonly child: ChildProcess;
  /** Resolves when the process has exited and its pipes are closed. */
  readonly done: Promise<RunOutput>;
  readonly exited: () => boolean;
  /** The stdout bytes received so far. */
  readonly stdoutSoFar: () => Buffer;
  /** Resolves true once stdout has n newlines, false if the process exits first or timeoutMs passes. */
  readonly waitLines: (n: number, timeoutMs: number) => Promise<boolean>;
  /** SIGTERM, then SIGKILL if it has not exited after graceMs; resolves with the result. */
  readonly stop: (graceMs?: number) => Promise<RunOutput>;
}

function countNewlines(chunks: readonly Buffer[]): number {
  let n = 0;
  for (const c of chunks) for (let i = 0; i < c.length; i++) if (c[i] === 0x0a) n++;
  return n;
}

/**
 * Starts etcdctl against one server; kills it (by PID, SIGKILL) after timeoutMs.
 * stdin is written, then closed unless keepStdinOpen (it is then closed when the process is stopped).
 */
export function spawnEtcdctl(
  h: ServerHandle,
  args: readonly string[],
  stdin: Buffer,
  timeoutMs = COMMAND_TIMEOUT_MS,
  keepStdinOpen = false,
): EtcdctlProc {
  const child = spawn(ETCDCTL_BIN, [`--endpoints=${h.endpoint}`, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cleanEnv(),
  });
  liveChildren.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outLen = 0;
  let errLen = 0;
  let lines = 0;
  let timedOut = false;
  let spawnError: Error | undefined;
  let settled = false;
  const lineWaiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    if (outLen < MAX_OUTPUT_BYTES) { out.push(d); outLen += d.length; lines += countNewlines([d]); }
    for (const w of lineWaiters) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (errLen < MAX_OUTPUT_BYTES) { err.push(d); errLen += d.length; }
  });
  child.stdin!.on('error', () => { /* etcdctl may exit before reading stdin */ });
  if (keepStdinOpen) child.stdin!.write(stdin);
  else child.stdin!.end(stdin);
  const kill = (signal: NodeJS.Signals): void => {
    if (child.pid !== undefined && !settled) {
      try { process.kill(child.pid, signal); } catch { /* gone */ }
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<RunOutput>((resolve) => {
    const settle = (code: number | null, signal: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      liveChildren.delete(child);
      for (const w of lineWaiters) w();
      const stderr = Buffer.concat(err);
      resolve({
        stdout: Buffer.concat(out),
        stderr: spawnError ? Buffer.concat([stderr, Buffer.from(`spawn error: ${spawnError.message}\n`)]) : stderr,
        code,
        signal,
        timedOut,
      });
    };
    child.on('error', (e) => {
      spawnError = e;
      if (child.pid === undefined) settle(null, null); // never started: no 'close' is guaranteed
    });
    child.on('close', (code, signal) => {
      child.stdin!.destroy();
      settle(code, signal);
    });
  });
  const waitLines = (n: number, waitMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (lines >= n || settled) {
          lineWaiters.delete(check);
          clearTimeout(t);
          resolve(lines >= n);
        }
      };
      const t = setTimeout(() => {
        lineWaiters.delete(check);
        resolve(lines >= n);
      }, waitMs);
      lineWaiters.add(check);
      check();
    });
  const stop = async (graceMs = STOP_GRACE_MS): Promise<RunOutput> => {
    if (!settled) {
      // stdin stays open until the process is gone: etcdctl watch -i would exit on EOF
      // (with "Error reading watch request line: EOF") instead of on the signal.
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), graceMs);
      try {
        return await done;
      } finally {
        clearTimeout(t);
      }
    }
    return done;
  };
  return { child, done, exited: () => settled, stdoutSoFar: () => Buffer.concat(out), waitLines, stop };
}

/** Runs etcdctl against one server to completion; kills it (by PID) after timeoutMs. */
export function runEtcdctl(h: ServerHandle, args: readonly string[], stdin: Buffer, timeoutMs = COMMAND_TIMEOUT_MS): Promise<RunOutput> {
  return spawnEtcdctl(h, args, stdin, timeoutMs).done;
}

/** Stops a server by PID (SIGTERM, then SIGKILL after a grace period) and removes its temp dir. */
export async function stopServer(h: ServerHandle, keepDir = false): Promise<void> {
  const pid = h.child.pid;
  if (!h.exited && pid !== undefined) {
    const exited = new Promise<void>((resolve) => {
      if (h.exited) resolve();
      else h.child.once('exit', () => resolve());
    });
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_GRACE_MS));
    if ((await Promise.race([exited, timer])) === 'timeout') {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await exited;
    }
  }
  if (!keepDir) rmSync(h.tempDir, { recursive: true, force: true });
}
