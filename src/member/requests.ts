// The table of client requests waiting for an answer from a worker: admission
// (a bounded number in flight, etcd's "too many requests" past it), request
// ids, answers (whole or in pieces), and etcd's timeout for the ones nobody
// answers.

import { EtcdError, Errors } from '../common/errors.js';
import { reqIdBase } from '../workers/protocol/request-id.js';
import type { StageClock, StageTracker } from './stage-tracker.js';

/** A request with no answer after this long gets etcd's "request timed out" (or "no leader"). */
export const REQUEST_TIMEOUT_MS = 7000;

interface Pending {
  resolve: (body: Buffer) => void;
  reject: (err: EtcdError) => void;
  parts: Buffer[] | null;
  clock: StageClock;
}

export interface RequestObserver {
  added(): void;
  answered(): void;
}

export class RequestTable {
  private readonly pending = new Map<number, Pending>();
  private nextReqId: number;
  private stopped = false;

  constructor(
    memberId: bigint,
    private readonly maxPending: number,
    private readonly tracker: StageTracker,
    /** Told when a request is dropped by the timeout, so whoever holds its id lets go. */
    private readonly onExpired: (reqId: number) => void,
    /** Told when a request starts waiting and when a worker answers one (the main thread's polling follows them). */
    private readonly observer: RequestObserver = { added() {}, answered() {} },
  ) {
    // Unique among this process's in-flight requests; the random base keeps them
    // apart from ids replayed from the log after a restart, the member tag from
    // other members' (they travel inside forwarded entries).
    this.nextReqId = reqIdBase(memberId) + Math.floor(Math.random() * 2 ** 30) * 1024;
  }

  get size(): number { return this.pending.size; }

  /** A new request id, or etcd's refusal when stopping or full. */
  /**
   * etcd_server_proposals_failed_total: proposals that never got an answer from the log
   * (refused, timed out, leader lost); an applied request that answers an error is not one.
   */
  failedTotal = 0;

  admit(): number {
    if (this.stopped) throw Errors.stopped();
    if (this.pending.size >= this.maxPending) throw Errors.tooManyRequests();
    return this.nextReqId++;
  }

  add(reqId: number, clock: StageClock, resolve: (body: Buffer) => void, reject: (err: EtcdError) => void): void {
    this.pending.set(reqId, { resolve, reject, parts: null, clock });
    this.observer.added();
  }

  /** A leading piece of a large answer. */
  part(reqId: number, body: Buffer): void {
    const p = this.pending.get(reqId);
    if (p) (p.parts ??= []).push(body);
  }

  /** The answer; a request replayed from the log after restart has nobody waiting and is ignored. */
  settle(reqId: number, outcome: { ok: true; body: Buffer } | { ok: false; err: EtcdError }): void {
    const p = this.pending.get(reqId);
    if (!p) return;
    this.pending.delete(reqId);
    const tApplied = performance.now();
    if (outcome.ok) p.resolve(p.parts ? Buffer.concat([...p.parts, outcome.body]) : outcome.body);
    else p.reject(outcome.err);
    this.observer.answered();
    // The response is written by the promise's continuation, which runs before this microtask.
    queueMicrotask(() => this.tracker.record(p.clock, tApplied, performance.now()));
  }

  fail(reqId: number, err: EtcdError): void {
    const p = this.pending.get(reqId);
    if (!p) return;
    this.pending.delete(reqId);
    this.failedTotal++;
    p.reject(err);
  }

  /**
   * Writes this follower forwarded to a leader that is gone may never reach the
   * log: answer them "leader changed" (Unavailable; clients retry) now instead of
   * a timeout seconds later. One that did reach the log still applies; nobody waits for it.
   */
  failForwarded(): void {
    for (const [id, p] of this.pending) {
      if (!p.clock.forwarded) continue;
      this.pending.delete(id);
      this.failedTotal++;
      p.reject(Errors.leaderChanged());
    }
  }

  /** Requests nobody answered in time (lost leader, dropped forward) get etcd's timeout. */
  sweep(noLeader: boolean): void {
    const limit = performance.now() - REQUEST_TIMEOUT_MS;
    for (const [id, p] of this.pending) {
      // An answer under way (pieces came, e.g. a physical compaction waiting for its sweep) is not timed out:
      // the worker that began it ends it, and etcd too waits for a physical compaction without a deadline.
      if (p.parts !== null) continue;
      if (p.clock.tReceived > 0 && p.clock.tReceived < limit) {
        this.pending.delete(id);
        this.failedTotal++;
        this.onExpired(id);
        p.reject(noLeader ? Errors.noLeader() : Errors.timeout());
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) p.reject(Errors.stopped());
    this.pending.clear();
  }
}
