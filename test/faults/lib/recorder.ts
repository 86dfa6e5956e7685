// Records KV requests against real servers: invoke and return times from
// process.hrtime (ns since the recorder was made), and the outcome. A gRPC
// error that means "refused before anything happened" is 'fail'; every other
// error (deadline, unavailable, lost connection, "request timed out", leader
// changes) is 'unknown': the write may still commit. Except UNAVAILABLE "No
// connection established" (grpc-js: the call was never sent, the member was
// down): 'fail', or a member down for seconds floods the history with
// unknown writes the linearizability search has to try both ways.

import { KvClient, compare, isGrpcError, op as reqOp } from '../../integration/kv-client.js';
import type { KeyValue } from '../../../src/proto/kv-types.js';
import type { KvInput, KvOp, KvOutput, KvSnap } from './history.js';

/** INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED ("too many requests"), OUT_OF_RANGE, UNAUTHENTICATED. */
const DEFINITE_CODES = new Set([3, 7, 8, 11, 16]);

const snap = (kv: KeyValue | undefined): KvSnap | null => (kv ? { value: kv.value.toString('utf8'), modRevision: kv.modRevision } : null);
const B = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Sends one request and maps the response to the history's output shape. */
export async function execute(kv: KvClient, i: KvInput, deadlineMs: number): Promise<KvOutput> {
  switch (i.type) {
    case 'put': {
      const r = await kv.put({ key: B(i.key), value: B(i.value), prevKv: i.prevKv }, deadlineMs);
      return { type: 'put', revision: r.header.revision, ...(i.prevKv ? { prevKv: snap(r.prevKv ?? undefined) } : {}) };
    }
    case 'get': {
      const r = await kv.range({ key: B(i.key), serializable: i.serializable }, deadlineMs);
      return { type: 'get', revision: r.header.revision, kv: snap(r.kvs[0]) };
    }
    case 'delete': {
      const r = await kv.deleteRange({ key: B(i.key), prevKv: i.prevKv }, deadlineMs);
      return { type: 'delete', revision: r.header.revision, deleted: r.deleted, ...(i.prevKv ? { prevKv: snap(r.prevKvs[0]) } : {}) };
    }
    case 'cas': {
      const cmp = i.cmp.target === 'mod'
        ? compare({ key: B(i.key), result: 0, target: 2, modRevision: i.cmp.modRevision, targetUnion: 'modRevision' })
        : compare({ key: B(i.key), result: 0, target: 3, value: B(i.cmp.value), targetUnion: 'value' });
      const r = await kv.txn({ compare: [cmp], success: [reqOp.put({ key: B(i.key), value: B(i.value) })], failure: [reqOp.range({ key: B(i.key) })] }, deadlineMs);
      const first = r.responses[0];
      return { type: 'cas', revision: r.header.revision, succeeded: r.succeeded, kv: !r.succeeded && first?.kind === 'range' ? snap(first.range.kvs[0]) : null };
    }
  }
}

export class Recorder {
  readonly ops: KvOp[] = [];
  private readonly origin = process.hrtime.bigint();
  private ackWaiters: (() => void)[] = [];

  now(): number { return Number(process.hrtime.bigint() - this.origin); }

  /** Resolves when the next write that made a revision (put, delete of a key, successful CAS) is acknowledged. */
  nextWriteAck(): Promise<void> { return new Promise((r) => this.ackWaiters.push(r)); }

  /** Runs one request and records it; never throws for a gRPC failure. */
  async run(kv: KvClient, client: number, member: string, input: KvInput, deadlineMs: number): Promise<KvOp> {
    const op: KvOp = { id: this.ops.length, client, member, input, call: this.now(), ret: Infinity, outcome: 'unknown' };
    this.ops.push(op);
    try {
      op.output = await execute(kv, input, deadlineMs);
      op.ret = this.now();
      op.outcome = 'ok';
      const o = op.output;
      if (o.type === 'put' || (o.type === 'delete' && o.deleted > 0) || (o.type === 'cas' && o.succeeded)) for (const w of this.ackWaiters.splice(0)) w();
    } catch (err) {
      if (!isGrpcError(err)) throw err;
      op.error = `${err.code} ${err.details}`;
      if (DEFINITE_CODES.has(err.code) || (err.code === 14 && err.details.startsWith('No connection established'))) { op.outcome = 'fail'; op.ret = this.now(); }
    }
    return op;
  }
}
