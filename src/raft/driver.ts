// The Ready driver: the one place that decides, for every ready the raft core hands
// out, what is written to storage, when each message may leave, when raft hears that
// its writes are durable, and where a proposal goes. The member (with its WAL worker
// and peer transport) and the simulator (with its modelled WAL and network) both run
// it, so the seeded simulations exercise the ordering that runs in production.
// Pure and deterministic: no I/O, no clock; the sink does the I/O.
//
// THE RULE (persist before you promise):
//  1. A ready's messages leave only once its writes (entries, hard state, snapshot),
//     and every earlier ready's, are durable: they include votes and append
//     acknowledgements that promise exactly that. Storage reports durability by
//     barrier (onDurable(seq): everything handed to persist() up to and including the
//     write carrying barrier `seq` is durable); the driver then tells raft
//     (persisted(point), in ready order) and sends the messages held for it.
//  2. Except a leader's MsgApp and MsgHeartbeat (raft thesis 10.2.1): they promise
//     nothing about the leader's disk, and the leader counts its own entries toward
//     commit only once persisted() says they are durable. They go at once, so the
//     leader's fsync overlaps the followers' instead of adding to it.
//  3. Lazy hard state: a hard state that changed only its commit index needs no fsync
//     of its own (a commit index lost in a crash is recomputed from the log). A ready
//     with no entries, no snapshot and only such a hard state gets no barrier; its
//     messages join the last ready still waiting for its barrier, or go at once if
//     none waits (everything they could promise is durable already).
//  4. Snapshot hold: a ready with a snapshot keeps its messages (and raft does not
//     hear it is persisted) until the application reports the snapshot installed
//     (onSnapshotInstalled); since readies are released in order, every later ready
//     waits too. Its acknowledgement to the leader must mean the state is really here.
//  5. Proposal forwarding: a follower forwards a proposal to the leader it knows as a
//     MsgProp (sent at once: it promises nothing); a leader receiving MsgProp appends
//     its entries; a non-leader receiving MsgProp passes it on if it knows a leader
//     other than the sender, otherwise drops it (the client times out and retries).
import { RaftNode, NONE, persistPoint } from './node.js';
import {
  MessageType, NotLeaderError, ProposalDroppedError,
  type Entry, type HardState, type Message, type ReadState, type Ready, type SnapshotMeta,
} from './types.js';

/** What one ready asks storage to write, in this order: entries, then the hard state. */
export interface PersistWrites {
  entries: Entry[];
  hardState: HardState | null;
  /**
   * hardState kept term and vote (only the commit index moved): it needs no fsync of its
   * own and may ride with the next sync (the WAL's lazy record). True when hardState is null.
   */
  lazy: boolean;
  /** A snapshot raft restored (its metadata); the sink's restoreSnapshot() fetches and installs the data. */
  snapshot: SnapshotMeta | null;
}

/**
 * Why a proposal that reached this node was not appended anywhere: no-leader (none known,
 * or the sender is the leader we know: passing it back would loop), not-leader (lost the
 * leadership meanwhile), transfer (a leader transfer is in progress).
 */
export type DropReason = 'no-leader' | 'not-leader' | 'transfer';

export interface ReadySink {
  /**
   * Hands writes to storage, after every earlier persist(). barrierSeq non-null: call
   * onDurable(barrierSeq) (or any later seq) once these writes and all earlier ones are
   * durable. barrierSeq null: only a lazy hard state, which may wait for a later sync.
   */
  persist(writes: PersistWrites, barrierSeq: number | null): void;
  /**
   * Sends messages to peers (best effort: the network may lose them). early: they leave
   * before their ready is durable (a leader's appends and heartbeats, forwarded proposals).
   */
  send(msgs: Message[], early: boolean): void;
  /** Committed entries to apply, in order (the application calls raft.appliedTo when done). */
  apply(committed: Entry[]): void;
  /** Answers to ReadIndex requests made on this node. */
  readStates(rs: ReadState[]): void;
  /** Raft restored a snapshot: fetch and install its data, then call onSnapshotInstalled(). */
  restoreSnapshot(snap: SnapshotMeta): void;
  /** A forwarded proposal (MsgProp) this node could neither append nor pass on. */
  proposalDropped?(m: Message, reason: DropReason): void;
}

/** A ready whose writes are on their way to storage; its messages wait for its barrier. */
interface Unsynced {
  seq: number;
  point: { index: number; term: number } | null;
  messages: Message[];
  awaitingSnapshot: boolean;
}

/** Bound on readies processed in one processReady() call: more means a loop in the core or the sink. */
const MAX_READIES_PER_CALL = 1000;

export class ReadyDriver {
  /** Readies handed to storage and not yet released, oldest first. */
  private readonly unsynced: Unsynced[] = [];
  private readySeq = 0;
  private durableBarrier = 0;
  /** Term and vote last handed to storage: a hard state that keeps them is lazy. Null: nothing written yet. */
  private lastHardState: { term: number; vote: bigint } | null = null;

  constructor(readonly raft: RaftNode, private readonly sink: ReadySink) {}

  /** Readies waiting for their barrier or a snapshot install (for status and tests). */
  get pendingReadies(): number { return this.unsynced.length; }

  /** The highest barrier storage reported durable. */
  get durableSeq(): number { return this.durableBarrier; }

