// Put latency while a million revisions are compacted away: etsd against real
// etcd 3.4, same machine, same run, same steps. Not a test: run it by hand.
//
// For each target: write --keys keys --versions times each (small values,
// --puts-per-txn puts to a request: 1 makes every put its own revision,
// more go faster but share a main revision), then run an open-loop put load
// (--rate requests/s; latency counts from each request's intended send time)
// and, after --before of load, compact to the current revision with
// `etcdctl compact REV --physical` (returns once the old versions are gone
// from the backend). Reports put latency before the compaction and during it
// (requests whose intended send time falls between the call's start and end),
// the compaction's duration, the revision compacted at, and Status dbSize.
//
//   npm run build
//   node dist/bench/compaction.js --keys 100000 --versions 10 --rate 500 --before 5s
//   node dist/bench/compaction.js --keys 2000 --versions 5 --rate 200 --before 2s   # smoke
//
// Flags: --targets etcd,etsd  --keys N (100000)  --versions V (10)
// --val-size B (64)  --puts-per-txn P (1)  --fill-in-flight F (64)
// --rate R (puts/s, 500)  --conns C (4)  --before D (5s)  --etcd-bin PATH
// --out FILE (bench/results/compaction.json).
import { startServer, type Server, type Target } from './load/servers.js';
import { newHistogram, summarize, type LatencySummary } from './load/histogram.js';
import { parseDuration } from './load/args.js';
import { connect, etcdctl, fill, ms, putLoad, sleep, status, runBench, writeResults } from './load/maintenance.js';

interface Options {
  targets: Target[]; keys: number; versions: number; valSize: number; putsPerTxn: number; fillInFlight: number;
  rate: number; conns: number; beforeMs: number; etcdBin: string; out: string;
}

const WARMUP_MS = 1000;
const AFTER_MS = 1000;

function parse(argv: string[]): Options {
  const o: Options = {
    targets: ['etcd', 'etsd'], keys: 100_000, versions: 10, valSize: 64, putsPerTxn: 1, fillInFlight: 64,
    rate: 500, conns: 4, beforeMs: 5000, etcdBin: '/usr/bin/etcd', out: 'bench/results/compaction.json',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--targets': o.targets = v.split(',').map((t) => { if (t !== 'etcd' && t !== 'etsd') throw new Error(`unknown target ${t}`); return t; }); break;
      case '--keys': o.keys = Number(v); break;
      case '--versions': o.versions = Number(v); break;
      case '--val-size': o.valSize = Number(v); break;
      case '--puts-per-txn': o.putsPerTxn = Number(v); break;
      case '--fill-in-flight': o.fillInFlight = Number(v); break;
      case '--rate': o.rate = Number(v); break;
      case '--conns': o.conns = Number(v); break;
      case '--before': o.beforeMs = parseDuration(v) * 1000; break; // parseDuration gives seconds
      case '--etcd-bin': o.etcdBin = v; break;
      case '--out': o.out = v; break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  for (const [k, n] of [['--keys', o.keys], ['--versions', o.versions], ['--val-size', o.valSize], ['--puts-per-txn', o.putsPerTxn],
    ['--fill-in-flight', o.fillInFlight], ['--rate', o.rate], ['--conns', o.conns]] as const) {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${k} must be a positive integer`);
  }
  return o;
}

const fillKey = (i: number) => `c/${String(i).padStart(10, '0')}`;

interface TargetResult {
  target: Target; keys: number; versions: number; putsPerTxn: number; rate: number;
  /** The revision compacted at (the store's revision when the compaction was called). */
  compactRevision: number; fillMs: number;
  dbSizeBeforeCompaction: number; dbSizeAfterCompaction: number; compactionMs: number; loadErrors: number;
  before: LatencySummary; during: LatencySummary;
}

async function runTarget(target: Target, o: Options): Promise<TargetResult> {
  const server: Server = await startServer(target, { etcdBin: o.etcdBin, extraArgs: ['--quota-backend-bytes=8589934592'] });
  try {
    const conns = await connect(server.endpoint, o.conns);
    try {
      process.stderr.write(`${target}: writing ${o.keys} keys x ${o.versions} versions (${o.putsPerTxn} puts per request)\n`);
      const fillFrom = performance.now();
      for (let v = 0; v < o.versions; v++) {
        await fill(conns, o.keys, fillKey, Buffer.alloc(o.valSize, String.fromCharCode(97 + (v % 26))), o.putsPerTxn, o.fillInFlight);
      }
      const fillMs = Math.round(performance.now() - fillFrom);
      const sizeBefore = (await status(server.endpoint)).dbSize;

      const before = newHistogram();
      const during = newHistogram();
      let beforeFrom = Infinity;
      let beforeTo = Infinity;
      let compactFrom = Infinity;
      let compactTo = Infinity;
      const load = putLoad(conns, o.rate, (t) => (t >= beforeFrom && t < beforeTo ? before : t >= compactFrom && t <= compactTo ? during : null));
      await sleep(WARMUP_MS);
      beforeFrom = performance.now();
      await sleep(o.beforeMs);
      beforeTo = performance.now();
      const rev = (await status(server.endpoint)).revision;
      process.stderr.write(`${target}: compacting at revision ${rev} under ${o.rate} puts/s\n`);
      compactFrom = performance.now();
      await etcdctl(server.endpoint, ['compact', String(rev), '--physical']);
      compactTo = performance.now();
      await sleep(AFTER_MS);
      const { errors } = await load.stop();
      const sizeAfter = (await status(server.endpoint)).dbSize;
      return {
        target, keys: o.keys, versions: o.versions, putsPerTxn: o.putsPerTxn, rate: o.rate, compactRevision: rev, fillMs,
        dbSizeBeforeCompaction: sizeBefore, dbSizeAfterCompaction: sizeAfter, compactionMs: Math.round(compactTo - compactFrom), loadErrors: errors,
        before: summarize(before), during: summarize(during),
      };
    } finally {
      for (const c of conns) c.close();
    }
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const results: TargetResult[] = [];
  for (const t of o.targets) results.push(await runTarget(t, o));
  console.log('| target | versions written | compacted at rev | fill s | dbSize before | after | compaction s | put p50/p99/max ms before | during compaction | puts during | errors |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.target} | ${r.keys * r.versions} | ${r.compactRevision} | ${(r.fillMs / 1000).toFixed(1)} | ${r.dbSizeBeforeCompaction} | ${r.dbSizeAfterCompaction} | ` +
      `${(r.compactionMs / 1000).toFixed(2)} | ${ms(r.before.p50)} / ${ms(r.before.p99)} / ${ms(r.before.max)} | ` +
      `${ms(r.during.p50)} / ${ms(r.during.p99)} / ${ms(r.during.max)} | ${r.during.count} | ${r.loadErrors} |`);
  }
  writeResults(o.out, o, results);
}

runBench(main);
