// A gRPC client that half-closes its Watch request stream (CloseSend) keeps
// its watches: etcd 3.4's recvLoop returns nil on io.EOF and the stream lives
// until the client cancels. Checked against real etcd 3.4 first (so the test
// states etcd's behaviour, not our guess), then against etsd. A cancel after
// the half-close then ends it, and a fresh watch on the same connection works.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkPrerequisites, startServer, stopServer, waitReady, type ServerHandle } from '../compat/harness.js';
import { KvClient, b } from './kv-client.js';
import { EVENT_PUT, WatchStream, newClient } from './watch-client.js';

const DELIVERY_TIMEOUT_MS = 10_000;

checkPrerequisites();
const servers: ServerHandle[] = [];
after(async () => { for (const s of servers) await stopServer(s); });

for (const kind of ['etcd', 'etsd'] as const) {
  test(`${kind}: watch events keep coming after the client half-closes`, async () => {
    const h = await startServer(kind, `halfclose-${kind}`);
    servers.push(h);
    await waitReady(h);
    const kv = new KvClient(h.endpoint);
    const conn = newClient(h.endpoint);
    try {
      const w = new WatchStream(conn);
      const created = await w.create({ key: b('hc/'), rangeEnd: b('hc0') });
      assert.equal(created.created, true);
      w.call.end(); // half-close: no more requests from this client
      for (let i = 0; i < 3; i++) await kv.put({ key: b(`hc/${i}`), value: b(`v${i}`) });
      const last = await w.waitFor((r) => r.events.some((e) => e.kv.key.toString() === 'hc/2'), DELIVERY_TIMEOUT_MS, 'event for hc/2');
      assert.equal(last.watchId, created.watchId);
      const seen = w.responses.flatMap((r) => r.events).map((e) => `${e.type}:${e.kv.key.toString()}=${e.kv.value.toString()}`);
      assert.deepEqual(seen, [0, 1, 2].map((i) => `${EVENT_PUT}:hc/${i}=v${i}`));
      assert.equal(w.ended, undefined, 'the server ended the stream after a half-close');
      w.cut();
      // The server is fine after the cancel: a fresh watch still works.
      const w2 = new WatchStream(conn);
      await w2.create({ key: b('hc/9') });
      await kv.put({ key: b('hc/9'), value: b('x') });
      await w2.waitFor((r) => r.events.length > 0, DELIVERY_TIMEOUT_MS, 'event for hc/9');
      w2.close();
    } finally {
      kv.close();
      conn.close();
    }
  });
}
