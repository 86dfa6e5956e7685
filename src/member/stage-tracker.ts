// When each request passed each stage, for the per-RPC stage histograms
// (stages.ts, /debug/latency). Writes are tracked in log order so one pass
// stamps every write a durable or commit notice covers.

import type { StageHistograms } from './stages.js';

/** A request's clock: performance.now() in ms at each stage; 0 = not reached. */
export interface StageClock {
  rpc: string;
  tReceived: number;
  tProposed: number;
  tDurable: number;
  tCommitted: number;
  /** The raft index a leader's proposal got. */
  index: number;
  /** A write this follower sent to the leader: its stages are received->forwarded->applied. */
  forwarded: boolean;
}

export function newClock(rpc: string, tReceived: number, tProposed = 0): StageClock {
  return { rpc, tReceived, tProposed, tDurable: 0, tCommitted: 0, index: 0, forwarded: false };
}

/** Trimmed once this many tracked writes are committed. */
const TRIM_AT = 1024;

export class StageTracker {
  /** The leader's proposals in log order, waiting to become durable / committed. */
  private inflight: StageClock[] = [];
  private durable = 0;
  private committed = 0;

  constructor(private readonly stages: StageHistograms) {}

  proposed(c: StageClock): void { this.inflight.push(c); }

  durableTo(index: number): void {
    const now = performance.now();
    while (this.durable < this.inflight.length && this.inflight[this.durable]!.index <= index) this.inflight[this.durable++]!.tDurable = now;
  }

  committedTo(index: number): void {
    const now = performance.now();
    while (this.committed < this.inflight.length && this.inflight[this.committed]!.index <= index) this.inflight[this.committed++]!.tCommitted = now;
    if (this.committed > TRIM_AT) {
      this.inflight = this.inflight.slice(this.committed);
      this.durable -= this.committed;
      this.committed = 0;
    }
  }

  /** Records a finished request's stages. */
  record(c: StageClock, tApplied: number, tResponded: number): void {
    const us = (a: number, b: number) => (b - a) * 1000;
    const st = this.stages.of(c.rpc);
    if (c.forwarded) {
      st.record('received->forwarded', us(c.tReceived, c.tProposed));
      st.record('forwarded->applied', us(c.tProposed, tApplied));
      st.record('applied->responded', us(tApplied, tResponded));
    } else if (c.tDurable > 0) {
      st.record('received->proposed', us(c.tReceived, c.tProposed));
      st.record('proposed->durable', us(c.tProposed, c.tDurable));
      st.record('durable->committed', us(c.tDurable, c.tCommitted));
      st.record('committed->applied', us(c.tCommitted, tApplied));
      st.record('applied->responded', us(tApplied, tResponded));
    } else if (c.tProposed > 0) {
      // A read: dispatched to a shard at tCommitted (after any read-index wait), served at tApplied.
      st.record('received->dispatched', us(c.tReceived, c.tCommitted));
      st.record('dispatched->served', us(c.tCommitted, tApplied));
      st.record('served->responded', us(tApplied, tResponded));
    }
    if (c.tReceived > 0) st.record('total', us(c.tReceived, tResponded));
  }
}
