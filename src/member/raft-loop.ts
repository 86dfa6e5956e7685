// The member's raft loop: the I/O side of the ReadyDriver (src/raft/driver.ts).
// The driver decides the persist/send ordering and where a proposal goes (the
// simulator runs the same driver); this room feeds it ticks and peer
// messages, writes what it persists to the WAL worker as records ending in a
// barrier, tells it which barrier the WAL has synced, and hands committed
// entries, read states and snapshots on to the rooms that own them.

import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import type { RaftNode } from '../raft/node.js';
import { ReadyDriver, type DropReason, type PersistWrites, type ReadySink } from '../raft/driver.js';
import { EntryType, type Entry, type Message, type ReadState, type SnapshotMeta } from '../raft/types.js';
import { RecordType } from '../storage/wal/record.js';
import { encodeHardState } from '../storage/wal/recover.js';
import { WAL_BARRIER, WAL_DIRECT, WAL_LAZY, walRecordHeader } from '../workers/protocol/wal-ring.js';
import type { Outbox } from '../workers/outbox.js';

/** What the loop hands on; the member wires each to the room that owns it. */
export interface RaftLoopHooks {
  send(msgs: Message[]): void;
  /** Committed entries, in log order, for the apply worker. */
  committed(entries: Entry[]): void;
  readStates(states: ReadState[]): void;
  /** Raft restored a snapshot at index: fetch and install it, then call snapshotDone(). */
  restoreSnapshot(index: number): void;
  /** Term or leader may have changed. */
  stateChanged(): void;
  /** Entries up to index are durable in the WAL (for the stage histograms). */
  durableTo(index: number): void;
  /** Whether an entry about to be written goes from the WAL straight to the apply worker (direct-apply.ts). */
  direct(e: Entry): boolean;
}

