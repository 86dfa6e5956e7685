// The member's raft loop: feeds the pure raft core (src/raft) ticks, peer
// messages and proposals, and carries out each Ready in raft's order.
//
// THE RULE (src/raft/types.ts): a ready's messages go out only once its writes,
// and every earlier ready's, are durable. The WAL worker tells us so through
// barriers: each ready that writes ends with a barrier record carrying its
// sequence number, and the WAL reports the highest barrier it has synced.
// Two exceptions, both safe:
// - a leader's appends and heartbeats go out at once (etcd-io/raft, thesis
//   10.2.1): they promise nothing about our disk, and the leader counts its own
//   entries toward commit only once they are durable (raft.persisted);
// - a HardState whose term and vote are unchanged (a new commit index only) is
//   written lazily: it rides with the next fsync instead of costing its own.
// A ready that restores a snapshot holds its messages, and every later
// ready's, until the install is done (snapshotDone).

import type { Logger } from '../common/log.js';
import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import { RaftNode, persistPoint } from '../raft/node.js';
import { EntryType, MessageType, NotLeaderError, type Entry, type Message, type ReadState } from '../raft/types.js';
import { RecordType } from '../storage/wal/record.js';
import { encodeHardState } from '../storage/wal/recover.js';
import { WAL_BARRIER, WAL_LAZY, walRecordHeader } from '../workers/protocol/wal-ring.js';
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
}

interface Unsynced { seq: number; point: { index: number; term: number } | null; messages: Message[]; awaitingSnapshot: boolean }

export class RaftLoop {
  /** Readies whose writes are on their way to the WAL; their messages wait until they are durable. */
  private unsynced: Unsynced[] = [];
  /** The highest WAL barrier reported durable. */
  private durableBarrier = 0;
  private readySeq = 0;
  private readyScheduled = false;
  private lastHardState: { term: number; vote: bigint } | null = null;
  private tickTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly raft: RaftNode,
    private readonly walOut: Outbox,
    private readonly hooks: RaftLoopHooks,
    private readonly log: Logger,
  ) {}

  startTicking(intervalMs: number): void {
    this.tickTimer = setInterval(() => { this.raft.tick(); this.processReady(); }, intervalMs);
  }

  stop(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
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

  /** A message from a peer. A forwarded proposal goes into the leader's log as it is, or on to the leader we know. */
  step(m: Message): void {
    if (m.type === MessageType.MsgProp) {
      if (this.raft.isLeader()) {
        for (const e of m.entries) {
          try { this.raft.propose(e.data); } catch (err) { if (!(err instanceof NotLeaderError)) throw err; }
        }
      } else if (this.raft.lead !== 0n && this.raft.lead !== m.from) {
        this.hooks.send([{ ...m, from: this.raft.id, to: this.raft.lead }]);
      } else {
        this.log.debug({ from: m.from }, 'dropped a forwarded proposal: no leader to pass it to (the client times out and retries)');
      }
    } else {
      this.raft.step(m);
    }
    this.schedule();
  }

  processReady(): void {
    if (!this.raft.hasReady()) return;
    const rd = this.raft.ready();
    let awaitingSnapshot = false;
    if (rd.snapshot) {
      awaitingSnapshot = true;
      this.hooks.restoreSnapshot(rd.snapshot.index);
    }
    const toWal: Uint8Array[][] = rd.entries.map((e) => [
      walRecordHeader(e.type === EntryType.ConfChange ? RecordType.ConfChangeEntry : RecordType.Entry, e.index, e.term), e.data,
    ]);
    let lazy = true;
    if (rd.hardState) {
      const hs = rd.hardState;
      lazy = this.lastHardState !== null && this.lastHardState.term === hs.term && this.lastHardState.vote === hs.vote;
      this.lastHardState = { term: hs.term, vote: hs.vote };
      toWal.push([walRecordHeader(RecordType.HardState | (lazy ? WAL_LAZY : 0), 0, hs.term),
        encodeHardState({ term: hs.term, vote: Number(hs.vote), commit: hs.commit })]);
    }
    let messages = rd.messages;
    if (messages.length > 0 && this.raft.isLeader()) {
      const early: Message[] = [];
      const late: Message[] = [];
      for (const m of messages) (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat ? early : late).push(m);
      if (early.length > 0 && !(FAILPOINTS_ARMED && failpoint('raftBeforeLeaderSend'))) this.hooks.send(early);
      messages = late;
    }
    if (rd.entries.length > 0 || !lazy || awaitingSnapshot) {
      const seq = ++this.readySeq;
      toWal.push([walRecordHeader(WAL_BARRIER, seq, 0)]);
      this.unsynced.push({ seq, point: persistPoint(rd), messages, awaitingSnapshot });
    } else if (messages.length > 0) {
      const last = this.unsynced[this.unsynced.length - 1];
      if (last) last.messages.push(...messages);
      else this.hooks.send(messages);
    }
    if (toWal.length > 0) this.walOut.sendAll(toWal);
    if (rd.committedEntries.length > 0) this.hooks.committed(rd.committedEntries);
    if (rd.readStates.length > 0) this.hooks.readStates(rd.readStates);
    this.hooks.stateChanged();
  }

  /** The WAL synced entries up to lastIndex and readies up to barrier (-1: none reported). */
  onDurable(lastIndex: number, barrier: number): void {
    if (lastIndex >= 0) this.hooks.durableTo(lastIndex);
    if (barrier >= 0) {
      this.durableBarrier = Math.max(this.durableBarrier, barrier);
      this.releaseDurable();
    }
  }

  /** The snapshot raft restored is installed: held readies may go. */
  snapshotDone(): void {
    for (const u of this.unsynced) u.awaitingSnapshot = false;
    this.releaseDurable();
  }

  /** Readies whose writes are durable (and whose snapshot, if any, is installed): tell raft, send their messages. */
  private releaseDurable(): void {
    const out: Message[] = [];
    while (this.unsynced.length > 0 && this.unsynced[0]!.seq <= this.durableBarrier && !this.unsynced[0]!.awaitingSnapshot) {
      const r = this.unsynced.shift()!;
      if (r.point) this.raft.persisted(r.point.index, r.point.term);
      for (const m of r.messages) out.push(m);
    }
    if (out.length > 0 && !(FAILPOINTS_ARMED && failpoint('raftBeforeSend'))) this.hooks.send(out);
    this.processReady();
  }
}
