// Direct apply: on a leader that is the cluster's only voter, an entry is committed
// the moment it is durable in the WAL (a quorum of one). Such entries are flagged for
// the WAL worker, which hands them to the apply worker right after the fsync, so the
// commit path is main -> WAL -> apply -> main instead of main -> WAL -> main -> apply
// -> main. Raft still hears of the fsync and commits them as before; this room makes
// sure the apply worker gets each of those entries once (from the WAL, not again from
// the main thread).
//
// Only while nothing can change the quorum: no configuration change (nor a new
// leader's first entry, which gates one) in the log unapplied; ConfChange and
// MemberAttrs entries (the main thread rewrites them before they apply) never go direct.

import type { RaftNode } from '../raft/node.js';
import { EntryType, type Entry } from '../raft/types.js';
import { EntryKind } from '../workers/protocol/entry.js';

export class DirectApply {
  /** Indexes flagged direct and not yet seen committed, ascending. */
  private pending: number[] = [];
  private at = 0;

  constructor(private readonly raft: RaftNode, private readonly soleVoter: () => boolean) {}

  /** Whether `e`, about to be written to the WAL, goes to the apply worker from there (and is noted if so). */
  flag(e: Entry): boolean {
    if (e.type === EntryType.ConfChange || e.data[0] === EntryKind.MemberAttrs) return false;
    if (!this.raft.isLeader() || !this.soleVoter() || this.raft.confChangePending()) return false;
    this.pending.push(e.index);
    return true;
  }

  /** Committed entries minus those the WAL worker hands over itself. */
  notDirect(committed: Entry[]): Entry[] {
    if (this.at === this.pending.length) return committed;
    const out: Entry[] = [];
    for (const e of committed) {
      // A flagged index skipped over would mean the log replaced a sole voter's entry: cannot happen, but stay in step.
      while (this.at < this.pending.length && this.pending[this.at]! < e.index) this.at++;
      if (this.at < this.pending.length && this.pending[this.at] === e.index) this.at++;
      else out.push(e);
    }
    if (this.at === this.pending.length) {
      this.pending = [];
      this.at = 0;
    } else if (this.at > 1024) {
      this.pending = this.pending.slice(this.at);
      this.at = 0;
    }
    return out;
  }
}
