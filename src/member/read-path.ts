// Reads: Range on a shard (round robin), linearizable ones after ReadIndex;
// one-off shard requests (LeaseKeys, Hash, HashKV). It also keeps the applied
// index, which is what a waiting read waits for.

import { Errors } from '../common/errors.js';
import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import type { RaftNode } from '../raft/node.js';
import type { ReadState } from '../raft/types.js';
import type { Outbox } from '../workers/outbox.js';
import { ShardOp, decodeLeaseKeys, shardRequestHeader } from '../workers/protocol/shard-ring.js';
import type { RequestTable } from './requests.js';
import { newClock } from './stage-tracker.js';

/** What the read path needs to know of this member's place in the cluster. */
export interface RoleView {
  /** The only voter is us: reads need nobody else. */
  readonly soleVoter: boolean;
  readonly learner: boolean;
}

const EMPTY = Buffer.alloc(0);

interface WaitingRead { index: number; send: () => void }

export class ReadPath {
  private appliedIndex: number;
  private nextShard = 0;
  private waiting: WaitingRead[] = [];
  /** Linearizable reads waiting for their ReadIndex answer, by request id (the read context). */
  private readCtxs = new Map<number, () => void>();

  constructor(
    private readonly raft: RaftNode,
    private readonly requests: RequestTable,
    private readonly shards: Outbox[],
    private readonly role: RoleView,
    /** Asks the raft loop for a turn (a ReadIndex request waits in raft until then). */
    private readonly scheduleRaft: () => void,
    appliedIndex: number,
  ) {
    this.appliedIndex = appliedIndex;
  }

  get applied(): number { return this.appliedIndex; }

  /** The apply worker got to index: serve the reads waiting for it. */
  advanceApplied(index: number): void {
    if (index > this.appliedIndex) this.appliedIndex = index;
    let n = 0;
    while (n < this.waiting.length && this.waiting[n]!.index <= this.appliedIndex) this.waiting[n++]!.send();
    if (n > 0) this.waiting.splice(0, n);
  }

  /** Raft's answers to our ReadIndex requests. */
  onReadStates(states: ReadState[]): void {
    for (const rs of states) {
      const send = this.readCtxs.get(Number(rs.requestCtx));
      if (!send) continue;
      this.readCtxs.delete(Number(rs.requestCtx));
      this.waiting.push({ index: rs.index, send });
    }
    this.waiting.sort((a, b) => a.index - b.index);
    this.advanceApplied(this.appliedIndex);
  }

  /** A request the table timed out. */
  forget(reqId: number): void { this.readCtxs.delete(reqId); }

  /** Serves a Range on a shard; linearizable reads first wait for the read index to apply. */
  range(request: Buffer, serializable: boolean, tReceived = performance.now()): Promise<Buffer> {
    const reqId = this.requests.admit();
    return new Promise<Buffer>((resolve, reject) => {
      const clock = newClock(serializable ? 'Range(s)' : 'Range', tReceived, tReceived);
      this.requests.add(reqId, clock, resolve, reject);
      const send = () => {
        clock.tCommitted = performance.now();
        this.nextShardOutbox().send([shardRequestHeader(ShardOp.Range, reqId), request]);
      };
      if (serializable) return send();
      if (FAILPOINTS_ARMED && failpoint('rangeBeforeReadIndex')) return send();
      this.afterReadIndex(reqId, send);
    });
  }

  /**
   * etcd's linearizableReadNotify: resolves once this member has applied
   * everything committed when it was called (Authenticate reads the auth
   * store after it, so a user added a moment ago is found).
   */
  linearizableBarrier(): Promise<void> {
    const reqId = this.requests.admit();
    return new Promise<void>((resolve, reject) => {
      this.requests.add(reqId, newClock('ReadIndex', performance.now()), () => resolve(), reject);
      this.afterReadIndex(reqId, () => this.requests.settle(reqId, { ok: true, body: EMPTY }));
    });
  }

  /** Runs `send` once the read index is applied here (ReadIndex through the leader unless we are the only voter). */
  private afterReadIndex(reqId: number, send: () => void): void {
    // The learner gate lets Range through; only serializable ones may be served here.
    if (this.role.learner) return this.requests.fail(reqId, Errors.notSupportedForLearner());
    if (this.role.soleVoter) {
      const readIndex = this.raft.readIndex();
      if (readIndex <= this.appliedIndex) send();
      else this.waiting.push({ index: readIndex, send });
      return;
    }
    if (this.raft.lead === 0n) return this.requests.fail(reqId, Errors.noLeader());
    // ReadIndex: the leader confirms it still leads, then the read waits for that index here.
    this.readCtxs.set(reqId, send);
    this.raft.readIndex(reqId);
    this.scheduleRaft();
  }

  /** A one-off request to a shard: resolves with the shard's Ok body (or rejects with its error). Shards take turns. */
  shardCall(op: ShardOp, payload: Uint8Array, rpc: string): Promise<Buffer> {
    const reqId = this.requests.admit();
    return new Promise<Buffer>((resolve, reject) => {
      this.requests.add(reqId, newClock(rpc, 0), resolve, reject);
      this.nextShardOutbox().send([shardRequestHeader(op, reqId), payload]);
    });
  }

  /** The keys attached to a lease, read by a shard. */
  async leaseKeys(id: bigint): Promise<Buffer[]> {
    const idBytes = Buffer.allocUnsafe(8);
    idBytes.writeBigInt64LE(id, 0);
    return decodeLeaseKeys(await this.shardCall(ShardOp.LeaseKeys, idBytes, 'LeaseKeys'));
  }

  private nextShardOutbox(): Outbox {
    const out = this.shards[this.nextShard]!;
    this.nextShard = (this.nextShard + 1) % this.shards.length;
    return out;
  }
}
