// The auth state as a versioned record: round trip through msgpackr with
// binary keys, and every malformed shape refused rather than loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAuthState, encodeAuthState } from '../../src/auth/state-record.js';
import type { AuthState } from '../../src/auth/store.js';
import { PermType } from '../../src/auth/types.js';
import { RecordError, packRecord } from '../../src/common/records.js';

const state: AuthState = {
  enabled: true,
  revision: 2 ** 40,
  users: [
    { name: 'np', password: undefined, roles: [], noPassword: true },
    { name: 'root', password: '$2a$10$0123456789012345678901uJ0123456789012345678901234567', roles: ['r', 'root'], noPassword: false },
  ],
  roles: [{ name: 'r', perms: [
    { permType: PermType.READ, key: Buffer.from([0, 0xff, 1]), rangeEnd: Buffer.alloc(0) },
    { permType: PermType.READWRITE, key: Buffer.from('k'), rangeEnd: Buffer.from([0]) },
  ] }],
};

test('round trip keeps every field, binary keys and a large revision', () => {
  const bytes = encodeAuthState(state);
  assert.equal(bytes[0], 1, 'record version byte');
  const back = decodeAuthState(bytes);
  assert.deepEqual(back, state);
  assert.ok(Buffer.isBuffer(back.roles[0]!.perms[0]!.key));
});

test('malformed records are refused', () => {
  const wire = { enabled: true, revision: 5, users: [['u', null, ['r'], false]], roles: [['r', [[0, Buffer.from('k'), Buffer.alloc(0)]]]] };
  assert.equal(decodeAuthState(packRecord(wire)).users[0]!.name, 'u', 'the wire form itself decodes');
  const bad: unknown[] = [
    { ...wire, enabled: 1 },
    { ...wire, revision: 0 },
    { ...wire, revision: 'x' },
    { ...wire, users: [['u', null, ['r']]] },
    { ...wire, users: [['u', 5, [], false]] },
    { ...wire, roles: [['r', [[0, 'k', Buffer.alloc(0)]]]] },
    { ...wire, roles: [['r', [[0.5, Buffer.from('k'), Buffer.alloc(0)]]]] },
    { ...wire, roles: 'none' },
  ];
  for (const b of bad) assert.throws(() => decodeAuthState(packRecord(b)), RecordError, JSON.stringify(b));
  assert.throws(() => decodeAuthState(Buffer.from('{"enabled":true}')), RecordError, 'a legacy JSON record is not an auth state');
  assert.throws(() => decodeAuthState(Buffer.alloc(0)), RecordError);
});
