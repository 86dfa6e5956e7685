#!/usr/bin/env node
// Runs the raft simulation on random seeds.
// Usage: node scripts/sim.mjs [--seeds N] [--nodes 3|5] [--seed S] [--from S] [--units U] [--trace-lines L]
//   --seed S replays one seed and prints its full trace on failure (or with --trace).
// Needs a build first (dist/test/sim/).
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const { runSeeds } = await import(new URL('../dist/test/sim/run-seeds.js', import.meta.url).href);
const { runSeed } = await import(new URL('../dist/test/sim/cluster.js', import.meta.url).href);
const nodes = opt('nodes', 3);
const units = opt('units', 3000);
const lines = opt('trace-lines', 200);
const one = opt('seed', undefined);
if (one !== undefined) {
  const r = runSeed(one, nodes, { faultUnits: units, trace: true });
  if (args.includes('--trace') || !r.ok) console.log(r.trace.join('\n'));
  console.log(r.ok ? `seed ${one}: ok ${JSON.stringify(r.stats)}` : `seed ${one}: FAILED\n${r.error}`);
  process.exitCode = r.ok ? 0 : 1;
} else {
  const count = opt('seeds', 100);
  const from = opt('from', 1);
  const res = runSeeds(from, count, nodes, {
    faultUnits: units,
    onFail: (r) => {
      console.log(`--- seed ${r.seed} FAILED (replay: node scripts/sim.mjs --nodes ${nodes} --seed ${r.seed} --units ${units})`);
      console.log((r.trace ?? []).slice(-lines).join('\n'));
      console.log(r.error);
    },
  });
  console.log(`${count} seeds, ${nodes} nodes: ${res.failures.length} failed, ${res.ms} ms; totals ${JSON.stringify(res.stats)}`);
  process.exitCode = res.failures.length > 0 ? 1 : 0;
}
