import type { Ring } from './ring/ring.js';

/**
 * The main thread's producer side of a ring: writes at once when there is
 * room, otherwise queues (bounded by the caller's admission checks) and drains
 * in order as the consumer frees space. The main thread never blocks.
 */
export class Outbox {
  private queue: Uint8Array[][] = [];
  private draining = false;

  constructor(readonly ring: Ring, private readonly onError: (err: unknown) => void) {}

  send(parts: Uint8Array[]): void {
    if (this.queue.length === 0 && this.ring.tryWriteParts(parts)) return;
    this.queue.push(parts);
    if (!this.draining) this.drain().catch(this.onError);
  }

  get queued(): number { return this.queue.length; }

  /** Sends a batch of records with one wake-up of the consumer. */
  sendAll(records: Uint8Array[][]): void {
    this.ring.cork();
    try {
      for (const r of records) this.send(r);
    } finally {
      this.ring.uncork();
    }
  }

  /**
   * Sends records the consumer need not act on before its next wake-up (a
   * commit-only HardState: written, never synced on its own), without waking
   * it. Anything already queued goes first, woken as usual.
   */
  sendQuiet(records: Uint8Array[][]): void {
    if (this.queue.length > 0) return this.sendAll(records);
    for (let i = 0; i < records.length; i++) {
      if (this.ring.tryWriteQuiet(Buffer.concat(records[i]!))) continue;
      return this.sendAll(records.slice(i));
    }
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        if (this.ring.tryWriteParts(this.queue[0]!)) this.queue.shift();
        else await this.ring.waitWritableAsync(50);
      }
    } finally {
      this.draining = false;
    }
  }
}
