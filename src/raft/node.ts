import { NotLeaderError, Role, type Entry, type HardState, type Ready } from './types.js';

export interface NodeOptions {
  id: bigint;
  voters: bigint[];
  /** Persisted state from the WAL. */
  hardState: { term: number; vote: bigint; commit: number };
  /** Entries in stable storage after the applied index (contiguous). */
  entries: Entry[];
  /** Index/term of the last entry already applied (the state machine's snapshot point). */
  applied: { index: number; term: number };
}

/**
 * The raft state machine, in the style of etcd-io/raft: inputs are proposals,
 * ticks and storage acknowledgements; outputs come from ready(). This version
 * runs a single voter (quorum of one): it elects itself, and an entry commits
 * once it is durable on this member and belongs to the current term (or
 * precedes one that does). Multi-member replication builds on this shape.
 */
export class RaftNode {
  readonly id: bigint;
  role: Role = Role.Follower;
  term: number;
  vote: bigint;
  commit: number;
  private readonly voters: bigint[];
  /** Log entries after `base`; entries[i] has index base.index + 1 + i. */
  private log: Entry[];
  private base: { index: number; term: number };
  /** Highest index handed to storage, and highest index storage says is durable. */
  private sentToStorage: number;
  private durable: number;
  /** Highest index handed out for apply. */
  private appliedOut: number;
  private hardStateDirty = false;
  /** Index of the first entry of the current leader term (its empty entry). */
  private termStart = 0;

  constructor(o: NodeOptions) {
    if (o.voters.length !== 1 || o.voters[0] !== o.id) {
      throw new Error('this raft core runs a single voter only; multi-member clusters are not built yet');
    }
    this.id = o.id;
    this.voters = o.voters;
    this.term = o.hardState.term;
    this.vote = o.hardState.vote;
    this.base = { ...o.applied };
    this.log = o.entries.filter((e) => e.index > o.applied.index);
    this.commit = Math.max(o.hardState.commit, o.applied.index);
    const last = this.lastIndex();
    this.sentToStorage = last;
    this.durable = last;
    this.appliedOut = o.applied.index;
  }

  lastIndex(): number {
    return this.log.length > 0 ? this.log[this.log.length - 1]!.index : this.base.index;
  }

  lastTerm(): number {
    return this.log.length > 0 ? this.log[this.log.length - 1]!.term : this.base.term;
  }

  isLeader(): boolean { return this.role === Role.Leader; }

  /** Starts an election; with a single voter it wins at once. */
  campaign(): void {
    this.term += 1;
    this.vote = this.id;
    this.role = Role.Candidate;
    this.hardStateDirty = true;
    // Our own vote is a majority of one.
    this.becomeLeader();
  }

  private becomeLeader(): void {
    this.role = Role.Leader;
    // An empty entry of the new term lets earlier-term entries commit.
    this.termStart = this.append(new Uint8Array(0));
    this.maybeCommit();
  }

  /** Time passes; an electable follower campaigns. */
  tick(): void {
    if (this.role !== Role.Leader && this.voters.includes(this.id)) this.campaign();
  }

  /** Appends a proposal to the leader's log and returns its index. */
  propose(data: Uint8Array): number {
    if (this.role !== Role.Leader) throw new NotLeaderError('not leader');
    return this.append(data);
  }

  private append(data: Uint8Array): number {
    const e: Entry = { index: this.lastIndex() + 1, term: this.term, data };
    this.log.push(e);
    return e.index;
  }

  /** Storage made every entry up to `index` durable. */
  persisted(index: number): void {
    if (index > this.durable) this.durable = Math.min(index, this.sentToStorage);
    this.maybeCommit();
  }

  private maybeCommit(): void {
    // Only a leader advances commit by counting replicas.
    if (this.role !== Role.Leader) return;
    // Quorum of one: our durable index. Only an entry of the current term commits by counting.
    const candidate = this.durable;
    if (candidate > this.commit && this.termAt(candidate) === this.term) {
      this.commit = candidate;
      this.hardStateDirty = true;
    }
  }

  private termAt(index: number): number {
    if (index === this.base.index) return this.base.term;
    const e = this.log[index - this.base.index - 1];
    return e ? e.term : 0;
  }

  hasReady(): boolean {
    return this.hardStateDirty || this.sentToStorage < this.lastIndex() || this.appliedOut < this.commit;
  }

  /** Collects the work for the application; each entry is handed out once. */
  ready(): Ready {
    const entries = this.log.slice(this.sentToStorage - this.base.index);
    this.sentToStorage = this.lastIndex();
    const committedEntries = this.log.slice(this.appliedOut - this.base.index, this.commit - this.base.index);
    this.appliedOut = this.commit;
    const hardState: HardState | null = this.hardStateDirty ? { term: this.term, vote: this.vote, commit: this.commit } : null;
    this.hardStateDirty = false;
    return { hardState, entries, committedEntries };
  }

  /** The application applied everything up to index: drop it from memory. */
  appliedTo(index: number): void {
    const n = Math.min(index, this.appliedOut) - this.base.index;
    if (n <= 0) return;
    const last = this.log[n - 1]!;
    this.base = { index: last.index, term: last.term };
    this.log = this.log.slice(n);
  }

  /** The index a linearizable read must wait to be applied (ReadIndex; a single voter needs no round trip). */
  readIndex(): number {
    if (this.role !== Role.Leader) throw new NotLeaderError('not leader');
    // Until the leader's own empty entry commits, its commit index may be stale.
    return Math.max(this.commit, this.termStart);
  }
}
