#!/usr/bin/env node
// Long seeded fault campaigns over real clusters (build first: npx tsc -p tsconfig.json).
//   node scripts/faults.mjs [--target etsd|etcd] [--members 3] [--fault all|KIND[,KIND...]]
//                           [--seed N] [--duration SECONDS] [--runs N] [--ops N] [--failpoints SPEC|cycle] [--point NAME] [--verbose]
// Kinds: none, kill-leader, kill-follower, stop-leader, partition-leader, kill-majority, kill-all,
// power-cut (etsd: every member killed -9 and its unsynced writes dropped; needs gcc, see
// test/faults/powercut/), drop-leader-to-follower, snapshot-follower, replace-follower,
// disk-full-wal (a tmpfs WAL: needs mount, so root), failpoint-crash (etsd; --point NAME,
// default: cycle through CRASH_POINTS).
// --verbose prints the members' log tails after a failover slower than twice the election timeout.
// --failpoints SPEC arms ETSD_FAILPOINTS in etsd's members (src/common/failpoints.ts), e.g.
// 'rangeBeforeReadIndex=error', a deliberate bug the checkers must catch.
// --failpoints cycle runs the crash cycle: one failpoint-crash run per point of CRASH_POINTS
// (commit, apply and snapshot paths), seeds N, N+1, ... (same as --fault failpoint-crash).
// Runs one fault per run, cycling through the chosen faults, seeds N, N+1, ...
// until --duration seconds or --runs runs; a fresh cluster per run. Prints one
// line per run and, for any failing run, its anomalies and the command that
// replays it. Exit code 1 if any run failed.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';

const lib = new URL('../dist/test/faults/lib/', import.meta.url);
if (!existsSync(new URL('run.js', lib))) {
  console.error('not built: run `npx tsc -p tsconfig.json` first');
  process.exit(2);
}
const { Cluster } = await import(new URL('cluster.js', lib).href);
const { runOnce, summary } = await import(new URL('run.js', lib).href);
const { FAULTS, CRASH_POINTS, faultApplies, faultRefused, clusterFlags, clusterOptions } = await import(new URL('faults.js', lib).href);

const { values: a } = parseArgs({
  options: {
    target: { type: 'string', default: 'etsd' },
    members: { type: 'string', default: '3' },
    fault: { type: 'string', default: 'all' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    duration: { type: 'string', default: '60' },
    runs: { type: 'string', default: '0' },
    ops: { type: 'string', default: '1500' },
    failpoints: { type: 'string', default: '' },
    point: { type: 'string', default: '' },
    verbose: { type: 'boolean', default: false },
  },
});
if (a.target !== 'etsd' && a.target !== 'etcd') throw new Error(`--target must be etsd or etcd, got ${a.target}`);
const members = Number(a.members);
const cycle = a.failpoints === 'cycle';
const faults = cycle ? ['failpoint-crash'] : a.fault === 'all' ? FAULTS : a.fault.split(',');
for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault ${f}; one of ${FAULTS.join(', ')}`);
// A kind named on the command line that the target cannot have at all is an error, not a skip.
if (a.fault !== 'all') for (const f of faults) {
  const why = faultRefused(f, a.target);
  if (why) { console.error(why); process.exit(2); }
}
if (a.point && !CRASH_POINTS.includes(a.point)) throw new Error(`--point must be one of ${CRASH_POINTS.join(', ')}`);
// failpoint-crash runs go through the points in turn (one point with --point).
const points = a.point ? [a.point] : CRASH_POINTS;
let crashRuns = 0;
const seed0 = Number(a.seed);
const until = Date.now() + Number(a.duration) * 1000;
const maxRuns = Number(a.runs);
if (a.failpoints && a.target !== 'etsd') throw new Error('--failpoints arms etsd members only');
const env = a.failpoints && !cycle ? { ETSD_FAILPOINTS: a.failpoints } : {};
const fpArg = a.failpoints && !cycle ? ` --failpoints '${a.failpoints}'` : '';

let runs = 0;
let failed = 0;
let ops = 0;
const failover = [];
for (let k = 0; ; k++) {
  if (maxRuns > 0 ? runs >= maxRuns : Date.now() >= until) break;
  const seed = seed0 + k;
  const fault = faults[k % faults.length];
  const point = fault === 'failpoint-crash' ? points[crashRuns++ % points.length] : undefined;
  const replay = `node scripts/faults.mjs --target ${a.target} --members ${members} --fault ${fault} --seed ${seed} --runs 1 --ops ${a.ops}${fpArg}${point ? ` --point ${point}` : ''}`;
  const refused = faultRefused(fault, a.target);
  if (refused) { console.log(`skip ${fault}: ${refused}`); continue; }
  let cluster;
  try {
    cluster = await Cluster.start(a.target, members, env, clusterFlags(a.target, [fault]), clusterOptions(fault, a.target));
  } catch (e) {
    if (e?.name === 'MountError') { console.log(`skip ${fault}: ${e.message}`); if (faults.length === 1) break; continue; }
    runs++;
    failed++;
    console.log(`run ${fault} seed ${seed}: the cluster did not start: ${e?.stack ?? e}\n  replay: ${replay}`);
    continue;
  }
  try {
    if (!faultApplies(fault, cluster)) { console.log(`skip ${fault}: not applicable to ${members} ${a.target} member(s)`); if (faults.length === 1) break; continue; }
    runs++;
    const r = await runOnce(cluster, { fault, seed, ops: Number(a.ops), prefix: `/faults/${seed}/`, point });
    ops += r.ops;
    if (r.fault.failoverMs !== undefined) failover.push(r.fault.failoverMs);
    console.log(summary(r) + (point ? ` [${point}: ${r.fault.exited ? 'crashed there' : 'NOT reached'}]` : '') +
      (r.fault.snapshotsInstalled !== undefined ? ` [snapshots installed ${r.fault.snapshotsInstalled}]` : '') +
      (fault === 'disk-full-wal' ? ` [${r.fault.exited ? 'member exited' : 'member did NOT exit'}]` : '') +
      (r.fault.reverted ? ` [unsynced dropped: ${r.fault.reverted.map((x) => `${x.member} ${x.undone} changes, ${x.bytesCut} B cut, ${x.bytesRestored} B restored, ${x.syncs} syncs`).join('; ')}` +
        `${r.fault.cutAfterAck ? '' : ', NOT right after an acknowledged write'}]` : ''));
    if (a.verbose && r.fault.slowLogs) console.log(`slow failover, log tails then:\n${r.fault.slowLogs}`);
    if (r.anomalies.length > 0) {
      failed++;
      for (const x of r.anomalies) console.log(`  [${x.check}] ${x.detail}`);
      console.log(`  replay: ${replay}`);
    }
  } catch (e) {
    failed++;
    console.log(`run ${fault} seed ${seed} crashed: ${e?.stack ?? e}\n  replay: ${replay}`);
  } finally {
    await cluster.close();
  }
}
failover.sort((x, y) => x - y);
const pct = (p) => failover[Math.min(failover.length - 1, Math.floor(p * failover.length))];
console.log(`campaign: ${runs} runs, ${ops} ops, ${failed} failed` +
  (failover.length ? `; failover ms n=${failover.length} min ${failover[0]} median ${pct(0.5)} max ${failover[failover.length - 1]}` : ''));
process.exit(failed > 0 ? 1 : 0);
