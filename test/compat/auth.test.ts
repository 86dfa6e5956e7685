// Auth, differential: one etcdctl script (users, roles, permissions, auth
// enable, requests as each user, the admin-only and management refusals,
// auth disable) runs against real etcd 3.4 and against etsd; every step's exit
// code, stdout and "Error:" lines must be the same.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkPrerequisites, runEtcdctl, startServer, stopServer, targetKind, waitReady, type ServerHandle,
} from './harness.js';

/** `capture`: a lease id in the output, named $LEASE in later steps' args and outputs (ids differ between servers). */
interface Step { args: string[]; stdin?: string; capture?: RegExp }

const ROOT = '--user=root:pw';
const ALICE = '--user=alice:apw';
const run = (...args: string[]): Step => ({ args });

/** etcdctl txn --interactive=false: compares, blank line, success ops, blank line, failure ops. */
const txn = (user: string, body: string): Step => ({ args: [user, 'txn', '--interactive=false'], stdin: body });

const SCRIPT: Step[] = [
  // Management while auth is off: anyone may, and every refusal is etcd's.
  run('auth', 'enable'),
  run('user', 'add', 'root:pw'),
  run('user', 'add', 'root:pw'),
  run('auth', 'enable'),
  run('role', 'add', 'r1'),
  run('role', 'add', 'r1'),
  run('role', 'get', 'nosuch'),
  run('role', 'grant-permission', 'r1', 'read', 'foo'),
  run('role', 'grant-permission', 'r1', 'readwrite', 'dir/', '--prefix=true'),
  run('role', 'grant-permission', 'r1', 'write', 'k1', 'k5'),
  run('role', 'grant-permission', 'nosuch', 'read', 'foo'),
  run('role', 'grant-permission', 'r1', 'read', 'foo'),
  run('role', 'grant-permission', 'r1', 'write', 'k1', 'k5'),
  run('role', 'grant-permission', 'r1', 'read', 'from', '--from-key'),
  run('role', 'grant-permission', 'r1', 'read', 'k1', 'k3'),
  run('role', 'grant-permission', 'r1', 'bogus', 'foo'),
  run('role', 'get', 'r1'),
  run('role', 'revoke-permission', 'r1', 'k1', 'k3'),
  run('role', 'revoke-permission', 'r1', 'from', '--from-key'),
  run('role', 'revoke-permission', 'r1', 'nosuch'),
  run('role', 'revoke-permission', 'nosuch', 'foo'),
  run('role', 'get', 'r1'),
  run('role', 'list'),
  run('role', 'add', 'r2'),
  run('role', 'delete', 'r2'),
  run('role', 'delete', 'r2'),
  { args: ['user', 'add', 'carol', '--interactive=false'], stdin: 'cpw\n' },
  run('user', 'add', 'dave', '--new-user-password=dpw'),
  run('user', 'delete', 'carol'),
  run('user', 'delete', 'dave'),
  run('user', 'delete', 'carol'),
  run('user', 'add', 'alice:apw'),
  run('user', 'add', 'nopw', '--no-password'),
  run('user', 'grant-role', 'alice', 'r1'),
  run('user', 'grant-role', 'alice', 'r1'),
  run('user', 'grant-role', 'alice', 'nosuch'),
  run('user', 'grant-role', 'nosuch', 'r1'),
  run('user', 'get', 'alice'),
  run('user', 'get', 'alice', '--detail'),
  run('user', 'get', 'nopw', '--detail'),
  run('--user=nopw', '--password=', 'get', 'foo'),
  run('user', 'get', 'nosuch'),
  run('user', 'list'),
  run('user', 'revoke-role', 'alice', 'nosuch'),
  run('put', 'foo', 'bar'),
  run('put', 'k2', 'before'),
  run('--user=alice:apw', 'get', 'foo'),
  // Root needs the root role first (etcdctl adds the role when it is missing).
  run('user', 'grant-role', 'root', 'root'),
  run('auth', 'enable'),
  run('auth', 'enable'),

  // Who may do what with auth on.
  run('get', 'foo'),
  run('put', 'foo', 'x'),
  run('user', 'list'),
  run('--user=root:wrong', 'get', 'foo'),
  run('--user=nosuch:pw', 'get', 'foo'),
  run('--user=nopw:pw', 'get', 'foo'),
  run(ROOT, 'put', 'foo', 'bar2'),
  run(ROOT, 'get', 'foo'),
  run(ALICE, 'get', 'foo'),
  run(ALICE, 'get', 'foo', '--consistency=s'),
  run(ALICE, 'put', 'foo', 'x'),
  run(ALICE, 'put', 'dir/a', '1'),
  run(ALICE, 'get', 'dir/', '--prefix'),
  run(ALICE, 'get', '', '--prefix'),
  run(ALICE, 'get', 'dir/a', 'dir/z'),
  run(ALICE, 'put', 'k2', 'v'),
  run(ALICE, 'put', 'k5', 'v'),
  run(ALICE, 'get', 'k2'),
  run(ALICE, 'put', 'k2', 'v', '--prev-kv'),
  run(ALICE, 'del', 'k2'),
  run(ALICE, 'del', 'k1', 'k3'),
  run(ALICE, 'del', 'dir/', '--prefix', '--prev-kv'),
  run(ALICE, 'del', 'foo'),
  txn(ALICE, 'value("foo") = "bar2"\n\nput k3 v3\n\nget foo\n'),
  txn(ALICE, 'value("foo") = "bar2"\n\nput k3 v3\n\nput zzz v\n'),
  txn(ALICE, 'value("zzz") = "bar2"\n\nput k3 v3\n\n\n'),
  txn(ALICE, 'value("foo") = "bar2"\n\nget k3\n\n\n'),
  txn(ALICE, 'value("foo") = "bar2"\n\ndel k1 k4\n\n\n'),
  run(ALICE, 'user', 'list'),
  run(ALICE, 'role', 'list'),
  run(ALICE, 'user', 'get', 'alice'),
  run(ALICE, 'user', 'get', 'root'),
  run(ALICE, 'role', 'get', 'r1'),
  run(ALICE, 'role', 'get', 'root'),
  run(ALICE, 'user', 'add', 'bob:b'),
  run(ALICE, 'role', 'add', 'r2'),
  run(ALICE, 'auth', 'disable'),
  run(ALICE, 'member', 'add', 'x', '--peer-urls=http://127.0.0.1:1'),
  run(ALICE, 'endpoint', 'hashkv'),
  run('--user=alice:apw', '--password=apw', 'get', 'foo'),
  // Watch, Lock and Election as the caller; a lease revoke needs write on every attached key.
  run(ALICE, 'watch', 'zzz'),
  run(ALICE, 'lock', 'dir/l', 'echo', 'locked'),
  run(ALICE, 'lock', 'zzz', 'echo', 'locked'),
  run(ALICE, 'elect', 'zzz', 'v1'),
  { args: [ROOT, 'lease', 'grant', '100'], capture: /lease ([0-9a-f]+) granted/ },
  run(ROOT, 'put', 'sec', 'v', '--lease=$LEASE'),
  run(ALICE, 'lease', 'revoke', '$LEASE'),
  run(ALICE, 'lease', 'timetolive', '$LEASE', '--keys'),
  run(ALICE, 'put', 'dir/x', 'v', '--lease=$LEASE'),
  run(ROOT, 'lease', 'revoke', '$LEASE'),
  run('--user=alice', '--password=apw', 'get', 'foo'),

  // Management rules with auth on.
  run(ROOT, 'user', 'delete', 'root'),
  run(ROOT, 'user', 'revoke-role', 'root', 'root'),
  run(ROOT, 'role', 'delete', 'root'),
  run(ROOT, 'role', 'get', 'root'),
  run(ROOT, 'user', 'get', 'root'),
  run(ROOT, 'role', 'revoke-permission', 'r1', 'foo'),
  run(ROOT, 'role', 'revoke-permission', 'r1', 'foo'),
  run(ROOT, 'role', 'revoke-permission', 'r1', 'dir/', '--prefix=true'),
  run(ROOT, 'role', 'get', 'r1'),
  run(ALICE, 'get', 'foo'),
  { args: [ROOT, 'user', 'passwd', 'alice', '--interactive=false'], stdin: 'apw2\n' },
  run(ALICE, 'put', 'k3', 'v'),
  run('--user=alice:apw2', 'put', 'k3', 'v'),
  run(ROOT, 'user', 'revoke-role', 'alice', 'r1'),
  run('--user=alice:apw2', 'put', 'k3', 'v'),
  run(ROOT, 'role', 'delete', 'r1'),
  run(ROOT, 'role', 'delete', 'r1'),
  run(ROOT, 'user', 'delete', 'alice'),
  run(ROOT, 'user', 'delete', 'alice'),
  run('--user=alice:apw2', 'get', 'foo'),
  run(ROOT, 'user', 'list'),
  run(ROOT, 'role', 'list'),
  run(ROOT, 'auth', 'disable'),

  // Off again: no user needed; a user is refused by Authenticate.
  run('get', 'foo'),
  run(ROOT, 'get', 'foo'),
  run('auth', 'disable'),
  run('user', 'list'),
  run('user', 'get', 'root'),
  run('user', 'delete', 'root'),
  run('role', 'list'),
];

