// A shard worker: serves Range requests from the RocksDB handle the apply
// worker opened, at the revision the apply worker last published, and holds
// the watchers whose ids hash to it, fed by the apply worker's event stream.

import { parentPort, workerData } from 'node:worker_threads';
import { RocksLevel } from '@nxtedition/rocksdb';
import { Ring, waitAnyReadable } from './ring/ring.js';
import { Shared, loadShared, sharedState } from './protocol/shared-state.js';
import { ShardOp, encodeLeaseKeys } from './protocol/shard-ring.js';
import { encodeProgress, encodeResultError, writeResultOk, writeWatchData } from './protocol/result-ring.js';
import { writeBlocking } from './ring/write-blocking.js';
import { readRevisionEvents, readStorageReset } from './events.js';
import { WatchHub, type WatchCreate } from './watch-hub.js';
import { DbReader } from '../storage/mvcc/reader.js';
import { attachedKeys } from '../storage/mvcc/leases.js';
import { checkSortOptions, executeRange } from '../storage/mvcc/range.js';
import { EtcdError, Errors } from '../common/errors.js';
import * as codec from '../proto/kv-codec.js';

export interface ShardWorkerData {
  shardId: number;
  handle: bigint;
  clusterId: bigint;
  memberId: bigint;
  shared: SharedArrayBuffer;
  inRing: SharedArrayBuffer;
  outRing: SharedArrayBuffer;
  eventRing: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  maxRequestBytes: number;
  progressNotifyMs: number;
}

async function main(): Promise<void> {
  const d = workerData as ShardWorkerData;
  const db = new RocksLevel(d.handle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const reader = new DbReader(db);
  const shared = sharedState(d.shared);
  const inRing = new Ring(d.inRing, { doorbell: d.doorbell });
  const eventRing = new Ring(d.eventRing, { doorbell: d.doorbell });
  const outRing = new Ring(d.outRing);
  const header = (revision: number) => ({
    clusterId: d.clusterId, memberId: d.memberId, revision, raftTerm: loadShared(shared, Shared.RaftTerm),
  });
  const hub = new WatchHub(reader, {
    header,
    publishedRev: () => loadShared(shared, Shared.Revision),
    compactRev: () => loadShared(shared, Shared.CompactRevision),
    storageEpoch: () => loadShared(shared, Shared.StorageEpoch),
    send: (streamId, watchId, body) => writeWatchData(outRing, streamId, watchId, body),
    maxRequestBytes: d.maxRequestBytes,
  });
  parentPort!.postMessage({ type: 'ready' });

  const serveRange = (request: Buffer): Buffer => {
    const r = codec.decodeRangeRequest(request);
    checkSortOptions(r);
    // A snapshot install rewrites storage under us: refuse (clients retry UNAVAILABLE) rather than answer from half of it.
    const epoch = loadShared(shared, Shared.StorageEpoch);
    if (epoch % 2 === 1) throw Errors.timeout();
    const rev = loadShared(shared, Shared.Revision);
    const compactRev = loadShared(shared, Shared.CompactRevision);
    const out = executeRange(reader, reader, r, rev, compactRev);
    if (loadShared(shared, Shared.StorageEpoch) !== epoch) throw Errors.timeout();
    // A compaction that started while we read may have removed what we saw.
    const readRev = r.revision > 0 ? r.revision : rev;
    if (readRev < loadShared(shared, Shared.CompactRevision)) throw Errors.compacted();
    return codec.encodeRangeResponse({ header: header(out.revision), kvs: out.kvs, more: out.more, count: out.count });
  };

  const answer = (id: number, serve: () => Buffer) => {
    try {
      // As serveRange: never answer from storage a snapshot install is replacing.
      const epoch = loadShared(shared, Shared.StorageEpoch);
      if (epoch % 2 === 1) throw Errors.timeout();
      const body = serve();
      if (loadShared(shared, Shared.StorageEpoch) !== epoch) throw Errors.timeout();
      writeResultOk(outRing, id, body);
    } catch (err) {
      if (!(err instanceof EtcdError)) throw err;
      writeBlocking(outRing, encodeResultError(id, err.code, err.message));
    }
  };

  const handleRequest = (b: Buffer) => {
    const op = b[0];
    const id = b.readDoubleLE(1);
    switch (op) {
      case ShardOp.Range: return answer(id, () => serveRange(b.subarray(9)));
      case ShardOp.WatchCreate: return hub.create(decodeWatchCreate(b));
      case ShardOp.WatchCancel: return hub.cancel(id, b.readDoubleLE(9));
      case ShardOp.StreamClose: return hub.closeStream(id);
      case ShardOp.StreamPause: return hub.pause(id);
      case ShardOp.StreamResume: return hub.resume(id);
      case ShardOp.LeaseKeys: return answer(id, () => {
        return encodeLeaseKeys(attachedKeys(db, b.readBigInt64LE(9)));
      });
      case ShardOp.Progress: return writeBlocking(outRing, [encodeProgress(id, b.readDoubleLE(9), hub.progressRev(id))]);
      default: throw new Error(`unknown shard op ${op}`);
    }
  };

  let nextProgress = Date.now() + d.progressNotifyMs;
  for (;;) {
    const behind = hub.syncStep();
    if (!behind && !waitAnyReadable([eventRing, inRing], d.doorbell, 1000)) {
      if (Date.now() >= nextProgress) { hub.notifyProgress(); nextProgress = Date.now() + d.progressNotifyMs; }
      continue;
    }
    outRing.cork();
    // Events first: a watcher created after them must not see them live.
    eventRing.drain((view) => {
      const reset = readStorageReset(view);
      if (reset !== null) return hub.resync(reset);
      const { last, rev, events } = readRevisionEvents(view);
      hub.onEvents(last, rev, events);
    }, 256);
    inRing.drain((view) => handleRequest(Buffer.from(view.buffer, view.byteOffset, view.byteLength)), 256);
    outRing.uncork();
    if (Date.now() >= nextProgress) { hub.notifyProgress(); nextProgress = Date.now() + d.progressNotifyMs; }
  }
}

/**
 * u8 op | f64 streamId | f64 watchId | f64 minRev | u8 flags | u8 endKind | u32 keyLen | key | u32 endLen | end
 * key and end are views of the record (the hub copies what it keeps).
 */
export function decodeWatchCreate(b: Buffer): WatchCreate {
  const flags = b[25]!;
  const endKind = b[26]!;
  const kl = b.readUInt32LE(27);
  const key = b.subarray(31, 31 + kl);
  const el = b.readUInt32LE(31 + kl);
  const end = b.subarray(35 + kl, 35 + kl + el);
  return {
    streamId: b.readDoubleLE(1), watchId: b.readDoubleLE(9), minRev: b.readDoubleLE(17),
    prevKv: (flags & 1) !== 0, fragment: (flags & 2) !== 0, progressNotify: (flags & 4) !== 0,
    noPut: (flags & 8) !== 0, noDelete: (flags & 16) !== 0,
    key, end: endKind === 0 ? null : endKind === 1 ? Buffer.alloc(0) : end,
  };
}

main().catch((err: unknown) => {
  console.error('shard worker failed:', err);
  process.exit(70);
});
