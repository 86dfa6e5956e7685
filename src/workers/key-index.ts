// The distinct keys that single-key watchers watch, each stored once: its
// bytes in a ByteArena, its hash and the head of its watcher list in typed
// arrays indexed by entry number. An event's key is looked up by hash and
// byte comparison, with no string made per key or per watcher.
//
// Layout: entries 0..capacity-1 in parallel arrays; a chained hash table
// (buckets -> first entry, next -> following entry of the same bucket);
// free entries are chained through `next` and have len -1. Buckets double
// when entries outnumber them, entries double when all are used; both start
// small. Bounds: as ByteArena (less than 2^30 bytes of keys), and fewer than
// 2^31 entries.

import { ByteArena, compareBytes, hashBytes } from '../common/byte-arena.js';
import { grown, unchain } from '../common/typed-tables.js';

const NONE = -1;
const INITIAL = 64;

export class KeyIndex {
  private readonly arena = new ByteArena((e, off) => { this.off[e] = off; });
  private hash = new Uint32Array(INITIAL);
  private off = new Int32Array(INITIAL);
  private len = new Int32Array(INITIAL).fill(NONE);
  private next = new Int32Array(INITIAL);
  /** Per entry: the first watcher slot of its list (the caller's to keep). */
  head = new Int32Array(INITIAL);
  private buckets = new Int32Array(INITIAL).fill(NONE);
  private free = NONE;
  private top = 0;
  private count = 0;

  get size(): number { return this.count; }

  /** The entry of key, or -1. */
  find(key: Uint8Array): number {
    const h = hashBytes(key);
    for (let e = this.buckets[h & (this.buckets.length - 1)]!; e !== NONE; e = this.next[e]!) {
      if (this.hash[e] === h && this.len[e] === key.length && compareBytes(key, this.arena.buf, this.off[e]!, key.length) === 0) return e;
    }
    return NONE;
  }

  /** The entry of key, added (with head -1) when it has none. */
  add(key: Uint8Array): number {
    const found = this.find(key);
    if (found !== NONE) return found;
    if (this.free === NONE && this.top === this.len.length) this.growEntries();
    let e: number;
    if (this.free !== NONE) { e = this.free; this.free = this.next[e]!; } else { e = this.top++; }
    const off = this.arena.alloc(e, key.length);
    this.arena.buf.set(key, off);
    const h = hashBytes(key);
    this.hash[e] = h;
    this.off[e] = off;
    this.len[e] = key.length;
    this.head[e] = NONE;
    this.count++;
    if (this.count > this.buckets.length) this.rehash(this.buckets.length * 2);
    else this.link(e);
    return e;
  }

  /** Drops an entry (its watcher list must be empty). */
  remove(e: number): void {
    unchain(this.buckets, this.next, this.hash[e]! & (this.buckets.length - 1), e);
    this.arena.free(this.off[e]!);
    this.len[e] = NONE;
    this.next[e] = this.free;
    this.free = e;
    this.count--;
  }

  /** A copy of an entry's key. */
  keyOf(e: number): Buffer {
    const off = this.off[e]!;
    return Buffer.from(this.arena.buf.subarray(off, off + this.len[e]!));
  }

  private link(e: number): void {
    const b = this.hash[e]! & (this.buckets.length - 1);
    this.next[e] = this.buckets[b]!;
    this.buckets[b] = e;
  }

  private rehash(n: number): void {
    this.buckets = new Int32Array(n).fill(NONE);
    for (let e = 0; e < this.top; e++) if (this.len[e] !== NONE) this.link(e);
  }

  private growEntries(): void {
    const n = this.len.length * 2;
    this.hash = grown(this.hash, n);
    this.off = grown(this.off, n);
    this.len = grown(this.len, n, NONE);
    this.next = grown(this.next, n);
    this.head = grown(this.head, n);
  }
}
