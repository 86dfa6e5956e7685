// Auth on a real member with the real etcdctl and a raw gRPC client: users,
// roles and the enabled flag survive a SIGTERM and a kill -9 restart (they
// are stored with the applied index); tokens are etcd's simple ones
// (<16 letters>.<raft index>), carried in the `token` metadata, forgotten by
// a restart; every refusal is etcd's code and text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { RawClient, authenticateRequest, tokenOf } from './auth-client.js';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { b, putReq, rangeReq } from './kv-client.js';
import * as codec from '../../src/proto/kv-codec.js';
import { join } from 'node:path';

const ETCDCTL = '/usr/bin/etcdctl';
const READY_MS = 60_000;

interface CtlResult { code: number; out: string; err: string }

function etcdctl(endpoint: string, args: string[]): Promise<CtlResult> {
  return new Promise((resolve) => {
    execFile(ETCDCTL, [`--endpoints=${endpoint}`, '--dial-timeout=3s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        const errLines = stderr.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
        resolve({ code, out: stdout, err: errLines });
      });
  });
}

async function ok(endpoint: string, args: string[], want?: string): Promise<void> {
  const r = await etcdctl(endpoint, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: exit ${r.code} ${r.err}`);
  if (want !== undefined) assert.equal(r.out, want, `etcdctl ${args.join(' ')}`);
}

async function refused(endpoint: string, args: string[], error: string): Promise<void> {
  const r = await etcdctl(endpoint, args);
  assert.notEqual(r.code, 0, `etcdctl ${args.join(' ')} succeeded`);
  assert.equal(r.err, `Error: ${error}`, `etcdctl ${args.join(' ')}`);
}

/** The first `n` lines an etcdctl watch prints; the watch is then stopped by its PID. */
function firstWatchLines(endpoint: string, args: string[], n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL, [`--endpoints=${endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`watch printed ${JSON.stringify(out)} ${err}`)); }, 20_000);
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      if (lines.length > n) {
        clearTimeout(timer);
        child.kill('SIGTERM');
        resolve(lines.slice(0, n).join('\n') + '\n');
      }
    });
    child.on('exit', () => { clearTimeout(timer); if (out.split('\n').length <= n) reject(new Error(`watch ended: ${JSON.stringify(out)} ${err}`)); });
  });
}

/** Readiness with auth on: root's read answers. */
async function waitReadyAsRoot(p: EtsdProcess): Promise<void> {
  const deadline = Date.now() + READY_MS;
  let last: CtlResult | undefined;
  while (Date.now() < deadline) {
    last = await etcdctl(p.endpoint, ['--user=root:pw', 'get', 'probe']);
    if (last.code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`etsd not ready as root: ${last?.err}\n${p.logTail()}`);
}

async function rejects(p: Promise<unknown>, code: grpc.status, details: string): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `code ${err.code} (${err.details})`);
    assert.equal(err.details, details);
    return true;
  });
}

