// --max-concurrent-streams for the JSON gateway. etcd 3.4's gateway reaches
// the gRPC server through one loopback gRPC connection per client listener,
// so its requests, unary ones included, share that connection's stream limit:
// once the limit's worth of calls (typically long watches) are open, the next
// request waits for one to end (etcd's e2e TestV3Curl_MaxStreams_ReachLimit
// expects a range to time out behind open watches). The gateway here calls the
// handlers directly, so it keeps the same count itself: a request takes a slot
// until its response closes; beyond the limit requests wait in order, and one
// whose client goes away while waiting leaves the queue.

import type { ServerResponse } from 'node:http';

export class StreamSlots {
  private used = 0;
  private readonly waiting: { res: ServerResponse; run: () => void }[] = [];

  constructor(private readonly limit: number) {}

  /** Requests waiting for a slot. */
  get queued(): number { return this.waiting.length; }

  /** Runs `run` once a slot is free; the slot is given back when `res` closes. */
  acquire(res: ServerResponse, run: () => void): void {
    if (this.used < this.limit) {
      this.take(res, run);
      return;
    }
    const entry = { res, run };
    this.waiting.push(entry);
    res.once('close', () => {
      const i = this.waiting.indexOf(entry);
      if (i >= 0) this.waiting.splice(i, 1);
    });
  }

  private take(res: ServerResponse, run: () => void): void {
    this.used++;
    res.once('close', () => {
      this.used--;
      const next = this.waiting.shift();
      if (next !== undefined) this.take(next.res, next.run);
    });
    run();
  }
}
