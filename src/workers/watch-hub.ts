// The watchers of one shard. Live events arrive in revision order from the
// apply worker; a watcher whose start revision is already in storage, or that
// fell behind (its client stopped reading), is "unsynced" and catches up from
// the by-revision records before it takes live events again, so a watcher never
// skips, repeats or reorders an event.

import type { ResponseHeader } from '../proto/kv-types.js';
import { encodeEvent, encodeWatchResponse, withPrevKv, EVENT_DELETE, EVENT_PUT } from '../proto/watch-codec.js';
import { byRevKey, decodeByRevKey, historyKey, historyKeyEnd } from '../storage/mvcc/keys.js';
import { decodeVersion } from '../storage/mvcc/record.js';
import { toKeyValue, type DbReader } from '../storage/mvcc/reader.js';
import type { WireEvent } from './events.js';
import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import { ByteArena, compareBytes } from '../common/byte-arena.js';
import { KeyIndex } from './key-index.js';
import { WF, WatcherTable, listAppend, listRemove, listSlots } from './watcher-table.js';

export interface WatchCreate {
  streamId: number;
  watchId: number;
  key: Buffer;
  /** null: the single key; empty: every key >= key; else [key, end). */
  end: Buffer | null;
  minRev: number;
  prevKv: boolean;
  fragment: boolean;
  progressNotify: boolean;
  noPut: boolean;
  noDelete: boolean;
}

export interface HubContext {
  header(rev: number): ResponseHeader;
  publishedRev(): number;
  compactRev(): number;
  /** Shared.StorageEpoch: odd while a snapshot replaces storage. */
  storageEpoch(): number;
  send(streamId: number, watchId: number, body: Buffer): void;
  maxRequestBytes: number;
}

/** How many revisions one catch-up step reads for one watcher (etcd: watchBatchMaxRevs). */
const CATCH_UP_REVS = 1000;
const Q = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
const NONE = -1;

export class WatchHub {
  private readonly t = new WatcherTable();
  /** The keys of single-key watchers; each entry's head is its watcher list. */
  private readonly keys = new KeyIndex();
  /** Per range watcher: u32 keyLen | key | end. */
  private readonly ranges = new ByteArena((s, off) => { this.t.ref[s] = off; });
  /** Stream id -> head of its watcher list, in creation order of the streams. */
  private readonly streams = new Map<number, number>();
  private rangeHead = NONE;
  private unsyncedHead = NONE;
  private partial: WireEvent[] = [];
  /** Highest revision whose live events this shard has received. */
  seenRev = 0;

  constructor(private readonly reader: DbReader, private readonly ctx: HubContext) {}

  get size(): number { return this.t.count; }

  /** `c.key` and `c.end` may be views of a ring record: they are copied. */
  create(c: WatchCreate): void {
    const t = this.t;
    const s = t.alloc(c.streamId, c.watchId);
    t.nextRev[s] = c.minRev;
    let f = WF.Live | (c.prevKv ? WF.PrevKv : 0) | (c.fragment ? WF.Fragment : 0) | (c.progressNotify ? WF.ProgressNotify : 0) |
      (c.noPut ? WF.NoPut : 0) | (c.noDelete ? WF.NoDelete : 0);
    if (c.end === null) {
      const e = this.keys.add(c.key);
      t.ref[s] = e;
      this.keys.head[e] = listAppend(t.kNext, t.kPrev, this.keys.head[e]!, s);
    } else {
      f |= WF.Range | (c.end.length === 0 ? WF.FromKey : 0);
      const off = this.ranges.alloc(s, 4 + c.key.length + c.end.length);
      const buf = this.ranges.buf;
      buf.writeUInt32LE(c.key.length, off);
      buf.set(c.key, off + 4);
      buf.set(c.end, off + 4 + c.key.length);
      t.ref[s] = off;
      this.rangeHead = listAppend(t.kNext, t.kPrev, this.rangeHead, s);
    }
    t.flags[s] = f;
    this.streams.set(c.streamId, listAppend(t.sNext, t.sPrev, this.streams.get(c.streamId) ?? NONE, s));
    // Every revision published from now on reaches this shard live; older ones come from storage.
    if (c.minRev > this.ctx.publishedRev()) t.flags[s] |= WF.Synced;
    else this.markUnsynced(s);
  }

