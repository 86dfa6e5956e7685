// Auth in a three-member cluster: auth requests go through the log, so every
// member applies them and a token minted on one member is valid on the others;
// a follower that was down while users, roles and the enabled flag changed
// (and the leader cut its log) gets them in the snapshot it installs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { RawClient, authenticateRequest, tokenOf } from './auth-client.js';
import { b, putReq, rangeReq } from './kv-client.js';
import * as codec from '../../src/proto/kv-codec.js';

const NAMES = ['a1', 'a2', 'a3'];
const ports = await freePorts(6);
const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
const initialCluster = NAMES.map((n, i) => `${n}=${peer(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`authcluster-${n}`));
const procs: (EtsdProcess | null)[] = [null, null, null];
const SNAP_ARGS = ['--snapshot-count', '100', '--experimental-snapshot-catchup-entries', '20', '--shards', '1'];
const raws: RawClient[] = [];

after(async () => {
  for (const r of raws) r.close();
  for (const p of procs) await p?.stop();
  for (const d of dirs) removeTempDir(d);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(i: number): Promise<void> {
  procs[i] = await EtsdProcess.start({
    dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[3 + i], extraArgs: [...SNAP_ARGS, '--initial-cluster', initialCluster],
  });
}

function etcdctl(i: number, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('etcdctl', [`--endpoints=${procs[i]!.endpoint}`, '--dial-timeout=3s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 }, (err, out, errOut) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: errOut.split('\n').filter((l) => l.startsWith('Error:')).join('\n') });
      });
  });
}

async function ok(i: number, args: string[]): Promise<string> {
  const r = await etcdctl(i, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')} on ${NAMES[i]}: ${r.err}`);
  return r.out;
}

async function isLeader(i: number): Promise<boolean> {
  const text = await fetch(`http://${procs[i]!.endpoint}/metrics`).then((r) => r.text(), () => '');
  return /^etcd_server_is_leader 1$/m.test(text);
}

const rangeKey = (k: string) => codec.encodeRangeRequest(rangeReq({ key: b(k), serializable: true }));

test('auth state reaches every member, by the log and by a snapshot install', { timeout: 300_000 }, async () => {
  await Promise.all([0, 1, 2].map(start));
  await Promise.all(procs.map((p) => p!.waitReady()));
  let down = -1;
  for (let attempt = 0; attempt < 100 && down < 0; attempt++) {
    const leads = await Promise.all([0, 1, 2].map(isLeader));
    if (leads.some(Boolean)) down = leads.lastIndexOf(false);
    else await sleep(100);
  }
  assert.ok(down >= 0, 'no leader found');
  const w = down === 0 ? 1 : 0;
  const other = 3 - down - w;
  await procs[down]!.kill('SIGKILL');

  await ok(w, ['user', 'add', 'root:pw']);
  await ok(w, ['user', 'grant-role', 'root', 'root']);
  await ok(w, ['role', 'add', 'reader']);
  await ok(w, ['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix=true']);
  await ok(w, ['user', 'add', 'alice:apw']);
  await ok(w, ['user', 'grant-role', 'alice', 'reader']);
  await ok(w, ['auth', 'enable']);

  // Enough writes, as root, for the leader to cut its log past the stopped member.
  const raw = new RawClient(procs[w]!.endpoint);
  raws.push(raw);
  const rootToken = tokenOf(await raw.call('/etcdserverpb.Auth/Authenticate', authenticateRequest('root', 'pw')));
  for (let i = 0; i < 250; i++) {
    await raw.call('/etcdserverpb.KV/Put', codec.encodePutRequest(putReq({ key: b(`k/${String(i).padStart(4, '0')}`), value: b(`v${i}`) })), rootToken);
  }

  // A token minted on one member serves on another: every member applied the Authenticate entry.
  const aliceToken = tokenOf(await raw.call('/etcdserverpb.Auth/Authenticate', authenticateRequest('alice', 'apw')));
  const rawOther = new RawClient(procs[other]!.endpoint);
  raws.push(rawOther);
  const r = codec.decodeRangeResponse(await rawOther.call('/etcdserverpb.KV/Range', rangeKey('k/0007'), aliceToken));
  assert.equal(r.kvs[0]?.value.toString(), 'v7');

  await start(down);
  const deadline = Date.now() + 60_000;
  let last = '';
  for (;;) {
    const got = await etcdctl(down, ['--user=alice:apw', 'get', 'k/0249', '--consistency=s', '--print-value-only']);
    if (got.code === 0 && got.out === 'v249\n') break;
    last = got.err || got.out;
    assert.ok(Date.now() < deadline, `${NAMES[down]} never served alice: ${last}\n${procs[down]!.logTail(30)}`);
    await sleep(300);
  }
  assert.match(procs[down]!.logTail(400), /installed a snapshot from the leader/, 'the stopped member did not catch up from a snapshot');
  assert.equal(await ok(down, ['--user=root:pw', 'user', 'list']), 'alice\nroot\n');
  assert.equal(await ok(down, ['--user=root:pw', 'role', 'get', 'reader']), 'Role reader\nKV Read:\n\t[k/, k0) (prefix k/)\nKV Write:\n');
  const anon = await etcdctl(down, ['get', 'k/0001', '--consistency=s']);
  assert.equal(anon.err, 'Error: etcdserver: user name is empty');
  const denied = await etcdctl(down, ['--user=alice:apw', 'put', 'k/0001', 'x']);
  assert.equal(denied.err, 'Error: etcdserver: permission denied');
  // A change made through the caught-up member reaches the others.
  await ok(down, ['--user=root:pw', 'user', 'revoke-role', 'alice', 'reader']);
  const gone = await etcdctl(other, ['--user=alice:apw', 'get', 'k/0001']);
  assert.equal(gone.err, 'Error: etcdserver: permission denied');
});
