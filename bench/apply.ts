// The apply worker on its own: the real worker thread with a real RocksDB, fed
// committed Put entries through its in-ring as the main thread feeds them
// (batches up to the ring's room, random keys of a key space), its answers
// drained and counted. Prints microseconds of the process's CPU per put (the
// worker does nearly all of it; the feeding thread sleeps between answers;
// RocksDB's flushes and compactions are in too)
// and wall time per put. Compares two builds when run from each in turn.
// Usage: node dist/bench/apply.js [puts=200000] [keySpace=100000] [valueBytes=256] [rounds=3]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Ring } from '../src/workers/ring/ring.js';
import { entryRecord } from '../src/workers/protocol/apply-ring.js';
import { EntryKind, encodeEntryData } from '../src/workers/protocol/entry.js';
import { reqIdBase } from '../src/workers/protocol/request-id.js';
import { Shared } from '../src/workers/protocol/shared-state.js';
import { decodeResult, ResultType } from '../src/workers/protocol/result-ring.js';
import { encodePutRequest } from '../src/proto/kv-codec.js';
import { ETCD_DISK_BUCKETS, SharedHistogram } from '../src/common/shared-histogram.js';
import type { ApplyReady, ApplyWorkerData } from '../src/workers/apply-worker.js';

const puts = Number(process.argv[2] ?? 200_000);
const keySpace = Number(process.argv[3] ?? 100_000);
const valueBytes = Number(process.argv[4] ?? 256);
const rounds = Number(process.argv[5] ?? 3);
const MEMBER = 2n;

async function round(n: number): Promise<{ cpu: number; wall: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-apply-bench-'));
  const inSab = Ring.allocate(8 * 1024 * 1024);
  const outSab = Ring.allocate(8 * 1024 * 1024);
  const data: ApplyWorkerData = {
    dbDir: path.join(dir, 'db'), clusterId: 1n, memberId: MEMBER, shared: new SharedArrayBuffer(8 * Shared.Size),
    inRing: inSab, outRing: outSab, directRing: Ring.allocate(1024 * 1024), doorbell: new SharedArrayBuffer(4),
    eventRings: [], doorbells: [], watcherCounts: new SharedArrayBuffer(4),
    commitHistogram: SharedHistogram.allocate(ETCD_DISK_BUCKETS), quotaBytes: Infinity,
  };
  const worker = new Worker(new URL('../src/workers/apply-worker.js', import.meta.url), { workerData: data });
  try {
    const ready = await new Promise<ApplyReady>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const inRing = new Ring(inSab, { doorbell: data.doorbell });
    const out = new Ring(outSab);
    const value = Buffer.alloc(valueBytes, 0x61);
    let seed = n + 1;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    // Encoded up front: the bench times the worker, not the making of entries.
    const entries: Uint8Array[][] = [];
    for (let i = 1; i <= puts; i++) {
      const index = ready.appliedIndex + i;
      const key = Buffer.from(`k${String(next() % keySpace).padStart(7, '0')}`);
      const req = encodePutRequest({ key, value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
      entries.push(entryRecord(index, 1, encodeEntryData(EntryKind.Put, reqIdBase(MEMBER) + index, req)));
    }
    const last = ready.appliedIndex + puts;
    let applied = ready.appliedIndex;
    let sent = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (applied < last) {
      inRing.cork();
      while (sent < puts && inRing.tryWriteParts(entries[sent]!)) sent++;
      inRing.uncork();
      out.drain((v) => {
        const r = decodeResult(v);
        if (r.type === ResultType.Applied) applied = r.index;
      });
      // Sleep until answers come (the main thread's own way), so the CPU counted is the worker's.
      if (applied < last) await out.waitReadableAsync(5);
    }
    const wall = performance.now() - t0;
    const c = process.cpuUsage(cpu0);
    return { cpu: (c.user + c.system) / puts, wall: (wall * 1000) / puts };
  } finally {
    await worker.terminate();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const results: { cpu: number; wall: number }[] = [];
for (let i = 0; i < rounds; i++) {
  const r = await round(i);
  results.push(r);
  console.log(`round ${i + 1}: ${r.cpu.toFixed(2)} us CPU per put, ${r.wall.toFixed(2)} us wall per put`);
}
const mean = (f: (r: { cpu: number; wall: number }) => number) => results.reduce((s, r) => s + f(r), 0) / results.length;
console.log(`apply worker, ${puts} puts, ${keySpace} keys, ${valueBytes} B values: ${mean((r) => r.cpu).toFixed(2)} us CPU, ${mean((r) => r.wall).toFixed(2)} us wall per put (mean of ${rounds})`);
