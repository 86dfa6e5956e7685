// Snapshot save and restore of a large store: etsd against real etcd 3.4,
// same machine, same run, same data. Not a test: run it by hand.
//
// For each target: fill --fill-mb of random (incompressible) values (txns of
// puts), then time
// `etcdctl snapshot save FILE` against it (throughput = file bytes / wall
// seconds, etcdctl's own download included, as a user sees it), stop the
// server, and time the offline restore of that file into a new data dir:
// `etcdctl snapshot restore` for etcd's file, `etsdutl snapshot restore`
// (dist/src/cli/etsdutl.js) for etsd's, both with the same member flags.
// Then starts the restored member (same flags) and times it until it serves a
// linearizable read, and checks that it holds every key. Reports the file
// sizes, the store's Status dbSize, save, restore and first-start times and
// the restored data dir's size.
//
//   npm run build
//   node dist/bench/snapshot.js --fill-mb 1024
//   node dist/bench/snapshot.js --fill-mb 16      # smoke
//
// Each save is repeated --repeat times (3) on the filled server, and the
// restores (with first start) --repeat times alternating between the
// targets, so a busy spell of the shared machine hits both; medians are
// reported, every run is in the JSON.
//
// Flags: --targets etcd,etsd  --fill-mb N (1024)  --val-size B (4096)
// --repeat R (3)  --etcd-bin PATH  --keep (keep the files and restored dirs, print where)
// --out FILE (bench/results/snapshot.json).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ETSD_CLI, freePort, startServer, waitReady, type Server, type Target } from './load/servers.js';
import { MiB, ETCDCTL, connect, etcdctl, fill, run, status, runBench, writeResults } from './load/maintenance.js';

interface Options { targets: Target[]; fillMb: number; valSize: number; repeat: number; etcdBin: string; keep: boolean; out: string }

const PUTS_PER_TXN = 64;
const FILL_IN_FLIGHT = 4;
const ETSDUTL = fileURLToPath(new URL('../src/cli/etsdutl.js', import.meta.url));

