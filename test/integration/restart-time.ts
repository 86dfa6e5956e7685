// Measures etsd restart time (spawn to first successful Range) with a small
// and a large store, to check that restart time does not grow with the number
// of keys. Not a test file: run it by hand after a build.
//
//   node dist/test/integration/restart-time.js [--keys 1000000] [--small 10000] [--restarts 3]
//
// Keys are loaded with Txns of up to BATCH puts, IN_FLIGHT at a time.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { EtsdProcess, describeExit, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, op } from './kv-client.js';

const BATCH = 128;
const IN_FLIGHT = 8;
const VALUE = Buffer.alloc(64, 'v');

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
}

const keyOf = (i: number) => b(`load/${String(i).padStart(8, '0')}`);

async function load(client: KvClient, n: number): Promise<void> {
  let next = 0;
  let done = 0;
  let reported = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < n) {
      const from = next;
      const to = Math.min(n, from + BATCH);
      next = to;
      const ops = [];
      for (let i = from; i < to; i++) ops.push(op.put({ key: keyOf(i), value: VALUE }));
      await client.txn({ success: ops }, 60_000);
      done += to - from;
      if (done - reported >= 100_000) {
        reported = done;
        const s = (Date.now() - t0) / 1000;
        console.log(`  loaded ${done} keys in ${s.toFixed(1)} s (${Math.round(done / s)} keys/s)`);
      }
    }
  }));
  const s = (Date.now() - t0) / 1000;
  console.log(`  loaded ${n} keys in ${s.toFixed(1)} s (${Math.round(n / s)} keys/s)`);
}

/** Spot checks a sample of keys (a full scan is what we are trying not to time). */
async function spotCheck(client: KvClient, n: number): Promise<void> {
  const sample = [0, n - 1, Math.floor(n / 2)];
  for (let i = 0; i < 50; i++) sample.push(Math.floor((i * 7919 * 104729) % n));
  for (const i of sample) {
    const r = await client.range({ key: keyOf(i) });
    if (r.kvs.length !== 1 || !r.kvs[0]!.value.equals(VALUE)) throw new Error(`key ${keyOf(i).toString()} missing after restart`);
  }
}

function du(dir: string): string {
  try {
    return execFileSync('du', ['-sh', dir], { encoding: 'utf8' }).split('\t')[0]!;
  } catch {
    return '?';
  }
}

/** The server's start-up log as "message +ms" steps from its first line. */
function timeline(log: string): string {
  const steps: string[] = [];
  let t0 = 0;
  for (const line of log.split('\n')) {
    try {
      const j = JSON.parse(line) as { time?: string; msg?: string; replay?: number };
      if (!j.time || !j.msg) continue;
      const t = Date.parse(j.time);
      if (steps.length === 0) t0 = t;
      steps.push(`${j.msg}${j.replay !== undefined ? ` (replayed ${j.replay} entries)` : ''} +${t - t0}`);
    } catch { /* not a log line */ }
  }
  return steps.join(', ');
}

interface Sample { how: string; ms: number }

async function measure(n: number, restarts: number): Promise<Sample[]> {
  console.log(`store with ${n} keys:`);
  const dir = makeTempDir(`restarttime${n}`);
  const [clientPort, peerPort] = await freePorts(2);
  const opts = { dataDir: dir, clientPort: clientPort!, peerPort: peerPort! };
  let proc = await EtsdProcess.startReady(opts);
  const samples: Sample[] = [];
  try {
    const client = new KvClient(proc.endpoint);
    await load(client, n);
    client.close();
    console.log(`  data dir ${du(dir)} (wal ${du(join(dir, 'member', 'wal'))}, db ${du(join(dir, 'member', 'db'))})`);
    for (let r = 0; r < restarts + 1; r++) {
      // The last restart follows a kill -9 (recovery replays the log tail).
      const signal = r < restarts ? 'SIGTERM' : 'SIGKILL';
      const exit = await proc.kill(signal, 120_000);
      if (signal === 'SIGTERM' && exit.code !== 0) throw new Error(`SIGTERM stop: ${describeExit(exit)}\n${proc.logTail()}`);
      proc = await EtsdProcess.start(opts);
      const ns = await proc.waitReady(600_000);
      const ms = Number(ns) / 1e6;
      samples.push({ how: signal, ms });
      console.log(`  restart after ${signal}: ${ms.toFixed(0)} ms from spawn to first successful Range (${timeline(proc.logTail(50))})`);
      const c = new KvClient(proc.endpoint);
      await spotCheck(c, n);
      c.close();
    }
    await proc.kill('SIGTERM', 120_000);
  } finally {
    await proc.kill('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  }
  return samples;
}

async function main(): Promise<void> {
  const big = flag('keys', 1_000_000);
  const small = flag('small', 10_000);
  const restarts = flag('restarts', 3);
  const s = await measure(small, restarts);
  const l = await measure(big, restarts);
  const fmt = (xs: Sample[]) => xs.map((x) => `${x.ms.toFixed(0)} ms (${x.how})`).join(', ');
  console.log('\nrestart time, spawn to first successful Range:');
  console.log(`  ${String(small).padStart(8)} keys: ${fmt(s)}`);
  console.log(`  ${String(big).padStart(8)} keys: ${fmt(l)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