export class RaftLoop {
  private readonly driver: ReadyDriver;
  private readyScheduled = false;
  private tickTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly raft: RaftNode,
    private readonly walOut: Outbox,
    private readonly hooks: RaftLoopHooks,
    private readonly log: Logger,
  ) {
    this.driver = new ReadyDriver(raft, this.sink());
  }

  /**
   * Ticks raft every intervalMs on a fixed schedule, as Go's time.Ticker does for etcd.
   * setInterval re-arms from when its callback ran, so every late tick (a busy event
   * loop) would push all later ones back and stretch the election timeout. A stall
   * longer than a tick skips the missed ticks (the ticker drops them too).
   */
  startTicking(intervalMs: number): void {
    let due = performance.now() + intervalMs;
    const fire = (): void => {
      this.raft.tick();
      this.processReady();
      const now = performance.now();
      due += intervalMs;
      if (due <= now) due += Math.ceil((now - due) / intervalMs) * intervalMs;
      if (this.tickTimer !== null) this.tickTimer = setTimeout(fire, due - now);
    };
    this.tickTimer = setTimeout(fire, intervalMs);
  }

  stop(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
  }

  schedule(): void {
    if (this.readyScheduled) return;
    this.readyScheduled = true;
    // setImmediate runs after the poll phase, so every request that arrived in
    // this turn of the event loop goes to the WAL in one batch (one fsync).
    setImmediate(() => {
      this.readyScheduled = false;
      this.processReady();
    });
  }

  /**
   * Proposes entry data: its index on the leader, null when forwarded to the leader.
   * Throws NotLeaderError with no leader known, ProposalDroppedError during a leader transfer.
   */
  propose(data: Uint8Array): number | null {
    const index = this.driver.propose(data);
    if (index !== null) this.schedule();
    return index;
  }

  /** A message from a peer (a forwarded proposal included: the driver appends it or passes it on). */
  step(m: Message): void {
    this.driver.step(m);
    this.schedule();
  }

  /** The snapshot sent to `id` was delivered (ok) or not: the leader probes it again. */
  reportSnapshot(id: bigint, ok: boolean): void {
    this.driver.reportSnapshot(id, ok);
    this.schedule();
  }

  /** The transport lost `id`: the leader stops pipelining to it. */
  reportUnreachable(id: bigint): void {
    this.driver.reportUnreachable(id);
    this.schedule();
  }

  /**
   * The transport has evidence `id`'s process is gone (its peer port refuses us, its
   * stream to us ended). If it was our leader, raft campaigns within a few ticks.
   */
  reportPeerGone(id: bigint): void {
    if (!this.driver.reportLeaderGone(id)) return;
    this.log.info({ leader: formatId(id) }, 'the leader\'s peer port refuses connections and its stream ended: campaigning soon');
    this.hooks.stateChanged();
    this.schedule();
  }

  processReady(): void {
    if (!this.raft.hasReady()) return;
    this.driver.processReady();
    this.hooks.stateChanged();
  }

  /** The WAL synced entries up to lastIndex and readies up to barrier (-1: none reported). */
  onDurable(lastIndex: number, barrier: number): void {
    if (lastIndex >= 0) this.hooks.durableTo(lastIndex);
    if (barrier >= 0) {
      this.driver.onDurable(barrier);
      this.hooks.stateChanged();
    }
  }

  /** The snapshot raft restored is installed: held readies may go. */
  snapshotDone(): void {
    this.driver.onSnapshotInstalled();
    this.hooks.stateChanged();
  }

  private sink(): ReadySink {
    return {
      persist: (w, barrierSeq) => this.persist(w, barrierSeq),
      send: (msgs, early) => {
        if (FAILPOINTS_ARMED && this.sendFailpoint(early)) return;
        this.hooks.send(msgs);
      },
      apply: (committed) => this.hooks.committed(committed),
      readStates: (rs) => this.hooks.readStates(rs),
      restoreSnapshot: (snap: SnapshotMeta) => this.hooks.restoreSnapshot(snap.index),
      proposalDropped: (m: Message, reason: DropReason) =>
        this.log.debug({ from: m.from, reason }, 'dropped a forwarded proposal (the client times out and retries)'),
    };
  }

  /** Crash points: before a leader's early sends, before messages held for durability leave. */
  private sendFailpoint(early: boolean): boolean {
    if (!early) return failpoint('raftBeforeSend');
    return this.raft.isLeader() && failpoint('raftBeforeLeaderSend');
  }

  /**
   * One ready's writes as WAL records: entries, the hard state (lazy or not), then its barrier.
   * A restored snapshot writes nothing here: its state goes to RocksDB when it is installed.
   */
  private persist(w: PersistWrites, barrierSeq: number | null): void {
    const hs = w.hardState;
    const hsType = RecordType.HardState | (w.lazy ? WAL_LAZY : 0);
    const hsBytes = hs === null ? null : encodeHardState({ term: hs.term, vote: hs.vote, commit: hs.commit });
    if (w.entries.length === 0 && barrierSeq === null) {
      if (hs === null || hsBytes === null) return;
      const record = [walRecordHeader(hsType, 0, hs.term), hsBytes];
      // A lone commit-index HardState waits in the ring for the next batch's wake-up: the WAL
      // worker writes it unsynced anyway, and waking it for that cost a wake per commit.
      if (w.lazy) this.walOut.sendQuiet([record]);
      else this.walOut.sendAll([record]);
      return;
    }
    const out = this.walOut;
    out.batch(() => {
      for (const e of w.entries) {
        const type = (e.type === EntryType.ConfChange ? RecordType.ConfChangeEntry : RecordType.Entry) | (this.hooks.direct(e) ? WAL_DIRECT : 0);
        out.sendOp(type, e.index, e.term, e.data);
      }
      if (hs !== null && hsBytes !== null) out.sendOp(hsType, 0, hs.term, hsBytes);
      if (barrierSeq !== null) out.sendOp(WAL_BARRIER, barrierSeq, 0);
    });
  }
}
