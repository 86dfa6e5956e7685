// Peer TLS: three etsd members on https:// peer URLs with mutual TLS
// (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
// --peer-client-cert-auth, --peer-cert-allowed-cn) elect a leader and
// replicate a put; a fourth member added with "etcdctl member add" but holding
// a certificate from another CA cannot join (its GET /members is refused at
// the handshake); started again with a certificate from the cluster's CA it
// joins (membership over HTTPS) and reads the data.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { issue, makeCa, type Ca, type Leaf } from '../common/tls-certs.js';

const ETCDCTL = '/usr/bin/etcdctl';
const procs: EtsdProcess[] = [];
const certDir = makeTempDir('tls-peer-certs');
const dirs = ['p1', 'p2', 'p3', 'p4'].map((n) => makeTempDir(`tls-peer-${n}`));
after(async () => {
  for (const p of procs) await p.stop();
  for (const d of [...dirs, certDir]) removeTempDir(d);
});

function etcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(ETCDCTL, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
    (err, out, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr}`)) : resolve(out))));
}

function peerArgs(ca: Ca, leaf: Leaf): string[] {
  return ['--peer-cert-file', leaf.cert, '--peer-key-file', leaf.key, '--peer-trusted-ca-file', ca.cert,
    '--peer-client-cert-auth', '--peer-cert-allowed-cn', 'member'];
}

/** Plain TCP to a TLS peer port: the raft preface gets no answer but a closed connection. */
function plainGetsNothing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write('GET /members HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString(); });
    s.on('error', () => undefined);
    s.on('close', () => resolve(!got.includes('HTTP/1.1 200')));
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

test('a three-member cluster over peer mTLS elects a leader and replicates; a member with another CA cannot join', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const ca = makeCa(certDir, 'ca');
  const other = makeCa(certDir, 'other');
  const ports = await freePorts(8);
  const client = (i: number) => ports[i]!;
  const peer = (i: number) => ports[4 + i]!;
  const names = ['p1', 'p2', 'p3', 'p4'];
  const cluster = [0, 1, 2].map((i) => `${names[i]}=https://127.0.0.1:${peer(i)}`).join(',');
  const startMember = (i: number, leaf: Leaf, c: Ca, extra: string[] = []) => EtsdProcess.start({
    dataDir: dirs[i]!, name: names[i], clientPort: client(i), peerPort: peer(i),
    extraArgs: ['--listen-peer-urls', `https://127.0.0.1:${peer(i)}`, '--initial-advertise-peer-urls', `https://127.0.0.1:${peer(i)}`,
      '--initial-cluster', cluster, ...peerArgs(c, leaf), ...extra],
  });
  // One certificate per member, all with CN "member" (--peer-cert-allowed-cn) and the loopback SAN.
  const leaves = [0, 1, 2].map((i) => issue(ca, `m${i}`, 'member'));
  for (let i = 0; i < 3; i++) procs.push(await startMember(i, leaves[i]!, ca));
  await Promise.all(procs.map((p) => p.waitReady()));

  const ep = (i: number) => `--endpoints=127.0.0.1:${client(i)}`;
  const status = await etcdctl([ep(0), 'endpoint', 'status', '-w', 'json']);
  const leader = (JSON.parse(status) as { Status: { leader: number } }[])[0]!.Status.leader;
  assert.ok(leader !== 0, 'a leader is elected');
  assert.equal(await etcdctl([ep(0), 'put', 'over-tls', 'yes']), 'OK\n');
  assert.equal(await etcdctl([ep(2), 'get', 'over-tls', '--print-value-only']), 'yes\n');
  assert.equal(await etcdctl([ep(1), 'get', 'over-tls', '--print-value-only', '--consistency=s']), 'yes\n');
  assert.ok(await plainGetsNothing(peer(0)), 'the peer port speaks only TLS');

  // Member 4: added through the API, then started with a certificate from another CA.
  const url4 = `https://127.0.0.1:${peer(3)}`;
  // etcd's strict reconfig check refuses ("unhealthy cluster") until every peer has been connected for 5 s.
  for (let tries = 0; ; tries++) {
    try {
      await etcdctl([ep(0), 'member', 'add', 'p4', `--peer-urls=${url4}`]);
      break;
    } catch (err) {
      if (tries >= 30 || !String(err).includes('unhealthy cluster')) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const cluster4 = `${cluster},p4=${url4}`;
  const start4 = (leaf: Leaf, c: Ca) => EtsdProcess.start({
    dataDir: dirs[3]!, name: 'p4', clientPort: client(3), peerPort: peer(3),
    extraArgs: ['--listen-peer-urls', url4, '--initial-advertise-peer-urls', url4, '--initial-cluster', cluster4,
      '--initial-cluster-state', 'existing', ...peerArgs(c, leaf)],
  });
  const outsider = await start4(issue(other, 'm3-other', 'member'), other);
  procs.push(outsider);
  const exit = await outsider.waitExit();
  assert.notEqual(exit.code, 0, 'the outsider gives up');
  assert.match(outsider.logTail(80), /could not retrieve cluster information from the given URLs/);
  const list = await etcdctl([ep(1), 'member', 'list']);
  assert.match(list, /unstarted, , https:\/\/127\.0\.0\.1/, `p4 never started:\n${list}`);

  // The same member with a certificate from the cluster's CA joins and has the data.
  const insider = await start4(issue(ca, 'm3', 'member'), ca);
  procs.push(insider);
  await insider.waitReady();
  assert.equal(await etcdctl([ep(3), 'get', 'over-tls', '--print-value-only']), 'yes\n');
  assert.match(await etcdctl([ep(0), 'member', 'list']), /, started, p4, https:\/\/127\.0\.0\.1/);
});

test('three members with --peer-auto-tls (generated, unverified certificates, as etcd) elect a leader and replicate', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const ports = await freePorts(6);
  const names = ['a1', 'a2', 'a3'];
  const autoDirs = names.map((n) => makeTempDir(`tls-peer-auto-${n}`));
  dirs.push(...autoDirs);
  const cluster = names.map((n, i) => `${n}=https://127.0.0.1:${ports[3 + i]}`).join(',');
  const members: EtsdProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const url = `https://127.0.0.1:${ports[3 + i]}`;
    const p = await EtsdProcess.start({ dataDir: autoDirs[i]!, name: names[i], clientPort: ports[i], peerPort: ports[3 + i],
      extraArgs: ['--listen-peer-urls', url, '--initial-advertise-peer-urls', url, '--initial-cluster', cluster, '--peer-auto-tls'] });
    procs.push(p);
    members.push(p);
  }
  await Promise.all(members.map((p) => p.waitReady()));
  assert.equal(await etcdctl([`--endpoints=127.0.0.1:${ports[0]}`, 'put', 'auto', 'peer']), 'OK\n');
  assert.equal(await etcdctl([`--endpoints=127.0.0.1:${ports[2]}`, 'get', 'auto', '--print-value-only']), 'peer\n');
  assert.ok(await plainGetsNothing(ports[3]!), 'the peer port speaks only TLS');
});
