// The apply worker's MVCC write path on one thread, without the rest of the
// member: puts in batches of 64 (the apply worker's MAX_BATCH) on random keys
// of a key space, each batch prefetched, applied and flushed to a real
// RocksDB opened as a member opens its store. Prints microseconds per put:
// in all, inside RocksDB's write (memtable and RocksDB's own log), and the
// JavaScript around it.
// Usage: node dist/bench/writer.js [puts=400000] [keySpace=100000] [valueBytes=256] [rounds=3]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { STORE_OPEN_OPTIONS, tuneStore } from '../src/storage/store-options.js';
import { MvccWriter } from '../src/storage/mvcc/writer.js';
import { ReusableBatch } from '../src/storage/write-batch.js';

const puts = Number(process.argv[2] ?? 400_000);
const keySpace = Number(process.argv[3] ?? 100_000);
const valueBytes = Number(process.argv[4] ?? 256);
const rounds = Number(process.argv[5] ?? 3);
const BATCH = 64;

async function round(n: number): Promise<{ total: number; write: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-writer-bench-'));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open(STORE_OPEN_OPTIONS);
  tuneStore(db, dir);
  try {
    const w = new MvccWriter(db);
    // Time RocksDB's part: every write of every ReusableBatch goes through this method.
    let writeNs = 0n;
    const proto = ReusableBatch.prototype;
    const inner = proto.write;
    proto.write = function (this: ReusableBatch, sync?: boolean) {
      const t = process.hrtime.bigint();
      inner.call(this, sync);
      writeNs += process.hrtime.bigint() - t;
    };
    const value = Buffer.alloc(valueBytes, 0x61);
    let seed = n;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const t0 = process.hrtime.bigint();
    try {
      for (let i = 0, index = 1; i < puts; i += BATCH, index++) {
        const keys: Buffer[] = [];
        for (let j = 0; j < BATCH; j++) keys.push(Buffer.from(`k${String(next() % keySpace).padStart(7, '0')}`));
        w.prefetchMeta(keys);
        for (const k of keys) { w.begin(); w.put(k, value, 0n); w.end(); }
        w.markApplied(index, 1);
        await w.flush(false);
        w.takeChanges();
      }
    } finally {
      proto.write = inner;
    }
    const total = Number(process.hrtime.bigint() - t0);
    return { total: total / puts / 1000, write: Number(writeNs) / puts / 1000 };
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`MVCC writer: ${puts} puts of ${valueBytes} B values on ${keySpace} keys, batches of ${BATCH}`);
for (let r = 1; r <= rounds; r++) {
  const { total, write } = await round(r);
  console.log(`round ${r}: ${total.toFixed(2)} us/put (RocksDB write ${write.toFixed(2)}, JavaScript ${(total - write).toFixed(2)})`);
}