  /** Handles every ready the core has (each ready's work is handed to the sink once). */
  processReady(): void {
    for (let n = 0; this.raft.hasReady(); n++) {
      if (n >= MAX_READIES_PER_CALL) throw new Error(`raft: more than ${MAX_READIES_PER_CALL} readies in one call`);
      this.handle(this.raft.ready());
    }
  }

  /** Storage made everything up to the write carrying barrier `seq` durable. */
  onDurable(seq: number): void {
    if (seq > this.durableBarrier) this.durableBarrier = seq;
    this.release();
  }

  /** The application installed the latest snapshot raft restored: readies held behind it may go. */
  onSnapshotInstalled(): void {
    for (const u of this.unsynced) u.awaitingSnapshot = false;
    this.release();
  }

  /**
   * Proposes `data`. On the leader: appends it and returns its index. On a follower
   * that knows a leader: forwards it as a MsgProp and returns null (its index is
   * learned when it applies). Throws NotLeaderError with no leader, and the core's
   * ProposalDroppedError during a leader transfer.
   */
  propose(data: Uint8Array): number | null {
    if (this.raft.isLeader()) return this.raft.propose(data);
    if (this.raft.lead === NONE) throw new NotLeaderError('no leader');
    this.sink.send([proposalMessage(this.raft.id, this.raft.lead, data)], true);
    return null;
  }

  /** A raft message from a peer (MsgProp included). Call processReady() afterwards (the caller may batch). */
  step(m: Message): void {
    if (m.type !== MessageType.MsgProp) {
      this.raft.step(m);
      return;
    }
    if (this.raft.isLeader()) {
      for (const e of m.entries) {
        try {
          this.raft.propose(e.data);
        } catch (err) {
          if (err instanceof NotLeaderError) this.dropped(m, 'not-leader');
          else if (err instanceof ProposalDroppedError) this.dropped(m, 'transfer');
          else throw err;
        }
      }
    } else if (this.raft.lead !== NONE && this.raft.lead !== m.from) {
      this.sink.send([{ ...m, from: this.raft.id, to: this.raft.lead }], true);
    } else {
      this.dropped(m, 'no-leader');
    }
  }

  /** The transport delivered (ok) or failed to deliver the snapshot to `id`: the leader probes it again. */
  reportSnapshot(id: bigint, ok: boolean): void { this.raft.reportSnapshot(id, ok); }

  /** The transport lost `id`: stop pipelining appends to it. */
  reportUnreachable(id: bigint): void { this.raft.reportUnreachable(id); }

  /** The transport has evidence `id`'s process is gone: a follower led by it campaigns soon (RaftNode.reportLeaderGone). */
  reportLeaderGone(id: bigint): boolean { return this.raft.reportLeaderGone(id); }

  /**
   * Whether a message may leave before its ready is durable (rule 2). A hook so a test
   * can inject an ordering bug and show the simulator catches it.
   */
  protected sendsEarly(m: Message): boolean {
    return this.raft.isLeader() && (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat);
  }

  private handle(rd: Ready): void {
    const awaitingSnapshot = rd.snapshot !== null;
    if (rd.snapshot) this.sink.restoreSnapshot(rd.snapshot);
    let lazy = true;
    if (rd.hardState) {
      const hs = rd.hardState;
      const last = this.lastHardState;
      lazy = last !== null && last.term === hs.term && last.vote === hs.vote;
      this.lastHardState = { term: hs.term, vote: hs.vote };
    }
    let messages = rd.messages;
    if (messages.length > 0) {
      const early: Message[] = [];
      const late: Message[] = [];
      for (const m of messages) (this.sendsEarly(m) ? early : late).push(m);
      if (early.length > 0) this.sink.send(early, true);
      messages = late;
    }
    let barrier: number | null = null;
    if (rd.entries.length > 0 || !lazy || awaitingSnapshot) {
      barrier = ++this.readySeq;
      this.unsynced.push({ seq: barrier, point: persistPoint(rd), messages, awaitingSnapshot });
    } else if (messages.length > 0) {
      const last = this.unsynced[this.unsynced.length - 1];
      if (last) last.messages.push(...messages);
      else this.sink.send(messages, false);
    }
    if (rd.entries.length > 0 || rd.hardState !== null || barrier !== null) {
      this.sink.persist({ entries: rd.entries, hardState: rd.hardState, lazy, snapshot: rd.snapshot }, barrier);
    }
    if (rd.committedEntries.length > 0) this.sink.apply(rd.committedEntries);
    if (rd.readStates.length > 0) this.sink.readStates(rd.readStates);
  }

  /** Releases, in order, the readies that are durable and not held by a snapshot install; then runs the core again. */
  private release(): void {
    const out: Message[] = [];
    while (this.unsynced.length > 0) {
      const u = this.unsynced[0]!;
      if (u.seq > this.durableBarrier || u.awaitingSnapshot) break;
      this.unsynced.shift();
      if (u.point) this.raft.persisted(u.point.index, u.point.term);
      for (const m of u.messages) out.push(m);
    }
    if (out.length > 0) this.sink.send(out, false);
    this.processReady();
  }

  private dropped(m: Message, reason: DropReason): void {
    this.sink.proposalDropped?.(m, reason);
  }
}

/** A proposal forwarded to the leader (raft's MsgProp); the entry's index and term are the leader's to assign. */
export function proposalMessage(from: bigint, to: bigint, data: Uint8Array): Message {
  return {
    type: MessageType.MsgProp, from, to, term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0,
    entries: [{ index: 0, term: 0, data }],
  };
}
