// Drives etcd's own load tool (tools/benchmark from etcd 3.4, built by
// scripts/build-etcd-benchmark.sh) against a running server, and measures the
// server's CPU over the tool's run from /proc/<pid>/stat (utime+stime, which
// the kernel sums over every thread of the process, live and exited).
// The tool is a separate process: its own CPU never counts as the server's.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RawH2Conn } from './h2raw.js';
import { messages, encodeFramed, PATHS } from './proto.js';
import { procCpuSec } from './cpu.js';
import { authenticate, parseUser } from './auth.js';
import type { TlsFiles } from './conn-types.js';

export type ToolWorkload = 'put' | 'txn-put' | 'range';

/** One row of the side-by-side: etcd's tool with fixed flags. */
export interface ToolCase {
  name: string;
  workload: ToolWorkload;
  conns: number;
  clients: number;
  /** --total at scale 1 (sized for several seconds on a 2-core machine). */
  total: number;
  consistency?: 'l' | 's';
}

export const TOOL_CASES: readonly ToolCase[] = [
  { name: 'put-1000c', workload: 'put', conns: 100, clients: 1000, total: 100_000 },
  { name: 'put-1c', workload: 'put', conns: 1, clients: 1, total: 3_000 },
  { name: 'txn-put-1c', workload: 'txn-put', conns: 1, clients: 1, total: 3_000 },
  { name: 'txn-put-1000c', workload: 'txn-put', conns: 100, clients: 1000, total: 100_000 },
  { name: 'range-s-1000c', workload: 'range', conns: 100, clients: 1000, total: 300_000, consistency: 's' },
];

/**
 * Run on each server before the measured cases, and not counted: etsd's JIT
 * compiles its hot paths during the first tens of thousands of requests
 * (TurboFan work on V8's helper threads showed in a cold run's CPU), where a
 * server that has been up for a while has them compiled. etcd gets the same
 * load. Our own load generator warms up the same way (--warmup).
 */
export const TOOL_WARMUP: ToolCase = { name: 'warm-up', workload: 'put', conns: 100, clients: 1000, total: 30_000 };

export interface ToolOptions {
  valSize: number;
  keySize: number;
  keySpaceSize: number;
  /** Multiplies every case's --total (a smoke run uses e.g. 0.03). */
  scale: number;
  /** Client TLS for the tool (its --cacert/--cert/--key); null for h2c. */
  tls?: TlsFiles | null;
  /** NAME:PASSWORD for the tool's --user ('' or absent: none). */
  user?: string;
}

export interface ToolResult {
  tool: 'etcd-benchmark';
  case: string;
  label: string;
  target: string;
  argv: string[];
  startedAt: string;
  requests: number;
  errors: number;
  wallSec: number;            // the tool's own "Total" (first request to last)
  throughput: number;         // the tool's "Requests/sec"
  latencyUs: Record<string, number>; // percentiles the tool printed: p10 ... p99.9
  serverCpuSec: number | null;
  serverUsPerRequest: number | null;
  serverPct: number | null;   // 100 = one core, over the tool process's lifetime
}

/** Where the built tool lives: $ETCD_BENCHMARK, else the build script's cache. */
export function toolBinary(): string {
  const env = process.env.ETCD_BENCHMARK;
  if (env) return env;
  const base = process.env.ETSD_TOOLS_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'etsd');
  return path.join(base, 'benchmark', 'benchmark');
}

export const RANGE_KEY = 'etsd-bench-range-key';

export function toolArgs(c: ToolCase, endpoint: string, o: ToolOptions): string[] {
  const total = String(Math.max(1, Math.round(c.total * o.scale)));
  const common = ['--endpoints', endpoint, '--conns', String(c.conns), '--clients', String(c.clients), '--precise',
    ...(o.tls ? ['--cacert', o.tls.ca, '--cert', o.tls.cert, '--key', o.tls.key] : []), ...(o.user ? ['--user', o.user] : [])];
  switch (c.workload) {
    case 'put':
      return [...common, 'put', '--total', total, '--val-size', String(o.valSize), '--key-size', String(o.keySize),
        '--key-space-size', String(o.keySpaceSize)];
    case 'txn-put':
      return [...common, 'txn-put', '--total', total, '--val-size', String(o.valSize), '--key-size', String(o.keySize),
        '--key-space-size', String(o.keySpaceSize), '--txn-ops', '1'];
    case 'range':
      return [...common, 'range', RANGE_KEY, '--total', total, '--consistency', c.consistency ?? 'l'];
  }
}

export interface ParsedReport { requests: number; errors: number; wallSec: number; throughput: number; latencyUs: Record<string, number> }

