// etcd 3.4's authpb.User and authpb.Role (auth/authpb/auth.proto), byte for
// byte as gogoproto marshals them: the values of the authUsers and authRoles
// buckets of etcd's backend (auth/store.go putUser/putRole), which snapshots
// carry. Decoding is for files from elsewhere: every field is checked.
//
//   User       { bytes name = 1; bytes password = 2; repeated string roles = 3; UserAddOptions options = 4 }
//   Options    { bool no_password = 1 }
//   Role       { bytes name = 1; repeated Permission keyPermission = 2 }
//   Permission { Type permType = 1; bytes key = 2; bytes range_end = 3 }

import { ProtoDecodeError, ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from '../proto/wire.js';
import type { Permission, PermType, Role, User } from './types.js';

const tag = (field: number, wire: number): number => (field << 3) | wire;

export function encodeAuthpbPermission(p: Permission): Buffer {
  const w = new ProtoWriter(16 + p.key.length + p.rangeEnd.length);
  if (p.permType !== 0) { w.writeTag(1, WIRE_VARINT); w.writeVarint(p.permType); }
  if (p.key.length > 0) { w.writeTag(2, WIRE_LDELIM); w.writeBytes(p.key); }
  if (p.rangeEnd.length > 0) { w.writeTag(3, WIRE_LDELIM); w.writeBytes(p.rangeEnd); }
  return w.finish();
}

export function encodeAuthpbUser(u: User): Buffer {
  const w = new ProtoWriter(128);
  if (u.name.length > 0) { w.writeTag(1, WIRE_LDELIM); w.writeString(u.name); }
  if (u.password !== undefined && u.password.length > 0) { w.writeTag(2, WIRE_LDELIM); w.writeString(u.password); }
  for (const r of u.roles) { w.writeTag(3, WIRE_LDELIM); w.writeString(r); }
  // etcd's UserAdd always sets Options (an empty message when no_password is false).
  w.writeTag(4, WIRE_LDELIM);
  w.writeBytes(u.noPassword ? Buffer.from([tag(1, WIRE_VARINT), 1]) : Buffer.alloc(0));
  return w.finish();
}

export function encodeAuthpbRole(r: Role): Buffer {
  const w = new ProtoWriter(64);
  if (r.name.length > 0) { w.writeTag(1, WIRE_LDELIM); w.writeString(r.name); }
  for (const p of r.perms) { w.writeTag(2, WIRE_LDELIM); w.writeBytes(encodeAuthpbPermission(p)); }
  return w.finish();
}

export function decodeAuthpbUser(b: Uint8Array): User {
  const r = new ProtoReader(b);
  let name = '';
  let password: string | undefined;
  const roles: string[] = [];
  let noPassword = false;
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === tag(1, WIRE_LDELIM)) name = r.readString();
    else if (t === tag(2, WIRE_LDELIM)) password = r.readString();
    else if (t === tag(3, WIRE_LDELIM)) roles.push(r.readString());
    else if (t === tag(4, WIRE_LDELIM)) noPassword = decodeOptions(r.readBytes());
    else r.skipField(t & 7);
  }
  if (name === '') throw new ProtoDecodeError('authpb.User without a name');
  return { name, password: noPassword || password === '' ? undefined : password, roles, noPassword };
}

function decodeOptions(b: Uint8Array): boolean {
  const r = new ProtoReader(b);
  let noPassword = false;
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === tag(1, WIRE_VARINT)) noPassword = r.readBool();
    else r.skipField(t & 7);
  }
  return noPassword;
}

export function decodeAuthpbRole(b: Uint8Array): Role {
  const r = new ProtoReader(b);
  let name = '';
  const perms: Permission[] = [];
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === tag(1, WIRE_LDELIM)) name = r.readString();
    else if (t === tag(2, WIRE_LDELIM)) perms.push(decodePermission(r.readBytes()));
    else r.skipField(t & 7);
  }
  if (name === '') throw new ProtoDecodeError('authpb.Role without a name');
  return { name, perms };
}

function decodePermission(b: Uint8Array): Permission {
  const r = new ProtoReader(b);
  let permType = 0;
  let key = Buffer.alloc(0);
  let rangeEnd = Buffer.alloc(0);
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === tag(1, WIRE_VARINT)) permType = r.readInt32();
    else if (t === tag(2, WIRE_LDELIM)) key = Buffer.from(r.readBytes());
    else if (t === tag(3, WIRE_LDELIM)) rangeEnd = Buffer.from(r.readBytes());
    else r.skipField(t & 7);
  }
  return { permType: permType as PermType, key, rangeEnd };
}
