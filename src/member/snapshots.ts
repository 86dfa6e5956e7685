// Snapshots, both sides. etcd's --snapshot-count cuts the in-memory raft log;
// a follower behind the cut gets a snapshot: the leader makes a file of its
// state on demand (in the one-off pool) and serves it on its peer port; the
// follower fetches it, has the apply worker check and install it, and only
// then lets raft go on (RaftLoop.snapshotDone).

import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import { formatId } from '../common/ids.js';
import type { RaftNode } from '../raft/node.js';
import { ProgressState } from '../raft/progress.js';
import type { Outbox } from '../workers/outbox.js';
import type { OneOffPool } from '../workers/pool.js';
import { encodeInstallSnapshot } from '../workers/protocol/apply-ring.js';
import type { SnapshotInstalled } from '../workers/protocol/result-ring.js';
import type { Membership } from './membership.js';
import { SNAPSHOT_MEMBER_HEADER, type SnapshotFile } from './peer-http.js';
import { peerGet } from '../tls/peer-get.js';
import type { TlsSide } from '../tls/side.js';

const FETCH_TIMEOUT_MS = 10 * 60_000;
// A follower sent a snapshot fetches and installs it, then asks for the entries after
// the snapshot's index: until it has them (its match reaches that index), the leader
// does not compact its log (etcd pauses compaction while a snapshot is in flight).
// Without the pause a busy leader cut those entries during every install and the
// follower fetched snapshot after snapshot, never catching up. Bounded: a follower
// that has not caught up after AWAIT_MAX_MS is no longer waited for, and the
// in-memory log never holds more than PAUSE_CAP_FACTOR times its usual amount.
const AWAIT_MAX_MS = 5 * 60_000;
const PAUSE_CAP_FACTOR = 4;
const PAUSE_CAP_MIN = 100_000;
/**
 * The in-memory log is also cut when its entries hold more than this many bytes,
 * keeping the last LOG_BYTES_KEEP of them for slow followers. etcd bounds it by
 * count only: 10k entries of 100-put txns held ~350 MB (of a 1.4 GB RSS at 1M keys).
 */
const LOG_BYTES_MAX = 64 * 1024 * 1024;
const LOG_BYTES_KEEP = 32 * 1024 * 1024;
const RETRY_MS = 1000;

export interface SnapshotDeps {
  memberId: bigint;
  memberDir: string;
  dbHandle: bigint;
  raft: RaftNode;
  applyOut: Outbox;
  pool: OneOffPool;
  /** The peer URL of a member (the leader, to fetch from). */
  peerUrl: (id: bigint) => string | undefined;
  appliedIndex: () => number;
  cfg: Config;
  log: Logger;
  /** Peer TLS for https:// peer URLs. */
  peerTls: TlsSide | null;
}

export interface InstallHooks {
  /** The state machine was replaced: leases, membership and the applied index follow it. */
  installed(r: SnapshotInstalled, members: Membership | null): void;
  /** raft may go on (held messages go out). */
  done(): void;
}

export class SnapshotCoordinator {
  private lastLogCompaction = 0;
  private serving = 0;
  /** Leader: followers sent a snapshot that have not caught up past it yet (index, since when). */
  private readonly awaiting = new Map<bigint, { index: number; since: number }>();
  private seq = 0;
  private wanted = 0;
  private receiving = false;
  private installWaiter: ((r: SnapshotInstalled) => void) | null = null;
  private stopped = false;

  constructor(private readonly d: SnapshotDeps, private readonly hooks: InstallHooks, private readonly parseMembers: (bytes: Uint8Array) => Membership) {}

  /**
   * etcd's --snapshot-count: every that many applied entries the in-memory raft
   * log is cut, keeping the last catch-up entries for slow followers; one further
   * behind gets the state as a snapshot. (The state itself is always in RocksDB,
   * so there is nothing to write: a snapshot is made when a follower asks.)
   */
  maybeCompactLog(): void {
    const { raft, cfg } = this.d;
    const applied = raft.appliedIndex();
    const overBytes = raft.logBytes() > LOG_BYTES_MAX;
    if (applied - this.lastLogCompaction <= cfg.snapshotCount && !overBytes) return;
    let to = applied - cfg.snapshotCatchupEntries;
    // Big entries (txns of many puts) bound the log by bytes too: the catch-up keeps LOG_BYTES_KEEP.
    if (overBytes) to = Math.max(to, Math.min(applied, raft.indexKeepingBytes(LOG_BYTES_KEEP)));
    if (this.pausedForFollower(to - raft.firstIndex())) return;
    this.lastLogCompaction = applied;
    if (to > raft.firstIndex()) {
      raft.compact(to);
      this.d.log.info({ compactedTo: to, applied }, 'compacted the raft log');
    }
  }

  /** A follower is fetching or installing a snapshot and needs the entries after it; unless the log grew too long. */
  private pausedForFollower(wouldDrop: number): boolean {
    const { raft, cfg } = this.d;
    this.trackAwaiting();
    if (this.serving === 0 && this.awaiting.size === 0) return false;
    const cap = Math.max(PAUSE_CAP_MIN, PAUSE_CAP_FACTOR * (cfg.snapshotCount + cfg.snapshotCatchupEntries));
    if (wouldDrop + cfg.snapshotCatchupEntries <= cap && raft.logBytes() <= PAUSE_CAP_FACTOR * LOG_BYTES_MAX) return true;
    this.d.log.warn({ retained: wouldDrop + cfg.snapshotCatchupEntries }, 'compacting the raft log although a follower is still catching up from a snapshot');
    return false;
  }

