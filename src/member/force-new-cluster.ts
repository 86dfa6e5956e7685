// --force-new-cluster: etcd 3.4's restartAsStandaloneNode (etcdserver/raft.go).
// A member whose peers are lost restarts as a one-member cluster with its own
// data: the WAL entries past the commit index are discarded (never committed,
// they may never have been), then conf changes removing every other member
// are appended after the commit index in the current term and forced
// committed. Applying them (membership-keeper.ts) drops the others from raft,
// the membership and the transport; the revision and the data stay as they
// are. Pure: the member writes what this returns to the WAL (before raft's
// first ready, whose barrier then syncs them).

import { encodeConfChange, decodeConfChange } from '../raft/confchange.js';
import { ConfChangeType, EntryType, type Entry } from '../raft/types.js';
import { RecordType } from '../storage/wal/record.js';
import { encodeHardState } from '../storage/wal/recover.js';
import { walRecordHeader } from '../workers/protocol/wal-ring.js';

export interface StandaloneRestart {
  /** The kept committed entries followed by the appended conf changes. */
  entries: Entry[];
  /** The entries appended (to be written to the WAL). */
  appended: Entry[];
  /** The forced commit index: the last entry's. */
  commit: number;
  /** How many uncommitted entries were dropped, and the first one's index (0: none). */
  discarded: number;
  firstDiscarded: number;
}

/**
 * `members`: the ids (voters and learners) of the membership at the applied index;
 * `entries`: the log after it; `commit`: the commit index the WAL holds (or the applied index, if higher).
 */
export function restartAsStandalone(self: bigint, members: bigint[], entries: Entry[], commit: number, term: number): StandaloneRestart {
  const keep = entries.filter((e) => e.index <= commit);
  const discarded = entries.length - keep.length;
  const firstDiscarded = discarded > 0 ? entries[keep.length]!.index : 0;
  // getIDs: the configuration at the log base, then every conf change in the kept log.
  const ids = new Set(members);
  for (const e of keep) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearnerNode) ids.add(cc.nodeId);
    else if (cc.type === ConfChangeType.RemoveNode) ids.delete(cc.nodeId);
  }
  if (!ids.has(self)) throw new Error('the member is not in the membership it would keep; --force-new-cluster cannot make it the only member');
  const appended: Entry[] = [];
  let next = commit + 1;
  for (const id of [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (id === self) continue;
    appended.push({ index: next++, term, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id }) });
  }
  const all = [...keep, ...appended];
  return { entries: all, appended, commit: all.length > 0 ? all[all.length - 1]!.index : commit, discarded, firstDiscarded };
}

/** The appended entries and the forced hard state as WAL records, in the layout the raft loop writes. */
export function standaloneWalRecords(r: StandaloneRestart, term: number, vote: bigint): Uint8Array[][] {
  const out: Uint8Array[][] = r.appended.map((e) => [walRecordHeader(RecordType.ConfChangeEntry, e.index, e.term), e.data]);
  out.push([walRecordHeader(RecordType.HardState, 0, term), encodeHardState({ term, vote, commit: r.commit })]);
  return out;
}
