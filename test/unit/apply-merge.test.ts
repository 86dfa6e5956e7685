// The apply worker takes entries from two producers: the main thread and (entries a
// sole voter's durability commits) the WAL worker. Whatever order they arrive in,
// it applies them in log order, each once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ETCD_DISK_BUCKETS, SharedHistogram } from '../../src/common/shared-histogram.js';
import { decodePutResponse, encodePutRequest } from '../../src/proto/kv-codec.js';
import type { ApplyWorkerData } from '../../src/workers/apply-worker.js';
import { startApplyWorker } from '../common/apply-worker.js';
import { EntryKind, encodeEntryData } from '../../src/workers/protocol/entry.js';
import { reqIdBase } from '../../src/workers/protocol/request-id.js';
import { ResultType, decodeResult, type Result } from '../../src/workers/protocol/result-ring.js';
import { Shared } from '../../src/workers/protocol/shared-state.js';
import { Ring } from '../../src/workers/ring/ring.js';

const MEMBER = 2n;

function putEntry(index: number, key: string): Uint8Array[] {
  const h = Buffer.allocUnsafe(16);
  h.writeDoubleLE(index, 0);
  h.writeDoubleLE(1, 8);
  const req = encodePutRequest({ key: Buffer.from(key), value: Buffer.from(`v-${key}`), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  return [h, encodeEntryData(EntryKind.Put, reqIdBase(MEMBER) + index, req)];
}

test('entries from the main ring and the WAL ring apply in log order, whatever ring brings them first', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-apply-merge-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const doorbell = new SharedArrayBuffer(4);
  const inSab = Ring.allocate(1024 * 1024);
  const directSab = Ring.allocate(1024 * 1024);
  const outSab = Ring.allocate(1024 * 1024);
  const data: ApplyWorkerData = {
    dbDir: path.join(dir, 'db'), clusterId: 1n, memberId: MEMBER, shared: new SharedArrayBuffer(8 * Shared.Size),
    inRing: inSab, outRing: outSab, directRing: directSab, doorbell,
    eventRings: [], doorbells: [], watcherCounts: new SharedArrayBuffer(4),
    commitHistogram: SharedHistogram.allocate(ETCD_DISK_BUCKETS), quotaBytes: Infinity,
  };
  const { ready, failed } = await startApplyWorker(t, data);
  assert.equal(ready.appliedIndex, 0);

  const fromMain = new Ring(inSab, { doorbell });
  const fromWal = new Ring(directSab, { doorbell });
  const out = new Ring(outSab);
  const results: Result[] = [];
  const appliedTo = async (index: number): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!results.some((r) => r.type === ResultType.Applied && r.index >= index)) {
      if (Date.now() > deadline) assert.fail(`index ${index} never applied; have ${JSON.stringify(results.map((r) => r.type))}`);
      out.drain((v) => results.push(decodeResult(v)));
      await Promise.race([new Promise((r) => setTimeout(r, 5)), failed]);
    }
  };

  // 2 and 3 come from the WAL first; they wait for 1 from the main thread.
  assert.ok(fromWal.tryWriteParts(putEntry(2, 'b')));
  assert.ok(fromWal.tryWriteParts(putEntry(3, 'c')));
  await new Promise((r) => setTimeout(r, 50));
  out.drain((v) => results.push(decodeResult(v)));
  assert.equal(results.length, 0, 'nothing applies before index 1');
  assert.ok(fromMain.tryWriteParts(putEntry(1, 'a')));
  await appliedTo(3);
  // Then interleaved the other way: 4 from the main thread, 5 from the WAL, 6 from the main thread.
  assert.ok(fromMain.tryWriteParts(putEntry(4, 'd')));
  assert.ok(fromMain.tryWriteParts(putEntry(6, 'f')));
  assert.ok(fromWal.tryWriteParts(putEntry(5, 'e')));
  await appliedTo(6);

  const answers = results.filter((r): r is Extract<Result, { type: ResultType.Ok }> => r.type === ResultType.Ok);
  assert.deepEqual(answers.map((r) => r.reqId - reqIdBase(MEMBER)), [1, 2, 3, 4, 5, 6], 'each entry answered once, in log order');
  // The store starts at revision 1: entry i is the write that made revision i + 1.
  assert.deepEqual(answers.map((r) => decodePutResponse(r.body).header.revision), [2, 3, 4, 5, 6, 7]);
});
