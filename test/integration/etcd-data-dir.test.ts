// etsd started on a data dir written by etcd's own `etcdctl snapshot restore`
// (etcd's e2e TestIssue6361): the keys, their revisions and the member
// identity are served; etcd's WAL and snapshots stay where they were (etsd's
// own files go to member/etsd, see member/etcd-takeover.ts); a member added afterwards
// gets the restored keys (by snapshot: they are in no raft log entry).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';

const ETCDCTL = '/usr/bin/etcdctl';
const procs: EtsdProcess[] = [];
const dir = makeTempDir('etcd-data-dir');
after(async () => {
  for (const p of procs) await p.stop();
  removeTempDir(dir);
});

function etcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(ETCDCTL, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 },
    (err, out, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr}`)) : resolve(out))));
}

test('etsd serves a data dir made by etcdctl snapshot restore', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const [clientPort, peerPort, clientPort2, peerPort2] = await freePorts(4);
  const member = { name: 'r1', clientPort: clientPort!, peerPort: peerPort! };
  const first = await EtsdProcess.startReady({ ...member, dataDir: join(dir, 'first') });
  procs.push(first);
  for (const [k, v] of [['foo1', 'val1'], ['foo2', 'val2'], ['foo1', 'val1b']]) await etcdctl(['--endpoints', first.endpoint, 'put', k, v]);
  const snap = join(dir, 'snap.db');
  await etcdctl(['--endpoints', first.endpoint, 'snapshot', 'save', snap]);
  await first.stop();

  const restored = join(dir, 'restored');
  const peer = `http://127.0.0.1:${peerPort!}`;
  await etcdctl(['snapshot', 'restore', snap, '--name', 'r1', '--initial-cluster', `r1=${peer}`,
    '--initial-cluster-token', 'etcd-cluster', '--initial-advertise-peer-urls', peer, '--data-dir', restored]);
  assert.ok(existsSync(join(restored, 'member', 'snap', 'db')));

  const second = await EtsdProcess.startReady({ ...member, dataDir: restored });
  procs.push(second);
  const got = JSON.parse(await etcdctl(['--endpoints', second.endpoint, 'get', 'foo', '--prefix', '-w', 'json'])) as {
    header: { revision: string | number }; kvs: { key: string; value: string; version: number }[];
  };
  const text = (b64: string) => Buffer.from(b64, 'base64').toString();
  assert.deepEqual(got.kvs.map((kv) => [text(kv.key), text(kv.value), kv.version]), [['foo1', 'val1b', 2], ['foo2', 'val2', 1]]);
  assert.equal(Number(got.header.revision), 4);
  // The same member ID as etcd derives from the restore's flags.
  const members = await etcdctl(['--endpoints', second.endpoint, 'member', 'list']);
  const restoredId = (await etcdctl(['--endpoints', second.endpoint, 'endpoint', 'status'])).split(', ')[1];
  assert.match(members, new RegExp(`^${restoredId!}, started, r1, ${peer}, `));
  // Taken over into member/etsd; etcd's own files stay where they were (the way back to etcd).
  assert.ok(existsSync(join(restored, 'member', 'etsd', 'ids.json')));
  assert.ok(existsSync(join(restored, 'member', 'wal')));
  assert.ok(existsSync(join(restored, 'member', 'snap', 'db')));

  const peer2 = `http://127.0.0.1:${peerPort2!}`;
  await etcdctl(['--endpoints', second.endpoint, 'member', 'add', 'r2', `--peer-urls=${peer2}`]);
  const added = await EtsdProcess.startReady({
    name: 'r2', clientPort: clientPort2!, peerPort: peerPort2!, dataDir: join(dir, 'added'),
    extraArgs: ['--initial-cluster', `r1=${peer},r2=${peer2}`, '--initial-cluster-state', 'existing'],
  });
  procs.push(added);
  assert.equal(await etcdctl(['--endpoints', added.endpoint, 'get', 'foo2', '--print-value-only', '--consistency', 's']), 'val2\n');
  assert.equal(await etcdctl(['--endpoints', added.endpoint, 'get', 'foo1', '--print-value-only']), 'val1b\n');
});
