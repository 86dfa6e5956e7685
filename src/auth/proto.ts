// The Auth service's protobuf messages (etcdserverpb rpc.proto, authpb
// auth.proto as etcd 3.4 has them): client requests in, responses out.
// Requests are decoded into what the server needs before proposing (the
// password stays here, on its way to bcrypt); responses are encoded from the
// store's answer and a header.

import { encodeResponseHeader } from '../proto/kv-codec.js';
import type { ResponseHeader } from '../proto/kv-types.js';
import { EMPTY_BUFFER, ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from '../proto/wire.js';
import { encodeAuthpbPermission } from './authpb.js';
import type { AuthResponse } from './store.js';
import type { Permission, PermType } from './types.js';

/** Every field of a flat message by number: the last string/bytes or varint seen, as proto3 merges them. */
class Fields {
  private readonly bytes = new Map<number, Buffer>();
  private readonly ints = new Map<number, number>();

  constructor(msg: Uint8Array) {
    const r = new ProtoReader(msg);
    while (r.pos < r.end) {
      const t = r.readTag();
      const f = t >>> 3;
      if ((t & 7) === WIRE_LDELIM) this.bytes.set(f, r.readBytes());
      else if ((t & 7) === WIRE_VARINT) this.ints.set(f, r.readVarint());
      else r.skipField(t & 7);
    }
  }

  str(f: number): string { return (this.bytes.get(f) ?? EMPTY_BUFFER).toString('utf8'); }
  buf(f: number): Buffer { return Buffer.from(this.bytes.get(f) ?? EMPTY_BUFFER); }
  int(f: number): number { return this.ints.get(f) ?? 0; }
  sub(f: number): Fields { return new Fields(this.bytes.get(f) ?? EMPTY_BUFFER); }
}

export interface PasswordRequest { name: string; password: string }
export interface UserAddRequest { name: string; password: string; noPassword: boolean }

export const decodeAuthenticate = (msg: Uint8Array): PasswordRequest => {
  const f = new Fields(msg);
  return { name: f.str(1), password: f.str(2) };
};
export const decodeUserAdd = (msg: Uint8Array): UserAddRequest => {
  const f = new Fields(msg);
  return { name: f.str(1), password: f.str(2), noPassword: f.sub(3).int(1) !== 0 };
};
export const decodeUserChangePassword = decodeAuthenticate;
/** UserGet, UserDelete, RoleAdd (name = 1); RoleGet, RoleDelete (role = 1). */
export const decodeName = (msg: Uint8Array): string => new Fields(msg).str(1);
/** UserGrantRole (user = 1, role = 2), UserRevokeRole (name = 1, role = 2). */
export const decodeUserRole = (msg: Uint8Array): { user: string; role: string } => {
  const f = new Fields(msg);
  return { user: f.str(1), role: f.str(2) };
};
export const decodeRoleGrantPermission = (msg: Uint8Array): { name: string; perm: Permission } => {
  const f = new Fields(msg);
  const p = f.sub(2);
  return { name: f.str(1), perm: { permType: p.int(1) as PermType, key: p.buf(2), rangeEnd: p.buf(3) } };
};
export const decodeRoleRevokePermission = (msg: Uint8Array): { role: string; key: Buffer; rangeEnd: Buffer } => {
  const f = new Fields(msg);
  return { role: f.str(1), key: f.buf(2), rangeEnd: f.buf(3) };
};

/** The response message for a request: header = 1, then the method's own fields. */
export function encodeAuthResponse(header: ResponseHeader, r: AuthResponse): Buffer {
  const w = new ProtoWriter(64);
  w.writeTag(1, WIRE_LDELIM); w.writeBytes(encodeResponseHeader(header));
  const strings = (list: readonly string[]) => { for (const s of list) { w.writeTag(2, WIRE_LDELIM); w.writeString(s); } };
  switch (r.method) {
    case 'Authenticate': if (r.token.length > 0) { w.writeTag(2, WIRE_LDELIM); w.writeString(r.token); } break;
    case 'UserGet': strings(r.roles); break;
    case 'UserList': strings(r.users); break;
    case 'RoleList': strings(r.roles); break;
    case 'RoleGet': for (const p of r.perms) { w.writeTag(2, WIRE_LDELIM); w.writeBytes(encodeAuthpbPermission(p)); } break;
    default: break;
  }
  return w.finish();
}

/** An AuthenticateResponse with its token (field 2) replaced, its header kept as it was. */
export function replaceAuthenticateToken(body: Uint8Array, token: string): Buffer {
  const header = new Fields(body).buf(1);
  const w = new ProtoWriter(header.length + token.length + 16);
  w.writeTag(1, WIRE_LDELIM); w.writeBytes(header);
  if (token.length > 0) { w.writeTag(2, WIRE_LDELIM); w.writeString(token); }
  return w.finish();
}