/** What is compared for one step: the exit code, stdout, and the "Error:" lines of stderr. */
async function runScript(h: ServerHandle): Promise<string[]> {
  const out: string[] = [];
  let lease = '';
  for (const s of SCRIPT) {
    const args = s.args.map((a) => a.replace('$LEASE', lease));
    const r = await runEtcdctl(h, ['--dial-timeout=3s', '--command-timeout=10s', ...args], Buffer.from(s.stdin ?? ''));
    const stdout = r.stdout.toString('utf8');
    if (s.capture) {
      lease = s.capture.exec(stdout)?.[1] ?? '';
      assert.notEqual(lease, '', `${h.label}: no lease id in ${JSON.stringify(stdout)}`);
    }
    const errLines = r.stderr.toString('utf8').split('\n').filter((l) => l.startsWith('Error:')).join('\n');
    const text = `$ etcdctl ${s.args.join(' ')}\n[exit ${r.code}]\n${stdout}${errLines}`;
    out.push(lease === '' ? text : text.replaceAll(lease, '$LEASE').replace(/remaining\(\d+s\)/, 'remaining(Ns)'));
  }
  return out;
}

const servers: ServerHandle[] = [];
after(async () => { await Promise.all(servers.map((h) => stopServer(h))); });

test('auth: the same etcdctl script gives the same answers on etcd 3.4 and etsd', { timeout: 600_000 }, async () => {
  checkPrerequisites();
  const etcd = await startServer('etcd', 'etcd');
  servers.push(etcd);
  const target = await startServer(targetKind(), targetKind());
  servers.push(target);
  await Promise.all([waitReady(etcd), waitReady(target)]);
  const [want, got] = await Promise.all([runScript(etcd), runScript(target)]);
  for (let i = 0; i < SCRIPT.length; i++) {
    assert.equal(got[i], want[i], `step ${i + 1} differs (etsd, then etcd 3.4)`);
  }
});
