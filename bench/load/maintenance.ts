// What the maintenance benches (defrag.ts, compaction.ts, snapshot.ts) share:
// etcdctl against a server, its Status, raw HTTP/2 connections, a bulk fill
// of txns of puts, and an open-loop put load whose latencies land in the
// histogram of the phase each request's intended send time falls in.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RawH2Conn } from './h2raw.js';
import { PATHS, encodeFramed, messages } from './proto.js';
import { record, type Histogram } from './histogram.js';
import { stopAll } from './servers.js';

export const MiB = 1024 * 1024;
export const ETCDCTL = '/usr/bin/etcdctl';
const LOAD_KEYS = 10_000;
const LOAD_VALUE = Buffer.alloc(256, 'p');
const DRAIN_MS = 120_000;

export interface Run { out: string; ms: number }

/** Runs a command; resolves with stdout and wall time, rejects on a non-zero exit. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0
      ? resolve({ out, ms: performance.now() - t0 })
      : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

/** etcdctl (API v3) against the server; resolves with stdout. */
export async function etcdctl(endpoint: string, args: string[]): Promise<string> {
  return (await run(ETCDCTL, [`--endpoints=${endpoint}`, '--command-timeout=30m', ...args], { ETCDCTL_API: '3' })).out;
}

export async function status(endpoint: string): Promise<{ dbSize: number; revision: number }> {
  const [s] = JSON.parse(await etcdctl(endpoint, ['endpoint', 'status', '-w', 'json'])) as { Status: { dbSize: number; header: { revision: number } } }[];
  return { dbSize: s!.Status.dbSize, revision: s!.Status.header.revision };
}

export async function connect(endpoint: string, n: number): Promise<RawH2Conn[]> {
  const conns = Array.from({ length: n }, () => new RawH2Conn(endpoint));
  await Promise.all(conns.map((c) => c.connect(5000)));
  return conns;
}

/**
 * Puts every key `keyOf(0..keys-1)` once with `value` (or `value(i)`), `perTxn`
 * puts to a txn (1: plain Puts), `inFlight` requests at a time over `conns`.
 */
export async function fill(conns: RawH2Conn[], keys: number, keyOf: (i: number) => string, value: Buffer | ((i: number) => Buffer), perTxn: number, inFlight: number): Promise<void> {
  const valueOf = typeof value === 'function' ? value : () => value;
  const m = messages();
  let next = 0;
  let sent = 0;
  const one = async (): Promise<void> => {
    while (next < keys) {
      const from = next;
      next = Math.min(keys, next + perTxn);
      const conn = conns[sent++ % conns.length]!;
      if (perTxn === 1) {
        await conn.unaryAsync(PATHS.put, encodeFramed(m.PutRequest, { key: Buffer.from(keyOf(from)), value: valueOf(from) }));
        continue;
      }
      const success = [];
      for (let i = from; i < next; i++) success.push({ requestPut: { key: Buffer.from(keyOf(i)), value: valueOf(i) } });
      await conn.unaryAsync(PATHS.txn, encodeFramed(m.TxnRequest, { success }));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, one));
}

/**
 * Open-loop puts (256 B values over 10k keys) at `rate`/s until stop() is
 * called; each latency counts from the request's intended send time (a server
 * that stops writes shows it instead of hiding it) and is recorded into the
 * histogram `phaseOf(intended send time)` names (null: not recorded).
 */
export function putLoad(conns: RawH2Conn[], rate: number, phaseOf: (intendedMs: number) => Histogram | null): { stop(): Promise<{ errors: number }> } {
  const m = messages();
  const bodies = Array.from({ length: LOAD_KEYS }, (_, i) => encodeFramed(m.PutRequest, { key: Buffer.from(`p/${String(i).padStart(6, '0')}`), value: LOAD_VALUE }));
  const t0 = performance.now();
  let sent = 0;
  let outstanding = 0;
  let errors = 0;
  let running = true;
  let drained: (() => void) | null = null;
  const tick = (): void => {
    if (!running) return;
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; sent < due; sent++) {
      const intended = t0 + (sent / rate) * 1000;
      outstanding++;
      conns[sent % conns.length]!.unary(PATHS.put, bodies[sent % LOAD_KEYS]!, (st) => {
        outstanding--;
        if (st !== 0) errors++;
        else {
          const h = phaseOf(intended);
          if (h) record(h, Math.round((performance.now() - intended) * 1000));
        }
        if (outstanding === 0 && drained) drained();
      });
    }
    setTimeout(tick, 1);
  };
  tick();
  return {
    async stop() {
      running = false;
      if (outstanding > 0) {
        await Promise.race([
          new Promise<void>((r) => { drained = r; }),
          new Promise<void>((r) => setTimeout(r, DRAIN_MS).unref()),
        ]);
      }
      return { errors };
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Microseconds as milliseconds with one decimal. */
export function ms(us: number): string { return (us / 1000).toFixed(1); }

/** A bench's options and results as JSON at `out`, and where they went. */
export function writeResults(out: string, options: unknown, results: unknown): void {
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ options, results }, null, 2) + '\n');
  console.log(`(JSON: ${out})`);
}

/** Runs a bench's main; on failure prints why, stops every server it started, and exits 1. */
export function runBench(main: () => Promise<void>): void {
  main().catch(async (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    await stopAll();
    process.exit(1);
  });
}
