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

interface Watcher extends WatchCreate {
  nextRev: number;
  synced: boolean;
  paused: boolean;
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

export class WatchHub {
  private streams = new Map<number, Map<number, Watcher>>();
  private singles = new Map<string, Set<Watcher>>();
  private ranges = new Set<Watcher>();
  private unsynced = new Set<Watcher>();
  /** The deliberate bug watchDropAfterInstall: watchers whose next delivery loses its first event. */
  private dropOne = new Set<Watcher>();
  private partial: WireEvent[] = [];
  /** Highest revision whose live events this shard has received. */
  seenRev = 0;

  constructor(private readonly reader: DbReader, private readonly ctx: HubContext) {}

  get size(): number {
    let n = 0;
    for (const m of this.streams.values()) n += m.size;
    return n;
  }

  create(c: WatchCreate): void {
    const w: Watcher = { ...c, nextRev: c.minRev, synced: false, paused: false };
    let m = this.streams.get(c.streamId);
    if (!m) this.streams.set(c.streamId, (m = new Map()));
    m.set(c.watchId, w);
    if (w.end === null) {
      const k = w.key.toString('latin1');
      let set = this.singles.get(k);
      if (!set) this.singles.set(k, (set = new Set()));
      set.add(w);
    } else {
      this.ranges.add(w);
    }
    // Every revision published from now on reaches this shard live; older ones come from storage.
    if (w.minRev > this.ctx.publishedRev()) w.synced = true;
    else this.unsynced.add(w);
  }

  cancel(streamId: number, watchId: number): void {
    const w = this.streams.get(streamId)?.get(watchId);
    if (w) this.remove(w);
  }

  closeStream(streamId: number): void {
    const m = this.streams.get(streamId);
    if (!m) return;
    for (const w of [...m.values()]) this.remove(w);
  }

  private remove(w: Watcher): void {
    if (FAILPOINTS_ARMED) this.dropOne.delete(w);
    const m = this.streams.get(w.streamId);
    m?.delete(w.watchId);
    if (m && m.size === 0) this.streams.delete(w.streamId);
    if (w.end === null) {
      const k = w.key.toString('latin1');
      const set = this.singles.get(k);
      set?.delete(w);
      if (set && set.size === 0) this.singles.delete(k);
    } else {
      this.ranges.delete(w);
    }
    this.unsynced.delete(w);
  }

  /** The client stopped reading: its watchers stop taking live events and later catch up from storage. */
  pause(streamId: number): void {
    for (const w of this.streams.get(streamId)?.values() ?? []) {
      w.paused = true;
      w.synced = false;
      this.unsynced.add(w);
    }
  }

  resume(streamId: number): void {
    for (const w of this.streams.get(streamId)?.values() ?? []) w.paused = false;
  }

  /**
   * Storage was replaced by a snapshot up to rev: the live stream skipped the
   * revisions in between, so every watcher catches up from storage.
   */
  resync(rev: number): void {
    this.partial = [];
    this.seenRev = rev;
    const bug = FAILPOINTS_ARMED && failpoint('watchDropAfterInstall');
    for (const m of this.streams.values()) {
      for (const w of m.values()) {
        w.synced = false;
        this.unsynced.add(w);
        if (bug) this.dropOne.add(w);
      }
    }
  }

  /** One record of the live event stream; a revision may span several records. */
  onEvents(last: boolean, rev: number, events: WireEvent[]): void {
    if (!last) { this.partial.push(...events); return; }
    const all = this.partial.length > 0 ? [...this.partial, ...events] : events;
    this.partial = [];
    this.seenRev = rev;
    const per = new Map<Watcher, Buffer[]>();
    for (const e of all) {
      const add = (w: Watcher) => {
        if (!w.synced || rev < w.nextRev || !this.passes(w, e)) return;
        let list = per.get(w);
        if (!list) per.set(w, (list = []));
        list.push(this.eventFor(w, e.key, e.event, e.isCreate, rev));
      };
      const set = this.singles.get(e.key.toString('latin1'));
      if (set) for (const w of set) add(w);
      for (const w of this.ranges) if (inRange(w, e.key)) add(w);
    }
    for (const [w, evs] of per) {
      w.nextRev = rev + 1;
      this.deliver(w, rev, evs);
    }
  }

  private passes(w: Watcher, e: { isDelete: boolean }): boolean {
    return e.isDelete ? !w.noDelete : !w.noPut;
  }

  private eventFor(w: Watcher, key: Buffer, event: Buffer, isCreate: boolean, rev: number): Buffer {
    if (!w.prevKv || isCreate) return event;
    // etcd reads the previous version from storage when the event is sent.
    const prev = this.reader.getAt(key, rev - 1);
    return prev ? withPrevKv(event, toKeyValue(key, prev)) : event;
  }

