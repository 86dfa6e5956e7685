// A shard worker: serves Range requests from the RocksDB handle the apply
// worker opened, at the revision the apply worker last published.

import { parentPort, workerData } from 'node:worker_threads';
import { RocksLevel } from '@nxtedition/rocksdb';
import { Ring } from './ring/ring.js';
import { Shared, encodeResultError, loadShared, sharedState, writeBlocking, writeResultOk } from './messages.js';
import { DbReader } from '../storage/mvcc/reader.js';
import { checkSortOptions, executeRange } from '../storage/mvcc/range.js';
import { EtcdError, Errors } from '../server/errors.js';
import * as codec from '../proto/kv-codec.js';

export interface ShardWorkerData {
  shardId: number;
  handle: bigint;
  clusterId: bigint;
  memberId: bigint;
  shared: SharedArrayBuffer;
  inRing: SharedArrayBuffer;
  outRing: SharedArrayBuffer;
}

/** Shard request records: u8 op | f64 reqId | request bytes. */
export const enum ShardOp { Range = 1 }

async function main(): Promise<void> {
  const d = workerData as ShardWorkerData;
  const db = new RocksLevel(d.handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const reader = new DbReader(db);
  const shared = sharedState(d.shared);
  const inRing = new Ring(d.inRing);
  const outRing = new Ring(d.outRing);
  parentPort!.postMessage({ type: 'ready' });

  const serveRange = (request: Buffer): Buffer => {
    const r = codec.decodeRangeRequest(request);
    checkSortOptions(r);
    const rev = loadShared(shared, Shared.Revision);
    const compactRev = loadShared(shared, Shared.CompactRevision);
    const out = executeRange(reader, reader, r, rev, compactRev);
    // A compaction that started while we read may have removed what we saw.
    const readRev = r.revision > 0 ? r.revision : rev;
    if (readRev < loadShared(shared, Shared.CompactRevision)) throw Errors.compacted();
    return codec.encodeRangeResponse({
      header: { clusterId: d.clusterId, memberId: d.memberId, revision: out.revision, raftTerm: loadShared(shared, Shared.RaftTerm) },
      kvs: out.kvs, more: out.more, count: out.count,
    });
  };

  for (;;) {
    if (inRing.isEmpty()) {
      inRing.waitReadable(1000);
      continue;
    }
    const replies: { reqId: number; body: Buffer | null; err: EtcdError | null }[] = [];
    inRing.drain((view) => {
      const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
      const reqId = b.readDoubleLE(1);
      try {
        if (b[0] !== ShardOp.Range) throw new Error(`unknown shard op ${b[0]}`);
        replies.push({ reqId, body: serveRange(b.subarray(9)), err: null });
      } catch (err) {
        if (!(err instanceof EtcdError)) throw err;
        replies.push({ reqId, body: null, err });
      }
    }, 256);
    outRing.cork();
    for (const r of replies) {
      if (r.body) writeResultOk(outRing, r.reqId, r.body);
      else writeBlocking(outRing, encodeResultError(r.reqId, r.err!.code, r.err!.message));
    }
    outRing.uncork();
  }
}

main().catch((err: unknown) => {
  console.error('shard worker failed:', err);
  process.exit(70);
});
