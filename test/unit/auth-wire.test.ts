// Auth on the wire and in the log: the Auth service's messages against
// protobufjs (the reference codec over etsd's .proto files), the request
// record a raft entry carries (round trip, malformed records refused), the
// entry header that names a request's user, and the auth notice the apply
// worker sends the main thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { messageType } from '../../src/proto/registry.js';
import * as proto from '../../src/auth/proto.js';
import { decodeAuthRequest, encodeAuthRequest } from '../../src/auth/request-record.js';
import type { AuthRequest, AuthResponse } from '../../src/auth/store.js';
import { PermType } from '../../src/auth/types.js';
import { RecordError, packRecord } from '../../src/common/records.js';
import { EntryKind, decodeEntryData, encodeEntryData } from '../../src/workers/protocol/entry.js';
import { ResultType, decodeResult, encodeAuthNotice, type AuthNotice } from '../../src/workers/protocol/result-ring.js';

const enc = (type: string, obj: Record<string, unknown>): Buffer => {
  const T = messageType(type);
  return Buffer.from(T.encode(T.fromObject(obj)).finish());
};
const dec = (type: string, bytes: Buffer): Record<string, unknown> => {
  const T = messageType(type);
  return T.toObject(T.decode(bytes), { defaults: false, bytes: Buffer as unknown as StringConstructor }) as Record<string, unknown>;
};

test('requests decode as protobufjs encodes them', () => {
  assert.deepEqual(proto.decodeAuthenticate(enc('etcdserverpb.AuthenticateRequest', { name: 'ü', password: 'p w' })), { name: 'ü', password: 'p w' });
  assert.deepEqual(proto.decodeUserAdd(enc('etcdserverpb.AuthUserAddRequest', { name: 'a', password: 'x', options: { noPassword: true } })),
    { name: 'a', password: 'x', noPassword: true });
  assert.deepEqual(proto.decodeUserAdd(enc('etcdserverpb.AuthUserAddRequest', { name: 'a' })), { name: 'a', password: '', noPassword: false });
  assert.deepEqual(proto.decodeUserChangePassword(enc('etcdserverpb.AuthUserChangePasswordRequest', { name: 'a', password: 'n' })), { name: 'a', password: 'n' });
  assert.equal(proto.decodeName(enc('etcdserverpb.AuthRoleGetRequest', { role: 'r' })), 'r');
  assert.equal(proto.decodeName(enc('etcdserverpb.AuthUserDeleteRequest', { name: 'u' })), 'u');
  assert.deepEqual(proto.decodeUserRole(enc('etcdserverpb.AuthUserGrantRoleRequest', { user: 'u', role: 'r' })), { user: 'u', role: 'r' });
  assert.deepEqual(proto.decodeUserRole(enc('etcdserverpb.AuthUserRevokeRoleRequest', { name: 'u', role: 'r' })), { user: 'u', role: 'r' });
  assert.deepEqual(
    proto.decodeRoleGrantPermission(enc('etcdserverpb.AuthRoleGrantPermissionRequest', {
      name: 'r', perm: { permType: 2, key: Buffer.from([0, 0xff]), rangeEnd: Buffer.from([0]) },
    })),
    { name: 'r', perm: { permType: PermType.READWRITE, key: Buffer.from([0, 0xff]), rangeEnd: Buffer.from([0]) } });
  assert.deepEqual(
    proto.decodeRoleRevokePermission(enc('etcdserverpb.AuthRoleRevokePermissionRequest', { role: 'r', key: Buffer.from('k'), rangeEnd: Buffer.from('l') })),
    { role: 'r', key: Buffer.from('k'), rangeEnd: Buffer.from('l') });
  // Empty messages carry proto3 defaults.
  assert.deepEqual(proto.decodeAuthenticate(Buffer.alloc(0)), { name: '', password: '' });
});

test('responses encode as protobufjs decodes them', () => {
  const header = { clusterId: 0x1234567890abcdefn, memberId: 7n, revision: 42, raftTerm: 3 };
  const pbHeader = { clusterId: '1311768467294899695', memberId: '7', revision: '42', raftTerm: '3' };
  const cases: [string, AuthResponse, Record<string, unknown>][] = [
    ['etcdserverpb.AuthenticateResponse', { method: 'Authenticate', token: 'abcdefghijklmnop.17' }, { token: 'abcdefghijklmnop.17' }],
    ['etcdserverpb.AuthUserGetResponse', { method: 'UserGet', roles: ['a', 'b'] }, { roles: ['a', 'b'] }],
    ['etcdserverpb.AuthUserListResponse', { method: 'UserList', users: ['root'] }, { users: ['root'] }],
    ['etcdserverpb.AuthRoleListResponse', { method: 'RoleList', roles: [] }, {}],
    ['etcdserverpb.AuthRoleGetResponse', {
      method: 'RoleGet', perms: [
        { permType: PermType.READ, key: Buffer.from('a'), rangeEnd: Buffer.alloc(0) },
        { permType: PermType.WRITE, key: Buffer.from('b'), rangeEnd: Buffer.from([0]) },
      ],
    }, { perm: [{ key: Buffer.from('a') }, { permType: 1, key: Buffer.from('b'), rangeEnd: Buffer.from([0]) }] }],
    ['etcdserverpb.AuthEnableResponse', { method: 'AuthEnable' }, {}],
  ];
  for (const [type, resp, fields] of cases) {
    const got = dec(type, proto.encodeAuthResponse(header, resp));
    const T = messageType('etcdserverpb.ResponseHeader');
    const h = T.toObject(T.fromObject(got['header'] as Record<string, unknown>), { longs: String }) as Record<string, unknown>;
    assert.deepEqual(h, pbHeader, type);
    delete got['header'];
    assert.deepEqual(got, fields, type);
  }
});

