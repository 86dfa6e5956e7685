// The physical sweep of a compaction runs a step at a time between applied
// batches, so writes go on while it works: with each sweep step slowed down
// (failpoint compactSweepStep=sleep), a put sent after a large physical
// compaction is answered before the compaction is, keys deleted before the
// compaction and written again during its sweep keep their new values, and
// the compacted history reads as etcd's would.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError, op, prefixEnd } from './kv-client.js';

const KEYS = 3000;
const PER_TXN = 100;
const key = (i: number) => b(`sw/${String(i).padStart(5, '0')}`);

async function writeAll(kv: KvClient, value: string): Promise<void> {
  for (let i = 0; i < KEYS; i += PER_TXN) {
    await kv.txn({ success: Array.from({ length: PER_TXN }, (_, j) => op.put({ key: key(i + j), value: b(value) })) }, 60_000);
  }
}

test('writes go on during a compaction sweep and the sweep leaves them alone', { timeout: 300_000 }, async () => {
  const dir = makeTempDir('sweep');
  // 9000 by-revision records to sweep, each step of at most 500 paused 200 ms: the sweep takes seconds.
  const server = await EtsdProcess.startReady({ dataDir: dir, env: { ETSD_FAILPOINTS: 'compactSweepStep=sleep(200)' } });
  const kv = new KvClient(server.endpoint);
  try {
    await writeAll(kv, 'first');
    await writeAll(kv, 'second');
    const deleted = await kv.deleteRange({ key: b('sw/'), rangeEnd: prefixEnd(b('sw/')) });
    assert.equal(deleted.deleted, KEYS);
    const compactAt = deleted.header.revision;

    const order: string[] = [];
    const compaction = kv.compact(compactAt, true, 240_000).then((r) => { order.push('compaction'); return r; });
    const probe = await kv.put({ key: b('probe'), value: b('during') }, 60_000);
    order.push('put');
    // The deleted keys come back while the sweep removes their tombstones.
    await writeAll(kv, 'again');
    await compaction;
    assert.equal(order[0], 'put', `answered in the order ${order.join(', ')}`);
    assert.ok(probe.header.revision > compactAt);

    const all = await kv.rangeAll(b('sw/'), prefixEnd(b('sw/')));
    assert.equal(all.kvs.length, KEYS);
    for (const k of all.kvs) {
      assert.equal(k.value.toString(), 'again', `${k.key.toString()} lost its new value`);
      assert.equal(k.version, 1);
      assert.equal(k.createRevision, k.modRevision);
    }
    // At the compact revision every key is deleted; below it, etcd's "compacted".
    assert.equal((await kv.range({ key: b('sw/'), rangeEnd: prefixEnd(b('sw/')), revision: compactAt })).kvs.length, 0);
    await assert.rejects(kv.range({ key: b('sw/'), rangeEnd: prefixEnd(b('sw/')), revision: compactAt - 1 }),
      (err: unknown) => isGrpcError(err) && err.details === 'etcdserver: mvcc: required revision has been compacted');
  } finally {
    kv.close();
    await server.stop();
    removeTempDir(dir);
  }
});
