import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Ring, RingRecordTooLargeError, RingCorruptError, RING_HEADER_BYTES } from '../../src/workers/ring/ring.js';
import { fillRecord, recordLength, verifyRecord } from './ring-stress-worker.js';
import { makeRng } from '../../src/raft/rng.js';

// Small seeded PRNG so failures reproduce.
const prng = makeRng;

function payload(rand: () => number, len: number): Uint8Array {
  const p = new Uint8Array(len);
  for (let i = 0; i < len; i++) p[i] = (rand() * 256) | 0;
  return p;
}

function readAll(ring: Ring): Buffer[] {
  const out: Buffer[] = [];
  for (let b = ring.read(); b !== null; b = ring.read()) out.push(b);
  return out;
}

for (const initial of [0, 0x7fffff00, 0xffffff00 | 0, -1024]) {
  test(`wraparound with random sizes (counters start at ${initial})`, () => {
    const cap = 1024;
    const ring = new Ring(Ring.allocate(cap, initial));
    const rand = prng(42 + initial);
    const queue: Uint8Array[] = [];
    let written = 0;
    let read = 0;
    for (let round = 0; round < 3000; round++) {
      // Write a random number of random-size records until one does not fit.
      const n = 1 + Math.floor(rand() * 6);
      for (let i = 0; i < n; i++) {
        const len = Math.floor(rand() * (ring.maxPayload + 1));
        const p = payload(rand, len);
        const ok = rand() < 0.5 ? ring.tryWrite(p) : ring.tryWriteParts([p.subarray(0, len >> 1), p.subarray(len >> 1)]);
        if (!ok) break;
        queue.push(p);
        written++;
      }
      const used = ring.usedBytes();
      assert.ok(used >= 0 && used <= cap, `usedBytes ${used}`);
      // Read a random number back, alternating read() and drain().
      const m = Math.floor(rand() * 6);
      if (rand() < 0.5) {
        for (let i = 0; i < m; i++) {
          const b = ring.read();
          if (b === null) break;
          assert.deepEqual(new Uint8Array(b), queue.shift());
          read++;
        }
      } else {
        read += ring.drain((v) => assert.deepEqual(new Uint8Array(v), queue.shift()), m);
      }
    }
    for (const b of readAll(ring)) {
      assert.deepEqual(new Uint8Array(b), queue.shift());
      read++;
    }
    assert.equal(queue.length, 0);
    assert.equal(read, written);
    assert.ok(ring.isEmpty());
    assert.equal(ring.usedBytes(), 0);
    assert.ok(written > 3000, `only ${written} records written`);
  });
}

test('full ring returns false, then succeeds after a drain', () => {
  const ring = new Ring(Ring.allocate(256));
  const rec = new Uint8Array(28).fill(7); // 32 bytes with the header
  let n = 0;
  while (ring.tryWrite(rec)) n++;
  assert.equal(n, 8);
  assert.equal(ring.usedBytes(), 256);
  assert.equal(ring.tryWrite(new Uint8Array(0)), false);
  assert.equal(ring.reserve(1), null);
  assert.equal(ring.waitWritable(0), false);
  assert.equal(ring.drain(() => {}, 1), 1);
  assert.equal(ring.waitWritable(0), true);
  assert.equal(ring.tryWrite(rec), true);
  assert.equal(ring.tryWrite(rec), false);
  assert.equal(ring.drain(() => {}), 8);
  assert.ok(ring.isEmpty());
  // Empty again with the head at position 32: move it to 224, then a 64-byte
  // record does not fit in the last 32 bytes and wraps to 0.
  for (let i = 0; i < 6; i++) assert.ok(ring.tryWrite(rec));
  assert.ok(ring.drain(() => {}) === 6);
  const big = new Uint8Array(60).fill(9); // 64 bytes with the header
  assert.ok(ring.tryWrite(big));
  const got = ring.read();
  assert.deepEqual(got, Buffer.from(big));
});

