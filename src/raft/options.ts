// The raft core's construction options: its persisted state and its tunables.
import type { Entry, SnapshotMeta } from './types.js';

export interface NodeOptions {
  id: bigint;
  /** The voters at the log base (the snapshot or the applied point), when `conf` is not given. */
  voters: bigint[];
  /** Learners at the log base. */
  learners?: bigint[];
  /** Persisted state from the WAL. */
  hardState: { term: number; vote: bigint; commit: number };
  /** Entries in stable storage after the log base (contiguous); earlier ones are ignored. */
  entries: Entry[];
  /** Index/term of the last entry already applied to the state machine. */
  applied: { index: number; term: number };
  /**
   * The log base (the last compacted entry, as in a snapshot's metadata). Defaults to
   * `applied` with conf = voters/learners: the log then starts after the applied point.
   */
  snapshot?: SnapshotMeta;
  /** Ticks without hearing from a leader before campaigning (randomized to [e, 2e)). Default 10. */
  electionTick?: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTick?: number;
  /** Default true. */
  preVote?: boolean;
  /** Default true. */
  checkQuorum?: boolean;
  /** Byte budget of one MsgApp's entries (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** In-flight MsgApp window per follower in Replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Byte bound of that window (0 = none). Default 0. */
  maxInflightBytes?: number;
  /**
   * appliedTo(i) compacts the in-memory log up to i - retainApplied. Default 0 (drop what
   * is applied: fine for a single voter). Use Infinity to compact only through compact().
   */
  retainApplied?: number;
  /** Bound on pending ReadIndex requests at the leader; beyond it they are dropped. Default 4096. */
  maxPendingReads?: number;
  /** Uniform [0,1) generator for election timeouts. Default: seeded from the id. */
  rng?: () => number;
}
