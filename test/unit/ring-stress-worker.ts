// Worker side of the 2-thread ring stress test (loaded by ring.test.ts).
// mode 'produce': write `count` records with the wait API for backpressure.
// mode 'consume': read and verify `count` records, then report.
// The record helpers below are also imported by ring.test.ts; the worker body
// runs only when loaded as a worker with a job.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Ring } from '../../src/workers/ring/ring.js';

interface Job {
  sab: SharedArrayBuffer;
  count: number;
  mode: 'produce' | 'consume';
  spin: number;
}

// ---- deterministic records: u32 seq | u32 checksum | body
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Payload length for record `seq`: 8..1031 bytes, skewed small. */
export function recordLength(seq: number): number {
  const h = mix(seq + 1);
  return 8 + ((h & 3) === 0 ? h % 1024 : h % 128);
}

function body(seq: number, i: number): number {
  return (seq * 31 + i * 7 + (seq >>> 8)) & 255;
}

function checksum(view: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 8; i < view.length; i++) h = Math.imul(h ^ view[i]!, 0x01000193);
  return h >>> 0;
}

export function fillRecord(seq: number, view: Uint8Array): void {
  for (let i = 8; i < view.length; i++) view[i] = body(seq, i);
  const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
  dv.setUint32(0, seq, true);
  dv.setUint32(4, checksum(view), true);
}

/** null if `view` is record `seq`, else a description of the mismatch. */
export function verifyRecord(seq: number, view: Uint8Array): string | null {
  if (view.length !== recordLength(seq)) return `seq ${seq}: length ${view.length}, want ${recordLength(seq)}`;
  const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
  const got = dv.getUint32(0, true);
  if (got !== seq) return `got seq ${got}, want ${seq}`;
  if (dv.getUint32(4, true) !== checksum(view)) return `seq ${seq}: checksum mismatch`;
  for (let i = 8; i < view.length; i++) if (view[i] !== body(seq, i)) return `seq ${seq}: byte ${i} differs`;
  return null;
}

// ---- worker body

function produce(job: Job, ring: Ring, deadline: number): { waits: number } {
  let waits = 0;
  for (let seq = 0; seq < job.count; seq++) {
    const len = recordLength(seq);
    for (;;) {
      const view = ring.reserve(len);
      if (view !== null) {
        fillRecord(seq, view);
        ring.commit();
        break;
      }
      waits++;
      ring.waitWritable(100);
      if (Date.now() > deadline) throw new Error(`producer stuck at seq ${seq}`);
    }
  }
  return { waits };
}

function consume(job: Job, ring: Ring, deadline: number): { waits: number } {
  let next = 0;
  let waits = 0;
  while (next < job.count) {
    const n = ring.drain((view) => {
      const err = verifyRecord(next, view);
      if (err !== null) throw new Error(err);
      next++;
    });
    if (n === 0) {
      waits++;
      ring.waitReadable(100);
      if (Date.now() > deadline) throw new Error(`consumer stuck at seq ${next}`);
    }
  }
  return { waits };
}

if (!isMainThread && parentPort !== null && (workerData as Job | null)?.sab instanceof SharedArrayBuffer) {
  const job = workerData as Job;
  const ring = new Ring(job.sab, { spin: job.spin });
  const deadline = Date.now() + 60_000;
  const result = job.mode === 'produce' ? produce(job, ring, deadline) : consume(job, ring, deadline);
  parentPort.postMessage({ ok: true, ...result });
}