  cancel(streamId: number, watchId: number): void {
    const s = this.t.find(streamId, watchId);
    if (s !== NONE) this.remove(s);
  }

  closeStream(streamId: number): void {
    for (const s of this.slotsOf(streamId)) this.remove(s);
  }

  private remove(s: number): void {
    const t = this.t;
    const f = t.flags[s]!;
    if (f & WF.Range) {
      this.rangeHead = listRemove(t.kNext, t.kPrev, this.rangeHead, s);
      this.ranges.free(t.ref[s]!);
    } else {
      const e = t.ref[s]!;
      const head = listRemove(t.kNext, t.kPrev, this.keys.head[e]!, s);
      if (head === NONE) this.keys.remove(e);
      else this.keys.head[e] = head;
    }
    const streamId = t.stream[s]!;
    const head = listRemove(t.sNext, t.sPrev, this.streams.get(streamId)!, s);
    if (head === NONE) this.streams.delete(streamId);
    else this.streams.set(streamId, head);
    if (f & WF.Unsynced) this.unsyncedHead = listRemove(t.uNext, t.uPrev, this.unsyncedHead, s);
    t.release(s);
  }

  /** Puts s on the unsynced list unless it is there (where it keeps its place). */
  private markUnsynced(s: number): void {
    const t = this.t;
    if (t.flags[s]! & WF.Unsynced) return;
    t.flags[s] |= WF.Unsynced;
    this.unsyncedHead = listAppend(t.uNext, t.uPrev, this.unsyncedHead, s);
  }

  private slotsOf(streamId: number): number[] {
    return listSlots(this.t.sNext, this.streams.get(streamId) ?? NONE);
  }

  /** The client stopped reading: its watchers stop taking live events and later catch up from storage. */
  pause(streamId: number): void {
    const t = this.t;
    for (const s of this.slotsOf(streamId)) {
      t.flags[s] = (t.flags[s]! | WF.Paused) & ~WF.Synced;
      this.markUnsynced(s);
    }
  }

  resume(streamId: number): void {
    for (const s of this.slotsOf(streamId)) this.t.flags[s] &= ~WF.Paused;
  }

  /**
   * Storage was replaced by a snapshot up to rev: the live stream skipped the
   * revisions in between, so every watcher catches up from storage.
   */
  resync(rev: number): void {
    this.partial = [];
    this.seenRev = rev;
    const bug = FAILPOINTS_ARMED && failpoint('watchDropAfterInstall');
    const t = this.t;
    for (const streamId of this.streams.keys()) {
      for (const s of this.slotsOf(streamId)) {
        t.flags[s] = (t.flags[s]! & ~WF.Synced) | (bug ? WF.DropOne : 0);
        this.markUnsynced(s);
      }
    }
  }

  /** One record of the live event stream; a revision may span several records. */
  onEvents(last: boolean, rev: number, events: WireEvent[]): void {
    if (!last) { this.partial.push(...events); return; }
    const all = this.partial.length > 0 ? [...this.partial, ...events] : events;
    this.partial = [];
    this.seenRev = rev;
    // The watchers this revision reaches, in the order of their first event, and their events.
    const hit: number[] = [];
    const lists: Buffer[][] = [];
    const t = this.t;
    for (const e of all) {
      const entry = this.keys.find(e.key);
      if (entry !== NONE) {
        const head = this.keys.head[entry]!;
        let s = head;
        do { this.match(s, e, rev, hit, lists); s = t.kNext[s]!; } while (s !== head);
      }
      if (this.rangeHead !== NONE) {
        let s = this.rangeHead;
        do { if (this.inRange(s, e.key)) this.match(s, e, rev, hit, lists); s = t.kNext[s]!; } while (s !== this.rangeHead);
      }
    }
    for (let i = 0; i < hit.length; i++) t.mark[hit[i]!] = 0;
    for (let i = 0; i < hit.length; i++) {
      const s = hit[i]!;
      t.nextRev[s] = rev + 1;
      this.deliver(s, rev, lists[i]!);
    }
  }

