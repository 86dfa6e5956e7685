#!/usr/bin/env node
// Failover tail, etsd beside etcd in one run (build first: npx tsc -p tsconfig.json).
//   node scripts/failover.mjs [--kills 10] [--members 3] [--targets etsd,etcd] [--settle-ms 2000] [--pre-vote true|false]
// --pre-vote sets the flag on both (etcd 3.4 defaults to false, etsd to true); unset, each runs its default.
// One cluster per target, both up for the whole run. Kills alternate between
// them: find the leader, kill -9 it, time until one of the survivors reports
// itself leader on /metrics (polled every 20 ms), restart the killed member,
// wait until it answers and then --settle-ms more (so it has rejoined and
// its peers' connections to it are back) before the next kill.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';

const lib = new URL('../dist/test/faults/lib/', import.meta.url);
if (!existsSync(new URL('cluster.js', lib))) {
  console.error('not built: run `npx tsc -p tsconfig.json` first');
  process.exit(2);
}
const { Cluster, ELECTION_MS, HEARTBEAT_MS } = await import(new URL('cluster.js', lib).href);

const { values: a } = parseArgs({
  options: {
    kills: { type: 'string', default: '10' },
    members: { type: 'string', default: '3' },
    targets: { type: 'string', default: 'etsd,etcd' },
    'settle-ms': { type: 'string', default: '2000' },
    'pre-vote': { type: 'string' },
  },
});
const targets = a.targets.split(',');
for (const t of targets) if (t !== 'etsd' && t !== 'etcd') throw new Error(`--targets: etsd or etcd, got ${t}`);
const kills = Number(a.kills);
const members = Number(a.members);
const settleMs = Number(a['settle-ms']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const clusters = {};
const times = {};
try {
  const flags = a['pre-vote'] === undefined ? [] : [`--pre-vote=${a['pre-vote']}`];
  for (const t of targets) { clusters[t] = await Cluster.start(t, members, {}, flags); times[t] = []; }
  console.log(`${members} members each, heartbeat ${HEARTBEAT_MS} ms, election timeout ${ELECTION_MS} ms, ${kills} kills each${flags.length ? `, ${flags[0]}` : ''}`);
  for (let k = 0; k < kills; k++) {
    for (const t of targets) {
      const c = clusters[t];
      const leader = await c.leader(30_000);
      const others = Array.from({ length: c.size }, (_, i) => i).filter((i) => i !== leader);
      const t0 = Date.now();
      await c.kill(leader);
      const next = await c.leader(30_000, others, 20);
      const ms = Date.now() - t0;
      times[t].push(ms);
      console.log(`${t} kill ${k + 1}: ${c.name(leader)} killed, ${c.name(next)} leads after ${ms} ms`);
      await c.restart(leader);
      await sleep(settleMs);
    }
  }
} finally {
  for (const c of Object.values(clusters)) await c.close();
}
for (const t of targets) {
  const s = [...times[t]].sort((x, y) => x - y);
  if (s.length === 0) continue;
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  console.log(`${t}: n=${s.length} min ${s[0]} median ${med} max ${s[s.length - 1]} ms; all: ${times[t].join(' ')}`);
}
