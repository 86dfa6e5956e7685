import type { Ring } from './ring/ring.js';
import { OP_HEADER_BYTES, opHeader, writeOpHeader } from './protocol/header.js';

const EMPTY = new Uint8Array(0);

/**
 * The main thread's producer side of a ring: writes at once when there is
 * room, otherwise queues (bounded by the caller's admission checks) and drains
 * in order as the consumer frees space. The main thread never blocks.
 */
export class Outbox {
  private queue: Uint8Array[][] = [];
  private draining = false;
  private readonly head = Buffer.allocUnsafe(OP_HEADER_BYTES);
  private readonly headParts: Uint8Array[] = [this.head, EMPTY];

  constructor(readonly ring: Ring, private readonly onError: (err: unknown) => void) {}

  send(parts: Uint8Array[]): void {
    if (this.queue.length === 0 && this.ring.tryWriteParts(parts)) return;
    this.queue.push(parts);
    if (!this.draining) this.drain().catch(this.onError);
  }

  get queued(): number { return this.queue.length; }

  /**
   * Sends one record of an op header (header.ts: type, a, b) and a payload.
   * When the ring has room the header is written from one reused buffer: no
   * header buffer and parts list per record. Otherwise both are made and queued.
   */
  sendOp(type: number, a: number, b: number, payload: Uint8Array = EMPTY): void {
    if (this.queue.length === 0) {
      writeOpHeader(this.head, type, a, b);
      this.headParts[1] = payload;
      const done = this.ring.tryWriteParts(this.headParts);
      this.headParts[1] = EMPTY;
      if (done) return;
    }
    this.send([opHeader(type, a, b), payload]);
  }

  /** Runs `fn`, whose sends wake the consumer once, at the end. */
  batch(fn: () => void): void {
    this.ring.cork();
    try {
      fn();
    } finally {
      this.ring.uncork();
    }
  }

  /** Sends a batch of records with one wake-up of the consumer. */
  sendAll(records: Uint8Array[][]): void {
    this.batch(() => {
      for (const r of records) this.send(r);
    });
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
