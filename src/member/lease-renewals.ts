// Lease keep-alives and TimeToLive as etcd answers them: only the leader's
// lessor knows whether a lease is alive and how long it has left, so a
// follower forwards each keep-alive (and each TimeToLive) to the leader (on
// the raft transport, beside raft's messages) and answers with the leader's
// TTL, 0 for a keep-alive of a lease the leader does not hold, as etcd's
// LeaseRenew and LeaseTimeToLive do over the peer /leases endpoints. A follower never answers from its own
// clock: a follower cut off from the leader must not tell a client (Patroni,
// say) that its lease lives while the majority lets it expire.
// No leader, or no answer within the request timeout: the keep-alive fails
// with etcd's "request timed out" (etcd waits for a leader and retries, as
// here, every RETRY_MS). Bound: at most MAX_PENDING forwarded keep-alives wait
// at once; beyond that, etcd's "too many requests".

import { Errors, type EtcdError } from '../common/errors.js';
import type { Message } from '../raft/types.js';
import type { Lessor } from './lessor.js';
import { leaseRenewMessage, leaseRenewedMessage, leaseTtlAnswerMessage, leaseTtlMessage, NOT_LEADER_TTL } from './peer-messages.js';
import { REQUEST_TIMEOUT_MS } from './requests.js';

/** Forwarded keep-alives waiting for the leader at once. */
const MAX_PENDING = 10_000;
/** etcd retries a forward to the leader every 50 ms while the request's time lasts. */
const RETRY_MS = 50;

/** The leader's TimeToLive answer: seconds left and the granted TTL; null for no such lease. */
export type LeaseTtl = { ttl: number; granted: number } | null;

interface Waiter {
  leaseId: bigint;
  /** A keep-alive (renews the lease) or a TimeToLive (only reads it). */
  kind: 'renew' | 'ttl';
  deadline: number;
  resolve(answer: number | LeaseTtl): void;
  reject(err: EtcdError): void;
  timer: NodeJS.Timeout | undefined;
}

export interface LeaseRenewalDeps {
  memberId: bigint;
  raft: { isLeader(): boolean; readonly lead: bigint };
  lessor: Lessor;
  send(msgs: Message[]): void;
  timeoutMs?: number;
}

export class LeaseRenewals {
  private readonly pending = new Map<number, Waiter>();
  private nextReq = 1;

  constructor(private readonly d: LeaseRenewalDeps) {}

  /** A client's keep-alive: the lease's TTL in seconds, 0 if the leader holds no such lease. */
  renew(leaseId: bigint): Promise<number> {
    if (this.d.raft.isLeader()) return Promise.resolve(this.d.lessor.renew(leaseId) ?? 0);
    return this.forward(leaseId, 'renew') as Promise<number>;
  }

  /** A client's TimeToLive: the leader's clock (a follower's does not see keep-alives sent elsewhere). */
  timeToLive(leaseId: bigint): Promise<LeaseTtl> {
    if (this.d.raft.isLeader()) return Promise.resolve(this.d.lessor.remaining(leaseId));
    return this.forward(leaseId, 'ttl') as Promise<LeaseTtl>;
  }

  private forward(leaseId: bigint, kind: Waiter['kind']): Promise<number | LeaseTtl> {
    if (this.pending.size >= MAX_PENDING) return Promise.reject(Errors.tooManyRequests());
    const reqId = this.nextReq;
    this.nextReq = this.nextReq >= 0x7fffffff ? 1 : this.nextReq + 1;
    return new Promise<number | LeaseTtl>((resolve, reject) => {
      const w: Waiter = { leaseId, kind, deadline: performance.now() + (this.d.timeoutMs ?? REQUEST_TIMEOUT_MS), resolve, reject, timer: undefined };
      this.pending.set(reqId, w);
      this.attempt(reqId, w);
    });
  }

  /** Sends to the leader we know now, or waits for one; gives up at the deadline. */
  private attempt(reqId: number, w: Waiter): void {
    const now = performance.now();
    if (now >= w.deadline) {
      this.pending.delete(reqId);
      w.reject(Errors.timeout());
      return;
    }
    const { raft } = this.d;
    if (raft.isLeader()) {
      this.pending.delete(reqId);
      w.resolve(w.kind === 'renew' ? (this.d.lessor.renew(w.leaseId) ?? 0) : this.d.lessor.remaining(w.leaseId));
      return;
    }
    if (raft.lead !== 0n) {
      const build = w.kind === 'renew' ? leaseRenewMessage : leaseTtlMessage;
      this.d.send([build(this.d.memberId, raft.lead, reqId, w.leaseId)]);
    }
    // A lost message, a leader that stepped down: ask again until the deadline (an answer settles it first).
    w.timer = setTimeout(() => this.attempt(reqId, w), raft.lead === 0n ? RETRY_MS : Math.min(1000, Math.max(RETRY_MS, w.deadline - now)));
    w.timer.unref();
  }

  /** A follower forwarded a keep-alive to us: the leader's lessor answers; a non-leader says so. */
  onRequest(from: bigint, reqId: number, leaseId: bigint): void {
    const ttl = this.d.raft.isLeader() ? (this.d.lessor.renew(leaseId) ?? 0) : NOT_LEADER_TTL;
    this.d.send([leaseRenewedMessage(this.d.memberId, from, reqId, ttl)]);
  }

  /** A follower forwarded a TimeToLive to us: the leader's lessor answers (ttl -1: no such lease); a non-leader says so. */
  onTtlRequest(from: bigint, reqId: number, leaseId: bigint): void {
    if (!this.d.raft.isLeader()) {
      this.d.send([leaseTtlAnswerMessage(this.d.memberId, from, reqId, NOT_LEADER_TTL, NOT_LEADER_TTL)]);
      return;
    }
    const left = this.d.lessor.remaining(leaseId);
    this.d.send([leaseTtlAnswerMessage(this.d.memberId, from, reqId, left ? left.ttl : -1, left ? left.granted : 0)]);
  }

  /** The leader answered a TimeToLive we forwarded. */
  onTtlReply(reqId: number, ttl: number, granted: number): void {
    const w = this.pending.get(reqId);
    if (w === undefined || w.kind !== 'ttl') return;
    if (granted === NOT_LEADER_TTL) return; // It no longer leads: the retry timer asks whoever leads next.
    clearTimeout(w.timer);
    this.pending.delete(reqId);
    w.resolve(granted === 0 && ttl === -1 ? null : { ttl, granted });
  }

  /** The leader answered a keep-alive we forwarded. */
  onReply(reqId: number, ttl: number): void {
    const w = this.pending.get(reqId);
    if (w === undefined || w.kind !== 'renew') return;
    if (ttl === NOT_LEADER_TTL) return; // It no longer leads: the retry timer asks whoever leads next.
    clearTimeout(w.timer);
    this.pending.delete(reqId);
    // Our clock follows the leader's for the leases our clients keep alive: TimeToLive here reads it.
    if (ttl > 0) this.d.lessor.renew(w.leaseId);
    w.resolve(ttl);
  }

  /** A new leader: waiting keep-alives go to it now rather than at their next retry. */
  leaderChanged(): void {
    for (const [reqId, w] of this.pending) {
      clearTimeout(w.timer);
      this.attempt(reqId, w);
    }
  }

  /** Member stopping: nobody waits forever. */
  stop(): void {
    for (const w of this.pending.values()) {
      clearTimeout(w.timer);
      w.reject(Errors.timeout());
    }
    this.pending.clear();
  }
}
