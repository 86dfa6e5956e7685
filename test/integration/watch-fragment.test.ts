// A revision whose events pass --max-request-bytes reaches a watcher that
// asked for fragments in several responses (fragment=true on all but the
// last), as etcd's sendFragments splits it; without the flag, in one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b } from './kv-client.js';
import { WatchStream, newClient } from './watch-client.js';

const dir = makeTempDir('watch-fragment');
const server = await EtsdProcess.startReady({ dataDir: dir, extraArgs: ['--max-request-bytes', '1024'] });
const kv = new KvClient(server.endpoint);
const grpcClient = newClient(server.endpoint);
after(async () => { kv.close(); grpcClient.close(); await server.stop(); removeTempDir(dir); });

test('events of one revision over the request limit arrive fragmented when asked, whole otherwise', async () => {
  for (let i = 0; i < 6; i++) await kv.put({ key: b(`f/${i}`), value: Buffer.alloc(400, 0x61 + i) });
  const fragmented = new WatchStream(grpcClient);
  const whole = new WatchStream(grpcClient);
  await fragmented.create({ key: b('f/'), rangeEnd: b('f0'), prevKv: true, fragment: true });
  await whole.create({ key: b('f/'), rangeEnd: b('f0'), prevKv: true });
  // One DeleteRange: six DELETE events in one revision, each with a 400-byte prev_kv.
  const del = await kv.deleteRange({ key: b('f/'), rangeEnd: b('f0') });
  assert.equal(del.deleted, 6);
  const last = await fragmented.waitFor((r) => r.events.length > 0 && !r.fragment, 10_000, 'last fragment');
  const parts = fragmented.responses.filter((r) => r.events.length > 0);
  assert.ok(parts.length >= 2, `expected several fragments, got ${parts.length}`);
  assert.ok(parts.slice(0, -1).every((r) => r.fragment), 'every fragment but the last has fragment=true');
  assert.equal(parts[parts.length - 1], last);
  const events = parts.flatMap((r) => r.events);
  assert.equal(events.length, 6);
  assert.deepEqual(events.map((e) => e.kv.key.toString()), ['f/0', 'f/1', 'f/2', 'f/3', 'f/4', 'f/5']);
  assert.ok(events.every((e) => e.kv.modRevision === del.header.revision && e.prevKv?.value.length === 400));
  assert.ok(parts.every((r) => r.revision === del.header.revision));

  const one = await whole.waitFor((r) => r.events.length > 0, 10_000, 'unfragmented response');
  assert.equal(one.events.length, 6);
  assert.equal(one.fragment, false);
  fragmented.close();
  whole.close();
});
