// Ready means ready, as etcd means it: a member serves clients only once its
// own attributes are published through raft. A fresh three-member cluster is
// started at once; the first connection each client port accepts must get a
// linearizable Range answered (never "no leader") and a member list in which
// this member already has its name and client URL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b } from './kv-client.js';

const NAMES = ['r1', 'r2', 'r3'];
const ETCDCTL = '/usr/bin/etcdctl';
const procs: EtsdProcess[] = [];
const dirs = NAMES.map((n) => makeTempDir(`ready-${n}`));
after(async () => {
  for (const p of procs) await p.stop();
  for (const d of dirs) removeTempDir(d);
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('a fresh three-member cluster accepts clients only when it can serve them', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const ports = await freePorts(6);
  const cluster = NAMES.map((n, i) => `${n}=http://127.0.0.1:${ports[3 + i]}`).join(',');
  for (let i = 0; i < 3; i++) {
    procs.push(await EtsdProcess.start({
      dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[3 + i], extraArgs: ['--initial-cluster', cluster],
    }));
  }
  await Promise.all([0, 1, 2].map(async (i) => {
    const until = Date.now() + 60_000;
    while (!(await accepts(ports[i]!))) {
      assert.ok(Date.now() < until, `${NAMES[i]} never accepted a connection`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // The very first request on the port: answered, not "no leader".
    const kv = new KvClient(`127.0.0.1:${ports[i]}`);
    try {
      const r = await kv.range({ key: b('anything') });
      assert.ok(r.header.revision >= 1);
    } finally {
      kv.close();
    }
    const list = await new Promise<string>((resolve, reject) => execFile(ETCDCTL, [`--endpoints=127.0.0.1:${ports[i]}`, 'member', 'list'],
      { env: { ...process.env, ETCDCTL_API: '3' } }, (err, out, stderr) => (err ? reject(new Error(stderr)) : resolve(out))));
    assert.match(list, new RegExp(`, ${NAMES[i]}, http://127\\.0\\.0\\.1:${ports[3 + i]}, http://127\\.0\\.0\\.1:${ports[i]}`),
      `${NAMES[i]} lists itself with its client URL:\n${list}`);
    assert.match(procs[i]!.logTail(400), /published local member to cluster through raft/);
    assert.match(procs[i]!.logTail(400), /enabled capabilities for version 3\.5/);
  }));
});
