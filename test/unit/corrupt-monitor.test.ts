// The periodic check's decisions (etcd 3.4 checkHashKV), over real HTTP to
// peer endpoints: equal stores raise nothing; a peer with another hash at the
// same compaction, a newer revision or a newer compaction is named and CORRUPT
// is raised once; an unreachable peer is only skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createPeerHttpServer } from '../../src/member/peer-http.js';
import { CorruptMonitor } from '../../src/member/corrupt-monitor.js';
import type { HashResult } from '../../src/member/maintenance-jobs.js';
import { createLogger } from '../../src/common/log.js';

const log = createLogger('silent', { name: 'test' });
const result = (hash: number, rev: number, compact = 0): HashResult => ({ hash, compactRevision: compact, hashRevision: rev, currentRevision: rev });

async function peer(answer: HashResult) {
  const server = createPeerHttpServer({
    clusterId: 1n, memberList: () => [], openSnapshot: async () => null, snapshotSent: () => undefined, hashKV: async () => answer,
  }, log);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => { server.closeAllConnections(); server.close(); } };
}

async function pass(own: HashResult, peers: (HashResult | null)[]): Promise<{ mismatched: bigint[]; raised: number }> {
  const servers = await Promise.all(peers.map((p) => (p ? peer(p) : null)));
  let raised = 0;
  try {
    const m = new CorruptMonitor({
      memberId: 1n, intervalMs: 1000, timeoutMs: 2000, peerTls: null, log, isLeader: () => true,
      // An unreachable peer: a closed port.
      peers: () => servers.map((s, i) => ({ id: BigInt(i + 2), urls: [s ? s.url : 'http://127.0.0.1:1'] })),
      hashKV: async () => own, linearizableBarrier: async () => undefined,
      raiseCorrupt: async () => { raised++; },
    });
    return { mismatched: await m.check(), raised };
  } finally {
    for (const s of servers) s?.close();
  }
}

test('equal stores: nothing raised; an unreachable peer is skipped', async () => {
  assert.deepEqual(await pass(result(7, 10, 2), [result(7, 10, 2), null]), { mismatched: [], raised: 0 });
});

test('another hash at the same compaction, a newer revision, a newer compaction: named, one alarm', async () => {
  assert.deepEqual(await pass(result(7, 10, 2), [result(8, 10, 2), result(7, 10, 2)]), { mismatched: [2n], raised: 1 });
  assert.deepEqual(await pass(result(7, 10, 2), [result(7, 11, 2)]), { mismatched: [2n], raised: 1 });
  assert.deepEqual(await pass(result(7, 10, 2), [result(9, 10, 3)]), { mismatched: [2n], raised: 1 });
  // Another hash after another (older) compaction says nothing.
  assert.deepEqual(await pass(result(7, 10, 2), [result(9, 10, 1)]), { mismatched: [], raised: 0 });
});
