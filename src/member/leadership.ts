// Who leads, as the rest of the member needs to know it: publishes the term
// to the workers (response headers), logs leader changes, restarts lease
// clocks on a new leader (etcd's lessor promote), hands leadership over on
// request (MoveLeader).

import { Errors } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import type { RaftNode } from '../raft/node.js';
import { Shared, storeShared } from '../workers/protocol/shared-state.js';
import type { Lessor } from './lessor.js';

export interface LeadershipHooks {
  /** The leader changed (or is gone): whatever waits on the old one gives up. */
  leaderChanged(lead: bigint): void;
  scheduleRaft(): void;
}

export class Leadership {
  private lastLead = 0n;
  private lastTerm = 0;
  /** etcd_server_leader_changes_seen_total: a leader seen that is not the one before (none in between counts). */
  leaderChanges = 0;

  constructor(
    private readonly raft: RaftNode,
    private readonly state: BigInt64Array,
    private readonly lessor: Lessor,
    private readonly log: Logger,
    private readonly hooks: LeadershipHooks,
    private readonly timing: { heartbeatIntervalMs: number; electionTimeoutMs: number },
  ) {}

  /** Called after every raft step: notes term and leader changes. */
  note(): void {
    const raft = this.raft;
    if (raft.term !== this.lastTerm) {
      this.lastTerm = raft.term;
      storeShared(this.state, Shared.RaftTerm, raft.term);
    }
    if (raft.lead !== this.lastLead) {
      this.lastLead = raft.lead;
      if (raft.lead !== 0n) this.leaderChanges++;
      if (raft.lead === 0n) this.log.warn({ term: raft.term }, 'no leader');
      else this.log.info({ term: raft.term, leader: formatId(raft.lead), self: raft.isLeader() }, 'leader elected');
      // A new leader restarts every lease's clock, as etcd's lessor promote does; a follower's clock decides nothing.
      if (raft.isLeader()) this.lessor.promote();
      else this.lessor.demote();
      this.hooks.leaderChanged(raft.lead);
    }
  }

  /** Maintenance.MoveLeader: hands leadership to target and resolves once it leads (etcd waits the same way). */
  async moveLeader(target: bigint): Promise<void> {
    const raft = this.raft;
    if (!raft.isLeader()) throw Errors.notLeader();
    if (!raft.conf().voters.includes(target)) throw Errors.badLeaderTransferee();
    if (target === raft.id) return;
    raft.transferLeader(target);
    this.hooks.scheduleRaft();
    const deadline = performance.now() + 2 * this.timing.electionTimeoutMs + 1000;
    while (raft.lead !== target) {
      if (performance.now() > deadline) throw Errors.leaderTransferTimeout();
      await new Promise((r) => setTimeout(r, this.timing.heartbeatIntervalMs));
    }
  }
}
