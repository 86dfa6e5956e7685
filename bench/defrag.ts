// Put latency while a large store is defragmented: etsd against real etcd
// 3.4, same machine, same run, same steps. Not a test: run it by hand.
//
// For each target: fill --fill-mb of values (txns of puts), delete half of the
// keys, compact to the current revision (physical), then run an open-loop put
// load (--rate requests/s; latency counts from each request's intended send
// time, so a server that stops writes shows it instead of hiding it) and,
// after --before of load, call `etcdctl defrag`. Reports put latency before
// the defrag and during it (requests whose intended send time falls between
// the defrag's start and end), the defrag's duration, and Status dbSize
// before and after.
//
//   npm run build
//   node dist/bench/defrag.js --fill-mb 1024 --rate 1000 --before 10s
//   node dist/bench/defrag.js --fill-mb 8 --rate 200 --before 2s     # smoke
//
// Flags: --targets etcd,etsd  --fill-mb N  --val-size B (fill values, 4096)
// --rate R (puts/s, 500)  --conns C (4)  --before D (5s)  --etcd-bin PATH
// --out FILE (bench/results/defrag.json). etcd's defrag is stop-the-world, so
// its "during" p99 is about the defrag's duration; etsd's should stay near
// its "before". Both servers get --quota-backend-bytes 8 GiB so a large fill
// fits (etsd keeps each value twice: latest and history records).
import { startServer, type Server, type Target } from './load/servers.js';
import { newHistogram, summarize, type LatencySummary } from './load/histogram.js';
import { parseDuration } from './load/args.js';
import { MiB, connect, etcdctl, fill, ms, putLoad, sleep, status, runBench, writeResults } from './load/maintenance.js';

interface Options {
  targets: Target[]; fillMb: number; valSize: number; rate: number; conns: number; beforeMs: number; etcdBin: string; out: string;
}

const PUTS_PER_TXN = 64;
const FILL_IN_FLIGHT = 4;
const DELETE_CHUNK = 16_384;
const WARMUP_MS = 1000;
const AFTER_MS = 1000;

function parse(argv: string[]): Options {
  const o: Options = {
    targets: ['etcd', 'etsd'], fillMb: 256, valSize: 4096, rate: 500, conns: 4, beforeMs: 5000,
    etcdBin: '/usr/bin/etcd', out: 'bench/results/defrag.json',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--targets': o.targets = v.split(',').map((t) => { if (t !== 'etcd' && t !== 'etsd') throw new Error(`unknown target ${t}`); return t; }); break;
      case '--fill-mb': o.fillMb = Number(v); break;
      case '--val-size': o.valSize = Number(v); break;
      case '--rate': o.rate = Number(v); break;
      case '--conns': o.conns = Number(v); break;
      case '--before': o.beforeMs = parseDuration(v) * 1000; break; // parseDuration gives seconds
      case '--etcd-bin': o.etcdBin = v; break;
      case '--out': o.out = v; break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  for (const [k, n] of [['--fill-mb', o.fillMb], ['--val-size', o.valSize], ['--rate', o.rate], ['--conns', o.conns]] as const) {
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${k} must be a positive number`);
  }
  return o;
}

const fillKey = (i: number) => `f/${String(i).padStart(10, '0')}`;

interface TargetResult {
  target: Target; fillMb: number; keys: number; valSize: number; rate: number;
  dbSizeBeforeDefrag: number; dbSizeAfterDefrag: number; defragMs: number; loadErrors: number;
  before: LatencySummary; during: LatencySummary;
}

async function runTarget(target: Target, o: Options): Promise<TargetResult> {
  const server: Server = await startServer(target, { etcdBin: o.etcdBin, extraArgs: ['--quota-backend-bytes=8589934592'] });
  try {
    const conns = await connect(server.endpoint, o.conns);
    try {
      const keys = Math.ceil((o.fillMb * MiB) / o.valSize);
      process.stderr.write(`${target}: filling ${o.fillMb} MB (${keys} values of ${o.valSize} B)\n`);
      await fill(conns, keys, fillKey, Buffer.alloc(o.valSize, 'v'), PUTS_PER_TXN, FILL_IN_FLIGHT);
      process.stderr.write(`${target}: deleting half, compacting\n`);
      // In ranges of DELETE_CHUNK keys: etsd's one DeleteRange of 131k 4 KiB values (1 GB fill)
      // outlasted its 7 s request timeout on this machine; etcd does not need it, but both get it.
      for (let from = 0, half = Math.floor(keys / 2); from < half; from += DELETE_CHUNK) {
        await etcdctl(server.endpoint, ['del', fillKey(from), fillKey(Math.min(half, from + DELETE_CHUNK))]);
      }
      await etcdctl(server.endpoint, ['compact', String((await status(server.endpoint)).revision), '--physical']);
      const sizeBefore = (await status(server.endpoint)).dbSize;

      const before = newHistogram();
      const during = newHistogram();
      let beforeFrom = Infinity;
      let beforeTo = Infinity;
      let defragFrom = Infinity;
      let defragTo = Infinity;
      const load = putLoad(conns, o.rate, (t) => (t >= beforeFrom && t < beforeTo ? before : t >= defragFrom && t <= defragTo ? during : null));
      await sleep(WARMUP_MS);
      beforeFrom = performance.now();
      await sleep(o.beforeMs);
      beforeTo = performance.now();
      process.stderr.write(`${target}: defrag under ${o.rate} puts/s\n`);
      defragFrom = performance.now();
      await etcdctl(server.endpoint, ['defrag']);
      defragTo = performance.now();
      await sleep(AFTER_MS);
      const { errors } = await load.stop();
      const sizeAfter = (await status(server.endpoint)).dbSize;
      return {
        target, fillMb: o.fillMb, keys, valSize: o.valSize, rate: o.rate,
        dbSizeBeforeDefrag: sizeBefore, dbSizeAfterDefrag: sizeAfter, defragMs: Math.round(defragTo - defragFrom), loadErrors: errors,
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
  console.log('| target | fill MB | dbSize before defrag | after | defrag s | put p50/p99/max ms before | during defrag | puts during | errors |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.target} | ${r.fillMb} | ${r.dbSizeBeforeDefrag} | ${r.dbSizeAfterDefrag} | ${(r.defragMs / 1000).toFixed(2)} | ` +
      `${ms(r.before.p50)} / ${ms(r.before.p99)} / ${ms(r.before.max)} | ${ms(r.during.p50)} / ${ms(r.during.p99)} / ${ms(r.during.max)} | ${r.during.count} | ${r.loadErrors} |`);
  }
  writeResults(o.out, o, results);
}

runBench(main);
