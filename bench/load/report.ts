// Human-readable summary and the JSON result file.
import { writeFileSync } from 'node:fs';
import type { BenchResult } from './runner.js';
import type { LatencySummary } from './histogram.js';

export function fmtUs(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)}s`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)}ms`;
  return `${Math.round(us)}us`;
}

function latLine(l: LatencySummary): string {
  return `p50 ${fmtUs(l.p50)}  p90 ${fmtUs(l.p90)}  p99 ${fmtUs(l.p99)}  p99.9 ${fmtUs(l.p999)}  max ${fmtUs(l.max)}  (mean ${fmtUs(l.mean)})`;
}

/** A rough verdict: could the load generator have limited the result? */
export function clientVerdict(r: BenchResult): string {
  const perThread = r.cpu.clientPct / r.cpu.threads;
  if (perThread >= 85) return 'LIKELY: client threads near 100% of a core each';
  if (r.cpu.machineBusyPct >= 95 && r.cpu.clientPct >= 50) return 'POSSIBLY: machine CPU saturated and the client holds a large share';
  return 'no';
}

export function formatSummary(r: BenchResult): string {
  const c = r.config;
  const lines: string[] = [];
  const mode = c.rate > 0 ? `open loop ${c.rate}/s` : 'closed loop';
  lines.push(`${r.label}: ${r.workload} on ${c.endpoints.join(',')}  conns=${c.conns} clients=${c.clients} threads=${r.cpu.threads} ${mode}`);
  lines.push(`  requests   ${r.requests} ok, ${r.errors} errors in ${r.windowSec.toFixed(2)}s  ->  ${r.throughput.toFixed(0)} req/s`);
  lines.push(`  latency    ${latLine(r.latencyUs)}`);
  if (r.ops.length > 1) {
    for (const o of r.ops) lines.push(`    ${o.name.padEnd(8)} ${o.throughput.toFixed(0).padStart(7)}/s  ${latLine(o.latencyUs)}`);
  }
  const server = r.cpu.serverPct !== null ? `, server ${r.cpu.serverPct.toFixed(0)}%` : '';
  lines.push(`  cpu        client ${r.cpu.clientPct.toFixed(0)}% of a core (${r.cpu.clientUsPerRequest.toFixed(1)} us/req)${server}; machine ${r.cpu.machineBusyPct.toFixed(0)}% busy of ${r.cpu.cores} cores`);
  lines.push(`  client-bound? ${clientVerdict(r)}`);
  if (r.errors > 0) lines.push(`  errors     by code ${JSON.stringify(r.errorsByCode)}; e.g. ${r.errorSamples.slice(0, 3).join(' | ')}`);
  if (Object.keys(r.counters).length > 0) lines.push(`  counters   ${JSON.stringify(r.counters)}`);
  if (r.unfinished > 0 || r.backlog > 0) lines.push(`  WARNING    ${r.unfinished} requests unfinished at drain timeout, ${r.backlog} scheduled requests never sent`);
  return lines.join('\n');
}

export function writeJson(path: string, results: BenchResult[] | BenchResult): void {
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
}
