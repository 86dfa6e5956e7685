// Writes: a client's request becomes a raft entry as it arrived (its bytes
// behind a small header, entry.ts). The leader proposes it; a follower
// forwards it to the leader. Either way the entry carries our request id, so
// applying it here answers the request (result router -> request table).

import { Errors } from '../common/errors.js';
import type { RaftNode } from '../raft/node.js';
import { NotLeaderError, ProposalDroppedError } from '../raft/types.js';
import { EntryKind, encodeEntryData, type EntryAuth } from '../workers/protocol/entry.js';
import type { AnswerSink, RequestTable } from './requests.js';
import { newClock, type StageTracker } from './stage-tracker.js';

const RPC_OF_KIND: Record<EntryKind, string> = {
  [EntryKind.Noop]: 'Noop', [EntryKind.Put]: 'Put', [EntryKind.DeleteRange]: 'DeleteRange', [EntryKind.Txn]: 'Txn',
  [EntryKind.Compaction]: 'Compact', [EntryKind.LeaseGrant]: 'LeaseGrant', [EntryKind.LeaseRevoke]: 'LeaseRevoke', [EntryKind.Members]: 'Members', [EntryKind.MemberAttrs]: 'MemberAttrs',
  [EntryKind.Auth]: 'Auth', [EntryKind.Authed]: 'Authed', [EntryKind.Alarm]: 'Alarm',
};

/** Proposes entry data: its index on the leader, null when forwarded (RaftLoop.propose). */
export type Propose = (data: Uint8Array) => number | null;

export class WritePath {
  constructor(
    private readonly raft: RaftNode,
    private readonly requests: RequestTable,
    private readonly tracker: StageTracker,
    private readonly proposeData: Propose,
  ) {}

  /** Proposes a write; resolves with the encoded response once applied here. `auth`: who made it, when a token came with it. */
  propose(kind: EntryKind, request: Buffer, tReceived = performance.now(), auth?: EntryAuth): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => this.proposeTo(kind, request, tReceived, auth, { resolve, reject }));
  }

  /** The same, with the answer going to `sink` (a gRPC stream). Throws etcd's refusal when the table is full or stopping. */
  proposeTo(kind: EntryKind, request: Buffer, tReceived: number, auth: EntryAuth | undefined, sink: AnswerSink): void {
    const reqId = this.requests.admit();
    const data = encodeEntryData(kind, reqId, request, auth);
    const clock = newClock(RPC_OF_KIND[kind], tReceived, performance.now());
    this.requests.addSink(reqId, clock, sink);
    let index: number | null;
    try {
      index = this.proposeData(data);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError || err instanceof NotLeaderError)) throw err;
      // No leader known: "no leader". A leader transfer under way (raft drops proposals
      // meanwhile) or the lead just lost: "leader changed". Both are Unavailable, which clients retry.
      this.requests.fail(reqId, this.raft.lead === 0n ? Errors.noLeader() : Errors.leaderChanged());
      return;
    }
    if (index === null) {
      clock.forwarded = true;
    } else {
      clock.index = index;
      this.tracker.proposed(clock);
    }
  }
}
