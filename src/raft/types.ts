// Types of the pure raft core. Nothing here touches I/O, timers or the clock.

export interface Entry {
  index: number;
  term: number;
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: bigint;
  commit: number;
}

export const enum Role { Follower = 0, Candidate = 1, Leader = 2 }

/** What the application must do next: persist, then apply. */
export interface Ready {
  /** Set when term/vote/commit changed and must be persisted with the entries. */
  hardState: HardState | null;
  /** Entries to append to stable storage (the WAL), in order. */
  entries: Entry[];
  /** Entries known committed and not yet handed out for apply, in order. */
  committedEntries: Entry[];
}

export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}

export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
}
