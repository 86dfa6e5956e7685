// The watch ids open on one Watch stream, kept for the main thread's checks
// (duplicate ids, the next free id, cancels, dropping events of a cancelled
// watcher). etcd hands out ids 0, 1, 2, ... per stream, so those sit in a
// bitmap (a bit a watcher instead of a Map entry); ids a client picked above
// BITMAP_IDS, or negative ones, go to a Set. Which shard holds a watcher is
// not stored: it is a hash of (stream, watch id).

import { grown } from '../common/typed-tables.js';

/** Ids below this are bits: at most 128 KiB of bitmap per stream. */
const BITMAP_IDS = 1 << 20;

export class WatchIdSet {
  private bits = new Uint32Array(4);
  private others: Set<number> | null = null;
  private count = 0;

  get size(): number { return this.count; }

  has(id: number): boolean {
    if (isBitId(id)) {
      const w = id >>> 5;
      return w < this.bits.length && (this.bits[w]! & (1 << (id & 31))) !== 0;
    }
    return this.others?.has(id) ?? false;
  }

  /** Adds id; false if it was there. */
  add(id: number): boolean {
    if (this.has(id)) return false;
    if (isBitId(id)) {
      const w = id >>> 5;
      if (w >= this.bits.length) {
        let n = this.bits.length * 2;
        while (n <= w) n *= 2;
        this.bits = grown(this.bits, n);
      }
      this.bits[w] |= 1 << (id & 31);
    } else {
      (this.others ??= new Set()).add(id);
    }
    this.count++;
    return true;
  }

  /** Removes id; false if it was not there. */
  delete(id: number): boolean {
    if (!this.has(id)) return false;
    if (isBitId(id)) this.bits[id >>> 5] &= ~(1 << (id & 31));
    else this.others!.delete(id);
    this.count--;
    return true;
  }

  clear(): void {
    this.bits = new Uint32Array(4);
    this.others = null;
    this.count = 0;
  }

  /** Every id: the bitmap's in increasing order, then the others. */
  forEach(fn: (id: number) => void): void {
    const bits = this.bits;
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w]!;
      while (word !== 0) {
        const b = 31 - Math.clz32(word & -word);
        fn(w * 32 + b);
        word &= word - 1;
      }
    }
    this.others?.forEach(fn);
  }
}

function isBitId(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < BITMAP_IDS;
}
