// The per-peer outbound queue: FIFO, bounded in encoded bytes.
//
// At the bound the oldest messages that are not MsgSnap are dropped to make room
// (raft tolerates lost messages and resends; the newest state is the useful one).
// MsgSnap messages are never dropped by the bound: they carry only metadata, and a
// lost one stalls the follower until the leader's snapshot probe times out. If the
// new message still cannot fit (everything queued is MsgSnap, or it alone is over
// the bound) and it is not a MsgSnap, it is the one dropped.

import { MessageType, type Message } from '../raft/types.js';

const COMPACT_AT = 4096;

export class SendQueue {
  private items: (Message | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  /** Every live item before this index is a MsgSnap (so the drop scan starts here). */
  private dropFrom = 0;
  private count = 0;
  private queuedBytes = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`queue bound must be positive, got ${maxBytes}`);
  }

  /** Messages queued. */
  get length(): number {
    return this.count;
  }

  /** Encoded bytes queued (what the bound counts). */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Appends `m` (`size` encoded bytes). Returns how many messages were dropped, `m` included if it was. */
  push(m: Message, size: number): number {
    let dropped = 0;
    while (this.queuedBytes + size > this.maxBytes && this.dropOldest()) dropped++;
    if (this.queuedBytes + size > this.maxBytes && m.type !== MessageType.MsgSnap) return dropped + 1;
    this.items.push(m);
    this.sizes.push(size);
    this.count++;
    this.queuedBytes += size;
    return dropped;
  }

  /** Encoded size of the first message; -1 when empty. */
  peekSize(): number {
    this.skipHoles();
    return this.count === 0 ? -1 : this.sizes[this.head]!;
  }

  /** Removes and returns the first message. */
  shift(): Message | undefined {
    this.skipHoles();
    if (this.count === 0) return undefined;
    const m = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.queuedBytes -= this.sizes[this.head]!;
    this.head++;
    this.count--;
    this.maybeCompact();
    return m;
  }

  /** Empties the queue; returns how many messages were discarded. */
  clear(): number {
    const n = this.count;
    this.items = [];
    this.sizes = [];
    this.head = this.dropFrom = this.count = this.queuedBytes = 0;
    return n;
  }

  private skipHoles(): void {
    while (this.head < this.items.length && this.items[this.head] === undefined) this.head++;
  }

  private dropOldest(): boolean {
    let i = Math.max(this.dropFrom, this.head);
    const items = this.items;
    for (; i < items.length; i++) {
      const m = items[i];
      if (m !== undefined && m.type !== MessageType.MsgSnap) break;
    }
    this.dropFrom = i;
    if (i >= items.length) return false;
    items[i] = undefined;
    this.queuedBytes -= this.sizes[i]!;
    this.count--;
    this.dropFrom = i + 1;
    return true;
  }

  private maybeCompact(): void {
    if (this.count === 0) {
      this.items = [];
      this.sizes = [];
      this.head = this.dropFrom = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.dropFrom = Math.max(0, this.dropFrom - this.head);
      this.head = 0;
    }
  }
}
