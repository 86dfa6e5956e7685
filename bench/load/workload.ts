// What a workload is to the driver (worker.ts): a source of requests for each
// client, an optional response hook, and optional set-up (prefill, streams).
import type { BenchConfig } from './config.js';
import type { Conn, UnaryCallback } from './conn.js';

/** One request; the driver owns one Op object per client and reuses it. */
export interface Op {
  op: number;          // index into Workload.opNames
  path: string;
  body: Buffer;        // framed request
  key: number;         // key index, for workloads that keep per-key state
}

export interface WorkloadCtx {
  cfg: BenchConfig;
  threadIndex: number;
  threadCount: number;
  conns: Conn[];            // this thread's sessions
  clientConn: number[];       // this thread's clients -> index into conns
  /** Records a latency sample for `op` if the measured window is open. */
  record(op: number, us: number): void;
  /** Absolute time in ms (shared by all threads). */
  now(): number;
}

export interface Workload {
  readonly opNames: readonly string[];
  prepare(ctx: WorkloadCtx): Promise<void>;
  next(client: number, op: Op): void;
  onResponse?(client: number, op: Op, payload: Buffer): void;
  /** Replaces the unary call (e.g. a request on a per-client stream). */
  send?(client: number, op: Op, cb: UnaryCallback): void;
  counters?(): Record<string, number>;
  close?(): void;
}

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Runs fn(i) for this thread's share of [0, n) with `depth` calls in flight. */
export async function forEachOwned(ctx: WorkloadCtx, n: number, depth: number, fn: (i: number, conn: Conn) => Promise<void>): Promise<void> {
  let next = ctx.threadIndex;
  const lane = async (l: number): Promise<void> => {
    const conn = ctx.conns[l % ctx.conns.length]!;
    while (next < n) {
      const i = next;
      next += ctx.threadCount;
      await fn(i, conn);
    }
  };
  const lanes: Promise<void>[] = [];
  for (let l = 0; l < depth; l++) lanes.push(lane(l));
  await Promise.all(lanes);
}

/** The smallest key greater than every key with this prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) { end[i]!++; return end.subarray(0, i + 1); }
  }
  return Buffer.from([0]);
}
