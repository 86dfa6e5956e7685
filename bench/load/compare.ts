#!/usr/bin/env node
// Side-by-side: starts real etcd (and etsd when built), runs each workload
// against each server in alternation, prints throughput and p99 ratios and
// writes an overlaid percentile plot.
//   node dist/bench/load/compare.js --targets etcd,etsd --workloads put,range --duration 10s --conns 10 --clients 100
import { existsSync } from 'node:fs';
import { parseFlags, configFrom, parseDuration } from './args.js';
import { WORKLOADS, type WorkloadName } from './config.js';
import { runBench, type BenchResult } from './runner.js';
import { formatSummary, writeJson, fmtUs } from './report.js';
import { writePlot } from './plot.js';
import { startServer, stopAll, ETSD_CLI, type Server, type Target } from './servers.js';

const USAGE = `usage: compare [--targets etcd,etsd] [--workloads put,range,txn-put] [--rounds N] [--members N]
               [--etcd-bin /usr/bin/etcd] [any etsd-bench flag: --duration, --conns, --clients, ...]
               [--out results.json] [--plot plot.svg]
default targets: etcd, plus etsd if ${ETSD_CLI} exists; default --duration 10s
`;

function takeOwnFlags(argv: string[]): { own: Record<string, string>; rest: string[] } {
  const ownNames = new Set(['--targets', '--workloads', '--rounds', '--etcd-bin', '--members']);
  const own: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (ownNames.has(name!)) own[name!.slice(2)] = inline ?? argv[++i] ?? '';
    else rest.push(a);
  }
  return { own, rest };
}

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

function table(workloads: WorkloadName[], results: BenchResult[], targets: Target[]): string {
  const rows: string[][] = [['workload', ...targets.flatMap((t) => [`${t} req/s`, `${t} p99`, `${t} cpu c/s`])]];
  if (targets.includes('etsd') && targets.includes('etcd')) rows[0]!.push('thr etsd/etcd', 'p99 etsd/etcd');
  for (const w of workloads) {
    const best = (t: Target): BenchResult | undefined => {
      const rs = results.filter((r) => r.workload === w && r.label.startsWith(t));
      // Several rounds: report the median-throughput run.
      return rs.sort((a, b) => a.throughput - b.throughput)[Math.floor((rs.length - 1) / 2)];
    };
    const row: string[] = [w];
    for (const t of targets) {
      const r = best(t);
      row.push(r ? r.throughput.toFixed(0) : '-', r ? fmtUs(r.latencyUs.p99) : '-',
        r ? `${r.cpu.clientPct.toFixed(0)}%/${r.cpu.serverPct?.toFixed(0) ?? '?'}%` : '-');
    }
    if (targets.includes('etsd') && targets.includes('etcd')) {
      const a = best('etsd'), b = best('etcd');
      row.push(a && b ? ratio(a.throughput, b.throughput) : '-', a && b ? ratio(a.latencyUs.p99, b.latencyUs.p99) : '-');
    }
    rows.push(row);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

async function main(): Promise<number> {
  const { own, rest } = takeOwnFlags(process.argv.slice(2));
  const { values, positionals } = parseFlags(rest);
  if (values.help || positionals.length > 0) { process.stdout.write(USAGE); return positionals.length > 0 ? 2 : 0; }
  const targets = (own.targets ?? (existsSync(ETSD_CLI) ? 'etcd,etsd' : 'etcd')).split(',').map((t) => t.trim()) as Target[];
  for (const t of targets) if (t !== 'etcd' && t !== 'etsd') throw new Error(`unknown target '${t}'`);
  const workloads = (own.workloads ?? 'put,range,txn-put').split(',').map((w) => w.trim()) as WorkloadName[];
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload '${w}'`);
  const rounds = Number(own.rounds ?? 1);
  if (values.duration === undefined && values.total === undefined) values.duration = '10s';
  parseDuration(String(values.duration ?? '1'));

  const servers = new Map<Target, Server>();
  const results: BenchResult[] = [];
  try {
    for (const t of targets) {
      const s = await startServer(t, { etcdBin: own['etcd-bin'], members: Number(own.members ?? 1) });
      servers.set(t, s);
      process.stderr.write(`started ${t} pid ${s.pid} on ${s.endpoint} (data ${s.dataDir})\n`);
    }
    for (const w of workloads) {
      for (let r = 0; r < rounds; r++) {
        for (const t of targets) {
          const s = servers.get(t)!;
          const cfg = configFrom(w, { ...values, endpoints: s.endpoint, label: rounds > 1 ? `${t} #${r + 1}` : t });
          const res = await runBench(cfg, { serverPid: s.pid });
          process.stdout.write(formatSummary(res) + '\n\n');
          results.push(res);
        }
      }
      if (typeof values.plot === 'string') {
        const path = workloads.length > 1 ? values.plot.replace(/(\.svg)?$/, `-${w}.svg`) : values.plot;
        writePlot(path, results.filter((x) => x.workload === w).map((x) => ({ label: x.label, curve: x.curve })), `${w}: latency by percentile`);
      }
    }
  } finally {
    await stopAll();
  }
  process.stdout.write(table(workloads, results, targets) + '\n');
  process.stdout.write('(cpu c/s = client % / server % of one core over the measured window)\n');
  if (typeof values.out === 'string') writeJson(values.out, results);
  return 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void stopAll().finally(() => process.exit(130)); });
}
main().then((code) => { process.exitCode = code; }, async (err: unknown) => {
  await stopAll();
  process.stderr.write(`compare: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
