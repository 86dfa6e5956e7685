// Watch streams on the main thread: which stream a shard's output belongs to,
// which shard holds a watcher, and the reassembly of watch responses a shard
// sent in pieces. The Watch service drives it; the result router feeds it.

import type { Outbox } from '../workers/outbox.js';

/** Where a shard's output for one watch stream goes (the Watch service's per-stream state). */
export interface StreamSink {
  onWatchData(watchId: number, body: Buffer): void;
  onProgress(token: number, rev: number): void;
}

export class WatchRouter {
  private sinks = new Map<number, StreamSink>();
  private parts = new Map<string, Buffer[]>();
  private nextStreamId = 1;

  constructor(private readonly shards: Outbox[], private readonly watcherCounts: Int32Array) {}

  get shardCount(): number { return this.shards.length; }

  get watcherTotal(): number {
    let n = 0;
    for (let i = 0; i < this.watcherCounts.length; i++) n += Atomics.load(this.watcherCounts, i);
    return n;
  }

  openStream(sink: StreamSink): number {
    const id = this.nextStreamId++;
    this.sinks.set(id, sink);
    return id;
  }

  closeStream(streamId: number): void { this.sinks.delete(streamId); }

  /** Which shard holds a watcher: a hash of (stream, watch id). */
  shardOf(streamId: number, watchId: number): number {
    const h = Math.imul(streamId ^ Math.imul(watchId | 0, 0x9e3779b1), 0x85ebca6b) >>> 0;
    return h % this.shards.length;
  }

  /** Counted before the create reaches the shard, so the apply worker starts sending it events first. */
  addWatchers(shard: number, delta: number): void { Atomics.add(this.watcherCounts, shard, delta); }

  sendShard(shard: number, parts: Uint8Array[]): void { this.shards[shard]!.send(parts); }

  /** A piece of a watch response; `last` ends it. */
  onWatchData(streamId: number, watchId: number, body: Buffer, last: boolean): void {
    // Most responses come whole: no key string is made for them.
    const key = last && this.parts.size === 0 ? '' : `${streamId}/${watchId}`;
    const parts = key === '' ? undefined : this.parts.get(key);
    if (!last) {
      if (parts) parts.push(body);
      else this.parts.set(key, [body]);
      return;
    }
    if (parts) this.parts.delete(key);
    this.sinks.get(streamId)?.onWatchData(watchId, parts ? Buffer.concat([...parts, body]) : body);
  }

  onProgress(streamId: number, token: number, rev: number): void {
    this.sinks.get(streamId)?.onProgress(token, rev);
  }
}