  private deliver(w: Watcher, rev: number, events: Buffer[]): void {
    if (FAILPOINTS_ARMED && this.dropOne.delete(w)) {
      events = events.slice(1);
      if (events.length === 0) return;
    }
    const header = this.ctx.header(rev);
    if (!w.fragment || events.length < 2) {
      this.ctx.send(w.streamId, w.watchId, encodeWatchResponse({ header, watchId: w.watchId, events }));
      return;
    }
    // etcd's sendFragments: split when the response would pass the request limit.
    let total = 64;
    for (const e of events) total += e.length + 6;
    if (total < this.ctx.maxRequestBytes) {
      this.ctx.send(w.streamId, w.watchId, encodeWatchResponse({ header, watchId: w.watchId, events }));
      return;
    }
    let i = 0;
    while (i < events.length) {
      let size = 64;
      let j = i;
      while (j < events.length && (j === i || size + events[j]!.length + 6 < this.ctx.maxRequestBytes)) size += events[j++]!.length + 6;
      const more = j < events.length;
      this.ctx.send(w.streamId, w.watchId, encodeWatchResponse({ header, watchId: w.watchId, events: events.slice(i, j), fragment: more }));
      i = j;
    }
  }

  /**
   * Catches unsynced watchers up from storage, a bounded step each; true if
   * work remains. While a snapshot replaces storage it does nothing (false):
   * the storage-reset record that follows the install wakes the shard.
   */
  syncStep(): boolean {
    if (this.unsynced.size === 0) return false;
    const epoch = this.ctx.storageEpoch();
    if (epoch % 2 === 1) return false;
    const target = this.ctx.publishedRev();
    const compactRev = this.ctx.compactRev();
    for (const w of [...this.unsynced]) {
      if (w.paused) continue;
      if (w.nextRev < compactRev) {
        this.ctx.send(w.streamId, w.watchId, encodeWatchResponse({
          header: this.ctx.header(0), watchId: w.watchId, compactRevision: compactRev, canceled: true,
        }));
        this.remove(w);
        continue;
      }
      const upTo = Math.min(target, w.nextRev + CATCH_UP_REVS - 1);
      const events = upTo >= w.nextRev ? this.readHistory(w, w.nextRev, upTo) : [];
      // An install that started while we read makes what we read worthless; resync() follows it.
      if (this.ctx.storageEpoch() !== epoch) return false;
      // A compaction that ran while we read may have removed what we needed.
      if (w.nextRev < this.ctx.compactRev()) continue;
      if (events.length > 0) this.deliver(w, target, events);
      w.nextRev = Math.max(w.nextRev, upTo + 1);
      if (upTo >= target) {
        w.synced = true;
        this.unsynced.delete(w);
      }
    }
    return [...this.unsynced].some((w) => !w.paused);
  }

  /** Events of watcher w with revisions in [from, to], in (revision, sub) order. */
  private readHistory(w: Watcher, from: number, to: number): Buffer[] {
    const out: Buffer[] = [];
    if (w.end === null) {
      // One key: its history, newest first between the bounds, reversed.
      const { rows } = this.reader.db.querySync({ ...Q, gte: historyKey(w.key, to), lt: historyKeyEnd(w.key) });
      const found: Buffer[] = [];
      for (let i = 0; i < rows.length; i += 2) {
        const v = decodeVersion(rows[i + 1]!);
        if (v.modRevision < from) break;
        if (!this.passes(w, { isDelete: v.tombstone })) continue;
        const ev = encodeEvent(v.tombstone ? EVENT_DELETE : EVENT_PUT, toKeyValue(w.key, v));
        found.push(this.eventFor(w, w.key, ev, !v.tombstone && v.createRevision === v.modRevision, v.modRevision));
      }
      return found.reverse();
    }
    const { rows } = this.reader.db.querySync({ ...Q, gte: byRevKey(from, 0), lt: byRevKey(to + 1, 0) });
    for (let i = 0; i < rows.length; i += 2) {
      const key = rows[i + 1]!;
      if (!inRange(w, key)) continue;
      const { rev } = decodeByRevKey(rows[i]!);
      const hit = this.reader.db.querySync({ ...Q, gte: historyKey(key, rev), lt: historyKeyEnd(key), limit: 1 }).rows;
      if (hit.length === 0) continue;
      const v = decodeVersion(hit[1]!);
      if (v.modRevision !== rev || !this.passes(w, { isDelete: v.tombstone })) continue;
      const ev = encodeEvent(v.tombstone ? EVENT_DELETE : EVENT_PUT, toKeyValue(key, v));
      out.push(this.eventFor(w, key, ev, !v.tombstone && v.createRevision === v.modRevision, rev));
    }
    return out;
  }

  /**
   * The revision a progress answer for this stream may claim: the current
   * revision, as etcd 3.4 answers, held back for watchers still catching up.
   */
  progressRev(streamId: number): number {
    let rev = this.ctx.publishedRev();
    for (const w of this.streams.get(streamId)?.values() ?? []) if (!w.synced) rev = Math.min(rev, w.nextRev - 1);
    return rev;
  }

  /** Periodic progress notifications (--watch-progress-notify-interval) to synced watchers that asked. */
  notifyProgress(): void {
    for (const m of this.streams.values()) {
      for (const w of m.values()) {
        if (!w.progressNotify || !w.synced) continue;
        this.ctx.send(w.streamId, w.watchId, encodeWatchResponse({ header: this.ctx.header(this.ctx.publishedRev()), watchId: w.watchId }));
      }
    }
  }
}

function inRange(w: Watcher, key: Buffer): boolean {
  if (w.end === null) return key.equals(w.key);
  if (Buffer.compare(key, w.key) < 0) return false;
  return w.end.length === 0 || Buffer.compare(key, w.end) < 0;
}