/**
 * Reads the text report of etcd 3.4's pkg/report: "Total:", "Requests/sec:",
 * the "Latency distribution" lines ("  99% in 0.0123 secs.") and, when
 * requests failed, "Error distribution:" lines ("  [N]\t<error>").
 */
export function parseToolReport(text: string): ParsedReport {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`etcd benchmark output lacks ${re.source}`);
    return Number(m[1]);
  };
  const wallSec = num(/^\s*Total:\s*([0-9.eE+-]+) secs/m);
  const throughput = num(/^\s*Requests\/sec:\s*([0-9.eE+-]+)/m);
  const latencyUs: Record<string, number> = {};
  for (const m of text.matchAll(/^\s*([0-9.]+)% in ([0-9.eE+-]+) secs/gm)) latencyUs[`p${m[1]}`] = Number(m[2]) * 1e6;
  if (latencyUs.p50 === undefined || latencyUs.p99 === undefined) throw new Error('etcd benchmark output lacks p50/p99 lines');
  let errors = 0;
  const errBlock = /Error distribution:\n([\s\S]*)$/.exec(text);
  if (errBlock) for (const m of errBlock[1]!.matchAll(/^\s*\[(\d+)\]/gm)) errors += Number(m[1]);
  return { requests: Math.round(throughput * wallSec), errors, wallSec, throughput, latencyUs };
}

/** The range rows read one existing key holding a value of the run's size. */
export async function seedRangeKey(endpoint: string, valSize: number, tls: TlsFiles | null = null, user = ''): Promise<void> {
  const conn = new RawH2Conn(endpoint, tls);
  try {
    await conn.connect(5000);
    if (user !== '') conn.setToken(await authenticate(conn, parseUser(user)));
    await conn.unaryAsync(PATHS.put, encodeFramed(messages().PutRequest, { key: Buffer.from(RANGE_KEY), value: Buffer.alloc(valSize, 0x61) }));
  } finally {
    conn.close();
  }
}

function runTool(bin: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      const text = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(text);
      else reject(new Error(`${bin} ${argv.join(' ')} exited ${code ?? sig}: ${Buffer.concat(err).toString('utf8').slice(-2000)}`));
    });
  });
}

export async function runToolCase(bin: string, c: ToolCase, server: { target: string; pid: number; endpoint: string },
  o: ToolOptions, label: string): Promise<ToolResult> {
  if (!existsSync(bin)) throw new Error(`etcd's benchmark tool is not built: run scripts/build-etcd-benchmark.sh (looked for ${bin})`);
  const endpoint = server.endpoint.split(',')[0]!;
  if (c.workload === 'range') await seedRangeKey(endpoint, o.valSize, o.tls ?? null, o.user ?? '');
  const argv = toolArgs(c, endpoint, o);
  const startedAt = new Date().toISOString();
  const cpu0 = procCpuSec(server.pid);
  const t0 = performance.now();
  const text = await runTool(bin, argv);
  const elapsedSec = (performance.now() - t0) / 1000;
  const cpu1 = procCpuSec(server.pid);
  const rep = parseToolReport(text);
  const serverCpuSec = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
  return {
    tool: 'etcd-benchmark', case: c.name, label, target: server.target, argv, startedAt,
    requests: rep.requests, errors: rep.errors, wallSec: rep.wallSec, throughput: rep.throughput, latencyUs: rep.latencyUs,
    serverCpuSec,
    serverUsPerRequest: serverCpuSec !== null && rep.requests > 0 ? (serverCpuSec * 1e6) / rep.requests : null,
    serverPct: serverCpuSec !== null && elapsedSec > 0 ? (100 * serverCpuSec) / elapsedSec : null,
  };
}

export function formatToolResult(r: ToolResult): string {
  const ms = (us: number | undefined): string => (us === undefined ? '-' : `${(us / 1000).toFixed(2)}ms`);
  return [
    `${r.label}: etcd benchmark ${r.case}  (${r.argv.join(' ')})`,
    `  requests   ${r.requests} ok, ${r.errors} errors in ${r.wallSec.toFixed(2)}s  ->  ${r.throughput.toFixed(0)} req/s`,
    `  latency    p50 ${ms(r.latencyUs.p50)}  p90 ${ms(r.latencyUs.p90)}  p99 ${ms(r.latencyUs.p99)}  p99.9 ${ms(r.latencyUs['p99.9'])}`,
    `  server cpu ${r.serverCpuSec?.toFixed(2) ?? '?'} s (${r.serverPct?.toFixed(0) ?? '?'}% of a core), ${r.serverUsPerRequest?.toFixed(1) ?? '?'} us/req`,
  ].join('\n');
}
