// Runs a range of random seeds (used by scripts/sim.mjs and the sim test).
import { runSeed, type MakeDriver, type SeedResult } from './cluster.js';

export function runSeeds(from: number, count: number, nodes: number, opts: { faultUnits?: number; makeDriver?: MakeDriver; onFail?: (r: SeedResult) => void } = {}): { failures: SeedResult[]; ms: number; stats: Record<string, number> } {
  const t0 = Date.now();
  const failures: SeedResult[] = [];
  const stats: Record<string, number> = {};
  for (let s = from; s < from + count; s++) {
    const r = runSeed(s, nodes, { faultUnits: opts.faultUnits, makeDriver: opts.makeDriver });
    for (const [k, v] of Object.entries(r.stats ?? {})) stats[k] = (stats[k] ?? 0) + v;
    if (!r.ok) {
      // Replay with the trace on: the run is deterministic, so it fails the same way.
      const t = runSeed(s, nodes, { faultUnits: opts.faultUnits, makeDriver: opts.makeDriver, trace: true });
      failures.push(t.ok ? r : t);
      opts.onFail?.(t.ok ? r : t);
    }
  }
  return { failures, ms: Date.now() - t0, stats };
}