  private match(s: number, e: WireEvent, rev: number, hit: number[], lists: Buffer[][]): void {
    const t = this.t;
    const f = t.flags[s]!;
    if (!(f & WF.Synced) || rev < t.nextRev[s]! || !passes(f, e.isDelete)) return;
    const ev = this.eventFor(f, e.key, e.event, e.isCreate, rev);
    const i = t.mark[s]!;
    if (i === 0) {
      hit.push(s);
      lists.push([ev]);
      t.mark[s] = hit.length;
    } else {
      lists[i - 1]!.push(ev);
    }
  }

  private eventFor(f: number, key: Buffer, event: Buffer, isCreate: boolean, rev: number): Buffer {
    if (!(f & WF.PrevKv) || isCreate) return event;
    // etcd reads the previous version from storage when the event is sent.
    const prev = this.reader.getAt(key, rev - 1);
    return prev ? withPrevKv(event, toKeyValue(key, prev)) : event;
  }

  private deliver(s: number, rev: number, events: Buffer[]): void {
    const t = this.t;
    if (FAILPOINTS_ARMED && t.flags[s]! & WF.DropOne) {
      t.flags[s] &= ~WF.DropOne;
      events = events.slice(1);
      if (events.length === 0) return;
    }
    const streamId = t.stream[s]!;
    const watchId = t.watchId[s]!;
    const header = this.ctx.header(rev);
    if (!(t.flags[s]! & WF.Fragment) || events.length < 2) {
      this.ctx.send(streamId, watchId, encodeWatchResponse({ header, watchId, events }));
      return;
    }
    // etcd's sendFragments: split when the response would pass the request limit.
    let total = 64;
    for (const e of events) total += e.length + 6;
    if (total < this.ctx.maxRequestBytes) {
      this.ctx.send(streamId, watchId, encodeWatchResponse({ header, watchId, events }));
      return;
    }
    let i = 0;
    while (i < events.length) {
      let size = 64;
      let j = i;
      while (j < events.length && (j === i || size + events[j]!.length + 6 < this.ctx.maxRequestBytes)) size += events[j++]!.length + 6;
      const more = j < events.length;
      this.ctx.send(streamId, watchId, encodeWatchResponse({ header, watchId, events: events.slice(i, j), fragment: more }));
      i = j;
    }
  }

  /**
   * Catches unsynced watchers up from storage, a bounded step each; true if
   * work remains. While a snapshot replaces storage it does nothing (false):
   * the storage-reset record that follows the install wakes the shard.
   */
  syncStep(): boolean {
    if (this.unsyncedHead === NONE) return false;
    const epoch = this.ctx.storageEpoch();
    if (epoch % 2 === 1) return false;
    const target = this.ctx.publishedRev();
    const compactRev = this.ctx.compactRev();
    const t = this.t;
    for (const s of listSlots(t.uNext, this.unsyncedHead)) {
      if (t.flags[s]! & WF.Paused) continue;
      const from = t.nextRev[s]!;
      if (from < compactRev) {
        this.ctx.send(t.stream[s]!, t.watchId[s]!, encodeWatchResponse({
          header: this.ctx.header(0), watchId: t.watchId[s]!, compactRevision: compactRev, canceled: true,
        }));
        this.remove(s);
        continue;
      }
      const upTo = Math.min(target, from + CATCH_UP_REVS - 1);
      const events = upTo >= from ? this.readHistory(s, from, upTo) : [];
      // An install that started while we read makes what we read worthless; resync() follows it.
      if (this.ctx.storageEpoch() !== epoch) return false;
      // A compaction that ran while we read may have removed what we needed.
      if (from < this.ctx.compactRev()) continue;
      if (events.length > 0) this.deliver(s, target, events);
      t.nextRev[s] = Math.max(from, upTo + 1);
      if (upTo >= target) {
        t.flags[s] = (t.flags[s]! | WF.Synced) & ~WF.Unsynced;
        this.unsyncedHead = listRemove(t.uNext, t.uPrev, this.unsyncedHead, s);
      }
    }
    return listSlots(t.uNext, this.unsyncedHead).some((s) => !(t.flags[s]! & WF.Paused));
  }