function parse(argv: string[]): Options {
  const o: Options = { targets: ['etcd', 'etsd'], fillMb: 1024, valSize: 4096, repeat: 3, etcdBin: '/usr/bin/etcd', keep: false, out: 'bench/results/snapshot.json' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--keep') { o.keep = true; continue; }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--targets': o.targets = v.split(',').map((t) => { if (t !== 'etcd' && t !== 'etsd') throw new Error(`unknown target ${t}`); return t; }); break;
      case '--fill-mb': o.fillMb = Number(v); break;
      case '--val-size': o.valSize = Number(v); break;
      case '--repeat': o.repeat = Number(v); break;
      case '--etcd-bin': o.etcdBin = v; break;
      case '--out': o.out = v; break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  for (const [k, n] of [['--fill-mb', o.fillMb], ['--val-size', o.valSize], ['--repeat', o.repeat]] as const) {
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${k} must be a positive number`);
  }
  return o;
}

const fillKey = (i: number) => `s/${String(i).padStart(10, '0')}`;

/** Bytes under a directory (du -sb: what the files hold, not blocks). */
async function duBytes(dir: string): Promise<number> {
  return Number((await run('du', ['-sb', dir])).out.split('\t')[0]);
}

/**
 * Starts `target` on the restored data dir with the restore's member flags and
 * times it until a linearizable Range succeeds; returns that time and the
 * number of keys under the fill prefix, then stops it.
 */
async function firstStart(target: Target, o: Options, work: string, member: string[], peer: string): Promise<{ readyMs: number; keys: number }> {
  const client = `http://127.0.0.1:${await freePort()}`;
  const args = [...member, '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer];
  const fd = openSync(path.join(work, `${target}-first-start.log`), 'w');
  const t0 = performance.now();
  const child = target === 'etcd'
    ? spawn(o.etcdBin, args, { stdio: ['ignore', fd, fd] })
    : spawn(process.execPath, [ETSD_CLI, ...args], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let alive = true;
  const exited = new Promise<void>((r) => child.once('exit', () => { alive = false; r(); }));
  try {
    const endpoint = client.slice('http://'.length);
    await waitReady(endpoint, null, () => alive, 600_000);
    const readyMs = performance.now() - t0;
    const out = JSON.parse(await etcdctl(endpoint, ['get', 's/', '--prefix', '--limit', '1', '--keys-only', '-w', 'json'])) as { count?: number };
    return { readyMs, keys: out.count ?? 0 };
  } finally {
    if (alive) child.kill('SIGTERM');
    await exited;
  }
}

interface TargetResult {
  target: Target; fillMb: number; keys: number; valSize: number; revision: number; dbSize: number; fileBytes: number;
  /** Every run's wall time (ms); the summary fields are their medians. */
  saveRuns: number[]; restoreRuns: number[]; firstStartRuns: number[];
  saveMs: number; saveMBps: number; restoreMs: number; firstStartMs: number;
  restoredDirBytes: number; restoreCommand: string;
  /** Keys the restored member served (must equal `keys`). */
  keysAfterRestore: number;
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return Math.round(s[Math.floor((s.length - 1) / 2)]!); };

/** Fills a fresh server, saves --repeat snapshots from it (the last is kept as the file to restore), stops it. */
async function fillAndSave(target: Target, o: Options, work: string): Promise<Omit<TargetResult, 'restoreRuns' | 'firstStartRuns' | 'restoreMs' | 'firstStartMs' | 'restoredDirBytes' | 'restoreCommand' | 'keysAfterRestore'>> {
  const keys = Math.ceil((o.fillMb * MiB) / o.valSize);
  const file = path.join(work, `${target}.db`);
  const server: Server = await startServer(target, { etcdBin: o.etcdBin, extraArgs: ['--quota-backend-bytes=8589934592'] });
  try {
    const conns = await connect(server.endpoint, 4);
    try {
      process.stderr.write(`${target}: filling ${o.fillMb} MB (${keys} values of ${o.valSize} B)\n`);
      // Random values: RocksDB may compress (bbolt never does), so repeated bytes would flatter etsd.
      await fill(conns, keys, fillKey, () => randomBytes(o.valSize), PUTS_PER_TXN, FILL_IN_FLIGHT);
    } finally {
      for (const c of conns) c.close();
    }
    const { revision, dbSize } = await status(server.endpoint);
    const saveRuns: number[] = [];
    for (let i = 0; i < o.repeat; i++) {
      rmSync(file, { force: true });
      process.stderr.write(`${target}: snapshot save ${i + 1}/${o.repeat} (dbSize ${dbSize})\n`);
      saveRuns.push(Math.round((await run(ETCDCTL, [`--endpoints=${server.endpoint}`, '--command-timeout=30m', 'snapshot', 'save', file], { ETCDCTL_API: '3' })).ms));
    }
    const fileBytes = statSync(file).size;
    const saveMs = median(saveRuns);
    return {
      target, fillMb: o.fillMb, keys, valSize: o.valSize, revision, dbSize, fileBytes,
      saveRuns, saveMs, saveMBps: Number((fileBytes / MiB / (saveMs / 1000)).toFixed(1)),
    };
  } finally {
    await server.stop();
  }
}

/** One restore of `target`'s file into a new data dir, then the restored member's first start; the dir is removed after. */
async function restoreOnce(target: Target, o: Options, work: string, keys: number): Promise<{ restoreMs: number; firstStartMs: number; dirBytes: number; keys: number; command: string }> {
  const file = path.join(work, `${target}.db`);
  // The same member flags for both restores.
  const dataDir = path.join(work, `${target}-restored`);
  rmSync(dataDir, { recursive: true, force: true });
  const peer = `http://127.0.0.1:${await freePort()}`;
  const member = ['--data-dir', dataDir, '--name', 'restored', '--initial-cluster', `restored=${peer}`,
    '--initial-cluster-token', 'bench-restore', '--initial-advertise-peer-urls', peer];
  const [cmd, args] = target === 'etcd'
    ? [ETCDCTL, ['snapshot', 'restore', file, ...member]]
    : [process.execPath, [ETSDUTL, 'snapshot', 'restore', file, ...member]];
  process.stderr.write(`${target}: snapshot restore\n`);
  const restoreMs = Math.round((await run(cmd, args, { ETCDCTL_API: '3' })).ms);
  const dirBytes = await duBytes(dataDir);
  const started = await firstStart(target, o, work, member, peer);
  if (started.keys !== keys) throw new Error(`${target}: the restored member holds ${started.keys} keys, not ${keys}`);
  if (!o.keep) rmSync(dataDir, { recursive: true, force: true });
  return {
    restoreMs, firstStartMs: Math.round(started.readyMs), dirBytes, keys: started.keys,
    command: `${target === 'etcd' ? 'etcdctl' : 'node dist/src/cli/etsdutl.js'} snapshot restore FILE ${member.join(' ').replaceAll(work, '$WORK').replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')}`,
  };
}

const mb = (b: number) => (b / MiB).toFixed(0);

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-snapshot-'));
  const results: TargetResult[] = [];
  try {
    const saved = [];
    for (const t of o.targets) saved.push(await fillAndSave(t, o, work));
    const restores = saved.map(() => [] as Awaited<ReturnType<typeof restoreOnce>>[]);
    // Restores alternate between the targets, so a busy spell of the shared machine hits both.
    for (let i = 0; i < o.repeat; i++) {
      for (const [j, s] of saved.entries()) restores[j]!.push(await restoreOnce(s.target, o, work, s.keys));
    }
    for (const [j, s] of saved.entries()) {
      const rs = restores[j]!;
      results.push({
        ...s, restoreRuns: rs.map((r) => r.restoreMs), firstStartRuns: rs.map((r) => r.firstStartMs),
        restoreMs: median(rs.map((r) => r.restoreMs)), firstStartMs: median(rs.map((r) => r.firstStartMs)),
        restoredDirBytes: rs[rs.length - 1]!.dirBytes, restoreCommand: rs[0]!.command, keysAfterRestore: rs[rs.length - 1]!.keys,
      });
    }
  } finally {
    if (o.keep) console.log(`(files kept in ${work})`);
    else rmSync(work, { recursive: true, force: true });
  }
  console.log(`(medians of ${o.repeat} runs; every run in the JSON)`);
  console.log('| target | fill MB | dbSize MiB | snapshot file MiB | save s | save MiB/s | restore s | restored dir MiB | first start s |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.target} | ${r.fillMb} | ${mb(r.dbSize)} | ${mb(r.fileBytes)} | ${(r.saveMs / 1000).toFixed(2)} | ${r.saveMBps} | ` +
      `${(r.restoreMs / 1000).toFixed(2)} | ${mb(r.restoredDirBytes)} | ${(r.firstStartMs / 1000).toFixed(2)} |`);
  }
  writeResults(o.out, o, results);
}

runBench(main);
