// Ranges, counts and deletes over more keys than one storage scan chunk
// (the MVCC reader scans RocksDB 1000 rows at a time). Each check is its own
// subtest so a failure names exactly what is wrong.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, op, prefixEnd } from './kv-client.js';

const N = 2500;
const BATCH = 100;
const PREFIX = b('big/');

const keyOf = (i: number) => b(`big/${String(i).padStart(5, '0')}`);

test(`ranges and deletes over ${N} keys`, { timeout: 120_000 }, async (t) => {
  const dir = makeTempDir('largerange');
  const proc = await EtsdProcess.startReady({ dataDir: dir, shards: 2 });
  const client = new KvClient(proc.endpoint);
  t.after(async () => {
    client.close();
    await proc.kill('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  });
  for (let i = 0; i < N; i += BATCH) {
    await client.txn({ success: Array.from({ length: BATCH }, (_, j) => op.put({ key: keyOf(i + j), value: b(`v${i + j}`) })) });
  }
  const loadedRev = N / BATCH + 1;
  const all = { key: PREFIX, rangeEnd: prefixEnd(PREFIX) };

  await t.test('a Range returns every key and the right count', async () => {
    const r = await client.range(all);
    assert.equal(r.count, N, `count ${r.count}, expected ${N}`);
    assert.equal(r.kvs.length, N, `${r.kvs.length} kvs returned, expected ${N}`);
    assert.equal(r.more, false);
  });

  await t.test('count_only counts every key', async () => {
    const r = await client.range({ ...all, countOnly: true });
    assert.equal(r.count, N, `count ${r.count}, expected ${N}`);
  });

  await t.test('a Range with limit 2000 says more=true with the full count', async () => {
    const r = await client.range({ ...all, limit: 2000 });
    assert.equal(r.kvs.length, 2000, `${r.kvs.length} kvs returned`);
    assert.equal(r.more, true, 'more should be true');
    assert.equal(r.count, N, `count ${r.count}, expected ${N}`);
  });

  await t.test('a Range at a past revision sees every key', async () => {
    await client.put({ key: b('other'), value: b('x') });
    const r = await client.range({ ...all, revision: loadedRev, countOnly: true });
    assert.equal(r.count, N, `count ${r.count} at revision ${loadedRev}, expected ${N}`);
  });

  await t.test('a DeleteRange deletes every key', async () => {
    const d = await client.deleteRange({ ...all });
    assert.equal(d.deleted, N, `deleted ${d.deleted}, expected ${N}`);
    const r = await client.range({ ...all, countOnly: true });
    assert.equal(r.count, 0, `${r.count} keys left after DeleteRange`);
  });
});
