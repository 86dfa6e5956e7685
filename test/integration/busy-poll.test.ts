// A member run with --busy-poll: its main thread reads the workers' rings as
// records are written instead of when a whole batch is out, so whatever a
// client's next request needs must reach it before that client's answer.
// Lease grants and revokes once did not (LeaseLeases right after a revoke
// still listed the lease). Each step here asks the next question at once, and
// the apply worker stalls 20 ms after writing a batch's answers
// (applyAfterAnswers), so anything written after them comes too late.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b } from './kv-client.js';
import { LeaseClient, newClient } from './watch-client.js';

const dir = makeTempDir('busypoll');
const server = await EtsdProcess.startReady({ dataDir: dir, extraArgs: ['--busy-poll'], env: { ETSD_FAILPOINTS: 'applyAfterAnswers=sleep(20)' } });
const kv = new KvClient(server.endpoint);
const conn = newClient(server.endpoint);
const lease = new LeaseClient(conn);
after(async () => { kv.close(); conn.close(); await server.stop(); removeTempDir(dir); });

test('with --busy-poll, a lease is listed right after its grant and gone right after its revoke', async () => {
  for (let i = 0; i < 30; i++) {
    const g = await lease.grant(60);
    assert.ok((await lease.leases()).includes(g.id), `round ${i}: lease ${g.id} not listed right after its grant`);
    await lease.revoke(g.id);
    assert.ok(!(await lease.leases()).includes(g.id), `round ${i}: lease ${g.id} still listed right after its revoke`);
  }
});

test('with --busy-poll, a keep-alive right after the grant renews the lease', async () => {
  const ka = lease.keepAliveStream();
  try {
    for (let i = 0; i < 10; i++) {
      const g = await lease.grant(60);
      ka.send(g.id);
      const deadline = Date.now() + 5000;
      while (!ka.responses.some((r) => r.id === g.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const r = ka.responses.find((x) => x.id === g.id);
      assert.ok(r, `round ${i}: no keep-alive answer`);
      assert.equal(r.ttl, 60, `round ${i}: keep-alive right after the grant answered TTL ${r.ttl}`);
    }
  } finally {
    ka.close();
  }
});

test('with --busy-poll, a put is read back at once, serializable or not', async () => {
  for (let i = 0; i < 30; i++) {
    const put = await kv.put({ key: b(`bp/${i}`), value: b(`v${i}`) });
    for (const serializable of [false, true]) {
      const r = await kv.range({ key: b(`bp/${i}`), serializable });
      assert.equal(r.kvs[0]?.value.toString(), `v${i}`, `round ${i} (serializable ${serializable})`);
      assert.ok(r.header.revision >= put.header.revision);
    }
  }
});