  /** Events of watcher s with revisions in [from, to], in (revision, sub) order. */
  private readHistory(s: number, from: number, to: number): Buffer[] {
    const f = this.t.flags[s]!;
    const out: Buffer[] = [];
    if (!(f & WF.Range)) {
      const key = this.keys.keyOf(this.t.ref[s]!);
      // One key: its history, newest first between the bounds, reversed.
      const { rows } = this.reader.db.querySync({ ...Q, gte: historyKey(key, to), lt: historyKeyEnd(key) });
      const found: Buffer[] = [];
      for (let i = 0; i < rows.length; i += 2) {
        const v = decodeVersion(rows[i + 1]!);
        if (v.modRevision < from) break;
        if (!passes(f, v.tombstone)) continue;
        const ev = encodeEvent(v.tombstone ? EVENT_DELETE : EVENT_PUT, toKeyValue(key, v));
        found.push(this.eventFor(f, key, ev, !v.tombstone && v.createRevision === v.modRevision, v.modRevision));
      }
      return found.reverse();
    }
    const { rows } = this.reader.db.querySync({ ...Q, gte: byRevKey(from, 0), lt: byRevKey(to + 1, 0) });
    for (let i = 0; i < rows.length; i += 2) {
      const key = rows[i + 1]!;
      if (!this.inRange(s, key)) continue;
      const { rev } = decodeByRevKey(rows[i]!);
      const hit = this.reader.db.querySync({ ...Q, gte: historyKey(key, rev), lt: historyKeyEnd(key), limit: 1 }).rows;
      if (hit.length === 0) continue;
      const v = decodeVersion(hit[1]!);
      if (v.modRevision !== rev || !passes(f, v.tombstone)) continue;
      const ev = encodeEvent(v.tombstone ? EVENT_DELETE : EVENT_PUT, toKeyValue(key, v));
      out.push(this.eventFor(f, key, ev, !v.tombstone && v.createRevision === v.modRevision, rev));
    }
    return out;
  }

  /** Whether key falls in the range of range watcher s: [key, end), or [key, inf) for a from-key watcher. */
  private inRange(s: number, key: Uint8Array): boolean {
    const buf = this.ranges.buf;
    const off = this.t.ref[s]!;
    const kl = buf.readUInt32LE(off);
    if (compareBytes(key, buf, off + 4, kl) < 0) return false;
    if (this.t.flags[s]! & WF.FromKey) return true;
    return compareBytes(key, buf, off + 4 + kl, this.ranges.length(off) - 4 - kl) < 0;
  }

  /**
   * The revision a progress answer for this stream may claim: the current
   * revision, as etcd 3.4 answers, held back for watchers still catching up.
   */
  progressRev(streamId: number): number {
    let rev = this.ctx.publishedRev();
    const t = this.t;
    for (const s of this.slotsOf(streamId)) if (!(t.flags[s]! & WF.Synced)) rev = Math.min(rev, t.nextRev[s]! - 1);
    return rev;
  }

  /** Periodic progress notifications (--watch-progress-notify-interval) to synced watchers that asked. */
  notifyProgress(): void {
    const t = this.t;
    for (const streamId of this.streams.keys()) {
      for (const s of this.slotsOf(streamId)) {
        const f = t.flags[s]!;
        if (!(f & WF.ProgressNotify) || !(f & WF.Synced)) continue;
        this.ctx.send(streamId, t.watchId[s]!, encodeWatchResponse({ header: this.ctx.header(this.ctx.publishedRev()), watchId: t.watchId[s]! }));
      }
    }
  }
}

function passes(flags: number, isDelete: boolean): boolean {
  return isDelete ? !(flags & WF.NoDelete) : !(flags & WF.NoPut);
}
