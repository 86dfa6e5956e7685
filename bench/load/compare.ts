#!/usr/bin/env node
// Side-by-side: starts real etcd (and etsd when built), runs each workload
// against each server in alternation, prints throughput, p50/p99, server CPU
// per request and etsd/etcd ratios, and writes an overlaid percentile plot.
// Rows come from our load generator (etsd-bench) and/or from etcd's own tool
// (etcd-benchmark, built by scripts/build-etcd-benchmark.sh); the table names
// the tool of each row.
//   node dist/bench/load/compare.js --targets etcd,etsd --workloads put,range --duration 10s --conns 10 --clients 100
//   node dist/bench/load/compare.js --tool etcd-benchmark --tool-cases put-1c,put-1000c --tool-scale 0.1
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeBenchCerts, type BenchCerts } from './certs.js';
import { parseFlags, configFrom, parseDuration } from './args.js';
import { WORKLOADS, type WorkloadName } from './config.js';
import { runBench, type BenchResult } from './runner.js';
import { formatSummary } from './report.js';
import { writePlot } from './plot.js';
import { startServer, stopAll, ETSD_CLI, type Server, type Target } from './servers.js';
import { TOOL_CASES, TOOL_WARMUP, toolBinary, runToolCase, formatToolResult, type ToolCase, type ToolResult } from './etcdtool.js';
import { rowFromBench, rowFromTool, tableCells, formatTable, writeMarkdown, type Row } from './sidebyside.js';

const USAGE = `usage: compare [--targets etcd,etsd] [--workloads put,range,txn-put] [--rounds N] [--members N]
               [--etcd-bin /usr/bin/etcd] [any etsd-bench flag: --duration, --conns, --clients, ...]
               [--tool etsd-bench|etcd-benchmark|both] [--tool-cases ${TOOL_CASES.map((c) => c.name).join(',')}]
               [--tool-scale F (multiplies etcd-benchmark --total)] [--tool-warmup N] [--benchmark-bin PATH]
               [--out results.json] [--plot plot.svg] [--md table.md]
               [--tls] [--auth] [--jwt]
--tls: both servers serve clients over TLS with the same openssl-made certificates (client
  certificates required); the load clients and etcd's tool connect with them.
--auth: both servers get a root user (password bench-root-pw) and auth on; each load thread
  (and etcd's tool) authenticates as root and sends the token. The authenticate workload
  (concurrent Authenticate calls as root, bcrypt on the server) implies --auth.
--jwt: with auth, both servers use JWT tokens (RS256, the same openssl-made key) instead of simple ones.
default targets: etcd, plus etsd if ${ETSD_CLI} exists; default --duration 10s; default --tool etsd-bench
etcd-benchmark rows use --conns/--clients/--total of each case, and --val-size, --key-size,
--key-space-size from the flags (defaults 256, 8, 100000). Before them each server gets
--tool-warmup puts (default ${TOOL_WARMUP.total}, 1000 clients, times --tool-scale; 0: none) from the tool, not counted.
`;

const ROOT_PASSWORD = 'bench-root-pw';
const OWN_BOOL = ['--tls', '--auth', '--jwt'];
const OWN = ['--targets', '--workloads', '--rounds', '--etcd-bin', '--members', '--tool', '--tool-cases', '--tool-scale', '--tool-warmup', '--benchmark-bin', '--md'];

function takeOwnFlags(argv: string[]): { own: Record<string, string>; rest: string[] } {
  const ownNames = new Set(OWN);
  const own: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (OWN_BOOL.includes(name!)) own[name!.slice(2)] = inline ?? 'true';
    else if (ownNames.has(name!)) own[name!.slice(2)] = inline ?? argv[++i] ?? '';
    else rest.push(a);
  }
  return { own, rest };
}

function toolCases(spec: string | undefined): ToolCase[] {
  if (spec === undefined) return [...TOOL_CASES];
  return spec.split(',').map((n) => {
    const c = TOOL_CASES.find((x) => x.name === n.trim());
    if (!c) throw new Error(`unknown --tool-cases entry '${n}' (known: ${TOOL_CASES.map((x) => x.name).join(', ')})`);
    return c;
  });
}