  /** Notes followers raft is sending a snapshot; forgets those that caught up past it (or left, or took too long). */
  private trackAwaiting(): void {
    const { raft, memberId } = this.d;
    if (!raft.isLeader()) { this.awaiting.clear(); return; }
    const now = performance.now();
    const { voters, learners } = raft.conf();
    for (const id of [...voters, ...learners]) {
      const pr = id === memberId ? undefined : raft.progress(id);
      if (pr && pr.state === ProgressState.Snapshot && !this.awaiting.has(id)) this.awaiting.set(id, { index: pr.pendingSnapshot, since: now });
    }
    for (const [id, w] of this.awaiting) {
      const pr = raft.progress(id);
      if (!pr || pr.match >= w.index) this.awaiting.delete(id);
      else if (now - w.since > AWAIT_MAX_MS) {
        this.awaiting.delete(id);
        this.d.log.warn({ member: formatId(id), index: w.index }, 'a follower has not caught up from its snapshot; raft log compaction no longer waits for it');
      }
    }
  }

  /** Leader side: a snapshot file of the current state for a follower (GET /etsd/snapshot on the peer port). */
  async open(): Promise<SnapshotFile | null> {
    if (!this.d.raft.isLeader() || this.stopped) return null;
    const dir = join(this.d.memberDir, 'snap');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `out-${process.pid}-${++this.seq}.snap`);
    const t0 = performance.now();
    if (FAILPOINTS_ARMED && failpoint('snapshotBeforeSave')) throw new Error('failpoint snapshotBeforeSave: injected error');
    this.serving++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.serving--;
      rmSync(path, { force: true });
    };
    try {
      const info = await this.d.pool.run({ kind: 'snapshot', handle: this.d.dbHandle, path });
      if (FAILPOINTS_ARMED && failpoint('snapshotAfterSave')) throw new Error('failpoint snapshotAfterSave: injected error');
      this.d.log.info({ index: info.index, bytes: info.bytes, pairs: info.pairs, ms: Math.round(performance.now() - t0) }, 'made a snapshot for a follower');
      return { path, index: info.index, bytes: info.bytes, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * Follower side: raft restored a snapshot at `index`; fetch the leader's state,
   * have the apply worker check and install it, then let raft go on. Retried
   * (from whoever leads) until it succeeds.
   */
  receive(index: number): void {
    this.wanted = Math.max(this.wanted, index);
    if (this.receiving) return; // the running transfer fetches again if it ends below this
    this.receiving = true;
    const run = (): void => {
      if (this.stopped) return;
      this.fetchAndInstall(this.wanted).then(() => {
        if (this.d.appliedIndex() < this.wanted) return run();
        this.receiving = false;
        this.hooks.done();
      }, (err: unknown) => {
        this.d.log.warn({ err, index: this.wanted }, 'receiving a snapshot failed; retrying');
        setTimeout(run, RETRY_MS);
      });
    };
    run();
  }

  /** The apply worker's answer to an install. */
  onInstalled(r: SnapshotInstalled): void {
    const done = this.installWaiter;
    this.installWaiter = null;
    if (done) done(r);
    else this.d.log.error({ index: r.appliedIndex }, 'unexpected snapshot install result');
  }

  stop(): void { this.stopped = true; }

  private async fetchAndInstall(index: number): Promise<void> {
    const lead = this.d.raft.lead;
    const url = lead !== 0n && lead !== this.d.memberId ? this.d.peerUrl(lead) : undefined;
    if (!url) throw new Error('no leader to fetch the snapshot from');
    const dir = join(this.d.memberDir, 'snap');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'incoming.snap');
    const t0 = performance.now();
    const res = await peerGet(new URL('/etsd/snapshot', url), this.d.peerTls, FETCH_TIMEOUT_MS, { [SNAPSHOT_MEMBER_HEADER]: formatId(this.d.memberId) });
    if (res.statusCode !== 200) { res.resume(); throw new Error(`snapshot fetch from ${url}: HTTP ${res.statusCode}`); }
    const at = Number(res.headers['x-etsd-snapshot-index']);
    if (!(at >= index)) { res.destroy(); throw new Error(`the leader's snapshot is at ${at}, raft needs ${index}`); }
    await pipeline(res, createWriteStream(path));
    if (FAILPOINTS_ARMED && failpoint('snapshotBeforeInstall')) throw new Error('failpoint snapshotBeforeInstall: injected error');
    const r = await new Promise<SnapshotInstalled>((resolve) => {
      this.installWaiter = resolve;
      this.d.applyOut.send(encodeInstallSnapshot(path));
    });
    rmSync(path, { force: true });
    if (!r.ok) throw new Error(`snapshot install failed: ${r.error ?? 'unknown error'}`);
    this.hooks.installed(r, r.members !== null ? this.parseMembers(r.members) : null);
    this.d.log.info({ index: r.appliedIndex, revision: r.rev, ms: Math.round(performance.now() - t0) }, 'installed a snapshot from the leader');
  }
}
