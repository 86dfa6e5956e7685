// The auth store against etcd 3.4's auth/store.go and apply_auth.go: every
// error (code and text), the auth revision bumped exactly where etcd bumps
// it, sorted outputs, the root rules, admin-only requests, UserGet/RoleGet's
// own-user/own-role exceptions, and the permission checks' order of errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdError, GrpcCode } from '../../src/common/errors.js';
import { AuthStore, type AuthRequest, type AuthResponse } from '../../src/auth/store.js';
import { PermType, type AuthInfo } from '../../src/auth/types.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const NOBODY: AuthInfo = { username: '', revision: 0 };
const HASH = '$2a$04$abcdefghijklmnopqrstuuSomeHashValueXXXXXXXXXXXXXXXXXX';

function run(s: AuthStore, req: AuthRequest, info: AuthInfo = NOBODY, index = 1): AuthResponse {
  return s.apply(info, req, index).response;
}

function throwsEtcd(fn: () => unknown, code: GrpcCode, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof EtcdError, `not an EtcdError: ${String(e)}`);
    assert.equal(e.message, message);
    assert.equal(e.code, code);
    return true;
  });
}

const addUser = (s: AuthStore, name: string, info = NOBODY) =>
  run(s, { method: 'UserAdd', name, hashedPassword: HASH, noPassword: false }, info);
const addRole = (s: AuthStore, name: string, info = NOBODY) => run(s, { method: 'RoleAdd', name }, info);
const grantRole = (s: AuthStore, user: string, role: string, info = NOBODY) => run(s, { method: 'UserGrantRole', user, role }, info);
const grantPerm = (s: AuthStore, role: string, t: PermType, key: string, rangeEnd = '', info = NOBODY) =>
  run(s, { method: 'RoleGrantPermission', name: role, perm: { permType: t, key: B(key), rangeEnd: B(rangeEnd) } }, info);

/** root user with the root role, auth on. Returns root's AuthInfo at the current revision. */
function enabledStore(): { s: AuthStore; root: () => AuthInfo } {
  const s = new AuthStore();
  addUser(s, 'root');
  grantRole(s, 'root', 'root');
  run(s, { method: 'AuthEnable' });
  return { s, root: () => ({ username: 'root', revision: s.revision }) };
}

test('a new store is off at revision 1; the operations bump it exactly where etcd does', () => {
  const s = new AuthStore();
  assert.equal(s.isEnabled, false);
  assert.equal(s.revision, 1);
  addUser(s, 'u'); assert.equal(s.revision, 2);
  addRole(s, 'r'); assert.equal(s.revision, 3);
  grantRole(s, 'u', 'r'); assert.equal(s.revision, 4);
  grantRole(s, 'u', 'r'); assert.equal(s.revision, 4, 'granting a role already granted is a no-op');
  grantPerm(s, 'r', PermType.READ, 'a'); assert.equal(s.revision, 5);
  grantPerm(s, 'r', PermType.READ, 'a'); assert.equal(s.revision, 6, 'a grant that changes nothing still bumps (etcd)');
  run(s, { method: 'UserGet', name: 'u' }); run(s, { method: 'UserList' });
  run(s, { method: 'RoleGet', role: 'r' }); run(s, { method: 'RoleList' });
  assert.equal(s.revision, 6, 'reads do not bump');
  run(s, { method: 'RoleRevokePermission', role: 'r', key: B('a'), rangeEnd: B('') }); assert.equal(s.revision, 7);
  run(s, { method: 'UserChangePassword', name: 'u', hashedPassword: HASH }); assert.equal(s.revision, 8);
  run(s, { method: 'UserRevokeRole', name: 'u', role: 'r' }); assert.equal(s.revision, 9);
  run(s, { method: 'RoleDelete', role: 'r' }); assert.equal(s.revision, 10);
  run(s, { method: 'UserDelete', name: 'u' }); assert.equal(s.revision, 11);
  run(s, { method: 'AuthDisable' }); assert.equal(s.revision, 11, 'disabling while off changes nothing');
  addUser(s, 'root'); grantRole(s, 'root', 'root'); assert.equal(s.revision, 13);
  run(s, { method: 'AuthEnable' }); assert.equal(s.revision, 13, 'enabling does not bump');
  assert.equal(s.isEnabled, true);
  run(s, { method: 'AuthEnable' }, { username: 'root', revision: 13 }); assert.equal(s.revision, 13, 'enabling again is a no-op');
  run(s, { method: 'AuthDisable' }, { username: 'root', revision: 13 }); assert.equal(s.revision, 14, 'disabling bumps');
});

