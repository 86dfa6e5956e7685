// The watchers of one shard as columns of typed arrays indexed by slot (about
// 60 bytes a watcher, outside the V8 heap), instead of an object, a Map entry
// and Set entries per watcher. A slot is found from (stream id, watch id)
// through a chained hash table; the lists a watcher belongs to (its stream's,
// its key's or the range watchers', the unsynced ones) are circular doubly
// linked lists through `next`/`prev` columns, so adding and removing are O(1)
// and each list keeps insertion order.
//
// Columns double when every slot is used (new arrays, old ones copied):
// never keep a column across alloc(). Free slots are chained through idNext
// and have flags 0. Bounds: fewer than 2^30 slots.

import { grown, unchain } from '../common/typed-tables.js';

const NONE = -1;
const INITIAL = 256;
const MAX_SLOTS = 2 ** 30;

/** Bits of WatcherTable.flags. */
export const enum WF {
  PrevKv = 1, Fragment = 2, ProgressNotify = 4, NoPut = 8, NoDelete = 16,
  /** Takes live events (else it is catching up from storage, or paused). */
  Synced = 32,
  /** Its stream's client stopped reading. */
  Paused = 64,
  /** ref is a block of the range arena: u32 keyLen | key | end. Else ref is a KeyIndex entry. */
  Range = 128,
  /** A range with an empty end: every key >= key. */
  FromKey = 256,
  /** The deliberate bug watchDropAfterInstall: the next delivery loses its first event. */
  DropOne = 512,
  /** On the unsynced list. */
  Unsynced = 1024,
  Live = 2048,
}

export class SlotsFullError extends Error {
  constructor() {
    super(`watcher table: more than ${MAX_SLOTS} watchers on one shard`);
    this.name = 'SlotsFullError';
  }
}

export class WatcherTable {
  stream = new Float64Array(INITIAL);
  watchId = new Float64Array(INITIAL);
  /** The first revision not yet sent. */
  nextRev = new Float64Array(INITIAL);
  flags = new Uint16Array(INITIAL);
  /** A KeyIndex entry, or for a range the offset of its block in the range arena. */
  ref = new Int32Array(INITIAL);
  /** Chains of the id hash; of the free slots for a free slot. */
  idNext = new Int32Array(INITIAL);
  /** Its stream's list. */
  sNext = new Int32Array(INITIAL);
  sPrev = new Int32Array(INITIAL);
  /** Its key's list, or the range watchers' list. */
  kNext = new Int32Array(INITIAL);
  kPrev = new Int32Array(INITIAL);
  /** The unsynced list. */
  uNext = new Int32Array(INITIAL);
  uPrev = new Int32Array(INITIAL);
  /** Scratch for one revision's matching: 1 + the watcher's index among those matched, or 0. */
  mark = new Int32Array(INITIAL);
  private buckets = new Int32Array(INITIAL).fill(NONE);
  private free = NONE;
  private top = 0;
  count = 0;

  /** A new slot for (streamId, watchId), flags 0; the caller fills it. */
  alloc(streamId: number, watchId: number): number {
    if (this.free === NONE && this.top === this.flags.length) this.grow();
    let s: number;
    if (this.free !== NONE) { s = this.free; this.free = this.idNext[s]!; } else { s = this.top++; }
    this.stream[s] = streamId;
    this.watchId[s] = watchId;
    this.mark[s] = 0;
    const b = idHash(streamId, watchId) & (this.buckets.length - 1);
    this.idNext[s] = this.buckets[b]!;
    this.buckets[b] = s;
    this.count++;
    return s;
  }

  /** The slot of (streamId, watchId), or -1. */
  find(streamId: number, watchId: number): number {
    for (let s = this.buckets[idHash(streamId, watchId) & (this.buckets.length - 1)]!; s !== NONE; s = this.idNext[s]!) {
      if (this.stream[s] === streamId && this.watchId[s] === watchId) return s;
    }
    return NONE;
  }

  /** Frees a slot (already off every list). */
  release(s: number): void {
    unchain(this.buckets, this.idNext, idHash(this.stream[s]!, this.watchId[s]!) & (this.buckets.length - 1), s);
    this.flags[s] = 0;
    this.idNext[s] = this.free;
    this.free = s;
    this.count--;
  }

  private grow(): void {
    const n = this.flags.length * 2;
    if (n > MAX_SLOTS) throw new SlotsFullError();
    this.stream = grown(this.stream, n);
    this.watchId = grown(this.watchId, n);
    this.nextRev = grown(this.nextRev, n);
    this.flags = grown(this.flags, n);
    this.ref = grown(this.ref, n);
    this.idNext = grown(this.idNext, n);
    this.sNext = grown(this.sNext, n);
    this.sPrev = grown(this.sPrev, n);
    this.kNext = grown(this.kNext, n);
    this.kPrev = grown(this.kPrev, n);
    this.uNext = grown(this.uNext, n);
    this.uPrev = grown(this.uPrev, n);
    this.mark = grown(this.mark, n);
    // One bucket per slot; every live slot is re-chained.
    this.buckets = new Int32Array(n).fill(NONE);
    for (let s = 0; s < this.top; s++) {
      if (this.flags[s] === 0) continue;
      const b = idHash(this.stream[s]!, this.watchId[s]!) & (n - 1);
      this.idNext[s] = this.buckets[b]!;
      this.buckets[b] = s;
    }
  }
}

function idHash(streamId: number, watchId: number): number {
  const hi = (watchId / 4294967296) | 0;
  return Math.imul((streamId | 0) ^ Math.imul((watchId | 0) ^ hi, 0x9e3779b1), 0x85ebca6b) >>> 0;
}

/** Appends s to the circular list starting at head; returns the head. */
export function listAppend(next: Int32Array, prev: Int32Array, head: number, s: number): number {
  if (head === NONE) { next[s] = s; prev[s] = s; return s; }
  const tail = prev[head]!;
  next[tail] = s;
  prev[s] = tail;
  next[s] = head;
  prev[head] = s;
  return head;
}

/** Removes s from the circular list starting at head; returns the head (-1 when empty). */
export function listRemove(next: Int32Array, prev: Int32Array, head: number, s: number): number {
  const n = next[s]!;
  if (n === s) return NONE;
  const p = prev[s]!;
  next[p] = n;
  prev[n] = p;
  return head === s ? n : head;
}

/** The slots of a list, in order (a copy, so the list may change while the caller walks it). */
export function listSlots(next: Int32Array, head: number): number[] {
  const out: number[] = [];
  if (head === NONE) return out;
  let s = head;
  do { out.push(s); s = next[s]!; } while (s !== head);
  return out;
}
