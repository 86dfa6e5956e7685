// The leader's view of one follower: how far its log matches, what to send next,
// and how much may be in flight. Modelled on etcd-io/raft's tracker.Progress.

export const enum ProgressState {
  /** Sends one append per heartbeat round until the follower's match is found. */
  Probe = 0,
  /** Streams appends optimistically, bounded by the in-flight window. */
  Replicate = 1,
  /** Waits for the follower to restore a snapshot; sends nothing. */
  Snapshot = 2,
}

/**
 * A bounded window of in-flight appends: the last index and byte size of each.
 * Full at `maxCount` messages or `maxBytes` bytes (0 = no byte limit); the leader
 * stops sending to that follower until acknowledgements free room.
 */
export class Inflights {
  private readonly idx: number[] = [];
  private readonly size: number[] = [];
  private bytes = 0;
  constructor(readonly maxCount: number, readonly maxBytes: number) {
    if (!(maxCount >= 1)) throw new Error('maxInflightMsgs must be >= 1');
  }
  get count(): number { return this.idx.length; }
  full(): boolean { return this.idx.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes); }
  add(index: number, bytes: number): void {
    if (this.idx.length >= this.maxCount) throw new Error('inflights overflow');
    if (this.idx.length > 0 && index <= this.idx[this.idx.length - 1]!) throw new Error('inflights: index not increasing');
    this.idx.push(index);
    this.size.push(bytes);
    this.bytes += bytes;
  }
  /** Frees every message whose last index is <= index. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.idx.length && this.idx[n]! <= index) this.bytes -= this.size[n++]!;
    if (n > 0) { this.idx.splice(0, n); this.size.splice(0, n); }
  }
  /** Frees the oldest message (a heartbeat answer suggests it was lost). */
  freeFirstOne(): void {
    if (this.idx.length === 0) return;
    this.bytes -= this.size[0]!;
    this.idx.shift();
    this.size.shift();
  }
  reset(): void { this.idx.length = 0; this.size.length = 0; this.bytes = 0; }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Ticks spent in Snapshot state (the leader falls back to Probe after a timeout). */
  snapshotTicks = 0;
  /** Heard from since the last quorum check. */
  recentActive = false;
  /** In Probe state: an append is outstanding, wait for its answer or the next heartbeat. */
  paused = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, isLearner: boolean, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(s: ProgressState): void {
    this.paused = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = s;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const ps = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, ps + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = index;
  }

  /** An acknowledgement of `n`; returns whether match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.paused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejection of the append after `rejected`; `matchHint` is where the follower
   * guesses the logs agree. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale: we already know the follower matches beyond it.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the probe we sent (next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.paused = false;
    return true;
  }

  /** Records an append of `entries` entries ending at next-1+entries, `bytes` bytes. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
    } else if (this.state === ProgressState.Probe) {
      if (entries > 0) this.paused = true;
    } else {
      throw new Error('sending entries in Snapshot state');
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe: return this.paused;
      case ProgressState.Replicate: return this.inflights.full();
      default: return true;
    }
  }
}
