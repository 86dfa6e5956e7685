// etcd's auto-compaction (--auto-compaction-mode/--auto-compaction-retention),
// run on the leader only and through the log like a client's Compact
// (physical: false). The two modes follow etcd 3.4's v3compactor:
//
// periodic (retention P): every P/10 (P capped at 1 h for this interval) the
//   current revision is sampled; the oldest sample kept is the revision of P
//   ago. The first compaction comes once P has passed, later ones every
//   min(P, 1 h) after the last success; a failure is retried at the next sample.
// revision (retention N): every 5 minutes, compact at (current - N) unless it
//   is not positive or the same as the last successful one.
//
// A follower keeps sampling (etcd pauses the compactor but its loop still
// samples) and compacts nothing until it leads.

import type { AutoCompaction } from '../common/config.js';
import { Errors, EtcdError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

/** etcd's revInterval for revision mode. */
export const REVISION_MODE_INTERVAL_MS = 5 * 60_000;
const HOUR_MS = 3600_000;
const RETRY_DIVISOR = 10;

export interface CompactorDeps {
  isLeader(): boolean;
  revision(): number;
  /** Proposes a compaction at rev through the log; rejects with etcd's errors. */
  compact(rev: number): Promise<void>;
  log: Logger;
  /** Injectable for tests. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

export class AutoCompactor {
  private timer: { cancel(): void } | null = null;
  private stopped = false;
  private busy = false;
  // periodic
  private revs: number[] = [];
  private lastSuccess = 0;
  private baseInterval = 0;
  // revision
  private prev = 0;

  constructor(private readonly cfg: AutoCompaction, private readonly d: CompactorDeps) {}

  private now(): number { return this.d.now ? this.d.now() : Date.now(); }

  private schedule(ms: number): void {
    if (this.stopped) return;
    const fire = () => { void this.tick(); };
    if (this.d.setTimer) {
      this.timer = this.d.setTimer(fire, ms);
    } else {
      const t = setTimeout(fire, ms);
      t.unref();
      this.timer = { cancel: () => clearTimeout(t) };
    }
  }

  /** The interval between samples (periodic) or attempts (revision). */
  get intervalMs(): number {
    if (this.cfg.mode === 'revision') return REVISION_MODE_INTERVAL_MS;
    return Math.min(this.cfg.retentionMs, HOUR_MS) / RETRY_DIVISOR;
  }

  start(): void {
    if (this.cfg.mode === 'periodic') {
      this.lastSuccess = this.now();
      this.baseInterval = this.cfg.retentionMs;
      this.sample();
    }
    this.schedule(this.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private sample(): void {
    if (this.cfg.mode !== 'periodic') return;
    this.revs.push(this.d.revision());
    // revs[0] is always the revision of one retention period ago.
    const keep = Math.floor(this.cfg.retentionMs / this.intervalMs) + 1;
    if (this.revs.length > keep) this.revs = this.revs.slice(this.revs.length - keep);
  }

  private async tick(): Promise<void> {
    if (this.busy) return this.schedule(this.intervalMs);
    this.busy = true;
    try {
      if (this.cfg.mode === 'periodic') await this.periodic();
      else await this.byRevision();
    } finally {
      this.busy = false;
      this.schedule(this.intervalMs);
    }
  }

  private async periodic(): Promise<void> {
    const cfg = this.cfg as { mode: 'periodic'; retentionMs: number };
    if (this.d.isLeader() && this.now() - this.lastSuccess >= this.baseInterval) {
      if (this.baseInterval === cfg.retentionMs) this.baseInterval = Math.min(cfg.retentionMs, HOUR_MS);
      const rev = this.revs[0]!;
      const t0 = this.now();
      this.d.log.info({ revision: rev, 'compact-period': `${cfg.retentionMs}ms` }, 'starting auto periodic compaction');
      if (await this.tryCompact(rev)) {
        this.d.log.info({ revision: rev, 'compact-period': `${cfg.retentionMs}ms`, took: `${this.now() - t0}ms` }, 'completed auto periodic compaction');
        this.lastSuccess = this.now();
      }
    }
    this.sample();
  }

  private async byRevision(): Promise<void> {
    const cfg = this.cfg as { mode: 'revision'; revisions: number };
    if (!this.d.isLeader()) return;
    const rev = this.d.revision() - cfg.revisions;
    if (rev <= 0 || rev === this.prev) return;
    const t0 = this.now();
    this.d.log.info({ revision: rev, 'revision-compaction-retention': cfg.revisions }, 'starting auto revision compaction');
    if (await this.tryCompact(rev)) {
      this.prev = rev;
      this.d.log.info({ revision: rev, 'revision-compaction-retention': cfg.revisions, took: `${this.now() - t0}ms` }, 'completed auto revision compaction');
    }
  }

  /** True on success, or when the revision was already compacted (etcd counts both as done). */
  private async tryCompact(rev: number): Promise<boolean> {
    try {
      await this.d.compact(rev);
      return true;
    } catch (err) {
      if (err instanceof EtcdError && err.message === Errors.compacted().message) return true;
      this.d.log.warn({ err, revision: rev, 'retry-interval': `${this.intervalMs}ms` }, 'failed auto compaction');
      return false;
    }
  }
}
