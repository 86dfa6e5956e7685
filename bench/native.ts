// Native addon vs JS fallbacks (src/native/index.ts).
// Usage: node dist/bench/native.js [msPerCase=400]
//   crc32c on 256 B / 4 KiB / 1 MiB; preallocating a 64 MiB file (fallocate vs
//   writing zeros, each followed by fdatasync, as the WAL does); fdatasync
//   native vs fs.fdatasyncSync after a 2 KiB overwrite of a zero-written file;
//   and the same overwrite+fdatasync on a fallocate'd file (unwritten extents).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Bench, type Task } from 'tinybench';
import { crc32c as jsCrc32c } from '../src/common/crc32c.js';
import { bindings, zeroFill } from '../src/native/index.js';

const ms = Number(process.argv[2] ?? 400);
if (!bindings.native) {
  console.error(`addon not loaded (${bindings.fallbackReason}); nothing to compare`);
  process.exit(1);
}
const native = bindings;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-native-bench-'));
const PREALLOC = 64 * 1024 * 1024;
const RECORD = 2048;
const SYNC_FILE_BYTES = 64 * 1024 * 1024;

function row(t: Task, bytes?: number): Record<string, string> {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const us = (x: number) => (x * 1000).toFixed(x < 0.01 ? 2 : 1);
  const out: Record<string, string> = {
    task: t.name,
    'ops/s': Math.round(r.throughput.mean).toLocaleString('en-US'),
    'mean us': us(r.latency.mean),
    'p50 us': us(r.latency.p50),
    'p99 us': us(r.latency.p99),
    samples: String(r.latency.samplesCount),
  };
  if (bytes !== undefined) out['MB/s'] = Math.round((bytes * r.throughput.mean) / 1e6).toLocaleString('en-US');
  return out;
}

async function crcCases(): Promise<Record<string, string>[]> {
  const rows: Record<string, string>[] = [];
  for (const n of [256, 4096, 1 << 20]) {
    const buf = Buffer.alloc(n + 1);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 31) & 0xff;
    const data = buf.subarray(1); // odd byteOffset, as a record inside a batch would be
    if (native.crc32c(data) !== jsCrc32c(data)) throw new Error('crc mismatch');
    let sink = 0;
    const b = new Bench({ time: ms, warmupTime: 50 });
    b.add(`crc32c native ${n} B`, () => {
      sink ^= native.crc32c(data);
    });
    b.add(`crc32c js ${n} B`, () => {
      sink ^= jsCrc32c(data);
    });
    await b.run();
    if (sink === 0.5) console.log(sink);
    for (const t of b.tasks) rows.push(row(t, n));
  }
  return rows;
}

async function preallocCases(): Promise<Record<string, string>[]> {
  let i = 0;
  const b = new Bench({ time: ms, iterations: 3, warmup: false });
  const once = (fill: (fd: number) => void) => () => {
    const f = path.join(dir, `pre-${i++}`);
    const fd = fs.openSync(f, 'wx+');
    try {
      fill(fd);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
      fs.unlinkSync(f);
    }
  };
  b.add('prealloc 64 MiB: fallocate + fdatasync', once((fd) => native.fallocate(fd, 0, PREALLOC)));
  b.add('prealloc 64 MiB: write zeros + fdatasync', once((fd) => zeroFill(fd, 0, PREALLOC)));
  await b.run();
  return b.tasks.map((t) => row(t));
}

/** A file whose next RECORD bytes are overwritten and synced per iteration. */
function syncTask(name: string, prepare: (fd: number) => void, sync: (fd: number) => void): [string, () => void, () => void] {
  const f = path.join(dir, name.replace(/\W+/g, '_'));
  const fd = fs.openSync(f, 'w+');
  prepare(fd);
  fs.fdatasyncSync(fd);
  const rec = Buffer.alloc(RECORD, 0x61);
  let at = 0;
  return [
    name,
    () => {
      fs.writeSync(fd, rec, 0, RECORD, at);
      sync(fd);
      at = (at + RECORD) % SYNC_FILE_BYTES;
    },
    () => {
      fs.closeSync(fd);
      fs.unlinkSync(f);
    },
  ];
}

async function syncCases(): Promise<Record<string, string>[]> {
  const b = new Bench({ time: ms * 2, warmupTime: 100 });
  const closers: (() => void)[] = [];
  const zeroed = (fd: number) => zeroFill(fd, 0, SYNC_FILE_BYTES);
  const fallocated = (fd: number) => native.fallocate(fd, 0, SYNC_FILE_BYTES);
  const tasks = [
    syncTask('2 KiB overwrite + native fdatasync (zero-written file)', zeroed, native.fdatasync),
    syncTask('2 KiB overwrite + fs.fdatasyncSync (zero-written file)', zeroed, fs.fdatasyncSync),
    syncTask('2 KiB overwrite + native fdatasync (fallocated file)', fallocated, native.fdatasync),
  ];
  for (const [name, fn, close] of tasks) {
    b.add(name, fn);
    closers.push(close);
  }
  // Call overhead alone: nothing dirty, so the kernel returns at once.
  const idle = fs.openSync(path.join(dir, 'idle'), 'w+');
  b.add('fdatasync, nothing dirty: native', () => native.fdatasync(idle));
  b.add('fdatasync, nothing dirty: fs.fdatasyncSync', () => fs.fdatasyncSync(idle));
  closers.push(() => fs.closeSync(idle));
  try {
    await b.run();
  } finally {
    for (const c of closers) c();
  }
  return b.tasks.map((t) => row(t));
}

try {
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, hardware crc: ${native.hardwareCrc}, ${ms} ms/case, dir ${dir}`);
  console.table(await crcCases());
  console.table(await preallocCases());
  console.table(await syncCases());
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
