// Crash-and-restart through the member's own failpoints (src/common/failpoints.ts):
// a single member runs writes (and compactions, and expiring leases) with one
// failpoint armed to SIGKILL the process on a given hit; it is restarted without
// it, and every acknowledged write must be there with its value, the revision
// must not have gone back, and the member must serve writes again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, isGrpcError, prefixEnd } from './kv-client.js';
import { LeaseClient, newClient } from './watch-client.js';
import type { FailpointName } from '../../src/common/failpoints.js';

const WRITERS = 6;
const RUN_LIMIT_MS = 30_000;

interface Case { point: FailpointName; hit: number; compact?: boolean; leases?: boolean }
const CASES: Case[] = [
  { point: 'walBeforeFsync', hit: 40 },
  { point: 'walAfterFsync', hit: 40 },
  { point: 'applyBeforeCommit', hit: 40 },
  { point: 'applyAfterCommit', hit: 40 },
  { point: 'compactBeforeSweep', hit: 3, compact: true },
  { point: 'compactAfterSweep', hit: 3, compact: true },
  { point: 'leaseBeforeRevoke', hit: 1, leases: true },
];

for (const c of CASES) {
  test(`failpoint ${c.point}: crash at hit ${c.hit}, restart, nothing acknowledged is lost`, async () => {
    const dir = makeTempDir(`fp-${c.point}`);
    const server = await EtsdProcess.startReady({ dataDir: dir, env: { ETSD_FAILPOINTS: `${c.point}=@${c.hit} crash` } });
    const kv = new KvClient(server.endpoint);
    const acked = new Map<string, { value: string; rev: number }>();
    let maxRev = 0;
    let crashed = false;
    void server.waitExit().then(() => { crashed = true; });
    const conn = newClient(server.endpoint);
    const lease = new LeaseClient(conn);
    let leaseId = 0n;
    if (c.leases) {
      leaseId = (await lease.grant(2)).id;
      await kv.put({ key: b('fp/leased'), value: b('x'), lease: leaseId });
    }
    let n = 0;
    const deadline = Date.now() + RUN_LIMIT_MS;
    const writer = async () => {
      while (!crashed && Date.now() < deadline) {
        const key = `fp/${n++}`;
        const value = `v${n}-${Math.random()}`;
        try {
          const r = await kv.put({ key: b(key), value: b(value) }, 3000);
          acked.set(key, { value, rev: r.header.revision });
          maxRev = Math.max(maxRev, r.header.revision);
          if (c.compact && n % 25 === 0) await kv.compact(r.header.revision, false, 3000);
        } catch (err) {
          if (!isGrpcError(err) && !(err instanceof Error)) throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, writer));
    kv.close();
    conn.close();
    const exit = await server.waitExit();
    assert.equal(exit.signal, 'SIGKILL', `the failpoint crashed the member (exit ${JSON.stringify(exit)}; ${acked.size} writes acknowledged)`);
    assert.match(server.logTail(), new RegExp(`failpoint ${c.point} hit ${c.hit}: crash`));

    const again = await EtsdProcess.startReady({ dataDir: dir, clientPort: server.opts.clientPort, peerPort: server.opts.peerPort });
    const kv2 = new KvClient(again.endpoint);
    try {
      const all = await kv2.rangeAll(b('fp/'), prefixEnd(b('fp/')));
      assert.ok(all.header.revision >= maxRev, `revision ${all.header.revision} after restart is below the acknowledged ${maxRev}`);
      const present = new Map(all.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
      for (const [k, a] of acked) assert.equal(present.get(k), a.value, `acknowledged ${k} at revision ${a.rev} is lost or changed`);
      const r = await kv2.put({ key: b('fp/after'), value: b('ok') });
      assert.ok(r.header.revision > all.header.revision);
      if (c.leases) {
        // The revoke never got proposed before the crash: the lease expires again after the restart.
        const until = Date.now() + 15_000;
        while ((await kv2.range({ key: b('fp/leased') })).kvs.length > 0) {
          assert.ok(Date.now() < until, 'the leased key is still there 15 s after restart');
          await new Promise((res) => setTimeout(res, 200));
        }
      }
      console.log(`# ${c.point}: ${acked.size} writes acknowledged before the crash, all present after restart at revision ${all.header.revision}`);
    } finally {
      kv2.close();
      await again.stop();
      removeTempDir(dir);
    }
  });
}
