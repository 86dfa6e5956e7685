// --experimental-initial-corrupt-check: the peer endpoint as etcd speaks it and
// the decision etcd makes for each peer answer, over real HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createPeerHttpServer } from '../../src/member/peer-http.js';
import { CorruptionError, checkInitialHashKV, fetchPeerHashKV } from '../../src/member/corrupt-check.js';
import type { HashResult } from '../../src/member/maintenance-jobs.js';
import { Errors } from '../../src/common/errors.js';
import { createLogger } from '../../src/common/log.js';

const log = createLogger('silent', { name: 'test' });

/** A peer whose store answers HashKV(rev) with `answer`. */
async function peer(answer: (rev: number) => Promise<HashResult>) {
  const server = createPeerHttpServer({
    clusterId: 1n, memberList: () => [], openSnapshot: async () => null, snapshotSent: () => undefined, hashKV: answer,
  }, log);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => { server.closeAllConnections(); server.close(); } };
}

const result = (hash: number, rev: number, compact = 0): HashResult => ({ hash, compactRevision: compact, hashRevision: rev, currentRevision: rev });

test('the peer endpoint answers etcd\'s JSON, and 400 with the mvcc text for a future revision', async () => {
  const p = await peer(async (rev) => {
    if (rev > 10) throw Errors.futureRev();
    return result(0xabcdef, 10, 3);
  });
  try {
    assert.deepEqual(await fetchPeerHashKV(p.url, 10, 2000, null), { revision: 10, hash: 0xabcdef, compactRevision: 3 });
    await assert.rejects(fetchPeerHashKV(p.url, 11, 2000, null), /unknown error: mvcc: required revision is a future revision/);
  } finally { p.close(); }
});

test('same hash: passes; other hash at the same compaction: refuses to start; other compaction: only a warning', async () => {
  const same = await peer(async () => result(7, 5));
  const other = await peer(async () => result(8, 5));
  const otherCompact = await peer(async () => result(9, 5, 2));
  try {
    const base = { memberId: 1n, hashKV: async () => result(7, 5), timeoutMs: 2000, log, peerTls: null };
    await checkInitialHashKV({ ...base, peers: [{ id: 2n, urls: [same.url] }, { id: 3n, urls: [otherCompact.url] }] });
    await assert.rejects(checkInitialHashKV({ ...base, peers: [{ id: 2n, urls: [same.url] }, { id: 3n, urls: [other.url] }] }),
      (err: unknown) => err instanceof CorruptionError && err.message === '1 found data inconsistency with peers');
  } finally { same.close(); other.close(); otherCompact.close(); }
});

test('an unreachable or lagging peer is no reason to refuse the start', async () => {
  const lagging = await peer(async () => { throw Errors.futureRev(); });
  try {
    await checkInitialHashKV({
      memberId: 1n, hashKV: async () => result(7, 5), timeoutMs: 500, log, peerTls: null,
      peers: [{ id: 2n, urls: ['http://127.0.0.1:9'] }, { id: 3n, urls: [lagging.url] }],
    });
  } finally { lagging.close(); }
});
