// The raft core, in the style of etcd-io/raft: a deterministic state machine with
// no I/O. Inputs: step(message), tick(), propose(), persisted() acknowledgements
// from storage, appliedTo(). Output: ready() (hard state and entries to persist,
// messages to send AFTER persisting, committed entries to apply, a snapshot to
// restore, read states). Time is ticks; randomness is a seeded generator.
import { Inflights, Progress, ProgressState } from './progress.js';
import { makeRng } from './rng.js';
import { RaftLog } from './log.js';
import type { NodeOptions } from './options.js';
import { ReadOnly } from './read-only.js';
import { encodeConfChange } from './confchange.js';
import {
  ConfChangeType, EntryType, MessageType, NotLeaderError, ProposalDroppedError, Role,
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type ReadCtx,
  type ReadState, type Ready, type SnapshotMeta,
} from './types.js';

export { Inflights, Progress, ProgressState };
export type { NodeOptions };

/** No node / no leader. Node ids are non-zero. */
export const NONE = 0n;

/** A write handed to storage and not yet acknowledged: its last (index, term) and how far it still agrees with our log. */
interface PendingWrite { index: number; term: number; agreeUpTo: number }

const enum CampaignKind { PreElection, Election, Transfer }
const enum VoteResult { Pending, Won, Lost }


/** The (index, term) to pass to persisted() once the ready's writes are durable; null if it wrote no entries or snapshot. */
export function persistPoint(rd: Ready): { index: number; term: number } | null {
  const last = rd.entries[rd.entries.length - 1];
  if (last) return { index: last.index, term: last.term };
  if (rd.snapshot) return { index: rd.snapshot.index, term: rd.snapshot.term };
  return null;
}

export class RaftNode {
  readonly id: bigint;
  role: Role = Role.Follower;
  term: number;
  vote: bigint;
  commit: number;
  /** The leader we know of in this term (NONE if none). */
  lead: bigint = NONE;

  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;
  private readonly retainApplied: number;
  private readonly maxPendingReads: number;
  private readonly rng: () => number;

  private voters = new Set<bigint>();
  private learners = new Set<bigint>();
  private prs = new Map<bigint, Progress>();
  private votes = new Map<bigint, boolean>();

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: bigint = NONE;
  private pendingConfIndex = 0;

  /** The log base and the entries after it. */
  private readonly log: RaftLog;
  /** A restored snapshot not yet handed out in a ready. */
  private pendingSnapshot: SnapshotMeta | null = null;

  /** Highest index handed to storage, and the highest index of our log known durable. */
  private sentToStorage: number;
  private durable: number;
  private writes: PendingWrite[] = [];
  /** Highest index handed out for apply; highest the application said it applied. */
  private appliedOut: number;
  private applied: number;
  /** Indexes of conf change entries handed out and not yet passed to applyConfChange. */
  private ccQueue: number[] = [];
  private lastConfApplied = 0;
  private prevHardState: HardState;
  /** Index of the first entry of the current leader term (its empty entry). */
  private termStart = 0;
  /** Leader: appends are waiting to be sent (batched until ready()). */
  private sendPending = false;

