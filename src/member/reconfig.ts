// Membership changes as clients ask for them (Cluster service): forwarded to
// the leader, checked there as etcd checks them, proposed one at a time, and
// answered once the change applies on the member the client asked.

import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { EtcdError, Errors } from '../common/errors.js';
import { computeMemberId, formatId } from '../common/ids.js';
import { MEMBER_URL_SCHEMES } from '../common/member-url.js';
import { field, isBoolean, isString, isStrings, packRecord, toBigInt, unpackRecord } from '../common/records.js';
import type { RaftNode } from '../raft/node.js';
import { ConfChangeType, NotLeaderError, ProposalDroppedError, type ConfChange } from '../raft/types.js';
import { encodeConfChangeContext, type MemberRecord, type Membership } from './membership.js';
import type { PeerSet } from './membership-keeper.js';
import { memberOpFailedMessage, memberOpMessage } from './peer-messages.js';
import { REQUEST_TIMEOUT_MS } from './requests.js';

/** etcd promotes a learner only once its log is within 90% of the leader's. */
const LEARNER_READY_PERCENT = 0.9;
/** etcd's HealthInterval: how long peers must have been connected before a risky membership change. */
const HEALTH_INTERVAL_MS = 5000;

/** A membership change as clients ask for it. */
export type MemberOp =
  | { kind: 'add'; peerUrls: string[]; isLearner: boolean }
  | { kind: 'remove'; id: bigint }
  | { kind: 'update'; id: bigint; peerUrls: string[] }
  | { kind: 'promote'; id: bigint };

interface ConfWaiter { resolve: (m: MemberRecord) => void; reject: (err: EtcdError) => void; tReceived: number }

export interface ReconfigDeps {
  memberId: bigint;
  raft: RaftNode;
  peers: PeerSet & { activeSince(id: bigint): number };
  membership: () => Membership;
  admit: () => number;
  scheduleRaft: () => void;
  cfg: Config;
  log: Logger;
}

export class Reconfig {
  private waiters = new Map<number, ConfWaiter>();

  constructor(private readonly d: ReconfigDeps) {}

  /** Runs a membership change on the leader (forwarding it there); resolves with the member's record once applied here. */
  memberOp(op: MemberOp): Promise<MemberRecord> {
    const { raft, memberId } = this.d;
    if (this.d.cfg.strictReconfigCheck) this.checkConnectedQuorum(op);
    const reqId = this.d.admit();
    return new Promise<MemberRecord>((resolve, reject) => {
      this.waiters.set(reqId, { resolve, reject, tReceived: performance.now() });
      if (raft.isLeader()) {
        this.propose(op, reqId, memberId);
      } else if (raft.lead !== 0n) {
        this.d.peers.send([memberOpMessage(memberId, raft.lead, reqId, encodeMemberOp(op))]);
      } else {
        this.waiters.delete(reqId);
        reject(Errors.noLeader());
      }
    });
  }

  /** A follower forwarded a client's change to us. */
  onForwarded(reqId: number, from: bigint, data: Uint8Array): void {
    let op: MemberOp;
    try {
      op = decodeMemberOp(data);
    } catch (err) {
      this.d.log.warn({ err, from: formatId(from) }, 'unreadable forwarded membership change');
      return;
    }
    if (this.d.raft.isLeader()) this.propose(op, reqId, from);
    else this.fail(reqId, from, Errors.notLeader());
  }

  /** The leader refused a change we forwarded. */
  onRefused(reqId: number, err: EtcdError): void {
    const w = this.waiters.get(reqId);
    if (!w) return;
    this.waiters.delete(reqId);
    w.reject(err);
  }

  /** A change applied here (MembershipKeeper): answer the client that asked for it, if it asked here. */
  onApplied(reqId: number, member: MemberRecord): void {
    const w = this.waiters.get(reqId);
    if (!w) return;
    this.waiters.delete(reqId);
    w.resolve(member);
  }