test('reserve/commit, including a shorter commit and one open reservation at a time', () => {
  const ring = new Ring(Ring.allocate(1024));
  const view = ring.reserve(100);
  assert.ok(view !== null);
  assert.equal(view.length, 100);
  assert.ok(ring.isEmpty(), 'nothing visible before commit');
  assert.throws(() => ring.reserve(1), /reservation open/);
  view.set([1, 2, 3, 4, 5]);
  ring.commit(5);
  assert.throws(() => ring.commit(), /without reserve/);
  assert.deepEqual(ring.read(), Buffer.from([1, 2, 3, 4, 5]));
  // Full reservation returns null and leaves no reservation open.
  while (ring.tryWrite(new Uint8Array(100)));
  assert.equal(ring.reserve(100), null);
  readAll(ring);
  const v2 = ring.reserve(3);
  assert.ok(v2 !== null);
  v2.set([9, 8, 7]);
  assert.throws(() => ring.commit(4), RangeError);
  ring.commit();
  assert.deepEqual(readAll(ring), [Buffer.from([9, 8, 7])]);
});

test('a record larger than capacity/2 is rejected; the largest allowed fits at any position', () => {
  const cap = 512;
  const ring = new Ring(Ring.allocate(cap));
  assert.equal(ring.maxPayload, cap / 2 - 8);
  assert.throws(() => ring.tryWrite(new Uint8Array(cap / 2 + 1)), RingRecordTooLargeError);
  assert.throws(() => ring.reserve(ring.maxPayload + 1), (e: unknown) => {
    assert.ok(e instanceof RingRecordTooLargeError);
    assert.equal(e.code, 'ETSD_RING_RECORD_TOO_LARGE');
    assert.equal(e.length, ring.maxPayload + 1);
    return true;
  });
  const max = new Uint8Array(ring.maxPayload).fill(0xab);
  for (let shift = 0; shift < cap; shift += 8) {
    // Move the head by `shift` bytes (a 4-byte payload is one 8-byte record).
    const r = new Ring(Ring.allocate(cap));
    for (let s = 0; s < shift; s += 8) assert.ok(r.tryWrite(new Uint8Array(4)));
    readAll(r);
    assert.ok(r.tryWrite(max), `max record at position ${shift}`);
    assert.deepEqual(r.read(), Buffer.from(max));
  }
});

test('drain honours max; a throwing callback releases what it was handed', () => {
  const ring = new Ring(Ring.allocate(1024));
  for (let i = 0; i < 5; i++) ring.tryWrite(Uint8Array.of(i));
  const seen: number[] = [];
  assert.equal(ring.drain((v) => seen.push(v[0]!), 2), 2);
  assert.throws(() => ring.drain((v) => {
    seen.push(v[0]!);
    if (v[0] === 3) throw new Error('boom');
  }), /boom/);
  assert.deepEqual(seen, [0, 1, 2, 3]);
  assert.deepEqual(readAll(ring), [Buffer.of(4)]);
});

test('consumer rejects a corrupt length', () => {
  const sab = Ring.allocate(256);
  const ring = new Ring(sab);
  ring.tryWrite(Uint8Array.of(1, 2, 3));
  new Int32Array(sab, RING_HEADER_BYTES, 1)[0] = 100000;
  assert.throws(() => ring.read(), RingCorruptError);
});

test('allocate validates capacity; constructor validates the buffer', () => {
  assert.throws(() => Ring.allocate(1000), RangeError);
  assert.throws(() => Ring.allocate(32), RangeError);
  assert.throws(() => new Ring(new SharedArrayBuffer(RING_HEADER_BYTES + 1000)), RangeError);
  assert.equal(new Ring(Ring.allocate(1 << 20)).capacity, 1 << 20);
});

test('waits time out on an empty ring and return at once when data is there', async () => {
  const ring = new Ring(Ring.allocate(1024), { spin: 0 });
  let t = performance.now();
  assert.equal(ring.waitReadable(20), false);
  assert.ok(performance.now() - t >= 15);
  t = performance.now();
  await ring.waitReadableAsync(20);
  assert.ok(performance.now() - t >= 15);
  assert.ok(ring.isEmpty());
  ring.tryWrite(Uint8Array.of(1));
  assert.equal(ring.waitReadable(1000), true);
  await ring.waitReadableAsync(1000);
  while (ring.tryWrite(new Uint8Array(100)));
  t = performance.now();
  await ring.waitWritableAsync(20);
  assert.ok(performance.now() - t >= 15);
});

