// etcd 3.4's Auth service (etcdserver/v3_server.go): every request goes
// through the raft log with the caller's AuthInfo and is checked and applied
// by the apply worker on every member (auth/store.go's rules there). The
// server's own parts, as etcd's: Authenticate checks the password here (in
// the pool) and proposes only the user and a fresh token prefix, retrying
// when the auth store moved meanwhile; UserAdd and UserChangePassword hash
// the password in the pool before proposing, so no password is in the log.
// AuthStatus is not in etcd 3.4's API: it stays unimplemented.

import * as proto from '../auth/proto.js';
import { encodeAuthRequest } from '../auth/request-record.js';
import type { AuthRequest } from '../auth/store.js';
import type { AuthInfo } from '../auth/types.js';
import { Errors } from '../common/errors.js';
import type { UnaryHandler } from '../grpc/rpc.js';
import type { Member } from '../member/member.js';
import { EntryKind } from '../workers/protocol/entry.js';
import { withAuth } from './auth-check.js';

const AUTH = '/etcdserverpb.Auth/';

export function authHandlers(member: Member): Map<string, UnaryHandler> {
  const h = new Map<string, UnaryHandler>();
  const propose = (ai: AuthInfo | undefined, r: AuthRequest): Promise<Buffer> =>
    member.propose(EntryKind.Auth, encodeAuthRequest(r), undefined, ai);
  /** A request whose fields go to the log as they came. */
  const plain = (method: string, make: (req: Buffer) => AuthRequest) => {
    h.set(AUTH + method, (req, ctx) => {
      const r = make(req);
      return withAuth(member, ctx, (ai) => propose(ai, r));
    });
  };

  plain('AuthEnable', () => ({ method: 'AuthEnable' }));
  plain('AuthDisable', () => ({ method: 'AuthDisable' }));
  plain('UserGet', (req) => ({ method: 'UserGet', name: proto.decodeName(req) }));
  plain('UserList', () => ({ method: 'UserList' }));
  plain('UserDelete', (req) => ({ method: 'UserDelete', name: proto.decodeName(req) }));
  plain('UserGrantRole', (req) => ({ method: 'UserGrantRole', ...proto.decodeUserRole(req) }));
  plain('UserRevokeRole', (req) => {
    const { user, role } = proto.decodeUserRole(req);
    return { method: 'UserRevokeRole', name: user, role };
  });
  plain('RoleAdd', (req) => ({ method: 'RoleAdd', name: proto.decodeName(req) }));
  plain('RoleGet', (req) => ({ method: 'RoleGet', role: proto.decodeName(req) }));
  plain('RoleList', () => ({ method: 'RoleList' }));
  plain('RoleDelete', (req) => ({ method: 'RoleDelete', role: proto.decodeName(req) }));
  plain('RoleGrantPermission', (req) => ({ method: 'RoleGrantPermission', ...proto.decodeRoleGrantPermission(req) }));
  plain('RoleRevokePermission', (req) => ({ method: 'RoleRevokePermission', ...proto.decodeRoleRevokePermission(req) }));

  h.set(AUTH + 'UserAdd', (req, ctx) => {
    const r = proto.decodeUserAdd(req);
    return withAuth(member, ctx, async (ai) => {
      const hashedPassword = r.noPassword ? undefined : await member.bcryptHash(r.password);
      return propose(ai, { method: 'UserAdd', name: r.name, hashedPassword, noPassword: r.noPassword });
    });
  });

  h.set(AUTH + 'UserChangePassword', (req, ctx) => {
    const r = proto.decodeUserChangePassword(req);
    return withAuth(member, ctx, async (ai) =>
      propose(ai, { method: 'UserChangePassword', name: r.name, hashedPassword: await member.bcryptHash(r.password) }));
  });

  h.set(AUTH + 'Authenticate', async (req) => {
    const { name, password } = proto.decodeAuthenticate(req);
    await member.linearizableBarrier();
    for (;;) {
      let checked;
      try {
        checked = member.auth.store.passwordToCheck(name);
        if (!(await member.bcryptCompare(password, checked.hash))) throw Errors.authFailed();
      } catch (err) {
        if (err !== null && typeof err === 'object' && 'message' in err && err.message !== Errors.authNotEnabled().message) {
          member.log.warn({ user: name, error: err.message }, 'invalid authentication was requested');
        }
        throw err;
      }
      const body = await propose(undefined, { method: 'Authenticate', name, simpleToken: member.auth.tokenPrefix() });
      if (checked.revision === member.auth.revision) return member.auth.jwt === null ? body : withJwt(member, body, name, checked.revision);
      member.log.info({}, 'revision when password checked became stale; retrying');
    }
  });
  return h;
}

/**
 * etcd's JWT assign: the applied entry answered with a simple token; the
 * member that proposed it signs a JWT for the user at the auth revision the
 * password was checked at (the entry applied at it: the caller checked that
 * it had not moved), and answers that instead.
 */
function withJwt(member: Member, body: Buffer, name: string, revision: number): Buffer {
  const token = member.auth.jwt!.sign(name, revision);
  member.log.debug({ 'user-name': name, revision }, 'created/assigned a new JWT token');
  return proto.replaceAuthenticateToken(body, token);
}