  sweep(noLeader: boolean): void {
    const limit = performance.now() - REQUEST_TIMEOUT_MS;
    for (const [id, w] of this.waiters) {
      if (w.tReceived < limit) {
        this.waiters.delete(id);
        w.reject(noLeader ? Errors.noLeader() : Errors.timeout());
      }
    }
  }

  stop(): void {
    for (const w of this.waiters.values()) w.reject(Errors.stopped());
    this.waiters.clear();
  }

  private fail(reqId: number, origin: bigint, err: EtcdError): void {
    if (origin === this.d.memberId) return this.onRefused(reqId, err);
    this.d.peers.send([memberOpFailedMessage(this.d.memberId, origin, reqId, err)]);
  }

  /** On the leader: checks the change as etcd does and proposes it; one change at a time, so a busy one is retried. */
  private propose(op: MemberOp, reqId: number, origin: bigint, deadline = performance.now() + REQUEST_TIMEOUT_MS): void {
    try {
      this.d.raft.proposeConfChange(this.check(op, reqId));
      this.d.scheduleRaft();
    } catch (err) {
      if (err instanceof ProposalDroppedError && performance.now() < deadline) {
        setTimeout(() => {
          if (this.d.raft.isLeader()) this.propose(op, reqId, origin, deadline);
          else this.fail(reqId, origin, Errors.leaderChanged());
        }, this.d.cfg.heartbeatIntervalMs);
        return;
      }
      if (err instanceof EtcdError) return this.fail(reqId, origin, err);
      if (err instanceof ProposalDroppedError) return this.fail(reqId, origin, Errors.timeout());
      if (err instanceof NotLeaderError) return this.fail(reqId, origin, Errors.leaderChanged());
      throw err;
    }
  }

  /**
   * etcd checks on the member a change arrives at that its own connections do not
   * make the change risky: an addition (learners too) needs every voter reachable from
   * here for the last 5 s (isConnectedFullySince), a removal needs a quorum of the rest
   * (numConnectedSince).
   */
  private checkConnectedQuorum(op: MemberOp): void {
    if (op.kind !== 'add' && op.kind !== 'remove') return;
    const { memberId, peers } = this.d;
    const voters = this.d.membership().voters();
    if (op.kind === 'remove' && (!voters.includes(op.id))) return;
    // A member we are not connected to is down: removing it does not shrink the active quorum.
    if (op.kind === 'remove' && op.id !== memberId && peers.activeSince(op.id) === 0) return;
    const since = Date.now() - HEALTH_INTERVAL_MS;
    const connected = (id: bigint) => {
      if (id === memberId) return true;
      const t = peers.activeSince(id);
      return t > 0 && t <= since;
    };
    const active = voters.filter(connected).length;
    if (op.kind === 'add' && active < voters.length) throw Errors.unhealthy();
    if (op.kind === 'remove' && active - 1 < 1 + Math.floor((voters.length - 1) / 2)) throw Errors.unhealthy();
  }

