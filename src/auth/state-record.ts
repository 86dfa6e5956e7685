// The whole auth state as one versioned record (common/records.ts), for the
// database (beside the applied index) and for snapshots. A record from disk or
// a peer is input: every field is checked on the way back in.
//
//   { enabled, revision, users: [[name, hash | null, roles, noPassword]],
//     roles: [[name, [[permType, key, rangeEnd]]]] }

import {
  RecordError, field, isArray, isBoolean, isString, isStrings, packRecord, toBigInt, unpackRecord,
} from '../common/records.js';
import type { AuthState } from './store.js';
import { PermType, type Permission, type Role, type User } from './types.js';

export function encodeAuthState(s: AuthState): Buffer {
  return packRecord({
    enabled: s.enabled,
    revision: s.revision,
    users: s.users.map((u) => [u.name, u.password ?? null, u.roles, u.noPassword]),
    roles: s.roles.map((r) => [r.name, r.perms.map((p) => [p.permType, p.key, p.rangeEnd])]),
  });
}

export function decodeAuthState(bytes: Uint8Array): AuthState {
  const { version, value } = unpackRecord(bytes);
  if (version === 0) throw new RecordError('auth state record has no version');
  const revision = Number(toBigInt((value as Record<string, unknown> | null)?.['revision'], 'revision'));
  if (!Number.isSafeInteger(revision) || revision < 1) throw new RecordError(`auth revision ${revision} is out of range`);
  return {
    enabled: field(value, 'enabled', isBoolean),
    revision,
    users: field(value, 'users', isArray).map(decodeUser),
    roles: field(value, 'roles', isArray).map(decodeRole),
  };
}

function decodeUser(v: unknown): User {
  if (!Array.isArray(v) || v.length !== 4) throw new RecordError('auth user record is malformed');
  const [name, password, roles, noPassword] = v as unknown[];
  if (!isString(name) || !(password === null || isString(password)) || !isStrings(roles) || !isBoolean(noPassword)) {
    throw new RecordError('auth user record is malformed');
  }
  return { name, password: password ?? undefined, roles, noPassword };
}

function decodeRole(v: unknown): Role {
  if (!Array.isArray(v) || v.length !== 2 || !isString(v[0]) || !isArray(v[1])) {
    throw new RecordError('auth role record is malformed');
  }
  return { name: v[0], perms: v[1].map(decodePerm) };
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function decodePerm(v: unknown): Permission {
  if (!Array.isArray(v) || v.length !== 3) throw new RecordError('auth permission record is malformed');
  const [t, key, rangeEnd] = v as unknown[];
  if (typeof t !== 'number' || !Number.isInteger(t) || !isBytes(key) || !isBytes(rangeEnd)) {
    throw new RecordError('auth permission record is malformed');
  }
  // Any number is kept as etcd keeps it; only 0..2 grant anything (ranges.ts).
  return { permType: t as PermType, key: Buffer.from(key), rangeEnd: Buffer.from(rangeEnd) };
}