  private readonly readOnly: ReadOnly;
  /** ReadIndex requests that wait for an entry of this term to commit. */
  private pendingReadMsgs: Message[] = [];

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];

  constructor(o: NodeOptions) {
    if (o.id === NONE) throw new Error('node id must be non-zero');
    this.id = o.id;
    this.electionTick = o.electionTick ?? 10;
    this.heartbeatTick = o.heartbeatTick ?? 1;
    if (!(this.heartbeatTick >= 1 && this.electionTick > this.heartbeatTick)) throw new Error('need electionTick > heartbeatTick >= 1');
    this.preVote = o.preVote ?? true;
    this.checkQuorum = o.checkQuorum ?? true;
    this.maxSizePerMsg = o.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflight = o.maxInflightMsgs ?? 256;
    this.maxInflightBytes = o.maxInflightBytes ?? 0;
    this.retainApplied = o.retainApplied ?? 0;
    this.maxPendingReads = o.maxPendingReads ?? 4096;
    this.readOnly = new ReadOnly(this.maxPendingReads);
    this.rng = o.rng ?? makeRng(Number(o.id & 0xffffffffn) ^ 0x5eed);

    const snap: SnapshotMeta = o.snapshot ?? {
      index: o.applied.index, term: o.applied.term, conf: { voters: [...o.voters], learners: [...(o.learners ?? [])] },
    };
    if (o.applied.index < snap.index) throw new Error('applied index is below the log base');
    this.log = new RaftLog(snap, o.entries);
    this.setConf(snap.conf);
    this.term = o.hardState.term;
    this.vote = o.hardState.vote;
    this.commit = Math.max(o.hardState.commit, o.applied.index);
    if (this.commit > this.lastIndex()) throw new Error(`commit ${this.commit} is beyond the last index ${this.lastIndex()}`);
    this.prevHardState = { ...o.hardState };
    const last = this.lastIndex();
    this.sentToStorage = last;
    this.durable = last;
    this.appliedOut = o.applied.index;
    this.applied = o.applied.index;
    this.resetProgress();
    this.resetRandomizedElectionTimeout();
  }

  // ---- log ----

  lastIndex(): number { return this.log.lastIndex(); }

  lastTerm(): number { return this.log.lastTerm(); }

  firstIndex(): number { return this.log.firstIndex(); }
  /** Bytes of entry data the in-memory log holds. */
  logBytes(): number { return this.log.bytes; }
  /** The highest index compacting to which keeps at least `keep` bytes of entries after it. */
  indexKeepingBytes(keep: number): number { return this.log.indexKeepingBytes(keep); }

  /** Term of the entry at index; undefined if compacted away or beyond the log. */
  termAt(index: number): number | undefined { return this.log.termAt(index); }

  /** Entries in [lo, hi] (clamped to the log held in memory). */
  entries(lo: number, hi: number): Entry[] { return this.log.slice(lo, hi); }

  /** The log base: the last compacted entry and the membership at it (what MsgSnap carries). */
  snapshotMeta(): SnapshotMeta {
    return this.log.snapshotMeta();
  }

  /** Highest index of this node's log known to be durable. */
  durableIndex(): number { return this.durable; }

  appliedIndex(): number { return this.applied; }

  isLeader(): boolean { return this.role === Role.Leader; }

  /**
   * A configuration change (or a new leader's first entry, which gates one) is in the
   * log and not yet applied: the quorum may change once it is.
   */
  confChangePending(): boolean { return this.pendingConfIndex > Math.max(this.applied, this.lastConfApplied); }

  conf(): ConfState { return { voters: [...this.voters], learners: [...this.learners] }; }

  /** The leader's view of a follower (for tests and status). */
  progress(id: bigint): Readonly<Progress> | undefined { return this.prs.get(id); }

  private appendEntries(ents: Entry[]): void {
    if (ents.length === 0) return;
    const first = ents[0]!.index;
    if (first <= this.commit) throw new Error(`raft: entry ${first} would overwrite committed index ${this.commit}`);
    if (first > this.lastIndex() + 1) throw new Error(`raft: gap appending ${first} after ${this.lastIndex()}`);
    if (first <= this.lastIndex()) {
      // Replacing a conflicting suffix: storage must overwrite it, and nothing past first-1 is durable any more.
      this.log.truncateFrom(first);
      this.truncatedAfter(first - 1);
    }
    for (const e of ents) this.log.push(e);
  }

  /** Our log no longer agrees with anything storage holds beyond `index`. */
  private truncatedAfter(index: number): void {
    this.sentToStorage = Math.min(this.sentToStorage, index);
    this.durable = Math.min(this.durable, index);
    for (const w of this.writes) w.agreeUpTo = Math.min(w.agreeUpTo, index);
  }

  private commitTo(c: number): void {
    if (c <= this.commit) return;
    if (c > this.lastIndex()) throw new Error(`raft: commit ${c} is beyond the last index ${this.lastIndex()}`);
    this.commit = c;
  }

  // ---- configuration ----

  private setConf(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners.filter((l) => !this.voters.has(l)));
  }

  private promotable(): boolean {
    return this.voters.has(this.id) && this.pendingSnapshot === null && this.durable >= this.log.baseIdx;
  }

  private quorum(): number { return Math.floor(this.voters.size / 2) + 1; }

  private hasUnappliedConfChanges(): boolean {
    const from = Math.max(this.applied, this.lastConfApplied, this.log.baseIdx) + 1;
    for (const e of this.entries(from, this.commit)) if (e.type === EntryType.ConfChange) return true;
    return false;
  }

  /**
   * Applies a committed conf change; call it when applying the ConfChange entry (in
   * order), as etcd-io/raft's ApplyConfChange. Returns the new membership.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const at = this.ccQueue.shift() ?? this.appliedOut;
    this.lastConfApplied = Math.max(this.lastConfApplied, at);
    const id = cc.nodeId;
    switch (cc.type) {
      case ConfChangeType.AddNode:
        this.learners.delete(id);
        this.voters.add(id);
        break;
      case ConfChangeType.AddLearnerNode:
        if (!this.voters.has(id)) this.learners.add(id); // demoting a voter is not supported
        break;
      case ConfChangeType.RemoveNode:
        this.voters.delete(id);
        this.learners.delete(id);
        break;
    }
    for (const m of [...this.voters, ...this.learners]) {
      const pr = this.prs.get(m);
      if (pr) pr.isLearner = this.learners.has(m);
      else {
        const np = this.newProgress(m);
        np.recentActive = true;
        this.prs.set(m, np);
      }
    }
    for (const m of [...this.prs.keys()]) if (!this.voters.has(m) && !this.learners.has(m)) this.prs.delete(m);
    const cs = this.conf();
    this.log.noteConf(at, cs);

    if (this.role === Role.Leader) {
      if (!this.voters.has(this.id)) {
        // Removed (or never a voter): stop leading; the others elect a leader among themselves.
        this.becomeFollower(this.term, NONE);
      } else {
        if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
        if (this.maybeCommit()) this.onCommitAdvanced();
        this.sendPending = true;
      }
    }
    return cs;
  }

  // ---- state transitions ----

  private newProgress(id: bigint): Progress {
    const pr = new Progress(this.lastIndex() + 1, this.learners.has(id), this.maxInflight, this.maxInflightBytes);
    if (id === this.id) pr.match = this.durable;
    return pr;
  }

  private resetProgress(): void {
    this.prs = new Map();
    for (const m of [...this.voters, ...this.learners]) this.prs.set(m, this.newProgress(m));
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTick + Math.floor(this.rng() * this.electionTick);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes.clear();
    this.resetProgress();
    this.pendingConfIndex = 0;
    this.readOnly.clear();
    this.pendingReadMsgs = [];
    this.sendPending = false;
  }

  private becomeFollower(term: number, lead: bigint): void {
    this.reset(term);
    this.lead = lead;
    this.role = Role.Follower;
  }

  private becomePreCandidate(): void {
    if (this.role === Role.Leader) throw new Error('raft: leader cannot become pre-candidate');
    this.votes.clear();
    this.lead = NONE;
    this.role = Role.PreCandidate;
  }

  private becomeCandidate(): void {
    if (this.role === Role.Leader) throw new Error('raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    if (this.role === Role.Follower) throw new Error('raft: follower cannot become leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = Role.Leader;
    const self = this.prs.get(this.id)!;
    self.becomeReplicate();
    self.match = this.durable;
    self.next = this.lastIndex() + 1;
    self.recentActive = true;
    // An empty entry of the new term lets earlier-term entries commit. No conf change may be
    // proposed until it is applied (so the leader has committed an entry of its term first).
    this.termStart = this.appendLocal(new Uint8Array(0), EntryType.Normal);
    this.pendingConfIndex = this.termStart;
  }

  private appendLocal(data: Uint8Array, type: EntryType): number {
    const e: Entry = type === EntryType.Normal
      ? { index: this.lastIndex() + 1, term: this.term, data }
      : { index: this.lastIndex() + 1, term: this.term, data, type };
    this.log.push(e);
    this.sendPending = true;
    // A single voter may commit as soon as it is durable; the commit check runs in persisted().
    return e.index;
  }

  // ---- elections ----

  /**
   * Starts an election now (etcd's Campaign / MsgHup). A leader first steps down, so a
   * single voter re-elects itself at a higher term.
   */
  campaign(): void {
    if (this.role === Role.Leader) this.becomeFollower(this.term, NONE);
    this.hup(CampaignKind.PreElection);
  }

  private hup(kind: CampaignKind): void {
    if (this.role === Role.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    this.campaignAs(kind === CampaignKind.PreElection && !this.preVote ? CampaignKind.Election : kind);
  }

  private campaignAs(kind: CampaignKind): void {
    let type: MessageType;
    let term: number;
    if (kind === CampaignKind.PreElection) {
      this.becomePreCandidate();
      type = MessageType.MsgPreVote;
      term = this.term + 1; // the term we would campaign at; ours stays until the pre-vote wins
    } else {
      this.becomeCandidate();
      type = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      if (kind === CampaignKind.PreElection) this.campaignAs(CampaignKind.Election);
      else this.becomeLeader();
      return;
    }
    for (const v of this.voters) {
      if (v === this.id) continue;
      this.send({
        type, to: v, term, index: this.lastIndex(), logTerm: this.lastTerm(), transfer: kind === CampaignKind.Transfer,
      });
    }
  }

  private poll(id: bigint, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return VoteResult.Won;
    if (no > this.voters.size - q) return VoteResult.Lost;
    return VoteResult.Pending;
  }

  // ---- time ----

  /** One tick of the logical clock. */
  tick(): void {
    if (this.role === Role.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(CampaignKind.PreElection);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const [id, pr] of this.prs) {
      // A snapshot that never got acknowledged (lost, or the follower refused it): probe again.
      if (pr.state === ProgressState.Snapshot && ++pr.snapshotTicks > 2 * this.electionTick && id !== this.id) pr.becomeProbe();
    }
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
      }
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  private quorumActive(): boolean {
    let n = 0;
    for (const v of this.voters) if (v === this.id || this.prs.get(v)?.recentActive) n++;
    return n >= this.quorum();
  }

  // ---- messages ----

  private send(m: Partial<Message> & { type: MessageType; to: bigint }): void {
    this.msgs.push({
      from: this.id, term: this.term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m,
    });
  }

  /** Feeds a message from a peer. */
  step(m: Message): void {
    if (m.term === 0) {
      // Local messages carry no term.
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        // Leader lease: while we hear from a leader, disruptive candidates are ignored.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTick;
        if (!m.transfer && inLease) return;
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change term for a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // The term moves when the pre-vote wins.
      } else if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // A stale leader (e.g. back from a partition): tell it our term so it steps down.
        this.send({ type: MessageType.MsgAppResp, to: m.from });
      } else if (m.type === MessageType.MsgPreVote) {
        this.send({ type: MessageType.MsgPreVoteResp, to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(CampaignKind.PreElection);
        return;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        const respType = m.type === MessageType.MsgVote ? MessageType.MsgVoteResp : MessageType.MsgPreVoteResp;
        const canVote = this.vote === m.from
          || (this.vote === NONE && this.lead === NONE)
          || (m.type === MessageType.MsgPreVote && m.term > this.term);
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.send({ type: respType, to: m.from, term: m.term });
          if (m.type === MessageType.MsgVote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: respType, to: m.from, reject: true });
        }
        return;
      }
    }
    switch (this.role) {
      case Role.Leader: this.stepLeader(m); break;
      case Role.Candidate:
      case Role.PreCandidate: this.stepCandidate(m); break;
      default: this.stepFollower(m); break;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return;
      case MessageType.MsgReadIndex:
        this.leaderReadIndex(m);
        return;
    }
    const pr = this.prs.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.MsgAppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true;
        pr.paused = false;
        // A lost append may have filled the window: free one slot so the follower is probed again.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (m.context === undefined) return;
        const acked = this.readOnly.ack(m.context, m.from);
        if (!acked) return;
        let acks = 0;
        for (const v of this.voters) if (acked.has(v)) acks++;
        if (acks < this.quorum()) return;
        for (const rq of this.readOnly.advance(m.context)) this.answerRead(rq.from, rq.ctx, rq.index);
        return;
      }
      case MessageType.MsgTransferLeader: {
        const to = m.from;
        if (pr.isLearner || !this.voters.has(to)) return;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === to) return;
          this.abortLeaderTransfer();
        }
        if (to === this.id) return;
        // The transfer must finish within an election timeout or it is abandoned.
        this.electionElapsed = 0;
        this.leadTransferee = to;
        if (pr.match === this.lastIndex()) this.send({ type: MessageType.MsgTimeoutNow, to });
        else this.sendAppend(to);
        return;
      }
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
      if (pr.state === ProgressState.Probe) pr.becomeReplicate();
      else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Replicate) pr.inflights.freeLE(m.index);
      if (this.maybeCommit()) this.onCommitAdvanced();
      while (this.maybeSendAppend(m.from, false)) { /* fill the window */ }
      if (m.from === this.leadTransferee && pr.match === this.lastIndex()) {
        this.send({ type: MessageType.MsgTimeoutNow, to: m.from });
      }
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === Role.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResp: {
        const r = this.poll(m.from, !m.reject);
        if (r === VoteResult.Won) {
          if (this.role === Role.PreCandidate) this.campaignAs(CampaignKind.Election);
          else this.becomeLeader();
        } else if (r === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.MsgTransferLeader:
      case MessageType.MsgReadIndex:
        if (this.lead !== NONE) this.send({ ...m, to: this.lead, from: m.type === MessageType.MsgReadIndex ? this.id : m.from, term: this.term });
        return;
      case MessageType.MsgTimeoutNow:
        this.hup(CampaignKind.Transfer);
        return;
      case MessageType.MsgReadIndexResp:
        if (m.context !== undefined) this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.commit) {
      this.send({ type: MessageType.MsgAppResp, to: m.from, index: this.commit });
      return;
    }
    if (this.termAt(m.index) === m.logTerm) {
      const lastNew = m.index + m.entries.length;
      const ci = this.log.findConflict(m.entries);
      if (ci !== 0) this.appendEntries(m.entries.slice(ci - m.index - 1));
      this.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: MessageType.MsgAppResp, to: m.from, index: lastNew });
      return;
    }
    // Reject with a hint: the largest index <= min(m.index, last) whose term <= m.logTerm,
    // so the leader can skip a whole term of mismatching entries per round trip.
    const h = this.log.findConflictByTerm(Math.min(m.index, this.lastIndex()), m.logTerm);
    this.send({ type: MessageType.MsgAppResp, to: m.from, index: m.index, reject: true, rejectHint: h.index, logTerm: h.term });
  }

  private handleHeartbeat(m: Message): void {
    this.commitTo(m.commit);
    this.send({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) this.send({ type: MessageType.MsgAppResp, to: m.from, index: this.lastIndex() });
    else this.send({ type: MessageType.MsgAppResp, to: m.from, index: this.commit });
  }

  private restore(s: SnapshotMeta): boolean {
    if (s.index <= this.commit) return false;
    // Unlike etcd-io/raft, a snapshot whose membership lacks us is accepted: the leader sends
    // its compaction point, which may predate the conf change that added us (etcd's server
    // sends a fresh snapshot instead). Its content is committed either way, and the conf
    // changes after it (ours included) arrive in the log.
    if (this.termAt(s.index) === s.term) {
      // We hold the snapshot's last entry: the logs agree up to it, just commit.
      this.commitTo(s.index);
      return false;
    }
    const oldCommit = this.commit;
    this.log.restore(s);
    this.ccQueue = [];
    this.lastConfApplied = 0;
    this.setConf(s.conf);
    this.resetProgress();
    this.truncatedAfter(oldCommit);
    this.sentToStorage = s.index;
    this.commit = s.index;
    this.appliedOut = s.index;
    this.applied = s.index;
    this.pendingSnapshot = copySnap(s);
    return true;
  }

  // ---- leader: replication ----

  private sendAppend(to: bigint): void { this.maybeSendAppend(to, true); }

  private maybeSendAppend(to: bigint, sendIfEmpty: boolean): boolean {
    if (to === this.id) return false;
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    if (prevIndex > this.lastIndex()) throw new Error(`raft: progress of ${to} is beyond the log: next ${pr.next}`);
    const prevTerm = this.termAt(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    const ents: Entry[] = [];
    let bytes = 0;
    for (let i = pr.next; i <= this.lastIndex(); i++) {
      const e = this.log.at(i);
      if (ents.length > 0 && bytes + e.data.length > this.maxSizePerMsg) break;
      ents.push(e);
      bytes += e.data.length;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ type: MessageType.MsgApp, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.commit });
    pr.sentEntries(ents.length, bytes);
    return true;
  }

  private sendSnapshot(to: bigint, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const s = this.snapshotMeta();
    pr.becomeSnapshot(s.index);
    this.send({ type: MessageType.MsgSnap, to, snapshot: s });
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) this.sendAppend(id);
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastCtx();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.send({ type: MessageType.MsgHeartbeat, to: id, commit: Math.min(pr.match, this.commit), context: ctx });
    }
  }

  /** The commit rule: the quorum's match index, if that entry is of the current term. */
  private maybeCommit(): boolean {
    if (this.voters.size === 0) return false;
    const matches: number[] = [];
    for (const v of this.voters) matches.push(this.prs.get(v)?.match ?? 0);
    matches.sort((a, b) => b - a);
    const mci = matches[this.quorum() - 1]!;
    if (mci > this.commit && this.termAt(mci) === this.term) {
      this.commit = mci;
      return true;
    }
    return false;
  }

  private onCommitAdvanced(): void {
    // The first commit of our term makes read indexes safe: release the ones that waited.
    if (this.pendingReadMsgs.length > 0 && this.termAt(this.commit) === this.term) {
      const ms = this.pendingReadMsgs;
      this.pendingReadMsgs = [];
      for (const m of ms) this.leaderReadIndex(m);
    }
    this.bcastAppend();
  }

  private abortLeaderTransfer(): void { this.leadTransferee = NONE; }

  // ---- ReadIndex ----

  private leaderReadIndex(m: Message): void {
    if (m.context === undefined) return;
    if (this.termAt(this.commit) !== this.term) {
      // Our commit index may lag a previous leader's until an entry of this term commits.
      if (this.pendingReadMsgs.length < this.maxPendingReads) this.pendingReadMsgs.push(m);
      return;
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.answerRead(m.from, m.context, this.commit);
      return;
    }
    if (!this.readOnly.add(this.commit, m.from, m.context, this.id)) return;
    // A heartbeat round carrying the context confirms we are still the leader.
    this.bcastHeartbeat();
  }

  private answerRead(from: bigint, ctx: ReadCtx, index: number): void {
    if (from === this.id) this.readStates.push({ index, requestCtx: ctx });
    else this.send({ type: MessageType.MsgReadIndexResp, to: from, index, context: ctx });
  }

  /**
   * readIndex(): the synchronous single-voter path: the index a linearizable read must
   * wait to be applied. readIndex(ctx): the general path; the answer comes later in
   * ready().readStates as { index, requestCtx: ctx } once a heartbeat round confirmed the
   * leadership (contexts must be unique cluster-wide). A request may be dropped (leader
   * change, lost message): the caller times out and retries.
   */
  readIndex(): number;
  readIndex(ctx: ReadCtx): void;
  readIndex(ctx?: ReadCtx): number | void {
    if (ctx === undefined) {
      if (this.role !== Role.Leader) throw new NotLeaderError('not leader');
      if (!(this.voters.size === 1 && this.voters.has(this.id))) {
        throw new Error('readIndex() without a context needs a single-voter cluster; use readIndex(ctx)');
      }
      // Until the leader's own empty entry commits, its commit index may be stale.
      return Math.max(this.commit, this.termStart);
    }
    if (this.role !== Role.Leader && this.lead === NONE) throw new NotLeaderError('no leader');
    this.step({
      type: MessageType.MsgReadIndex, from: this.id, to: this.id, term: 0, logTerm: 0, index: 0, entries: [],
      commit: 0, reject: false, rejectHint: 0, context: ctx,
    });
  }

  // ---- proposals and leadership transfer ----

  /** Appends a proposal to the leader's log and returns its index. */
  propose(data: Uint8Array): number {
    if (this.role !== Role.Leader) throw new NotLeaderError('not leader');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('leadership transfer in progress');
    return this.appendLocal(data, EntryType.Normal);
  }

  /** Proposes a membership change; refused while another one is not yet applied. */
  proposeConfChange(cc: ConfChange): number {
    if (this.role !== Role.Leader) throw new NotLeaderError('not leader');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('leadership transfer in progress');
    if (this.pendingConfIndex > Math.max(this.applied, this.lastConfApplied)) {
      throw new ProposalDroppedError('a configuration change is already pending');
    }
    const idx = this.appendLocal(encodeConfChange(cc), EntryType.ConfChange);
    this.pendingConfIndex = idx;
    return idx;
  }

  /** Asks the leader (directly or through the leader we know) to hand leadership to `to`. */
  transferLeader(to: bigint): void {
    this.step({
      type: MessageType.MsgTransferLeader, from: to, to: this.id, term: 0, logTerm: 0, index: 0, entries: [],
      commit: 0, reject: false, rejectHint: 0,
    });
  }

  /** The transport lost `id` (etcd-io/raft's ReportUnreachable): stop pipelining appends to it, probe instead. */
  reportUnreachable(id: bigint): void {
    const pr = this.prs.get(id);
    if (this.role !== Role.Leader || !pr || id === this.id) return;
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  /**
   * The transport has evidence that `id`'s process is gone (its peer port refuses us and
   * its stream to us ended); not an etcd-io/raft input. A follower whose leader that is
   * stops protecting it (no lease: it grants others' votes) and campaigns within a few
   * ticks (its slot, see below; never later than its election timeout) instead of the full
   * election timeout. Only with pre-vote: a wrong report then moves no term unless a
   * quorum also stopped hearing from the leader. Returns whether it acted.
   */
  reportLeaderGone(id: bigint): boolean {
    if (!this.preVote || this.role !== Role.Follower || id === NONE || this.lead !== id || !this.promotable()) return false;
    this.lead = NONE;
    // Every follower learns it at about the same time: if two campaigned together their
    // pre-votes could cross and split the vote. So each waits in its own slot of w ticks,
    // by its rank among the other voters (by id), at a random tick within the slot.
    let rank = 0;
    for (const v of this.voters) if (v !== id && v < this.id) rank++;
    const w = Math.max(1, Math.floor(this.electionTick / 5));
    const soon = 1 + rank * w + Math.floor(this.rng() * w);
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - soon);
    return true;
  }

  /** The application could not deliver (or finished delivering) the snapshot to `id`. */
  reportSnapshot(id: bigint, ok: boolean): void {
    const pr = this.prs.get(id);
    if (this.role !== Role.Leader || !pr || pr.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before the next append.
    pr.paused = true;
  }

  // ---- storage and application ----

  /**
   * Storage made a ready's writes durable. `index`/`term` are the last entry of that ready
   * (persistPoint(rd)); acknowledgements must arrive in the order the readies were
   * handed out. Without `term` (single voter, whose log is never overwritten) every write
   * up to `index` counts.
   */
  persisted(index: number, term?: number): void {
    let upTo = -1;
    if (term === undefined) {
      while (this.writes.length > 0 && this.writes[0]!.index <= index) this.writes.shift();
      upTo = Math.min(index, this.sentToStorage);
    } else {
      const at = this.writes.findIndex((w) => w.index === index && w.term === term);
      if (at < 0) return; // stale or unknown
      upTo = this.writes[at]!.agreeUpTo;
      this.writes.splice(0, at + 1);
    }
    if (upTo <= this.durable) return;
    this.durable = upTo;
    if (this.role === Role.Leader) {
      const self = this.prs.get(this.id);
      if (self && self.maybeUpdate(this.durable) && this.maybeCommit()) this.onCommitAdvanced();
    }
  }

  /** Highest index the application may apply now: committed and durable here. */
  private applyLimit(): number { return Math.min(this.commit, this.durable); }

  private hardStateChanged(): boolean {
    const p = this.prevHardState;
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.commit;
  }

  hasReady(): boolean {
    return this.sendPending || this.pendingSnapshot !== null || this.hardStateChanged()
      || this.sentToStorage < this.lastIndex() || this.applyLimit() > this.appliedOut
      || this.msgs.length > 0 || this.readStates.length > 0;
  }

  /** Collects the work for the application; each item is handed out once. */
  ready(): Ready {
    if (this.sendPending) {
      this.sendPending = false;
      if (this.role === Role.Leader) for (const id of this.prs.keys()) while (this.maybeSendAppend(id, false)) { /* batch */ }
    }
    const snapshot = this.pendingSnapshot;
    this.pendingSnapshot = null;
    const entries = this.entries(this.sentToStorage + 1, this.lastIndex());
    this.sentToStorage = this.lastIndex();
    const last = entries[entries.length - 1];
    if (last) this.writes.push({ index: last.index, term: last.term, agreeUpTo: last.index });
    else if (snapshot) this.writes.push({ index: snapshot.index, term: snapshot.term, agreeUpTo: snapshot.index });
    const committedEntries = this.entries(this.appliedOut + 1, this.applyLimit());
    if (committedEntries.length > 0) {
      this.appliedOut = committedEntries[committedEntries.length - 1]!.index;
      for (const e of committedEntries) if (e.type === EntryType.ConfChange) this.ccQueue.push(e.index);
    }
    let hardState: HardState | null = null;
    if (this.hardStateChanged()) {
      hardState = { term: this.term, vote: this.vote, commit: this.commit };
      this.prevHardState = { ...hardState };
    }
    const messages = this.msgs;
    this.msgs = [];
    const readStates = this.readStates;
    this.readStates = [];
    return { hardState, entries, snapshot, committedEntries, messages, readStates };
  }

  /** The application applied everything up to index; the in-memory log is compacted behind it (retainApplied). */
  appliedTo(index: number): void {
    const a = Math.min(index, this.appliedOut);
    if (a > this.applied) this.applied = a;
    const c = this.applied - this.retainApplied;
    if (c > this.log.baseIdx) this.compact(c);
  }

  /**
   * The application's state at `index` (<= applied) can serve as a snapshot: entries up
   * to it are dropped, and a follower that needs them gets a MsgSnap at this point.
   */
  compact(index: number): void {
    if (index <= this.log.baseIdx) return;
    if (index > this.applied) throw new Error(`raft: compact ${index} is beyond the applied index ${this.applied}`);
    this.log.compactTo(index);
  }
}

function copyConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

function copySnap(s: SnapshotMeta): SnapshotMeta {
  return { index: s.index, term: s.term, conf: copyConf(s.conf) };
}
