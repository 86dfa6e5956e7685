// The auth store crosses snapshots both ways, with the real tools: users (one
// with a password, one without), roles with permissions, the root user, auth
// enabled and the auth revision. etsd -> `etcdctl snapshot save` ->
// `etcdctl snapshot restore` -> a real etcd 3.4 serves the same auth state;
// a real etcd's snapshot -> `etsdutl snapshot restore` -> etsd serves it.
// "Serves the same" is: every user and role read back as root gives the same
// answer, the passwords still log in, alice's permissions allow and refuse
// the same requests, and a request without a user is refused (auth is on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPrerequisites, READY_TIMEOUT_MS, runEtcdctl, startServer, stopServer, waitReady, type ServerHandle, type ServerKind } from './harness.js';
import { repoRoot } from '../common/repo.js';
import { freeUrls, startWithFlags } from './snapshot-servers.js';

const ROOT = '--user=root:pw';

async function ctl(h: ServerHandle, args: string[]): Promise<string> {
  const r = await runEtcdctl(h, args, Buffer.alloc(0), 30_000);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')} failed on ${h.kind}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** Users, roles, permissions, auth enabled, a few keys. */
async function fillAuth(h: ServerHandle): Promise<void> {
  for (const args of [
    ['user', 'add', 'root:pw'], ['role', 'add', 'root'], ['user', 'grant-role', 'root', 'root'],
    ['role', 'add', 'r1'], ['role', 'grant-permission', 'r1', 'read', 'foo'],
    ['role', 'grant-permission', 'r1', 'readwrite', 'dir/', '--prefix=true'],
    ['role', 'grant-permission', 'r1', 'write', 'k1', 'k5'], ['role', 'add', 'r2'],
    ['user', 'add', 'alice:apw'], ['user', 'grant-role', 'alice', 'r1'], ['user', 'grant-role', 'alice', 'r2'],
    ['user', 'add', 'nopw', '--no-password'], ['user', 'grant-role', 'nopw', 'r2'],
    ['user', 'add', 'gone:x'], ['user', 'delete', 'gone'],
    ['put', 'foo', 'bar'], ['put', 'dir/a', '1'], ['put', 'secret', 's'],
    ['auth', 'enable'],
  ]) await ctl(h, args);
}

/** Every answer that shows the auth state, as text: exit code, stdout and stderr's "Error:" line. */
async function authView(h: ServerHandle): Promise<string[]> {
  const out: string[] = [];
  for (const args of [
    [ROOT, 'user', 'list'], [ROOT, 'role', 'list'],
    [ROOT, 'user', 'get', 'root', '--detail'], [ROOT, 'user', 'get', 'alice', '--detail'], [ROOT, 'user', 'get', 'nopw', '--detail'],
    [ROOT, 'role', 'get', 'root'], [ROOT, 'role', 'get', 'r1'], [ROOT, 'role', 'get', 'r2'],
    ['--user=alice:apw', 'get', 'foo'], ['--user=alice:apw', 'get', 'dir/', '--prefix'], ['--user=alice:apw', 'put', 'dir/a', '1'],
    ['--user=alice:apw', 'get', 'secret'], ['--user=alice:apw', 'put', 'foo', 'x'], ['--user=alice:wrong', 'get', 'foo'],
    ['get', 'foo'], ['--user=nopw', '--password=', 'get', 'foo'],
    [ROOT, 'get', 'dir/', '--prefix', '--keys-only'],
  ]) {
    const r = await runEtcdctl(h, args, Buffer.alloc(0), 30_000);
    const err = r.stderr.toString().split('\n').filter((l) => l.startsWith('Error:')).join('\n');
    out.push(`${args.join(' ')} -> ${r.code}\n${r.stdout.toString()}${err}`);
  }
  return out;
}

/** Ready with auth on: a read as root answers. */
async function waitReadyAsRoot(h: ServerHandle): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (h.exited) throw new Error(`${h.label} ${h.exitDescription}`);
    const r = await runEtcdctl(h, ['--dial-timeout=1s', '--command-timeout=2s', ROOT, 'get', 'probe'], Buffer.alloc(0), 5_000);
    if (r.code === 0) return;
    last = r.stderr.toString();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${h.label} not ready: ${last}`);
}

async function roundTrip(from: ServerKind, to: ServerKind, label: string): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), `etsd-snapauth-${label}-`));
  const src = await startServer(from, `${label}src`);
  try {
    await waitReady(src);
    await fillAuth(src);
    const want = await authView(src);
    const file = join(tmp, 'snap.db');
    await ctl(src, [ROOT, 'snapshot', 'save', file]);
    await stopServer(src);

    const urls = await freeUrls();
    const dataDir = join(tmp, 'restored');
    const member = ['--name', 'a1', '--initial-cluster', `a1=${urls.peer}`, '--initial-cluster-token', `${label}-token`, '--initial-advertise-peer-urls', urls.peer];
    if (to === 'etcd') {
      const r = await runEtcdctl(src, ['snapshot', 'restore', file, '--data-dir', dataDir, ...member], Buffer.alloc(0), 30_000);
      assert.equal(r.code, 0, r.stderr.toString());
    } else {
      const utl = join(repoRoot(), 'dist', 'src', 'cli', 'etsdutl.js');
      const out = execFileSync(process.execPath, [utl, 'snapshot', 'restore', file, '--data-dir', dataDir, ...member]).toString();
      assert.match(out, /3 users, 3 roles, auth enabled/);
    }
    const dst = startWithFlags(to, `restored-${to}`, tmp, urls, ['--data-dir', dataDir, ...member]);
    try {
      await waitReadyAsRoot(dst);
      const got = await authView(dst);
      assert.deepEqual(got, want);
    } finally {
      await stopServer(dst, true);
    }
  } finally {
    if (!src.exited) await stopServer(src);
    rmSync(tmp, { recursive: true, force: true });
  }
}

test('etsd with auth -> etcdctl snapshot save/restore -> real etcd has the same users, roles, permissions, auth enabled', { timeout: 240_000 }, async () => {
  checkPrerequisites();
  await roundTrip('etsd', 'etcd', 'toetcd');
});

test('real etcd with auth -> snapshot -> etsdutl snapshot restore -> etsd has the same auth state', { timeout: 240_000 }, async () => {
  checkPrerequisites();
  await roundTrip('etcd', 'etsd', 'toetsd');
});
