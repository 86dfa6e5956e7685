// The table of client requests waiting for an answer from a worker: admission
// (a bounded number in flight, etcd's "too many requests" past it), request
// ids, answers (whole or in pieces), and etcd's timeout for the ones nobody
// answers.

import { EtcdError, Errors } from '../common/errors.js';
import { reqIdBase } from '../workers/protocol/request-id.js';
import type { StageClock, StageTracker } from './stage-tracker.js';

/** A request with no answer after this long gets etcd's "request timed out" (or "no leader"). */
export const REQUEST_TIMEOUT_MS = 7000;

/** Who hears a request's answer: a promise's resolve and reject, or a gRPC stream itself. */
export interface AnswerSink {
  resolve(body: Buffer): void;
  reject(err: EtcdError): void;
}

interface Pending {
  reqId: number;
  sink: AnswerSink;
  parts: Buffer[] | null;
  clock: StageClock;
}

export interface RequestObserver {
  added(): void;
  answered(): void;
}

/**
 * The table's key for a request id: its low 30 bits. Ids are above 2^31, and
 * a Map keyed by them hashed a heap number on every set, get and delete
 * (perf at 1000 clients: ~5% of the main thread in the table's Map); these
 * keys are small integers. Ids this member hands out are consecutive, so two
 * in flight never share a key; an id from elsewhere (a log replayed after a
 * restart) that shares one is told apart by the id kept in the entry.
 */
const keyOf = (reqId: number): number => reqId % 0x40000000;

export class RequestTable {
  private readonly pending = new Map<number, Pending>();
  private nextReqId: number;
  private stopped = false;
  /** Answered requests whose stages are recorded at the end of the chunk of answers (answersWritten). */
  private readonly stamped: StageClock[] = [];
  private readonly stampedApplied: number[] = [];
  private stampQueued = false;

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
    // Past one still waiting 2^30 ids ago (a physical compaction can wait on its sweep for long).
    while (this.pending.has(keyOf(this.nextReqId))) this.nextReqId++;
    return this.nextReqId++;
  }

  add(reqId: number, clock: StageClock, resolve: (body: Buffer) => void, reject: (err: EtcdError) => void): void {
    this.addSink(reqId, clock, { resolve, reject });
  }

  /** The request's answer goes to `sink` (a gRPC stream answers itself: no promise per call). */
  addSink(reqId: number, clock: StageClock, sink: AnswerSink): void {
    this.pending.set(keyOf(reqId), { reqId, sink, parts: null, clock });
    this.observer.added();
  }

  /** A leading piece of a large answer. */
  part(reqId: number, body: Buffer): void {
    const p = this.find(reqId);
    if (p) (p.parts ??= []).push(body);
  }

  /** The answer; a request replayed from the log after restart has nobody waiting and is ignored. True if one waited. */
  settle(reqId: number, outcome: { ok: true; body: Buffer } | { ok: false; err: EtcdError }): boolean {
    const p = this.find(reqId);
    if (!p) return false;
    this.pending.delete(keyOf(reqId));
    const tApplied = performance.now();
    if (outcome.ok) p.sink.resolve(p.parts ? Buffer.concat([...p.parts, outcome.body]) : outcome.body);
    else p.sink.reject(outcome.err);
    this.observer.answered();
    this.stamped.push(p.clock);
    this.stampedApplied.push(tApplied);
    return true;
  }

  /**
   * The result router handed out a chunk of answers. Their responses are written by
   * the promises' continuations, which run in this turn's microtasks ahead of the one
   * queued here; it then records the stages of the whole chunk with one clock read.
   * (One microtask per request cost an AsyncResource and a bound function each.)
   */
  answersHandedOut(): void {
    if (this.stamped.length === 0 || this.stampQueued) return;
    this.stampQueued = true;
    queueMicrotask(this.recordStamped);
  }

  private readonly recordStamped = (): void => {
    this.stampQueued = false;
    const now = performance.now();
    for (let i = 0; i < this.stamped.length; i++) this.tracker.record(this.stamped[i]!, this.stampedApplied[i]!, now);
    this.stamped.length = 0;
    this.stampedApplied.length = 0;
  };

  fail(reqId: number, err: EtcdError): void {
    const p = this.find(reqId);
    if (!p) return;
    this.pending.delete(keyOf(reqId));
    this.failedTotal++;
    p.sink.reject(err);
  }

  /**
   * Writes this follower forwarded to a leader that is gone may never reach the
   * log: answer them "leader changed" (Unavailable; clients retry) now instead of
   * a timeout seconds later. One that did reach the log still applies; nobody waits for it.
   */
  failForwarded(): void {
    for (const [key, p] of this.pending) {
      if (!p.clock.forwarded) continue;
      this.pending.delete(key);
      this.failedTotal++;
      p.sink.reject(Errors.leaderChanged());
    }
  }

  /** Requests nobody answered in time (lost leader, dropped forward) get etcd's timeout. */
  sweep(noLeader: boolean): void {
    const limit = performance.now() - REQUEST_TIMEOUT_MS;
    for (const [key, p] of this.pending) {
      // An answer under way (pieces came, e.g. a physical compaction waiting for its sweep) is not timed out:
      // the worker that began it ends it, and etcd too waits for a physical compaction without a deadline.
      if (p.parts !== null) continue;
      if (p.clock.tReceived > 0 && p.clock.tReceived < limit) {
        this.pending.delete(key);
        this.failedTotal++;
        this.onExpired(p.reqId);
        p.sink.reject(noLeader ? Errors.noLeader() : Errors.timeout());
      }
    }
  }

  private find(reqId: number): Pending | undefined {
    const p = this.pending.get(keyOf(reqId));
    return p !== undefined && p.reqId === reqId ? p : undefined;
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) p.sink.reject(Errors.stopped());
    this.pending.clear();
  }
}