  /** etcd's checks (membership.ValidateConfigurationChange, mayAddMember, mayRemoveMember, mayPromoteMember). */
  private check(op: MemberOp, reqId: number): ConfChange {
    const ms = this.d.membership();
    const { cfg, raft } = this.d;
    const strict = cfg.strictReconfigCheck;
    const voters = ms.list().filter((m) => !m.isLearner);
    switch (op.kind) {
      case 'add': {
        if (!validUrls(op.peerUrls)) throw Errors.memberBadUrls();
        if (ms.peerUrlOwner(op.peerUrls)) throw Errors.peerUrlExists();
        if (op.isLearner) {
          if (ms.learners().length >= cfg.maxLearners) throw Errors.tooManyLearners();
        } else if (strict) {
          // IsReadyToAddVotingMember: a quorum of the grown cluster must have started.
          const n = voters.length + 1;
          const started = voters.filter((m) => m.name !== '').length;
          if (!(started === 1 && n === 2) && started < Math.floor(n / 2) + 1) throw Errors.notEnoughStartedMembers();
        }
        let id = 0n;
        for (let t = Date.now(); id === 0n || ms.has(id) || ms.isRemoved(id); t++) {
          id = computeMemberId(op.peerUrls, cfg.initialClusterToken + String(t));
        }
        const member: MemberRecord = { id, name: '', peerUrls: [...op.peerUrls], clientUrls: [], isLearner: op.isLearner };
        return { type: op.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, nodeId: id, context: encodeConfChangeContext({ reqId, member }) };
      }
      case 'remove': {
        const m = ms.get(op.id);
        if (!m) throw Errors.memberNotFound();
        if (strict && !m.isLearner) {
          // IsReadyToRemoveVotingMember: the rest must still have a quorum of started members.
          const rest = voters.filter((v) => v.id !== op.id);
          if (rest.filter((v) => v.name !== '').length < Math.floor(rest.length / 2) + 1) throw Errors.notEnoughStartedMembers();
        }
        return { type: ConfChangeType.RemoveNode, nodeId: op.id, context: encodeConfChangeContext({ reqId, member: m }) };
      }
      case 'update': {
        const m = ms.get(op.id);
        if (!m) throw Errors.memberNotFound();
        if (!validUrls(op.peerUrls)) throw Errors.memberBadUrls();
        if (ms.peerUrlOwner(op.peerUrls, op.id)) throw Errors.peerUrlExists();
        return { type: ConfChangeType.UpdateNode, nodeId: op.id, context: encodeConfChangeContext({ reqId, member: { ...m, peerUrls: [...op.peerUrls] } }) };
      }
      case 'promote': {
        const m = ms.get(op.id);
        if (!m) throw Errors.memberNotFound();
        if (!m.isLearner) throw Errors.memberNotLearner();
        if (strict) {
          // IsReadyToPromoteMember: the learner counts as started in the grown cluster.
          const started = voters.filter((v) => v.name !== '').length + 1;
          if (started < Math.floor((voters.length + 1) / 2) + 1) throw Errors.notEnoughStartedMembers();
        }
        const learnerMatch = raft.progress(op.id)?.match ?? 0;
        const leaderMatch = raft.progress(this.d.memberId)?.match ?? raft.lastIndex();
        if (learnerMatch < leaderMatch * LEARNER_READY_PERCENT) throw Errors.learnerNotReady();
        return { type: ConfChangeType.AddNode, nodeId: op.id, context: encodeConfChangeContext({ reqId, member: m }) };
      }
    }
  }
}

/** A member op forwarded to the leader (peer-messages.ts): a versioned record. */
function encodeMemberOp(op: MemberOp): Uint8Array {
  return packRecord(op);
}

function decodeMemberOp(data: Uint8Array): MemberOp {
  const v = unpackRecord(data).value;
  const kind = field(v, 'kind', isString);
  const id = () => toBigInt(field(v, 'id', (x): x is unknown => x !== undefined), 'id');
  switch (kind) {
    case 'add': return { kind: 'add', peerUrls: field(v, 'peerUrls', isStrings), isLearner: field(v, 'isLearner', isBoolean) };
    case 'remove': return { kind: 'remove', id: id() };
    case 'update': return { kind: 'update', id: id(), peerUrls: field(v, 'peerUrls', isStrings) };
    case 'promote': return { kind: 'promote', id: id() };
    default: throw new Error(`unknown membership change ${kind}`);
  }
}

/** etcd's types.NewURLs: scheme http/https/unix/unixs, host:port, no path. */
function validUrls(urls: string[]): boolean {
  if (urls.length === 0) return false;
  for (const u of urls) {
    let url: URL;
    try { url = new URL(u); } catch { return false; }
    if (!MEMBER_URL_SCHEMES.includes(url.protocol)) return false;
    if (url.port === '' || (url.pathname !== '' && url.pathname !== '/')) return false;
  }
  return true;
}
