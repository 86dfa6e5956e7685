// Server memory with many keys: etsd against real etcd 3.4, same machine, same
// run, same steps. Not a test: run it by hand.
//
// For each target: a fresh single member; fill --keys keys (txns of puts,
// --val-size byte values), then for each checkpoint of --at (e.g. 1000000,
// 5000000) report the server's resident memory (VmRSS of the process, every
// thread counted: etsd's workers are threads) after --settle of quiet, the db
// size from Status, and bytes of RSS per key. etcd keeps an in-memory index of
// every key and revision (its treeIndex); etsd keeps none, reading RocksDB.
//
//   npm run build
//   node dist/bench/memory.js --at 1000000,5000000
//   node dist/bench/memory.js --at 20000 --settle 1s         # smoke
//
// Flags: --targets etcd,etsd  --at N[,N...] (1000000)  --val-size B (256)
// --settle D (10s)  --etcd-bin PATH  --out FILE (bench/results/memory.json)
// --server-args "FLAGS" (more flags for both servers, e.g. "--snapshot-count 10000").
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, stopAll, type Target } from './load/servers.js';
import { connect, fill, sleep, status } from './load/maintenance.js';
import { parseDuration } from './load/args.js';

interface Options { targets: Target[]; at: number[]; valSize: number; settleMs: number; etcdBin: string; out: string; serverArgs: string[] }
interface Point { keys: number; rssMB: number; bytesPerKey: number; dbSizeMB: number; fillSeconds: number }

const MiB = 1024 * 1024;
const PUTS_PER_TXN = 100;
const IN_FLIGHT = 8;

function parse(argv: string[]): Options {
  const o: Options = { targets: ['etcd', 'etsd'], at: [1_000_000], valSize: 256, settleMs: 10_000, etcdBin: '/usr/bin/etcd', out: 'bench/results/memory.json', serverArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--targets') o.targets = v().split(',') as Target[];
    else if (a === '--at') o.at = v().split(',').map(Number).sort((x, y) => x - y);
    else if (a === '--val-size') o.valSize = Number(v());
    else if (a === '--settle') o.settleMs = parseDuration(v()) * 1000;
    else if (a === '--etcd-bin') o.etcdBin = v();
    else if (a === '--out') o.out = v();
    else if (a === '--server-args') o.serverArgs = v().split(' ').filter((x) => x !== '');
    else throw new Error(`unknown flag ${a}`);
  }
  if (o.at.some((n) => !(n > 0))) throw new Error('--at takes positive key counts');
  return o;
}

/** Resident set of a process, all its threads, in MiB (/proc/PID/status VmRSS). */
function rssMB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

async function measure(target: Target, o: Options): Promise<Point[]> {
  // 5M keys of 256 B pass etcd's 2 GiB default quota with its history: room for both.
  const server = await startServer(target, { etcdBin: o.etcdBin, extraArgs: ['--quota-backend-bytes', String(8 * 1024 * MiB), ...o.serverArgs] });
  const points: Point[] = [];
  try {
    const conns = await connect(server.endpoint.split(',')[0]!, 4);
    const value = Buffer.alloc(o.valSize, 'm');
    let have = 0;
    for (const n of o.at) {
      const t0 = performance.now();
      const base = have;
      await fill(conns, n - have, (i) => `mem/${String(base + i).padStart(10, '0')}`, value, PUTS_PER_TXN, IN_FLIGHT);
      const fillSeconds = (performance.now() - t0) / 1000;
      have = n;
      await sleep(o.settleMs);
      const rss = rssMB(server.pid);
      const st = await status(server.endpoint.split(',')[0]!);
      const p: Point = { keys: n, rssMB: Math.round(rss), bytesPerKey: Math.round((rss * MiB) / n), dbSizeMB: Math.round(st.dbSize / MiB), fillSeconds: Math.round(fillSeconds) };
      console.log(`${target}: ${n} keys: RSS ${p.rssMB} MB (${p.bytesPerKey} B/key), db ${p.dbSizeMB} MB, filled in ${p.fillSeconds} s`);
      points.push(p);
    }
    for (const c of conns) c.close();
  } finally {
    await server.stop();
  }
  return points;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const results: Record<string, Point[]> = {};
  try {
    for (const t of o.targets) results[t] = await measure(t, o);
  } finally {
    await stopAll();
  }
  if (results['etcd'] && results['etsd']) {
    console.log('\n| keys | etcd RSS MB | etsd RSS MB | etsd/etcd | etcd B/key | etsd B/key |\n|---|---|---|---|---|---|');
    for (let i = 0; i < o.at.length; i++) {
      const e = results['etcd'][i]!;
      const s = results['etsd'][i]!;
      console.log(`| ${e.keys.toLocaleString('en-US')} | ${e.rssMB} | ${s.rssMB} | ${(s.rssMB / e.rssMB).toFixed(2)}x | ${e.bytesPerKey} | ${s.bytesPerKey} |`);
    }
  }
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify({ options: o, results, date: new Date().toISOString() }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
