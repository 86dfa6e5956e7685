// The leader's pending ReadIndex requests (etcd-io/raft's readOnly, safe mode):
// each remembers the commit index when it arrived and which voters have since
// answered a heartbeat carrying its context. A quorum of answers releases it
// and every request queued before it, in order.
import type { ReadCtx } from './types.js';

export interface ReadRequest { index: number; from: bigint; ctx: ReadCtx; acks: Set<bigint> }

const ctxKey = (c: ReadCtx): string => (typeof c === 'bigint' ? `b${c}` : `n${c}`);

export class ReadOnly {
  private readonly requests = new Map<string, ReadRequest>();
  private queue: string[] = [];

  constructor(private readonly maxPending: number) {}

  get size(): number { return this.requests.size; }

  /** Queues a request; false if its context is already pending or the queue is full (it is dropped). */
  add(index: number, from: bigint, ctx: ReadCtx, self: bigint): boolean {
    const key = ctxKey(ctx);
    if (this.requests.has(key) || this.requests.size >= this.maxPending) return false;
    this.requests.set(key, { index, from, ctx, acks: new Set([self]) });
    this.queue.push(key);
    return true;
  }

  /** The context of the newest pending request (heartbeats carry it), if any. */
  lastCtx(): ReadCtx | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.requests.get(k)!.ctx;
  }

  /** `from` answered a heartbeat carrying ctx; returns the voters known to have answered, or null if ctx is not pending. */
  ack(ctx: ReadCtx, from: bigint): ReadonlySet<bigint> | null {
    const rq = this.requests.get(ctxKey(ctx));
    if (!rq) return null;
    rq.acks.add(from);
    return rq.acks;
  }

  /** Removes and returns the requests up to and including ctx's, oldest first. */
  advance(ctx: ReadCtx): ReadRequest[] {
    const at = this.queue.indexOf(ctxKey(ctx));
    if (at < 0) return [];
    const out: ReadRequest[] = [];
    for (const k of this.queue.splice(0, at + 1)) {
      out.push(this.requests.get(k)!);
      this.requests.delete(k);
    }
    return out;
  }

  clear(): void {
    this.requests.clear();
    this.queue = [];
  }
}
