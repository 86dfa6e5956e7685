// An Auth service request as it travels in a raft entry (EntryKind.Auth): a
// versioned record (common/records.ts). Passwords are never in it: UserAdd
// and UserChangePassword carry the bcrypt hash made before proposing, and
// Authenticate carries the token prefix the proposing member chose. An entry
// from the log or a peer is input: every field is checked on the way in.
//
//   [method, ...fields] with fields in AuthRequest's order (store.ts)

import { RecordError, packRecord, unpackRecord } from '../common/records.js';
import type { AuthMethod, AuthRequest } from './store.js';
import type { PermType } from './types.js';

export function encodeAuthRequest(r: AuthRequest): Buffer {
  switch (r.method) {
    case 'AuthEnable': case 'AuthDisable': case 'UserList': case 'RoleList': return packRecord([r.method]);
    case 'Authenticate': return packRecord([r.method, r.name, r.simpleToken]);
    case 'UserAdd': return packRecord([r.method, r.name, r.hashedPassword ?? null, r.noPassword]);
    case 'UserGet': case 'UserDelete': case 'RoleAdd': return packRecord([r.method, r.name]);
    case 'UserChangePassword': return packRecord([r.method, r.name, r.hashedPassword]);
    case 'UserGrantRole': return packRecord([r.method, r.user, r.role]);
    case 'UserRevokeRole': return packRecord([r.method, r.name, r.role]);
    case 'RoleGet': case 'RoleDelete': return packRecord([r.method, r.role]);
    case 'RoleGrantPermission': return packRecord([r.method, r.name, r.perm.permType, r.perm.key, r.perm.rangeEnd]);
    case 'RoleRevokePermission': return packRecord([r.method, r.role, r.key, r.rangeEnd]);
  }
}

const ARITY: Record<AuthMethod, number> = {
  AuthEnable: 0, AuthDisable: 0, UserList: 0, RoleList: 0, Authenticate: 2, UserAdd: 3, UserGet: 1, UserDelete: 1,
  RoleAdd: 1, UserChangePassword: 2, UserGrantRole: 2, UserRevokeRole: 2, RoleGet: 1, RoleDelete: 1,
  RoleGrantPermission: 4, RoleRevokePermission: 3,
};

export function decodeAuthRequest(bytes: Uint8Array): AuthRequest {
  const { value } = unpackRecord(bytes);
  if (!Array.isArray(value) || typeof value[0] !== 'string' || !(value[0] in ARITY)) {
    throw new RecordError('auth request record is malformed');
  }
  const method = value[0] as AuthMethod;
  const f = value.slice(1) as unknown[];
  if (f.length !== ARITY[method]) throw new RecordError(`auth request record ${method} has ${f.length} fields`);
  const str = (i: number): string => {
    const v = f[i];
    if (typeof v !== 'string') throw new RecordError(`auth request record ${method} field ${i} is not a string`);
    return v;
  };
  const bytesAt = (i: number): Buffer => {
    const v = f[i];
    if (!(v instanceof Uint8Array)) throw new RecordError(`auth request record ${method} field ${i} is not bytes`);
    return Buffer.from(v);
  };
  switch (method) {
    case 'AuthEnable': case 'AuthDisable': case 'UserList': case 'RoleList': return { method };
    case 'Authenticate': return { method, name: str(0), simpleToken: str(1) };
    case 'UserAdd': {
      if (f[1] !== null && typeof f[1] !== 'string') throw new RecordError('auth request record UserAdd hash is malformed');
      if (typeof f[2] !== 'boolean') throw new RecordError('auth request record UserAdd noPassword is not a boolean');
      return { method, name: str(0), hashedPassword: f[1] ?? undefined, noPassword: f[2] };
    }
    case 'UserGet': case 'UserDelete': case 'RoleAdd': return { method, name: str(0) };
    case 'UserChangePassword': return { method, name: str(0), hashedPassword: str(1) };
    case 'UserGrantRole': return { method, user: str(0), role: str(1) };
    case 'UserRevokeRole': return { method, name: str(0), role: str(1) };
    case 'RoleGet': case 'RoleDelete': return { method, role: str(0) };
    case 'RoleGrantPermission': {
      const t = f[1];
      if (typeof t !== 'number' || !Number.isInteger(t)) throw new RecordError('auth request record permission type is malformed');
      return { method, name: str(0), perm: { permType: t as PermType, key: bytesAt(2), rangeEnd: bytesAt(3) } };
    }
    case 'RoleRevokePermission': return { method, role: str(0), key: bytesAt(1), rangeEnd: bytesAt(2) };
  }
}