test('AuthEnable needs a root user holding the root role; the root role need not exist', () => {
  const s = new AuthStore();
  throwsEtcd(() => run(s, { method: 'AuthEnable' }), GrpcCode.FAILED_PRECONDITION, 'etcdserver: root user does not exist');
  addUser(s, 'root');
  throwsEtcd(() => run(s, { method: 'AuthEnable' }), GrpcCode.FAILED_PRECONDITION, 'etcdserver: root user does not have root role');
  assert.equal(s.isEnabled, false);
  grantRole(s, 'root', 'root'); // no role "root" exists: etcd allows it
  const out = s.apply(NOBODY, { method: 'AuthEnable' }, 1);
  assert.deepEqual(out.effect, { kind: 'enable' });
  assert.equal(s.isEnabled, true);
});

test('root cannot be deleted, lose the root role, or the root role be deleted while auth is on', () => {
  const { s, root } = enabledStore();
  addRole(s, 'root', root());
  const invalid = 'etcdserver: invalid auth management';
  throwsEtcd(() => run(s, { method: 'UserDelete', name: 'root' }, root()), GrpcCode.INVALID_ARGUMENT, invalid);
  throwsEtcd(() => run(s, { method: 'UserRevokeRole', name: 'root', role: 'root' }, root()), GrpcCode.INVALID_ARGUMENT, invalid);
  throwsEtcd(() => run(s, { method: 'RoleDelete', role: 'root' }, root()), GrpcCode.INVALID_ARGUMENT, invalid);
  // All three are allowed once auth is off.
  run(s, { method: 'AuthDisable' }, root());
  run(s, { method: 'UserRevokeRole', name: 'root', role: 'root' });
  run(s, { method: 'RoleDelete', role: 'root' });
  run(s, { method: 'UserDelete', name: 'root' });
  assert.deepEqual((run(s, { method: 'UserList' }) as { users: string[] }).users, []);
});

test('duplicate, missing and empty users and roles, not granted roles and permissions', () => {
  const s = new AuthStore();
  const FP = GrpcCode.FAILED_PRECONDITION;
  throwsEtcd(() => addUser(s, ''), GrpcCode.INVALID_ARGUMENT, 'etcdserver: user name is empty');
  throwsEtcd(() => addRole(s, ''), GrpcCode.INVALID_ARGUMENT, 'etcdserver: role name is empty');
  addUser(s, 'u');
  addRole(s, 'r');
  const rev = s.revision;
  throwsEtcd(() => addUser(s, 'u'), FP, 'etcdserver: user name already exists');
  throwsEtcd(() => addRole(s, 'r'), FP, 'etcdserver: role name already exists');
  const userNotFound = 'etcdserver: user name not found';
  throwsEtcd(() => run(s, { method: 'UserGet', name: 'x' }), FP, userNotFound);
  throwsEtcd(() => run(s, { method: 'UserDelete', name: 'x' }), FP, userNotFound);
  throwsEtcd(() => run(s, { method: 'UserChangePassword', name: 'x', hashedPassword: HASH }), FP, userNotFound);
  throwsEtcd(() => grantRole(s, 'x', 'r'), FP, userNotFound);
  throwsEtcd(() => run(s, { method: 'UserRevokeRole', name: 'x', role: 'r' }), FP, userNotFound);
  const roleNotFound = 'etcdserver: role name not found';
  throwsEtcd(() => grantRole(s, 'u', 'x'), FP, roleNotFound);
  throwsEtcd(() => run(s, { method: 'RoleGet', role: 'x' }), FP, roleNotFound);
  throwsEtcd(() => run(s, { method: 'RoleDelete', role: 'x' }), FP, roleNotFound);
  throwsEtcd(() => grantPerm(s, 'x', PermType.READ, 'a'), FP, roleNotFound);
  throwsEtcd(() => run(s, { method: 'RoleRevokePermission', role: 'x', key: B('a'), rangeEnd: B('') }), FP, roleNotFound);
  throwsEtcd(() => run(s, { method: 'UserRevokeRole', name: 'u', role: 'r' }), FP, 'etcdserver: role is not granted to the user');
  throwsEtcd(() => run(s, { method: 'RoleRevokePermission', role: 'r', key: B('a'), rangeEnd: B('') }), FP,
    'etcdserver: permission is not granted to the role');
  grantPerm(s, 'r', PermType.READ, 'a', 'b');
  // A revoke must name the same key and range end.
  throwsEtcd(() => run(s, { method: 'RoleRevokePermission', role: 'r', key: B('a'), rangeEnd: B('') }), FP,
    'etcdserver: permission is not granted to the role');
  assert.equal(s.revision, rev + 1, 'failures do not bump');
});

