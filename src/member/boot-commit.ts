// The commit index a member boots raft with.
//
// A crash after raft restored a leader's snapshot but before the apply worker
// installed it leaves a durable HardState whose commit is beyond everything
// the member has: the snapshot itself is not in the WAL (it goes to RocksDB
// when installed), so the log ends at the old applied index. Raft's commit
// index is volatile state (the leader tells it again, and sends the snapshot
// again), so it is clamped to the last index we hold; booting with it would
// fail ("commit N is beyond the last index M") and the member could never
// restart. Found by the crash cycle at snapshotBeforeInstall.

export interface BootCommit { commit: number; clampedFrom: number | null }

export function bootCommit(durableCommit: number, lastEntryIndex: number | null, appliedIndex: number): BootCommit {
  const last = Math.max(lastEntryIndex ?? 0, appliedIndex);
  return durableCommit > last ? { commit: last, clampedFrom: durableCommit } : { commit: durableCommit, clampedFrom: null };
}
