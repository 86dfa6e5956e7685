// unix:// member URLs as etcd 3.4 reads them: the URL's host:port is a socket
// path relative to the working directory. Three members talk raft over unix
// peer sockets (listen and dial), one also serves clients on a unix socket
// (a stale file at that path is replaced, as etcd's NewUnixListener does);
// etcdctl writes through the unix client socket and reads from another
// member over TCP, member list shows the unix URLs, and the sockets are gone
// after a clean stop.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';

const ETCDCTL = '/usr/bin/etcdctl';
const procs: EtsdProcess[] = [];
const cwd = makeTempDir('unix-sockets');
after(async () => {
  for (const p of procs) await p.stop();
  removeTempDir(cwd);
});

function etcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(ETCDCTL, args, { cwd, env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
    (err, out, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr}`)) : resolve(out))));
}

test('three members on unix:// peer URLs replicate; a unix:// client URL serves etcdctl', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const ports = await freePorts(3);
  const names = ['u1', 'u2', 'u3'];
  const peer = (i: number) => `unix://${names[i]}.peer:${i + 1}`;
  const clientSocket = 'u1.client:9';
  // A leftover regular file where the client socket goes: etcd removes it before listening.
  writeFileSync(join(cwd, clientSocket), 'stale');
  const cluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  for (let i = 0; i < 3; i++) {
    const tcp = `http://127.0.0.1:${ports[i]!}`;
    const clients = i === 0 ? `${tcp},unix://${clientSocket}` : tcp;
    procs.push(await EtsdProcess.start({
      dataDir: join(cwd, `${names[i]}.etsd`), name: names[i], clientPort: ports[i]!, peerPort: ports[i]!, cwd,
      extraArgs: ['--listen-client-urls', clients, '--advertise-client-urls', clients,
        '--listen-peer-urls', peer(i), '--initial-advertise-peer-urls', peer(i), '--initial-cluster', cluster],
    }));
  }
  await Promise.all(procs.map((p) => p.waitReady()));
  assert.ok(statSync(join(cwd, 'u2.peer:2')).isSocket());
  assert.ok(statSync(join(cwd, clientSocket)).isSocket());

  assert.equal(await etcdctl(['--endpoints', `unix://${clientSocket}`, 'put', 'over-unix', 'v1']), 'OK\n');
  assert.equal(await etcdctl(['--endpoints', procs[2]!.endpoint, 'get', 'over-unix', '--print-value-only']), 'v1\n');
  const members = await etcdctl(['--endpoints', `unix://${clientSocket}`, 'member', 'list']);
  for (let i = 0; i < 3; i++) assert.match(members, new RegExp(`, ${names[i]}, ${peer(i)}, `));
  assert.match(members, /, http:\/\/127\.0\.0\.1:\d+,unix:\/\/u1\.client:9, false/);

  await procs[0]!.kill('SIGTERM');
  assert.equal(existsSync(join(cwd, clientSocket)), false);
  assert.equal(existsSync(join(cwd, 'u1.peer:1')), false);
});