async function main(): Promise<number> {
  const { own, rest } = takeOwnFlags(process.argv.slice(2));
  const { values, positionals } = parseFlags(rest);
  if (values.help || positionals.length > 0) { process.stdout.write(USAGE); return positionals.length > 0 ? 2 : 0; }
  const targets = (own.targets ?? (existsSync(ETSD_CLI) ? 'etcd,etsd' : 'etcd')).split(',').map((t) => t.trim()) as Target[];
  for (const t of targets) if (t !== 'etcd' && t !== 'etsd') throw new Error(`unknown target '${t}'`);
  const tool = own.tool ?? 'etsd-bench';
  if (!['etsd-bench', 'etcd-benchmark', 'both'].includes(tool)) throw new Error(`--tool must be etsd-bench, etcd-benchmark or both`);
  const ours = tool !== 'etcd-benchmark';
  const workloads = ours ? (own.workloads ?? 'put,range,txn-put').split(',').map((w) => w.trim()) as WorkloadName[] : [];
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload '${w}'`);
  const cases = tool === 'etsd-bench' ? [] : toolCases(own['tool-cases']);
  const bin = own['benchmark-bin'] ?? toolBinary();
  if (cases.length > 0 && !existsSync(bin)) throw new Error(`etcd's benchmark tool is not built: run scripts/build-etcd-benchmark.sh (looked for ${bin})`);
  const toolOpts = {
    valSize: Number(values['val-size'] ?? 256), keySize: Number(values['key-size'] ?? 8),
    keySpaceSize: Number(values['key-space-size'] ?? 100_000), scale: Number(own['tool-scale'] ?? 1),
  };
  if (!(toolOpts.scale > 0)) throw new Error('--tool-scale must be > 0');
  const warmupPuts = Number(own['tool-warmup'] ?? TOOL_WARMUP.total);
  if (!Number.isInteger(warmupPuts) || warmupPuts < 0) throw new Error('--tool-warmup must be a whole number of puts');
  const rounds = Number(own.rounds ?? 1);
  if (values.duration === undefined && values.total === undefined) values.duration = '10s';
  parseDuration(String(values.duration ?? '1'));

  const flag = (n: string): boolean => own[n] !== undefined && own[n] !== 'false';
  const auth = flag('auth') || flag('jwt') || workloads.includes('authenticate');
  const user = auth ? `root:${ROOT_PASSWORD}` : '';
  const tmp = flag('tls') || flag('jwt') ? mkdtempSync(path.join(os.tmpdir(), 'etsd-bench-certs-')) : null;
  const certs: BenchCerts | undefined = flag('tls') ? makeBenchCerts(tmp!) : undefined;
  const authToken = flag('jwt') ? jwtAuthToken(tmp!) : undefined;
  if (auth || certs) process.stderr.write(`servers with${certs ? ' client TLS' : ''}${auth ? ` auth (${authToken ? 'JWT' : 'simple'} tokens)` : ''}\n`);

  const servers = new Map<Target, Server>();
  const results: BenchResult[] = [];
  const toolResults: ToolResult[] = [];
  const rows: Row[] = [];
  try {
    for (const t of targets) {
      const s = await startServer(t, {
        etcdBin: own['etcd-bin'], members: Number(own.members ?? 1), certs,
        rootPassword: auth ? ROOT_PASSWORD : undefined, extraArgs: authToken ? ['--auth-token', authToken] : [],
      });
      servers.set(t, s);
      process.stderr.write(`started ${t} pid ${s.pid} on ${s.endpoint} (data ${s.dataDir})\n`);
    }
    for (const w of workloads) {
      for (let r = 0; r < rounds; r++) {
        for (const t of targets) {
          const s = servers.get(t)!;
          const tlsFlags = s.tls ? { cacert: s.tls.ca, cert: s.tls.cert, 'cert-key': s.tls.key } : {};
          const cfg = configFrom(w, { ...values, ...tlsFlags, user, endpoints: s.endpoint, label: rounds > 1 ? `${t} #${r + 1}` : t });
          const res = await runBench(cfg, { serverPid: s.pid });
          process.stdout.write(formatSummary(res) + '\n\n');
          results.push(res);
          rows.push(rowFromBench(res, w));
        }
      }
      if (typeof values.plot === 'string') {
        const path = workloads.length > 1 ? values.plot.replace(/(\.svg)?$/, `-${w}.svg`) : values.plot;
        writePlot(path, results.filter((x) => x.workload === w).map((x) => ({ label: x.label, curve: x.curve })), `${w}: latency by percentile`);
      }
    }
    if (cases.length > 0 && warmupPuts > 0) {
      for (const t of targets) {
        const s = servers.get(t)!;
        const w = await runToolCase(bin, { ...TOOL_WARMUP, total: warmupPuts }, s, { ...toolOpts, tls: s.tls, user }, t);
        process.stdout.write(`${t}: warm-up, not counted: ${w.requests} puts from etcd's tool at ${w.throughput.toFixed(0)}/s\n\n`);
      }
    }
    for (const c of cases) {
      for (let r = 0; r < rounds; r++) {
        for (const t of targets) {
          const s = servers.get(t)!;
          const res = await runToolCase(bin, c, s, { ...toolOpts, tls: s.tls, user }, rounds > 1 ? `${t} #${r + 1}` : t);
          process.stdout.write(formatToolResult(res) + '\n\n');
          toolResults.push(res);
          rows.push(rowFromTool(res));
        }
      }
    }
  } finally {
    await stopAll();
    if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
  }
  const cells = tableCells(rows, targets);
  process.stdout.write(formatTable(cells) + '\n');
  process.stdout.write('(cpu us/req = server CPU, all threads from /proc/<pid>/stat, over the run / requests; tool = which load generator produced the row)\n');
  // One array: etsd-bench results, then etcd-benchmark ones (those carry tool: 'etcd-benchmark').
  if (typeof values.out === 'string') writeFileSync(values.out, JSON.stringify([...results, ...toolResults], null, 2) + '\n');
  const setup = `${own.members ? `, ${own.members} members` : ''}${certs ? ', client TLS' : ''}${auth ? `, auth (${authToken ? 'JWT' : 'simple'} tokens)` : ''}`;
  if (typeof own.md === 'string') writeMarkdown(own.md, `${targets.join(' vs ')}${setup}`, cells);
  return 0;
}

/** RS256 keys made with openssl in `dir`; the --auth-token value both servers get. */
function jwtAuthToken(dir: string): string {
  const priv = path.join(dir, 'jwt.key');
  const pub = path.join(dir, 'jwt.pub');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', priv], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: ['ignore', 'ignore', 'pipe'] });
  return `jwt,pub-key=${pub},priv-key=${priv},sign-method=RS256`;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void stopAll().finally(() => process.exit(130)); });
}
main().then((code) => { process.exitCode = code; }, async (err: unknown) => {
  await stopAll();
  process.stderr.write(`compare: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
