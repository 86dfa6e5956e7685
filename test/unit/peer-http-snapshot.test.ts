// The leader reports each snapshot send to raft (reportSnapshot): whole when the
// follower read every byte, failed when the connection closed before that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { createPeerHttpServer, SNAPSHOT_MEMBER_HEADER } from '../../src/member/peer-http.js';
import { createLogger } from '../../src/common/log.js';

const log = createLogger('error', { name: 'test' });

async function serve(bytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'etsd-peer-http-'));
  const path = join(dir, 'snap');
  writeFileSync(path, Buffer.alloc(bytes, 7));
  const reports: [bigint, boolean][] = [];
  let released = 0;
  const server = createPeerHttpServer({
    clusterId: 1n,
    memberList: () => [],
    openSnapshot: async () => ({ path, index: 42, bytes, release: () => { released++; } }),
    snapshotSent: (to, ok) => { reports.push([to, ok]); },
    hashKV: () => Promise.reject(new Error('not used here')),
  }, log);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const close = () => { server.closeAllConnections(); server.close(); rmSync(dir, { recursive: true, force: true }); };
  return { port, reports, released: () => released, close };
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

test('a snapshot read whole is reported delivered to the member that named itself', async () => {
  const s = await serve(256 * 1024);
  try {
    const res = await fetch(`http://127.0.0.1:${s.port}/etsd/snapshot`, { headers: { [SNAPSHOT_MEMBER_HEADER]: 'abc123' } });
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 256 * 1024);
    await until(() => s.reports.length > 0);
    assert.deepEqual(s.reports, [[0xabc123n, true]]);
    assert.equal(s.released(), 1);
  } finally { s.close(); }
});

test('a snapshot whose reader goes away before the end is reported failed', async () => {
  const s = await serve(64 * 1024 * 1024);
  try {
    await new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: s.port, path: '/etsd/snapshot', headers: { [SNAPSHOT_MEMBER_HEADER]: 'ff' } }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => undefined); // the destroy above aborts the request on purpose
    });
    await until(() => s.reports.length > 0);
    assert.deepEqual(s.reports, [[0xffn, false]]);
    await until(() => s.released() === 1);
  } finally { s.close(); }
});

test('a fetch without a member id reports nothing (raft has no follower to probe)', async () => {
  const s = await serve(1024);
  try {
    const res = await fetch(`http://127.0.0.1:${s.port}/etsd/snapshot`);
    await res.arrayBuffer();
    await until(() => s.released() === 1);
    assert.deepEqual(s.reports, []);
  } finally { s.close(); }
});
