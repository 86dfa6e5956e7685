// Auth for the load clients: --user NAME:PASSWORD is authenticated once per
// worker thread and its token sent on every session of that thread (as
// etcdctl does per client); compare.ts turns auth on in a fresh server with a
// root user first. Cold path only: protobufjs encoding is fine here.
import type { Conn } from './conn-types.js';
import { encodeFramed, messages, PATHS } from './proto.js';

export interface Credentials { name: string; password: string }

/** "name:password", as etcdctl's --user. */
export function parseUser(user: string): Credentials {
  const i = user.indexOf(':');
  if (i <= 0) throw new Error(`--user must be NAME:PASSWORD (got '${user}')`);
  return { name: user.slice(0, i), password: user.slice(i + 1) };
}

/** The framed AuthenticateRequest for these credentials. */
export function authenticateBody(c: Credentials): Buffer {
  return encodeFramed(messages().AuthenticateRequest, { name: c.name, password: c.password });
}

/** Authenticate over `conn`; the token. */
export async function authenticate(conn: Conn, c: Credentials): Promise<string> {
  const M = messages();
  const res = M.AuthenticateResponse.toObject(M.AuthenticateResponse.decode(await conn.unaryAsync(PATHS.authenticate, authenticateBody(c)))) as { token?: string };
  if (!res.token) throw new Error(`Authenticate as ${c.name} gave no token`);
  return res.token;
}

/** On a server with auth off: the root user (root role) with this password, then auth enable. */
export async function enableAuth(conn: Conn, rootPassword: string): Promise<void> {
  const M = messages();
  await conn.unaryAsync(PATHS.userAdd, encodeFramed(M.AuthUserAddRequest, { name: 'root', password: rootPassword }));
  await conn.unaryAsync(PATHS.userGrantRole, encodeFramed(M.AuthUserGrantRoleRequest, { user: 'root', role: 'root' }));
  await conn.unaryAsync(PATHS.authEnable, encodeFramed(M.AuthEnableRequest, {}));
}
