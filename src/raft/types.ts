// Types of the pure raft core. Nothing here touches I/O, timers or the clock.

export const enum EntryType { Normal = 0, ConfChange = 1 }

/** A log entry. Entries are immutable once created: the core shares them between its log, readies and messages. */
export interface Entry {
  index: number;
  term: number;
  data: Uint8Array;
  /** Absent means Normal. A ConfChange entry's data is encodeConfChange(cc). */
  type?: EntryType;
}

export interface HardState {
  term: number;
  vote: bigint;
  commit: number;
}

export const enum Role { Follower = 0, Candidate = 1, Leader = 2, PreCandidate = 3 }

/** The membership: voters count in quorums, learners only receive the log. */
export interface ConfState {
  voters: bigint[];
  learners: bigint[];
}

/** Snapshot metadata. The snapshot's data (the state machine) is the application's business. */
export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export const enum ConfChangeType {
  /** Adds a voter, or promotes an existing learner to voter. */
  AddNode = 0,
  RemoveNode = 1,
  AddLearnerNode = 2,
  /** Changes nothing in raft (the application's member attributes, e.g. peer URLs). */
  UpdateNode = 3,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: bigint;
  /** Opaque to raft: the application's description of the change. */
  context?: Uint8Array;
}

export enum MessageType {
  /** Local: start an election (what tick() does when the election timeout passes). */
  MsgHup = 0,
  /** Local: the leader's heartbeat tick. */
  MsgBeat = 1,
  /** Reserved: proposals go through propose(); followers do not forward them (NotLeaderError). */
  MsgProp = 2,
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  /** Reserved: the application reports snapshot transfers through reportSnapshot(). */
  MsgSnapStatus = 10,
  /** Reserved: the leader's quorum check runs inside tick(). */
  MsgCheckQuorum = 11,
  /** Asks the leader to hand leadership to `from`. */
  MsgTransferLeader = 12,
  /** Tells the transferee to campaign at once, skipping PreVote and the leader lease. */
  MsgTimeoutNow = 13,
  MsgReadIndex = 14,
  MsgReadIndexResp = 15,
  MsgPreVote = 16,
  MsgPreVoteResp = 17,
}

/**
 * A raft message, with etcd-io/raft's fields. Unused fields are 0 / [] / false.
 * MsgApp: (index, logTerm) is the entry preceding `entries`. MsgAppResp: `index` is the
 * acknowledged last index, or on reject the rejected index, with (rejectHint, logTerm)
 * the follower's guess of where the logs agree. MsgVote/MsgPreVote: (index, logTerm)
 * is the candidate's last entry.
 */
export interface Message {
  type: MessageType;
  from: bigint;
  to: bigint;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  /** ReadIndex request context (MsgReadIndex, MsgReadIndexResp, MsgHeartbeat/Resp). */
  context?: ReadCtx;
  /** MsgVote sent because of a leader transfer: voters ignore their leader lease. */
  transfer?: boolean;
  /** MsgSnap: the snapshot's metadata. */
  snapshot?: SnapshotMeta;
}

export type ReadCtx = bigint | number;

/** A ReadIndex answer: serve the read `requestCtx` once the applied index reaches `index`. */
export interface ReadState {
  index: number;
  requestCtx: ReadCtx;
}

/** What the application must do next: persist, then send, and apply. */
export interface Ready {
  /** Set when term/vote/commit changed and must be persisted with the entries. */
  hardState: HardState | null;
  /**
   * Entries to append to stable storage (the WAL), in order. An entry may carry an
   * index that storage already holds (the leader replaced a conflicting suffix): the
   * new entry overwrites it and every later stored entry is discarded.
   */
  entries: Entry[];
  /** A snapshot to persist and restore (a follower fell behind the leader's compacted log); null if none. */
  snapshot: SnapshotMeta | null;
  /** Entries known committed and not yet handed out for apply, in order. Never beyond what is durable here. */
  committedEntries: Entry[];
  /**
   * Messages to send. THE RULE: send them only after this ready's hardState, entries
   * and snapshot (and those of every earlier ready) are durable: they include votes
   * and append acknowledgements that promise exactly that.
   */
  messages: Message[];
  /** Answers to readIndex(ctx) requests made on this node. */
  readStates: ReadState[];
}

export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}

export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
}
