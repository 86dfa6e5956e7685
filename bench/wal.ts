// WAL micro-benchmark: append 300-byte records, one sync per batch of 1/10/100.
// Usage: node dist/bench/wal.js [secondsPerCase=3] [segmentMiB=64]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '../src/common/crc32c.js';
import { RecordType, type WalRecord } from '../src/storage/wal/record.js';
import { Wal } from '../src/storage/wal/wal.js';

const seconds = Number(process.argv[2] ?? 3);
const segmentBytes = Number(process.argv[3] ?? 64) * 1024 * 1024;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

function benchCrc(): void {
  const data = Buffer.alloc(1 << 20, 7);
  let sink = 0;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 500) {
    sink ^= crc32c(data);
    n++;
  }
  const ms = performance.now() - t0;
  console.log(`crc32c: ${((n * data.length) / 1e6 / (ms / 1000)).toFixed(0)} MB/s (1 MiB buffers)${sink === 0.5 ? '!' : ''}`);
}

function benchBatch(batch: number): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-wal-bench-'));
  try {
    const { wal } = Wal.open(dir, { segmentBytes });
    const data = Buffer.alloc(300, 0x61);
    const recs: WalRecord[] = [];
    for (let i = 0; i < batch; i++) recs.push({ type: RecordType.Entry, index: 0, term: 1, data });
    let index = 0;
    let syncs = 0;
    const lat: number[] = [];
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    let now = t0;
    while (now < until) {
      for (const r of recs) r.index = ++index;
      const s = now;
      wal.append(recs);
      wal.sync();
      now = performance.now();
      lat.push((now - s) * 1000);
      syncs++;
    }
    const secs = (now - t0) / 1000;
    lat.sort((a, b) => a - b);
    console.log(
      `batch ${String(batch).padStart(3)}: ${Math.round(index / secs).toLocaleString('en-US').padStart(9)} records/s, ` +
        `${Math.round(syncs / secs).toLocaleString('en-US').padStart(7)} syncs/s, append+sync p50 ${pct(lat, 50).toFixed(0)} us, ` +
        `p99 ${pct(lat, 99).toFixed(0)} us, max ${lat[lat.length - 1]!.toFixed(0)} us, segments ${wal.segmentNames().length}`,
    );
    wal.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`WAL bench: 300-byte payloads, ${seconds}s per case, ${segmentBytes / 1024 / 1024} MiB segments, dir ${os.tmpdir()}`);
benchCrc();
for (const b of [1, 10, 100]) benchBatch(b);