const REQUESTS: AuthRequest[] = [
  { method: 'AuthEnable' }, { method: 'AuthDisable' }, { method: 'UserList' }, { method: 'RoleList' },
  { method: 'Authenticate', name: 'alice', simpleToken: 'abcdefghijklmnop' },
  { method: 'UserAdd', name: 'a', hashedPassword: '$2a$04$abc', noPassword: false },
  { method: 'UserAdd', name: 'n', hashedPassword: undefined, noPassword: true },
  { method: 'UserGet', name: 'a' }, { method: 'UserDelete', name: 'a' }, { method: 'RoleAdd', name: 'r' },
  { method: 'UserChangePassword', name: 'a', hashedPassword: '$2a$04$def' },
  { method: 'UserGrantRole', user: 'a', role: 'r' }, { method: 'UserRevokeRole', name: 'a', role: 'r' },
  { method: 'RoleGet', role: 'r' }, { method: 'RoleDelete', role: 'r' },
  { method: 'RoleGrantPermission', name: 'r', perm: { permType: PermType.WRITE, key: Buffer.from([0, 1]), rangeEnd: Buffer.alloc(0) } },
  { method: 'RoleRevokePermission', role: 'r', key: Buffer.from('k'), rangeEnd: Buffer.from([0]) },
];

test('every request record round-trips', () => {
  for (const r of REQUESTS) assert.deepEqual(decodeAuthRequest(encodeAuthRequest(r)), r, r.method);
});

test('malformed request records are refused', () => {
  const bad: unknown[] = [
    'AuthEnable', ['Nope'], [], [7], ['UserGet'], ['UserGet', 'a', 'b'], ['UserGet', 5],
    ['UserAdd', 'a', 5, false], ['UserAdd', 'a', null, 'no'],
    ['RoleGrantPermission', 'r', 1.5, Buffer.from('k'), Buffer.alloc(0)], ['RoleGrantPermission', 'r', 1, 'k', Buffer.alloc(0)],
  ];
  for (const v of bad) assert.throws(() => decodeAuthRequest(packRecord(v)), RecordError, JSON.stringify(v));
});

test('an entry names its user and auth revision; a plain entry names none', () => {
  const req = Buffer.from('request bytes');
  const plain = decodeEntryData(encodeEntryData(EntryKind.Put, 12345, req));
  assert.deepEqual(plain, { kind: EntryKind.Put, reqId: 12345, request: req });
  for (const auth of [{ username: '', revision: 0 }, { username: 'ålice', revision: 2 ** 40 }]) {
    const data = encodeEntryData(EntryKind.Txn, 99, req, auth);
    assert.equal(data[0], EntryKind.Authed);
    assert.deepEqual(decodeEntryData(data), { kind: EntryKind.Txn, reqId: 99, request: req, auth });
  }
  const data = encodeEntryData(EntryKind.Put, 1, req, { username: 'bob', revision: 3 });
  assert.throws(() => decodeEntryData(data.subarray(0, 12)), /shorter than its auth header/);
  assert.throws(() => decodeEntryData(data.subarray(0, 21)), /shorter than its user name/);
});

test('auth notices cross the result ring with their token effect', () => {
  const state = Buffer.from([1, 2, 3]);
  const notices: AuthNotice[] = [
    { state, effect: null }, { state, effect: 'reset' }, { state, effect: { kind: 'enable' } }, { state, effect: { kind: 'disable' } },
    { state, effect: { kind: 'invalidateUser', name: 'a' } }, { state, effect: { kind: 'assign', token: 't.1', username: 'a' } },
  ];
  for (const n of notices) {
    const r = decodeResult(Buffer.concat(encodeAuthNotice(n)));
    assert.equal(r.type, ResultType.Auth);
    if (r.type !== ResultType.Auth) continue;
    assert.deepEqual({ state: Buffer.from(r.notice.state), effect: r.notice.effect }, n);
  }
  assert.throws(() => decodeResult(Buffer.concat([Buffer.of(ResultType.Auth), packRecord({ state, effect: ['steal'] })])), RecordError);
});
