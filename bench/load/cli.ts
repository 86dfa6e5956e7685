#!/usr/bin/env node
// etsd-bench: gRPC load generator for etcd-compatible servers.
//   node dist/bench/load/cli.js put --endpoints 127.0.0.1:2379 --conns 10 --clients 100 --duration 10s
import { parseCli, USAGE } from './args.js';
import { runBench } from './runner.js';
import { formatSummary, writeJson } from './report.js';
import { writePlot } from './plot.js';

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`etsd-bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!opts) { process.stdout.write(USAGE); return 0; }
  const result = await runBench(opts.cfg);
  process.stdout.write(formatSummary(result) + '\n');
  if (opts.out) writeJson(opts.out, result);
  if (opts.plot) {
    const series = result.ops.length > 1 ? result.ops.map((o) => ({ label: `${result.label} ${o.name}`, curve: o.curve })) : [{ label: result.label, curve: result.curve }];
    writePlot(opts.plot, series, `${result.workload}: latency by percentile`);
  }
  return result.errors > 0 && result.requests === 0 ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`etsd-bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