test('lists and gets come out sorted bytewise, as etcd\'s buckets give them', () => {
  const s = new AuthStore();
  for (const n of ['b', 'a', 'Z', 'é', 'aa']) addUser(s, n);
  for (const n of ['r2', 'r10', 'R', 'r1']) addRole(s, n);
  assert.deepEqual((run(s, { method: 'UserList' }) as { users: string[] }).users, ['Z', 'a', 'aa', 'b', 'é']);
  assert.deepEqual((run(s, { method: 'RoleList' }) as { roles: string[] }).roles, ['R', 'r1', 'r10', 'r2']);
  for (const r of ['r2', 'root', 'R', 'r10']) grantRole(s, 'a', r);
  assert.deepEqual((run(s, { method: 'UserGet', name: 'a' }) as { roles: string[] }).roles, ['R', 'r10', 'r2', 'root']);
  grantPerm(s, 'r1', PermType.WRITE, 'm');
  grantPerm(s, 'r1', PermType.READ, 'c', 'd');
  grantPerm(s, 'r1', PermType.READWRITE, 'x', '\0');
  const perms = (run(s, { method: 'RoleGet', role: 'r1' }) as { perms: { key: Buffer }[] }).perms;
  assert.deepEqual(perms.map((p) => p.key.toString()), ['c', 'm', 'x']);
});

test('RoleGrantPermission updates the first permission on the key only when its range end matches (etcd\'s quirk)', () => {
  const s = new AuthStore();
  addRole(s, 'r');
  grantPerm(s, 'r', PermType.READ, 'a', 'b');
  grantPerm(s, 'r', PermType.WRITE, 'a', 'b'); // same key and end: updated in place
  const get = () => (run(s, { method: 'RoleGet', role: 'r' }) as { perms: { permType: PermType; key: Buffer; rangeEnd: Buffer }[] }).perms
    .map((p) => `${p.permType}:${p.key.toString()}-${p.rangeEnd.toString()}`);
  assert.deepEqual(get(), ['1:a-b']);
  grantPerm(s, 'r', PermType.READ, 'a', 'c'); // same key, other end: appended after
  assert.deepEqual(get(), ['1:a-b', '0:a-c']);
  grantPerm(s, 'r', PermType.READWRITE, 'a', 'c'); // the first 'a' is a-b, so etcd appends a second a-c
  assert.deepEqual(get(), ['1:a-b', '0:a-c', '2:a-c']);
  // A revoke removes every copy.
  run(s, { method: 'RoleRevokePermission', role: 'r', key: B('a'), rangeEnd: B('c') });
  assert.deepEqual(get(), ['1:a-b']);
});

test('RoleDelete takes the role from every user; UserGrantRole keeps roles sorted', () => {
  const s = new AuthStore();
  addUser(s, 'u1'); addUser(s, 'u2'); addRole(s, 'r'); addRole(s, 'q');
  grantRole(s, 'u1', 'r'); grantRole(s, 'u1', 'q'); grantRole(s, 'u2', 'r');
  run(s, { method: 'RoleDelete', role: 'r' });
  assert.deepEqual((run(s, { method: 'UserGet', name: 'u1' }) as { roles: string[] }).roles, ['q']);
  assert.deepEqual((run(s, { method: 'UserGet', name: 'u2' }) as { roles: string[] }).roles, []);
});

