// The side-by-side table compare.ts prints: one row per (tool, workload), a
// column group per server, and etsd/etcd ratios. Rows from our load generator
// and from etcd's own tool share one shape, so the table says which tool
// produced each row and gives the server's CPU per request for both.
import { writeFileSync } from 'node:fs';
import type { BenchResult } from './runner.js';
import type { ToolResult } from './etcdtool.js';
import { fmtUs } from './report.js';

export type ToolName = 'etsd-bench' | 'etcd-benchmark';

export interface Row {
  tool: ToolName;
  workload: string;
  target: string;
  throughput: number;
  p50Us: number;
  p99Us: number;
  serverUsPerRequest: number | null;
}

export function rowFromBench(r: BenchResult, workload: string): Row {
  const srv = r.cpu.serverPct;
  return {
    tool: 'etsd-bench', workload, target: r.label.split(' ')[0]!, throughput: r.throughput,
    p50Us: r.latencyUs.p50, p99Us: r.latencyUs.p99,
    // serverPct is % of one core over the window: core-us per second / requests per second.
    serverUsPerRequest: srv !== null && r.throughput > 0 ? (srv / 100) * 1e6 / r.throughput : null,
  };
}

export function rowFromTool(r: ToolResult): Row {
  return {
    tool: 'etcd-benchmark', workload: r.case, target: r.target, throughput: r.throughput,
    p50Us: r.latencyUs.p50 ?? 0, p99Us: r.latencyUs.p99 ?? 0, serverUsPerRequest: r.serverUsPerRequest,
  };
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  return a != null && b != null && b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

/** Several rounds of one (tool, workload, target): the median-throughput one. */
function median(rows: Row[]): Row | undefined {
  const rs = [...rows].sort((a, b) => a.throughput - b.throughput);
  return rs[Math.floor((rs.length - 1) / 2)];
}

export function tableCells(rows: Row[], targets: string[]): string[][] {
  const both = targets.includes('etsd') && targets.includes('etcd');
  const head = ['tool', 'workload', ...targets.flatMap((t) => [`${t} req/s`, `${t} p50`, `${t} p99`, `${t} cpu us/req`])];
  if (both) head.push('thr etsd/etcd', 'p99 etsd/etcd', 'cpu/req etsd/etcd');
  const out = [head];
  const keys = [...new Set(rows.map((r) => `${r.tool}\u0000${r.workload}`))];
  for (const k of keys) {
    const [tool, workload] = k.split('\u0000') as [string, string];
    const pick = (t: string): Row | undefined => median(rows.filter((r) => r.tool === tool && r.workload === workload && r.target === t));
    const row = [tool, workload];
    for (const t of targets) {
      const r = pick(t);
      row.push(r ? r.throughput.toFixed(0) : '-', r ? fmtUs(r.p50Us) : '-', r ? fmtUs(r.p99Us) : '-',
        r?.serverUsPerRequest != null ? r.serverUsPerRequest.toFixed(1) : '-');
    }
    if (both) {
      const a = pick('etsd'), b = pick('etcd');
      row.push(ratio(a?.throughput, b?.throughput), ratio(a?.p99Us, b?.p99Us), ratio(a?.serverUsPerRequest, b?.serverUsPerRequest));
    }
    out.push(row);
  }
  return out;
}

export function formatTable(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

export function markdownTable(cells: string[][]): string {
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [line(cells[0]!), line(cells[0]!.map(() => '---')), ...cells.slice(1).map(line)].join('\n') + '\n';
}

export function writeMarkdown(path: string, title: string, cells: string[][]): void {
  writeFileSync(path, `### ${title}\n\n${markdownTable(cells)}\ncpu us/req: server CPU (utime+stime of every thread, /proc/<pid>/stat) over the run / requests.\n`);
}
