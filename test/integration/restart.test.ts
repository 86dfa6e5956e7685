// A member stopped with SIGTERM, or killed with kill -9, comes back with
// every acknowledged key at its acknowledged revision. No timings are
// asserted here (see restart-time.ts for the measurement).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, describeExit, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, prefixEnd } from './kv-client.js';

const N = Number(process.env['ETSD_RESTART_KEYS'] ?? 20_000);
const IN_FLIGHT = 32;
const PREFIX = b('restart/');

const keyOf = (i: number) => b(`restart/${String(i).padStart(7, '0')}`);
const valueOf = (i: number) => b(`value-${i}-${(i * 2654435761 >>> 0).toString(16)}`);

/** Puts keys 0..n-1 with IN_FLIGHT concurrent puts; returns each key's acknowledged revision. */
async function load(client: KvClient, n: number): Promise<number[]> {
  const revs = new Array<number>(n).fill(0);
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < n) {
      const i = next++;
      const r = await client.put({ key: keyOf(i), value: valueOf(i) });
      revs[i] = r.header.revision;
    }
  }));
  return revs;
}

async function check(client: KvClient, revs: number[], when: string): Promise<void> {
  // Pages of 500 keys pinned to one revision.
  const res = await client.rangeAll(PREFIX, prefixEnd(PREFIX), 500);
  assert.equal(res.header.revision, revs.length + 1, `${when}: store at revision ${res.header.revision}, expected ${revs.length + 1}`);
  assert.equal(res.kvs.length, revs.length, `${when}: ${res.kvs.length} keys found, ${revs.length} acknowledged`);
  res.kvs.forEach((kv, i) => {
    assert.ok(kv.key.equals(keyOf(i)), `${when}: key #${i} is ${kv.key.toString()}, expected ${keyOf(i).toString()}`);
    assert.ok(kv.value.equals(valueOf(i)), `${when}: ${kv.key.toString()} holds ${kv.value.toString()}`);
    assert.equal(kv.modRevision, revs[i], `${when}: ${kv.key.toString()} mod_revision ${kv.modRevision}, acknowledged ${revs[i]}`);
    assert.equal(kv.createRevision, revs[i], `${when}: ${kv.key.toString()} create_revision ${kv.createRevision}`);
    assert.equal(kv.version, 1, `${when}: ${kv.key.toString()} version ${kv.version}`);
  });
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`${N} keys survive a ${signal} restart`, { timeout: 170_000 }, async (t) => {
    const dir = makeTempDir(`restart${signal}`);
    const [clientPort, peerPort] = await freePorts(2);
    const opts = { dataDir: dir, clientPort: clientPort!, peerPort: peerPort! };
    let proc = await EtsdProcess.startReady(opts);
    let client = new KvClient(proc.endpoint);
    t.after(async () => {
      client.close();
      await proc.kill('SIGKILL').catch(() => undefined);
      removeTempDir(dir);
    });

    const started = Date.now();
    const revs = await load(client, N);
    const loadMs = Date.now() - started;
    await check(client, revs, 'before restart');
    client.close();

    const exit = await proc.kill(signal);
    if (signal === 'SIGTERM') assert.equal(exit.code, 0, `SIGTERM: ${describeExit(exit)}\n${proc.logTail()}`);
    else assert.equal(exit.signal, 'SIGKILL');

    proc = await EtsdProcess.start(opts);
    const readyNs = await proc.waitReady();
    client = new KvClient(proc.endpoint);
    await check(client, revs, `after ${signal} restart`);
    console.log(`restart(${signal}): loaded ${N} keys in ${loadMs} ms, ready again ${(Number(readyNs) / 1e6).toFixed(0)} ms after spawn`);
  });
}