test('admin-only requests while auth is on: no user, unknown user, user without root', () => {
  const { s, root } = enabledStore();
  addUser(s, 'alice', root());
  addRole(s, 'r', root());
  grantRole(s, 'alice', 'r', root());
  const alice = (): AuthInfo => ({ username: 'alice', revision: s.revision });
  const admin: AuthRequest[] = [
    { method: 'AuthEnable' }, { method: 'AuthDisable' },
    { method: 'UserAdd', name: 'x', hashedPassword: HASH, noPassword: false },
    { method: 'UserDelete', name: 'alice' }, { method: 'UserChangePassword', name: 'alice', hashedPassword: HASH },
    { method: 'UserGrantRole', user: 'alice', role: 'r' }, { method: 'UserRevokeRole', name: 'alice', role: 'r' },
    { method: 'RoleAdd', name: 'x' }, { method: 'RoleGrantPermission', name: 'r', perm: { permType: PermType.READ, key: B('a'), rangeEnd: B('') } },
    { method: 'RoleRevokePermission', role: 'r', key: B('a'), rangeEnd: B('') }, { method: 'RoleDelete', role: 'r' },
    { method: 'UserList' }, { method: 'RoleList' },
  ];
  const rev = s.revision;
  for (const req of admin) {
    throwsEtcd(() => run(s, req, NOBODY), GrpcCode.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    throwsEtcd(() => run(s, req, { username: 'ghost', revision: rev }), GrpcCode.FAILED_PRECONDITION, 'etcdserver: user name not found');
    throwsEtcd(() => run(s, req, alice()), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  }
  assert.equal(s.revision, rev);
  assert.equal(s.isEnabled, true);
  // The admin check does not look at the auth revision (etcd's IsAdminPermitted).
  run(s, { method: 'UserList' }, { username: 'root', revision: 1 });
});

test('UserGet of oneself and RoleGet of one\'s own role need no root; others do', () => {
  const { s, root } = enabledStore();
  addUser(s, 'alice', root()); addUser(s, 'bob', root());
  addRole(s, 'r', root()); addRole(s, 'q', root());
  grantRole(s, 'alice', 'r', root());
  const alice = { username: 'alice', revision: s.revision };
  assert.deepEqual((run(s, { method: 'UserGet', name: 'alice' }, alice) as { roles: string[] }).roles, ['r']);
  assert.deepEqual((run(s, { method: 'RoleGet', role: 'r' }, alice) as { perms: unknown[] }).perms, []);
  throwsEtcd(() => run(s, { method: 'UserGet', name: 'bob' }, alice), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  throwsEtcd(() => run(s, { method: 'RoleGet', role: 'q' }, alice), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  throwsEtcd(() => run(s, { method: 'UserGet', name: 'bob' }, NOBODY), GrpcCode.INVALID_ARGUMENT, 'etcdserver: user name is empty');
  run(s, { method: 'UserGet', name: 'bob' }, root());
});

test('permission checks: off passes all; no token, old revision, unknown user, root, granted, denied', () => {
  const s = new AuthStore();
  const anyone: AuthInfo = { username: 'nobody', revision: 0 };
  s.checkPut(anyone, B('k')); // auth off: everything passes
  s.checkRange(anyone, B('a'), B('\0'));
  addUser(s, 'root'); grantRole(s, 'root', 'root');
  addUser(s, 'alice'); addRole(s, 'r'); grantRole(s, 'alice', 'r');
  grantPerm(s, 'r', PermType.READ, 'foo');
  run(s, { method: 'AuthEnable' });
  const rev = s.revision;
  throwsEtcd(() => s.checkRange(NOBODY, B('foo'), B('')), GrpcCode.INVALID_ARGUMENT, 'etcdserver: user name is empty');
  throwsEtcd(() => s.checkRange({ username: 'alice', revision: rev - 1 }, B('foo'), B('')), GrpcCode.INVALID_ARGUMENT,
    'etcdserver: revision of auth store is old');
  throwsEtcd(() => s.checkRange({ username: 'ghost', revision: rev }, B('foo'), B('')), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  const alice = { username: 'alice', revision: rev };
  s.checkRange(alice, B('foo'), B(''));
  throwsEtcd(() => s.checkPut(alice, B('foo')), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  throwsEtcd(() => s.checkRange(alice, B('fop'), B('')), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  throwsEtcd(() => s.checkDeleteRange(alice, B('foo'), B('')), GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied');
  const root = { username: 'root', revision: rev };
  s.checkPut(root, B('anything'));
  s.checkDeleteRange(root, B('\0'), B('\0'));
  // A newer grant is seen at once, and makes alice's old revision stale.
  grantPerm(s, 'r', PermType.WRITE, 'foo', '', root);
  throwsEtcd(() => s.checkPut(alice, B('foo')), GrpcCode.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old');
  s.checkPut({ username: 'alice', revision: s.revision }, B('foo'));
  // Revoking the role takes the permission away.
  run(s, { method: 'UserRevokeRole', name: 'alice', role: 'r' }, { username: 'root', revision: s.revision });
  throwsEtcd(() => s.checkRange({ username: 'alice', revision: s.revision }, B('foo'), B('')), GrpcCode.PERMISSION_DENIED,
    'etcdserver: permission denied');
});

test('Authenticate: off, unknown user, no-password user, and the token it mints; passwordToCheck', () => {
  const s = new AuthStore();
  run(s, { method: 'UserAdd', name: 'np', hashedPassword: undefined, noPassword: true });
  throwsEtcd(() => run(s, { method: 'Authenticate', name: 'root', simpleToken: 'p' }), GrpcCode.FAILED_PRECONDITION,
    'etcdserver: authentication is not enabled');
  throwsEtcd(() => s.passwordToCheck('np'), GrpcCode.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled');
  addUser(s, 'root'); grantRole(s, 'root', 'root'); run(s, { method: 'AuthEnable' });
  throwsEtcd(() => run(s, { method: 'Authenticate', name: 'ghost', simpleToken: 'p' }), GrpcCode.INVALID_ARGUMENT,
    'etcdserver: authentication failed, invalid user ID or password');
  throwsEtcd(() => run(s, { method: 'Authenticate', name: 'np', simpleToken: 'p' }), GrpcCode.INVALID_ARGUMENT,
    'etcdserver: authentication failed, invalid user ID or password');
  throwsEtcd(() => s.passwordToCheck('ghost'), GrpcCode.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password');
  throwsEtcd(() => s.passwordToCheck('np'), GrpcCode.UNKNOWN, 'auth: authentication failed, password was given for no password user');
  assert.deepEqual(s.passwordToCheck('root'), { hash: HASH, revision: s.revision });
  const rev = s.revision;
  const out = s.apply(NOBODY, { method: 'Authenticate', name: 'root', simpleToken: 'abcdefghijklmnop' }, 42);
  assert.deepEqual(out.response, { method: 'Authenticate', token: 'abcdefghijklmnop.42' });
  assert.deepEqual(out.effect, { kind: 'assign', token: 'abcdefghijklmnop.42', username: 'root' });
  assert.equal(s.revision, rev, 'Authenticate does not bump');
});

test('effects for the token table: delete and password change invalidate the user, disable drops all', () => {
  const { s, root } = enabledStore();
  addUser(s, 'u', root());
  assert.deepEqual(s.apply(root(), { method: 'UserChangePassword', name: 'u', hashedPassword: HASH }, 1).effect,
    { kind: 'invalidateUser', name: 'u' });
  assert.deepEqual(s.apply(root(), { method: 'UserDelete', name: 'u' }, 1).effect, { kind: 'invalidateUser', name: 'u' });
  assert.deepEqual(s.apply(root(), { method: 'AuthDisable' }, 1).effect, { kind: 'disable' });
});

test('state() and fromState() round-trip, and the copy is not shared', () => {
  const { s, root } = enabledStore();
  addRole(s, 'r', root());
  grantPerm(s, 'r', PermType.READWRITE, 'a', 'b', root());
  run(s, { method: 'UserAdd', name: 'np', hashedPassword: undefined, noPassword: true }, root());
  grantRole(s, 'np', 'r', root());
  const st = s.state();
  const t = AuthStore.fromState(st);
  assert.deepEqual(t.state(), st);
  assert.equal(t.isEnabled, true);
  assert.equal(t.revision, s.revision);
  st.users[0]!.roles.push('mutated');
  assert.notDeepEqual(t.state(), st);
  t.checkRange({ username: 'np', revision: t.revision }, B('a'), B('b'));
});
