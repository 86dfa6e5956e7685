// --auto-compaction-mode periodic with a short retention on a real member:
// history older than the retention goes (through the log, as a client's
// Compact would), the newest revisions stay readable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError } from './kv-client.js';

test('periodic auto-compaction (2 s retention) compacts old history and keeps the new', async () => {
  const dir = makeTempDir('autocompact');
  const server = await EtsdProcess.startReady({ dataDir: dir, extraArgs: ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '2s'] });
  const kv = new KvClient(server.endpoint);
  try {
    const first = await kv.put({ key: b('ac/k'), value: b('0') });
    let last = first.header.revision;
    const until = Date.now() + 60_000;
    // Writes go on until the log says a compaction past the first write completed.
    for (let i = 1; !/completed auto periodic compaction/.test(server.logTail(400)) || i < 10; i++) {
      assert.ok(Date.now() < until, `no auto compaction within 60 s; log:\n${server.logTail()}`);
      last = (await kv.put({ key: b('ac/k'), value: b(String(i)) })).header.revision;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Keep writing past one more retention period so the next compaction is past the first write.
    const t0 = Date.now();
    while (Date.now() - t0 < 4500) {
      last = (await kv.put({ key: b('ac/k'), value: b('x') })).header.revision;
      await new Promise((r) => setTimeout(r, 50));
    }
    await assert.rejects(kv.range({ key: b('ac/k'), revision: first.header.revision }), (e: unknown) =>
      isGrpcError(e) && e.details === 'etcdserver: mvcc: required revision has been compacted');
    const now = await kv.range({ key: b('ac/k'), revision: last });
    assert.equal(now.kvs.length, 1, 'the newest revision is readable');
    assert.match(server.logTail(400), /starting auto periodic compaction/);
  } finally {
    kv.close();
    await server.stop();
    removeTempDir(dir);
  }
});
