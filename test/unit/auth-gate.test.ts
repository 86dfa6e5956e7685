// The main thread's side of auth (AuthGate): the store copy follows the
// apply worker's notices, tokens are looked up only once their entry is
// applied here (waiting for it otherwise), and the read, admin and
// stale-token checks answer with etcd's errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthGate, NO_USER } from '../../src/auth/gate.js';
import { encodeAuthState } from '../../src/auth/state-record.js';
import { AuthStore } from '../../src/auth/store.js';
import { PermType } from '../../src/auth/types.js';
import { EtcdError } from '../../src/common/errors.js';

const HASH = '$2a$04$0123456789012345678901uJ0123456789012345678901234567';
const NONE = { username: '', revision: 0 };

/** A store with root (root role) and alice (read on "a"), enabled, and its state record. */
function enabledStore(): { store: AuthStore; bytes: Buffer } {
  const s = new AuthStore();
  s.apply(NONE, { method: 'UserAdd', name: 'root', hashedPassword: HASH, noPassword: false }, 1);
  s.apply(NONE, { method: 'UserGrantRole', user: 'root', role: 'root' }, 2);
  s.apply(NONE, { method: 'RoleAdd', name: 'r' }, 3);
  s.apply(NONE, { method: 'RoleGrantPermission', name: 'r', perm: { permType: PermType.READ, key: Buffer.from('a'), rangeEnd: Buffer.alloc(0) } }, 4);
  s.apply(NONE, { method: 'UserAdd', name: 'alice', hashedPassword: HASH, noPassword: false }, 5);
  s.apply(NONE, { method: 'UserGrantRole', user: 'alice', role: 'r' }, 6);
  s.apply(NONE, { method: 'AuthEnable' }, 7);
  return { store: s, bytes: encodeAuthState(s.state()) };
}

const isEtcd = (message: string) => (err: unknown) => err instanceof EtcdError && err.message === message;

test('a token minted by an applied entry names its user at the current revision', () => {
  const { store, bytes } = enabledStore();
  const gate = new AuthGate(encodeAuthState(new AuthStore().state()), 7);
  assert.equal(gate.infoFrom(undefined), undefined);
  gate.onNotice(bytes, { kind: 'enable' });
  const out = store.apply(NONE, { method: 'Authenticate', name: 'alice', simpleToken: 'abcdefghijklmnop' }, 8);
  assert.ok(out.effect);
  gate.onNotice(bytes, out.effect);
  gate.advanceApplied(8);
  assert.deepEqual(gate.infoFrom('abcdefghijklmnop.8'), { username: 'alice', revision: store.revision });
  assert.throws(() => gate.infoFrom('abcdefghijklmnop.7'), isEtcd('etcdserver: invalid auth token'));
  assert.throws(() => gate.infoFrom('nodot'), isEtcd('etcdserver: invalid auth token'));
  gate.stop();
});

test('a token whose entry is not applied yet waits for it', async () => {
  const { bytes } = enabledStore();
  const gate = new AuthGate(bytes, 7);
  const pending = gate.infoFrom('ABCDEFGHIJKLMNOP.9');
  assert.ok(pending instanceof Promise);
  gate.onNotice(bytes, { kind: 'assign', token: 'ABCDEFGHIJKLMNOP.9', username: 'root' });
  gate.advanceApplied(9);
  assert.deepEqual(await pending, { username: 'root', revision: gate.revision });
  // Stopping answers the ones still waiting.
  const never = gate.infoFrom('ABCDEFGHIJKLMNOP.99');
  gate.stop();
  await assert.rejects(Promise.resolve(never), isEtcd('etcdserver: invalid auth token'));
});

test('read, admin and stale-token checks as etcd answers them', () => {
  const { bytes } = enabledStore();
  const gate = new AuthGate(bytes, 7);
  const alice = { username: 'alice', revision: gate.revision };
  const root = { username: 'root', revision: gate.revision };
  gate.checkRange(alice, Buffer.from('a'), Buffer.alloc(0));
  assert.throws(() => gate.checkRange(alice, Buffer.from('b'), Buffer.alloc(0)), isEtcd('etcdserver: permission denied'));
  assert.throws(() => gate.checkRange(undefined, Buffer.from('a'), Buffer.alloc(0)), isEtcd('etcdserver: user name is empty'));
  assert.throws(() => gate.checkRange({ ...alice, revision: alice.revision - 1 }, Buffer.from('a'), Buffer.alloc(0)),
    isEtcd('etcdserver: revision of auth store is old'));
  gate.checkAdmin(root);
  assert.throws(() => gate.checkAdmin(alice), isEtcd('etcdserver: permission denied'));
  assert.throws(() => gate.checkAdmin(undefined), isEtcd('etcdserver: user name is empty'));
  assert.throws(() => gate.checkAdmin({ username: 'ghost', revision: 9 }), isEtcd('etcdserver: user name not found'));
  assert.deepEqual(gate.rootInfo(), root);
  gate.checkNotStale(undefined);
  gate.checkNotStale(alice);
  gate.checkNotStale(NO_USER);
  assert.throws(() => gate.checkNotStale({ ...alice, revision: alice.revision + 1 }), isEtcd('etcdserver: revision of auth store is old'));
  gate.stop();
});

test('disable drops every token; a snapshot install resets tokens to its flag', () => {
  const { store, bytes } = enabledStore();
  const gate = new AuthGate(bytes, 10);
  gate.onNotice(bytes, { kind: 'assign', token: 'abcdefghijklmnop.10', username: 'alice' });
  assert.equal(gate.tokens.size, 1);
  store.apply({ username: 'root', revision: store.revision }, { method: 'AuthDisable' }, 11);
  const off = encodeAuthState(store.state());
  gate.onNotice(off, { kind: 'disable' });
  assert.equal(gate.tokens.size, 0);
  assert.equal(gate.isEnabled, false);
  assert.equal(gate.rootInfo(), undefined);
  // Auth off: reads need no user.
  gate.checkRange(undefined, Buffer.from('zzz'), Buffer.alloc(0));
  gate.onNotice(bytes, 'reset');
  assert.equal(gate.isEnabled, true);
  assert.equal(gate.tokens.isEnabled, true);
  gate.stop();
});
