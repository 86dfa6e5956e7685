// Writes: a client's request becomes a raft entry as it arrived (its bytes
// behind a small header, entry.ts). The leader proposes it; a follower
// forwards it to the leader. Either way the entry carries our request id, so
// applying it here answers the request (result router -> request table).

import { Errors } from '../common/errors.js';
import type { RaftNode } from '../raft/node.js';
import { NotLeaderError, ProposalDroppedError, type Message } from '../raft/types.js';
import { EntryKind, encodeEntryData, type EntryAuth } from '../workers/protocol/entry.js';
import { proposalMessage } from './peer-messages.js';
import type { RequestTable } from './requests.js';
import { newClock, type StageTracker } from './stage-tracker.js';

const RPC_OF_KIND: Record<EntryKind, string> = {
  [EntryKind.Noop]: 'Noop', [EntryKind.Put]: 'Put', [EntryKind.DeleteRange]: 'DeleteRange', [EntryKind.Txn]: 'Txn',
  [EntryKind.Compaction]: 'Compact', [EntryKind.LeaseGrant]: 'LeaseGrant', [EntryKind.LeaseRevoke]: 'LeaseRevoke', [EntryKind.Members]: 'Members', [EntryKind.MemberAttrs]: 'MemberAttrs',
  [EntryKind.Auth]: 'Auth', [EntryKind.Authed]: 'Authed',
};

export class WritePath {
  constructor(
    private readonly memberId: bigint,
    private readonly raft: RaftNode,
    private readonly requests: RequestTable,
    private readonly tracker: StageTracker,
    private readonly send: (msgs: Message[]) => void,
    private readonly scheduleRaft: () => void,
  ) {}

  /** Proposes a write; resolves with the encoded response once applied here. `auth`: who made it, when a token came with it. */
  propose(kind: EntryKind, request: Buffer, tReceived = performance.now(), auth?: EntryAuth): Promise<Buffer> {
    const reqId = this.requests.admit();
    const data = encodeEntryData(kind, reqId, request, auth);
    return new Promise<Buffer>((resolve, reject) => {
      const clock = newClock(RPC_OF_KIND[kind], tReceived, performance.now());
      if (this.raft.isLeader()) {
        this.requests.add(reqId, clock, resolve, reject);
        try {
          clock.index = this.raft.propose(data);
        } catch (err) {
          // A leader transfer is under way (raft drops proposals meanwhile) or we just lost the lead:
          // "leader changed" is Unavailable, which clients retry.
          if (!(err instanceof ProposalDroppedError || err instanceof NotLeaderError)) throw err;
          this.requests.fail(reqId, Errors.leaderChanged());
          return;
        }
        this.tracker.proposed(clock);
        this.scheduleRaft();
      } else if (this.raft.lead !== 0n) {
        clock.forwarded = true;
        this.requests.add(reqId, clock, resolve, reject);
        this.send([proposalMessage(this.memberId, this.raft.lead, data)]);
      } else {
        reject(Errors.noLeader());
      }
    });
  }
}