function runWorker(data: object): { done: Promise<{ ok: boolean; waits: number }>; worker: Worker } {
  const worker = new Worker(new URL('./ring-stress-worker.js', import.meta.url), { workerData: data });
  const done = new Promise<{ ok: boolean; waits: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
  });
  return { done, worker };
}

const STRESS_COUNT = 200_000;

test(`2 threads: worker produces ${STRESS_COUNT} records, main consumes with waitReadableAsync`, async () => {
  const sab = Ring.allocate(64 * 1024);
  const ring = new Ring(sab);
  const { done, worker } = runWorker({ sab, count: STRESS_COUNT, mode: 'produce', spin: 64 });
  const t0 = performance.now();
  let next = 0;
  let waits = 0;
  const deadline = Date.now() + 60_000;
  try {
    while (next < STRESS_COUNT) {
      const n = ring.drain((view) => {
        const err = verifyRecord(next, view);
        if (err !== null) throw new Error(err);
        next++;
      }, 4096);
      if (n === 0) {
        waits++;
        await ring.waitReadableAsync(100);
        assert.ok(Date.now() < deadline, `consumer stuck at ${next}`);
      }
    }
    const res = await done;
    assert.ok(res.ok);
    assert.ok(ring.isEmpty());
    const ms = performance.now() - t0;
    console.log(`# worker->main: ${STRESS_COUNT} records in ${ms.toFixed(0)} ms (${Math.round(STRESS_COUNT / (ms / 1000))}/s), consumer waits ${waits}, producer waits ${res.waits}`);
  } finally {
    await worker.terminate();
  }
});

test(`2 threads: main produces ${STRESS_COUNT} records with waitWritableAsync, worker consumes`, async () => {
  const sab = Ring.allocate(64 * 1024);
  const ring = new Ring(sab);
  const { done, worker } = runWorker({ sab, count: STRESS_COUNT, mode: 'consume', spin: 64 });
  const t0 = performance.now();
  let waits = 0;
  const deadline = Date.now() + 60_000;
  const scratch = new Uint8Array(2048);
  try {
    for (let seq = 0; seq < STRESS_COUNT; seq++) {
      const rec = scratch.subarray(0, recordLength(seq));
      fillRecord(seq, rec);
      // Alternate the three producer paths.
      const write = (): boolean =>
        seq % 3 === 0 ? ring.tryWrite(rec) : seq % 3 === 1 ? ring.tryWriteParts([rec.subarray(0, 5), rec.subarray(5)]) : reserveWrite(rec);
      while (!write()) {
        waits++;
        await ring.waitWritableAsync(100);
        assert.ok(Date.now() < deadline, `producer stuck at ${seq}`);
      }
    }
    const res = await done;
    assert.ok(res.ok);
    const ms = performance.now() - t0;
    console.log(`# main->worker: ${STRESS_COUNT} records in ${ms.toFixed(0)} ms (${Math.round(STRESS_COUNT / (ms / 1000))}/s), producer waits ${waits}, consumer waits ${res.waits}`);
  } finally {
    await worker.terminate();
  }

  function reserveWrite(rec: Uint8Array): boolean {
    const v = ring.reserve(rec.length);
    if (v === null) return false;
    v.set(rec);
    ring.commit();
    return true;
  }
});

test('drainInPlace hands each record as offset and length in one data area, across the wrap, like drain', () => {
  const ring = new Ring(Ring.allocate(256));
  const rand = prng(7);
  let next = 0;
  const sent: Uint8Array[] = [];
  for (let round = 0; round < 40; round++) {
    // Sizes that make records cross the end of the data area now and then.
    while (ring.tryWriteParts([payload(rand, 5 + (next % 37)), Uint8Array.of(next & 0xff)])) { sent.push(Uint8Array.of(next & 0xff)); next++; }
    const got: number[] = [];
    let area: Buffer | null = null;
    const n = ring.drainInPlace((a, at, len) => {
      area ??= a;
      assert.equal(a, area, 'one area for every record');
      got.push(a[at + len - 1]!);
    }, 3);
    assert.equal(n, got.length);
    assert.deepEqual(got, sent.splice(0, n).map((b) => b[0]!));
  }
  // What is left comes out through drain, in order: both walk the same records.
  const rest: number[] = [];
  ring.drain((v) => rest.push(v[v.length - 1]!));
  assert.deepEqual(rest, sent.map((b) => b[0]!));
});