test('auth: tokens, checks, and users and roles kept across SIGTERM and kill -9 restarts', { timeout: 300_000 }, async (t) => {
  const dir = makeTempDir('auth');
  const [clientPort, peerPort] = await freePorts(2);
  const opts = { dataDir: dir, clientPort: clientPort!, peerPort: peerPort!, shards: 1 };
  let proc = await EtsdProcess.startReady(opts);
  const ep = proc.endpoint;
  const raw = new RawClient(ep);
  t.after(async () => {
    raw.close();
    await proc.kill('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  });

  await ok(ep, ['user', 'add', 'root:pw'], 'User root created\n');
  await ok(ep, ['user', 'grant-role', 'root', 'root']);
  await ok(ep, ['role', 'add', 'reader']);
  await ok(ep, ['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix=true']);
  await ok(ep, ['user', 'add', 'alice:apw']);
  await ok(ep, ['user', 'grant-role', 'alice', 'reader']);
  await ok(ep, ['put', 'app/x', '1']);
  await ok(ep, ['auth', 'enable'], 'Authentication Enabled\n');
  // Six changes after the store's first revision (1); enabling bumps nothing (etcd's rule).
  assert.match(await fetch(`http://${ep}/metrics`).then((r) => r.text()), /^etcd_debugging_auth_revision 7$/m);

  // The token: etcd's simple token, valid right away, checked on every request.
  const token = tokenOf(await raw.call('/etcdserverpb.Auth/Authenticate', authenticateRequest('alice', 'apw')));
  assert.match(token, /^[a-zA-Z]{16}\.[0-9]+$/);
  const got = codec.decodeRangeResponse(await raw.call('/etcdserverpb.KV/Range', codec.encodeRangeRequest(rangeReq({ key: b('app/x') })), token));
  assert.equal(got.kvs[0]?.value.toString(), '1');
  await rejects(raw.call('/etcdserverpb.KV/Put', codec.encodePutRequest(putReq({ key: b('app/x'), value: b('2') })), token),
    grpc.status.PERMISSION_DENIED, 'etcdserver: permission denied');
  await rejects(raw.call('/etcdserverpb.KV/Range', codec.encodeRangeRequest(rangeReq({ key: b('app/x') }))),
    grpc.status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
  for (const bad of ['abcdefghijklmnop.1', 'no-dot', `${token}x`]) {
    await rejects(raw.call('/etcdserverpb.KV/Range', codec.encodeRangeRequest(rangeReq({ key: b('app/x') })), bad),
      grpc.status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
  }
  await rejects(raw.call('/etcdserverpb.Auth/Authenticate', authenticateRequest('alice', 'wrong')),
    grpc.status.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password');
  await rejects(raw.call('/etcdserverpb.Auth/UserList', Buffer.alloc(0), token),
    grpc.status.PERMISSION_DENIED, 'etcdserver: permission denied');

  // Lease expiry revokes as root (etcd's WithRoot): the key goes even though the expiry has no user.
  const granted = await etcdctl(ep, ['--user=root:pw', 'lease', 'grant', '2']);
  const leaseId = /lease ([0-9a-f]+) granted/.exec(granted.out)?.[1];
  assert.ok(leaseId, granted.out + granted.err);
  await ok(ep, ['--user=root:pw', 'put', 'app/tmp', 'v', `--lease=${leaseId}`]);
  const expiryDeadline = Date.now() + 30_000;
  while ((await etcdctl(ep, ['--user=root:pw', 'get', 'app/tmp', '--keys-only'])).out !== '') {
    assert.ok(Date.now() < expiryDeadline, `the lease never expired:\n${proc.logTail(20)}`);
    await new Promise((r) => setTimeout(r, 250));
  }

  // A watch created with alice's token (stream metadata) on a key she may read replays its history.
  assert.equal(await firstWatchLines(ep, ['--user=alice:apw', 'watch', 'app/x', '--rev=1'], 3), 'PUT\napp/x\n1\n');

  // Snapshot is admin only (etcd's IsAdminPermitted): alice is refused, root gets the file.
  const snapDir = makeTempDir('auth-snap');
  const aliceSnap = await etcdctl(ep, ['--user=alice:apw', 'snapshot', 'save', join(snapDir, 'alice.db')]);
  assert.notEqual(aliceSnap.code, 0);
  assert.match(aliceSnap.err, /permission denied/);
  await ok(ep, ['--user=root:pw', 'snapshot', 'save', join(snapDir, 'root.db')]);
  removeTempDir(snapDir);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    await ok(ep, ['--user=root:pw', 'role', 'add', `after-${signal}`]);
    await proc.kill(signal);
    proc = await EtsdProcess.start(opts);
    await waitReadyAsRoot(proc);
    // Still enabled, same users, roles and permissions; tokens are not kept (etcd's simple tokens neither).
    await refused(ep, ['get', 'app/x'], 'etcdserver: user name is empty');
    await ok(ep, ['--user=alice:apw', 'get', 'app/x'], 'app/x\n1\n');
    await refused(ep, ['--user=alice:apw', 'put', 'app/x', '2'], 'etcdserver: permission denied');
    await ok(ep, ['--user=root:pw', 'user', 'list'], 'alice\nroot\n');
    // The root role was granted without being added (etcd allows that): it is not listed.
    const roles = signal === 'SIGTERM' ? 'after-SIGTERM\nreader\n' : 'after-SIGKILL\nafter-SIGTERM\nreader\n';
    await ok(ep, ['--user=root:pw', 'role', 'list'], roles);
    await ok(ep, ['--user=root:pw', 'role', 'get', 'reader'], 'Role reader\nKV Read:\n\t[app/, app0) (prefix app/)\nKV Write:\n');
    await rejects(raw.call('/etcdserverpb.KV/Range', codec.encodeRangeRequest(rangeReq({ key: b('app/x') })), token),
      grpc.status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
  }

  await ok(ep, ['--user=root:pw', 'auth', 'disable'], 'Authentication Disabled\n');
  await proc.kill('SIGTERM');
  proc = await EtsdProcess.startReady(opts);
  await ok(ep, ['get', 'app/x'], 'app/x\n1\n');
});
